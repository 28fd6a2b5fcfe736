// Backend-independent parts of the store layer: key validation, the generic
// rename, and URL dispatch.
#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

#include "zvf/error.hpp"
#include "zvf/s3.hpp"
#include "zvf/store.hpp"

namespace zvf {

void check_key(const std::string& key) {
  auto bad = [&](const std::string& why) { invalid("invalid store key '" + key + "': " + why); };
  if (key.empty()) invalid("invalid store key '': keys must not be empty");
  if (key.find('\0') != std::string::npos) bad("contains a NUL character");
  if (key.find('\\') != std::string::npos) bad("contains a backslash; use '/' as the separator");
  if (key.front() == '/') bad("must be relative (no leading '/')");
  std::size_t start = 0;
  while (true) {
    const std::size_t end = key.find('/', start);
    const std::string part = key.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (part.empty()) bad("has an empty path component");
    if (part == "." || part == "..") bad("has a '" + part + "' path component");
    if (end == std::string::npos) break;
    start = end + 1;
  }
}

// Generic fallback: not atomic, but every backend's set() is, so a reader sees
// the value under `from`, under `to`, or (briefly) under both.
void Store::rename(const std::string& from, const std::string& to) {
  check_key(from);
  check_key(to);
  auto value = get(from);
  if (!value) fail(Error::Code::NotFound, "cannot rename '" + from + "' in " + describe() + ": key does not exist");
  if (from == to) return;  // erase() below would otherwise delete the value
  set(to, ByteSpan(*value));
  erase(from);
}

std::optional<std::uint64_t> Store::size_of(const std::string& key) const {
  auto value = get(key);
  if (!value) return std::nullopt;
  return value->size();
}

std::optional<std::size_t> Store::read_parts(const std::string& key,
                                             std::span<const std::span<std::uint8_t>> parts) const {
  auto value = get(key);
  if (!value) return std::nullopt;
  std::size_t at = 0;
  for (const auto& part : parts) {
    const std::size_t n = std::min(part.size(), value->size() - at);
    if (n) std::memcpy(part.data(), value->data() + at, n);
    at += n;
  }
  return at;
}

namespace {

// The one piece of process-wide mutable state: "memory://name" maps to the same
// map for the life of the process, so a writer and a later reader can meet.
struct MemoryRegistry {
  std::mutex m;
  std::map<std::string, std::shared_ptr<void>> states;
};

MemoryRegistry& memory_registry() {
  static MemoryRegistry registry;
  return registry;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// RFC 3986 scheme: a letter followed by letters, digits, '+', '-' or '.'.
bool is_scheme(const std::string& s) {
  if (s.empty() || !std::isalpha(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') return false;
  }
  return true;
}

}  // namespace

std::shared_ptr<Store> open_store_url(const std::string& url) {
  if (url.empty()) invalid("empty store URL or path");
  const std::size_t sep = url.find("://");
  if (sep != std::string::npos && is_scheme(url.substr(0, sep))) {
    const std::string scheme = lower(url.substr(0, sep));
    const std::string rest = url.substr(sep + 3);
    if (scheme == "memory") {
      // State is only complete in memory_store.cpp, so a fresh store supplies
      // it and the registry keeps it type-erased.
      auto store = std::make_shared<MemoryStore>();
      auto& reg = memory_registry();
      std::lock_guard lock(reg.m);
      auto& slot = reg.states[rest];
      if (slot) {
        store->state_ = std::static_pointer_cast<MemoryStore::State>(slot);
      } else {
        slot = store->state_;
      }
      return store;
    }
    if (scheme == "file") {
      if (rest.empty()) invalid("store URL '" + url + "' has no path after file://");
      return std::make_shared<PosixStore>(rest);
    }
    if (scheme == "s3") return std::make_shared<S3Store>(s3_config_from_url(url));
    invalid("store URL scheme '" + scheme + "' is not supported yet (in '" + url +
            "'); use a filesystem path, file://PATH, s3://BUCKET/PREFIX or memory://NAME");
  }
  return std::make_shared<PosixStore>(url);
}

}  // namespace zvf
