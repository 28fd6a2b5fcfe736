// In-process key/value store. Every operation takes the state's mutex, so one
// MemoryStore (or several sharing a memory:// name) is safe across threads.
#include <map>
#include <mutex>

#include "zvf/error.hpp"
#include "zvf/store.hpp"

namespace zvf {

struct MemoryStore::State {
  std::mutex m;
  std::map<std::string, Bytes> kv;
};

namespace {

// A prefix names a subtree: "" is the whole store, otherwise a key, optionally
// with one trailing '/'. Returns the prefix without the trailing '/'.
std::string normalize_prefix(const std::string& prefix) {
  if (prefix.empty()) return prefix;
  std::string p = prefix;
  if (p.size() > 1 && p.back() == '/') p.pop_back();
  check_key(p);
  return p;
}

// True if key lies in the subtree rooted at p (p itself or below "p/").
bool in_subtree(const std::string& key, const std::string& p) {
  if (p.empty()) return true;
  if (key.compare(0, p.size(), p) != 0) return false;
  return key.size() == p.size() || key[p.size()] == '/';
}

}  // namespace

MemoryStore::MemoryStore() : state_(std::make_shared<State>()) {}

std::optional<Bytes> MemoryStore::get(const std::string& key) const {
  check_key(key);
  std::lock_guard lock(state_->m);
  auto it = state_->kv.find(key);
  if (it == state_->kv.end()) return std::nullopt;
  return it->second;
}

void MemoryStore::set(const std::string& key, ByteSpan value) {
  check_key(key);
  Bytes copy(value.begin(), value.end());  // copy outside the lock
  std::lock_guard lock(state_->m);
  state_->kv[key] = std::move(copy);
}

bool MemoryStore::exists(const std::string& key) const {
  check_key(key);
  std::lock_guard lock(state_->m);
  return state_->kv.count(key) != 0;
}

void MemoryStore::erase(const std::string& key) {
  check_key(key);
  std::lock_guard lock(state_->m);
  state_->kv.erase(key);
}

void MemoryStore::erase_prefix(const std::string& prefix) {
  const std::string p = normalize_prefix(prefix);
  std::lock_guard lock(state_->m);
  // Keys of the subtree are contiguous in the map from lower_bound(p) on,
  // interleaved only with siblings such as "p-x" that sort between "p" and "p/".
  for (auto it = state_->kv.lower_bound(p); it != state_->kv.end();) {
    if (it->first.compare(0, p.size(), p) != 0) break;
    if (in_subtree(it->first, p)) {
      it = state_->kv.erase(it);
    } else {
      ++it;
    }
  }
}

std::vector<std::string> MemoryStore::list(const std::string& prefix) const {
  const std::string p = normalize_prefix(prefix);
  std::vector<std::string> out;
  std::lock_guard lock(state_->m);
  for (auto it = state_->kv.lower_bound(p); it != state_->kv.end(); ++it) {
    if (it->first.compare(0, p.size(), p) != 0) break;
    if (in_subtree(it->first, p)) out.push_back(it->first);
  }
  return out;
}

bool MemoryStore::root_exists() const {
  std::lock_guard lock(state_->m);
  return !state_->kv.empty();
}

}  // namespace zvf
