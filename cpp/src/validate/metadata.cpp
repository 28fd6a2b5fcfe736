// Level 2, metadata: the root zarr_vectors block (required keys, shapes, bins,
// conventions) and each level group's zarr_vectors_level block (counts, chunk
// overrides, sparsity). Array documents are checked at level 3, next to the
// cells they describe, as the reference does.
#include <cmath>
#include <cstdio>
#include <set>

#include "engine/input.hpp"
#include "validate/checks.hpp"

namespace zvf::detail::validation {
namespace {

bool positive_finite(const std::vector<double>& v) {
  for (double x : v)
    if (!(x > 0) || !std::isfinite(x)) return false;
  return true;
}

void check_root(Checker& c) {
  const json& attrs = (*c.root)["attributes"];
  const json& zv = attrs["zarr_vectors"];
  const std::string key = "zarr.json";
  if (!zv.is_object()) {
    c.error(key, "cannot read root metadata: 'zarr_vectors' is not an object");
    return;
  }
  for (const char* k : {"zv_version", "chunk_shape", "bounds", "geometry_types"})
    if (!zv.contains(k)) {
      c.error(key, std::string("cannot read root metadata: missing required key '") + k + "' in zarr_vectors");
      return;
    }
  const json* axes = nullptr;
  if (attrs.contains("multiscales") && attrs["multiscales"].is_array() && !attrs["multiscales"].empty() &&
      attrs["multiscales"][0].is_object() && attrs["multiscales"][0].contains("axes"))
    axes = &attrs["multiscales"][0]["axes"];
  if (!axes || !axes->is_array() || axes->empty()) {
    c.error(key, "cannot read root metadata: no NGFF multiscales[0].axes block (the store's axes)");
    return;
  }
  c.pass("Root metadata parsed");
  c.ndim = axes->size();

  if (!zv["zv_version"].is_string()) {
    c.error(key, "zv_version is not a string");
  } else {
    int major = 0, minor = 0;
    const std::string v = zv["zv_version"].get<std::string>();
    if (std::sscanf(v.c_str(), "%d.%d", &major, &minor) != 2)
      c.warn(key, "zv_version '" + v + "' is not MAJOR.MINOR[.PATCH]");
    else if (major == 0 && minor < 9)
      c.warn(key, "ZV format " + v + ": zvf reads 0.9 or later");
  }

  if (!is_number_array(zv["chunk_shape"], 0)) {
    c.error(key, "chunk_shape is not a list of numbers");
  } else {
    auto chunk = zv["chunk_shape"].get<std::vector<double>>();
    if (chunk.size() != c.ndim)
      c.error(key, "chunk_shape has " + std::to_string(chunk.size()) + " values, expected " + std::to_string(c.ndim) +
                       " (one per axis)");
    for (std::size_t d = 0; d < chunk.size(); ++d)
      if (!(chunk[d] > 0) || !std::isfinite(chunk[d]))
        c.error(key, "chunk_shape[" + std::to_string(d) + "] = " + number_text(chunk[d]) + ", must be finite and > 0");
    if (chunk.size() == c.ndim && positive_finite(chunk)) c.root_chunk = chunk;
  }

  const json& b = zv["bounds"];
  if (!b.is_array() || b.size() != 2 || !is_number_array(b[0], c.ndim) || !is_number_array(b[1], c.ndim)) {
    c.error(key, "bounds must be [[min per axis], [max per axis]] with " + std::to_string(c.ndim) + " values each");
  } else {
    for (std::size_t d = 0; d < c.ndim; ++d)
      if (b[0][d].get<double>() > b[1][d].get<double>())
        c.error(key, "bounds: min > max on axis " + std::to_string(d));
  }

  struct Convention {
    const char* field;
    std::set<std::string> allowed;
  };
  const Convention conventions[] = {
      {"links_convention", {"explicit", "implicit_sequential", "implicit_branches"}},
      {"object_index_convention", {"standard", "identity"}},
      {"cross_chunk_strategy", {"explicit_links", "boundary_dedup", "both"}},
  };
  for (const auto& conv : conventions) {
    if (!zv.contains(conv.field) || zv[conv.field].is_null()) continue;
    const json& v = zv[conv.field];
    if (!v.is_string() || (!v.get<std::string>().empty() && !conv.allowed.count(v.get<std::string>())))
      c.error(key, std::string("unknown ") + conv.field + ": " + v.dump());
  }

  if (!zv["geometry_types"].is_array() || zv["geometry_types"].empty())
    c.warn(key, "no geometry_types specified");

  if (zv.contains("base_bin_shape") && !zv["base_bin_shape"].is_null()) {
    if (!is_number_array(zv["base_bin_shape"], c.ndim)) {
      c.error(key, "base_bin_shape must be a list of " + std::to_string(c.ndim) + " numbers");
    } else {
      auto bin = zv["base_bin_shape"].get<std::vector<double>>();
      bool ok = true;
      for (std::size_t d = 0; d < bin.size(); ++d) {
        if (!(bin[d] > 0) || !std::isfinite(bin[d])) {
          c.error(key, "base_bin_shape[" + std::to_string(d) + "] = " + number_text(bin[d]) + ", must be > 0");
          ok = false;
        } else if (!c.root_chunk.empty() && whole_ratio(c.root_chunk[d], bin[d]) == 0) {
          c.error(key, "chunk_shape[" + std::to_string(d) + "] = " + number_text(c.root_chunk[d]) +
                           " is not a whole multiple of base_bin_shape[" + std::to_string(d) +
                           "] = " + number_text(bin[d]));
          ok = false;
        }
      }
      if (ok) c.base_bin = bin;
    }
  }
}

void check_level(Checker& c, LevelState& l) {
  const std::size_t mark = c.report.findings.size();
  const std::string key = level_key(l.level, "zarr.json");
  const json& la = l.group.contains("attributes") ? l.group["attributes"] : json();
  if (!la.is_object() || !la.contains("zarr_vectors_level") || !la["zarr_vectors_level"].is_object()) {
    c.error(key, "level metadata must contain a 'zarr_vectors_level' object");
    return;
  }
  const json& lv = la["zarr_vectors_level"];
  for (const char* k : {"level", "vertex_count", "arrays_present"})
    if (!lv.contains(k)) {
      c.error(key, std::string("missing required level metadata key '") + k + "'");
      return;
    }
  if (!lv["vertex_count"].is_number_unsigned())
    c.error(key, "vertex_count = " + lv["vertex_count"].dump() + ", expected a whole number >= 0");
  else
    l.vertex_count = lv["vertex_count"].get<std::uint64_t>();
  if (!lv["level"].is_number_integer() || lv["level"].get<std::int64_t>() != l.level)
    c.warn(key, "'level' is " + lv["level"].dump() + " in the group named " + std::to_string(l.level));
  if (lv.contains("object_sparsity")) {
    const json& s = lv["object_sparsity"];
    if (!s.is_number() || !(s.get<double>() > 0 && s.get<double>() <= 1))
      c.error(key, "object_sparsity = " + s.dump() + ", must be in (0, 1]");
  }
  l.fragments_tile = lv.contains("fragments_tile") && lv["fragments_tile"].is_boolean() && lv["fragments_tile"].get<bool>();
  if (lv.contains("chunk_attribute_name") && !lv["chunk_attribute_name"].is_null()) {
    l.unsupported = true;
    c.warn(key, "chunked by attribute " + lv["chunk_attribute_name"].dump() +
                    " (the reference's chunk_by_attribute), which zvf does not read: its cells were not checked");
  }

  // The level's chunk: root's, or a per-level override (ZV 0.7+) that must nest
  // the root grid. Its bin: the base bin at level 0, twice the NGFF translation above.
  std::vector<double> chunk = c.root_chunk;
  const bool has_override = lv.contains("chunk_shape") && !lv["chunk_shape"].is_null();
  if (has_override) {
    if (!is_number_array(lv["chunk_shape"], c.ndim)) {
      c.error(key, "chunk_shape must be a list of " + std::to_string(c.ndim) + " numbers");
      return;
    }
    chunk = lv["chunk_shape"].get<std::vector<double>>();
    for (std::size_t d = 0; d < c.ndim && d < c.root_chunk.size(); ++d)
      if (whole_ratio(chunk[d], c.root_chunk[d]) == 0)
        c.error(key, "chunk_shape[" + std::to_string(d) + "] = " + number_text(chunk[d]) +
                         " is not a positive whole multiple of the root chunk_shape " + number_text(c.root_chunk[d]));
  }
  std::vector<double> bin;
  if (l.level == 0) bin = c.base_bin.empty() ? chunk : c.base_bin;
  else if (l.translation.size() == c.ndim)
    for (double t : l.translation) bin.push_back(2 * t);
  if (!bin.empty() && !positive_finite(bin)) {
    c.error(level_key(l.level), "bin shape " + numbers_text(bin) + " (from the NGFF translation) must be > 0");
    bin.clear();
  }
  if (has_override && !bin.empty())
    for (std::size_t d = 0; d < c.ndim; ++d)
      if (bin[d] <= chunk[d] && whole_ratio(chunk[d], bin[d]) == 0)
        c.error(key, "bin shape " + number_text(bin[d]) + " does not divide chunk_shape[" + std::to_string(d) +
                         "] = " + number_text(chunk[d]));

  if (chunk.size() == c.ndim) {
    l.grid.chunk_shape = chunk;
    // Bins lay out fragments only where they tile the chunk; a coarse bin that
    // spans chunks (the reference's pyramids) means one bin per chunk.
    bool tiles = bin.size() == c.ndim;
    for (std::size_t d = 0; tiles && d < c.ndim; ++d) tiles = whole_ratio(chunk[d], bin[d]) > 0;
    l.grid.bin_shape = tiles ? bin : chunk;
    for (std::size_t d = 0; d < c.ndim; ++d)
      l.grid.bins_per_chunk.push_back(tiles ? whole_ratio(chunk[d], bin[d]) : 1);
  }
  l.metadata_ok = c.errors_since(mark) == 0 && !l.grid.chunk_shape.empty();
  if (l.metadata_ok) c.pass("level " + std::to_string(l.level) + " metadata parsed");
}

}  // namespace

void check_metadata(Checker& c) {
  const std::size_t mark = c.report.findings.size();
  check_root(c);
  if (c.errors_since(mark) > 0) return;
  for (auto& l : c.levels)
    if (l.on_disk) check_level(c, l);
}

}  // namespace zvf::detail::validation
