// Level 4, conformance: the geometry types and the links convention each
// requires. Level 5, multiscale: the pyramid's levels are contiguous and
// published, counts shrink level by level, bins grow, and (our pyramids) the
// 'count' attribute of every coarse level accounts for every level-0 point.
#include <map>
#include <set>

#include "validate/checks.hpp"

namespace zvf::detail::validation {
namespace {

const std::map<std::string, std::set<std::string>>& link_requirements() {
  static const std::map<std::string, std::set<std::string>> req = {
      {"point_cloud", {}},
      {"line", {"implicit_sequential"}},
      {"polyline", {"implicit_sequential"}},
      {"streamline", {"implicit_sequential"}},
      {"graph", {"explicit"}},
      {"skeleton", {"implicit_branches", "explicit"}},
      {"mesh", {"explicit"}},
  };
  return req;
}

std::optional<std::int64_t> link_width(Checker& c, const std::string& node) {
  if (!c.store.exists(node + "/zarr.json")) return std::nullopt;
  auto doc = c.read_doc(node + "/zarr.json");
  if (!doc || !doc->contains("attributes") || !(*doc)["attributes"].is_object()) return std::nullopt;
  const json& a = (*doc)["attributes"];
  return a.contains("link_width") && a["link_width"].is_number_integer() ? a["link_width"].get<std::int64_t>() : 0;
}

}  // namespace

void check_conformance(Checker& c) {
  const json& zv = (*c.root)["attributes"]["zarr_vectors"];
  const std::string lc = zv.contains("links_convention") && zv["links_convention"].is_string()
                             ? zv["links_convention"].get<std::string>()
                             : "implicit_sequential";
  std::set<std::string> types;
  if (zv["geometry_types"].is_array())
    for (const auto& t : zv["geometry_types"])
      if (t.is_string()) types.insert(t.get<std::string>());
  const bool composite = c.store.exists("0/geometry_index/zarr.json");  // each type has its own links
  for (const auto& t : types) {
    auto it = link_requirements().find(t);
    if (it == link_requirements().end()) {
      c.warn("zarr.json", "unknown geometry type '" + t + "'");
    } else if (it->second.empty() || it->second.count(lc) || composite) {
      c.pass("'" + t + "': links_convention '" + lc + "' valid");
    } else {
      std::string allowed;
      for (const auto& a : it->second) allowed += (allowed.empty() ? "" : ", ") + a;
      c.error("zarr.json", "geometry '" + t + "' requires links_convention in {" + allowed + "}, got '" + lc + "'");
    }
  }
  const LevelState* l0 = c.level(0);
  if (!l0 || !l0->on_disk) {
    c.warn("", "no level 0 for the geometry checks");
    return;
  }
  if (types.count("mesh")) {
    auto w = link_width(c, "0/links/0");
    if (!w) w = link_width(c, "0/links_mesh");
    if (!w) c.warn("0/links", "mesh geometry but no links metadata");
    else if (*w > 0 && *w < 3) c.error("0/links/0", "mesh link_width = " + std::to_string(*w) + ", must be >= 3");
  }
  if (types.count("point_cloud") && !types.count("graph") && !types.count("skeleton") && !types.count("mesh")) {
    if (c.store.exists("0/links/0/zarr.json")) c.warn("0/links/0", "point cloud but a links array exists");
    else c.pass("point cloud: no links");
  }
}

void check_multiscale(Checker& c) {
  std::vector<int> on_disk;
  for (const auto& l : c.levels) {
    if (l.on_disk) on_disk.push_back(l.level);
    if (l.published && !l.on_disk)
      c.error(level_key(l.level, "zarr.json"), "the root publishes level " + std::to_string(l.level) +
                                                   " (multiscales datasets) but its level group is missing");
    if (l.on_disk && !l.published)
      c.warn(level_key(l.level), "level " + std::to_string(l.level) +
                                     " is not published in the root's multiscales: readers ignore it "
                                     "(an unfinished pyramid build?)");
  }
  if (on_disk.size() <= 1) {
    c.pass("single resolution level: no pyramid to validate");
    return;
  }
  bool contiguous = true;
  for (std::size_t i = 0; i < on_disk.size(); ++i) contiguous = contiguous && on_disk[i] == static_cast<int>(i);
  if (!contiguous) {
    std::vector<std::int64_t> have(on_disk.begin(), on_disk.end()), want;
    for (std::size_t i = 0; i < on_disk.size(); ++i) want.push_back(static_cast<std::int64_t>(i));
    c.error("", "levels on disk are " + numbers_text(have) + ", expected " + numbers_text(want));
  } else {
    c.pass("levels contiguous");
  }

  // Coarser levels hold fewer points and bigger bins.
  const LevelState* prev = nullptr;
  double prev_volume = 1;
  for (const auto& l : c.levels) {
    if (!l.on_disk) continue;
    auto count = l.rows ? l.rows : l.vertex_count;
    auto prev_count = prev ? (prev->rows ? prev->rows : prev->vertex_count) : std::nullopt;
    if (count && prev_count && *count > *prev_count)
      c.error(level_key(l.level), "level " + std::to_string(l.level) + " has " + std::to_string(*count) +
                                      " vertices, more than level " + std::to_string(prev->level) + " (" +
                                      std::to_string(*prev_count) + ")");
    if (l.scale.size() == c.ndim) {
      double volume = 1;
      for (double s : l.scale) volume *= s;
      if (prev && volume < prev_volume)
        c.error(level_key(l.level), "level " + std::to_string(l.level) + "'s NGFF scale " + numbers_text(l.scale) +
                                        " is finer than the level before it");
      prev_volume = volume;
    }
    prev = &l;
  }

  // Our pyramids: each metavertex's 'count' says how many level-0 points it stands for.
  const LevelState* l0 = c.level(0);
  if ((*c.root)["attributes"].contains("zvf_pyramid") && l0 && l0->rows)
    for (const auto& l : c.levels)
      if (l.level > 0 && l.count_total && *l.count_total != *l0->rows)
        c.error(level_key(l.level, "vertex_attributes/count"),
                "level " + std::to_string(l.level) + "'s 'count' attribute sums to " + std::to_string(*l.count_total) +
                    ", but level 0 has " + std::to_string(*l0->rows) + " vertices");
}

}  // namespace zvf::detail::validation
