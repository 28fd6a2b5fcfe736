#include <set>

#include "zvf/store.hpp"

namespace zvf {

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
