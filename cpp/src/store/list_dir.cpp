#include <set>

#include "zvf/store.hpp"

namespace zvf {

void Store::set_parts(const std::string& key, std::span<const ByteSpan> parts) {
  Bytes all;
  for (const auto& p : parts) all.insert(all.end(), p.begin(), p.end());
  set(key, ByteSpan(all));
}

std::vector<std::string> Store::list_dir(const std::string& prefix) const {
  std::set<std::string> names;
  const std::string base = prefix.empty() || prefix.back() == '/' ? prefix : prefix + "/";
  for (const auto& key : list(prefix)) {
    if (key.compare(0, base.size(), base) != 0) continue;
    auto rest = key.substr(base.size());
    names.insert(rest.substr(0, rest.find('/')));
  }
  return {names.begin(), names.end()};
}

}  // namespace zvf
