#include "engine/store_state.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <random>
#include <set>
#include <type_traits>

#include "engine/input.hpp"
#include "zvf/error.hpp"

namespace zvf::detail {
namespace {

template <class T>
T field(const json& j, const char* key, const std::string& what) {
  if (!j.is_object() || !j.contains(key))
    fail(Error::Code::Corrupt, what + ": missing field '" + key + "'");
  // get<>() would cast a float to an integer type unchecked (undefined for 1e300).
  const json& v = j.at(key);
  bool ok = true;
  if constexpr (std::is_same_v<T, ChunkCoord>) ok = meta::is_integer_list(v);
  else if constexpr (std::is_unsigned_v<T> && !std::is_same_v<T, bool>) ok = v.is_number_unsigned();
  else if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) ok = v.is_number_integer();
  if (!ok) fail(Error::Code::Corrupt, what + ": field '" + key + "' must hold whole numbers, got " + v.dump());
  try {
    return j.at(key).get<T>();
  } catch (const json::exception& e) {
    fail(Error::Code::Corrupt, what + ": field '" + key + "' has the wrong type: " + e.what());
  }
}

// Cell keys are built from an origin per axis (cell_key indexes it by the chunk's axes).
void check_origin(const ChunkCoord& origin, std::size_t ndim, const std::string& what) {
  if (origin.size() != ndim)
    fail(Error::Code::Corrupt, what + ": origin has " + std::to_string(origin.size()) + " values, expected " +
                                   std::to_string(ndim) + " (one per axis)");
}

std::string shape_text(const std::vector<double>& v) {
  std::string s = "(";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + number_text(v[i]);
  return s + ")";
}

}  // namespace

json StoreLayout::to_json() const {
  json attrs_j = json::array();
  for (const auto& a : attrs)
    attrs_j.push_back({{"name", a.name}, {"dtype", dtype_name(a.dtype)}, {"cols", a.cols}, {"one_d", a.one_d}});
  return {{"ndim", ndim},
          {"dtype", dtype_name(dtype)},
          {"chunk_shape", grid.chunk_shape},
          {"bin_shape", grid.bin_shape},
          {"bin_given", bin_given},
          {"codecs", codec.to_json()},
          {"attributes", attrs_j}};
}

StoreLayout StoreLayout::from_json(const json& j, const std::string& what) {
  StoreLayout l;
  l.ndim = field<std::size_t>(j, "ndim", what);
  l.dtype = dtype_from_name(field<std::string>(j, "dtype", what));
  l.grid = Grid::make(field<std::vector<double>>(j, "chunk_shape", what),
                      field<std::vector<double>>(j, "bin_shape", what), l.ndim);
  l.bin_given = field<bool>(j, "bin_given", what);
  l.codec = CodecSpec::from_json(field<json>(j, "codecs", what));
  for (const auto& a : field<json>(j, "attributes", what))
    l.attrs.push_back({field<std::string>(a, "name", what), dtype_from_name(field<std::string>(a, "dtype", what)),
                       field<std::size_t>(a, "cols", what), field<bool>(a, "one_d", what)});
  return l;
}

std::string StoreLayout::difference(const StoreLayout& o) const {
  if (ndim != o.ndim) return "dimensions: " + std::to_string(ndim) + " vs " + std::to_string(o.ndim);
  if (dtype != o.dtype) return std::string("position dtype: ") + dtype_name(dtype) + " vs " + dtype_name(o.dtype);
  if (grid.chunk_shape != o.grid.chunk_shape)
    return "chunk_shape: " + shape_text(grid.chunk_shape) + " vs " + shape_text(o.grid.chunk_shape);
  if (grid.bin_shape != o.grid.bin_shape)
    return "bin_shape: " + shape_text(grid.bin_shape) + " vs " + shape_text(o.grid.bin_shape);
  if (codec.to_json() != o.codec.to_json()) return "compressor: " + codec.name() + " vs " + o.codec.name();
  auto names = [](const StoreLayout& l) {
    std::string s;
    for (const auto& a : l.attrs) s += (s.empty() ? "" : ", ") + a.name;
    return "[" + s + "]";
  };
  if (attrs.size() != o.attrs.size()) return "attributes: " + names(*this) + " vs " + names(o);
  for (std::size_t k = 0; k < attrs.size(); ++k) {
    const auto &a = attrs[k], &b = o.attrs[k];
    if (a.name != b.name) return "attributes: " + names(*this) + " vs " + names(o);
    if (a.dtype != b.dtype)
      return "attribute '" + a.name + "' dtype: " + dtype_name(a.dtype) + " vs " + dtype_name(b.dtype);
    if (a.cols != b.cols || a.one_d != b.one_d) return "attribute '" + a.name + "' shape differs";
  }
  return "";
}

json box_to_json(const Box& b) {
  auto side = [](const std::vector<double>& v) {
    json a = json::array();
    for (double x : v) a.push_back(std::isfinite(x) ? json(x) : json(nullptr));
    return a;
  };
  return json::array({side(b.lo), side(b.hi)});
}

Box box_from_json(const json& j, std::size_t ndim, const std::string& what) {
  auto side_ok = [&](const json& s) {
    return s.is_array() && s.size() == ndim &&
           std::all_of(s.begin(), s.end(), [](const json& x) { return x.is_null() || x.is_number(); });
  };
  if (!j.is_array() || j.size() != 2 || !side_ok(j[0]) || !side_ok(j[1]))
    fail(Error::Code::Corrupt, what + ": malformed box (expected [[lo...], [hi...]] with " + std::to_string(ndim) +
                                   " numbers or nulls each)");
  Box b = Box::unbounded(ndim);
  for (std::size_t d = 0; d < ndim; ++d) {
    if (!j[0][d].is_null()) b.lo[d] = j[0][d].get<double>();
    if (!j[1][d].is_null()) b.hi[d] = j[1][d].get<double>();
  }
  return b;
}

json PartitionRecord::to_json(bool with_layout) const {
  json j = {{"zvf_partition", 1},
            {"id", id},
            {"run_id", run_id},
            {"range", box_to_json(range)},
            {"origin", origin},
            {"vertex_count", vertex_count},
            {"bounds", bounds ? box_to_json(*bounds) : json(nullptr)},
            {"in_place", in_place},
            {"staged", staged}};
  if (with_layout) j["layout"] = layout.to_json();
  return j;
}

PartitionRecord PartitionRecord::from_json(const json& j, const std::string& what,
                                           const std::optional<StoreLayout>& layout) {
  PartitionRecord r;
  r.layout = layout ? *layout : StoreLayout::from_json(field<json>(j, "layout", what), what);
  const std::size_t nd = r.layout.ndim;
  r.id = field<std::string>(j, "id", what);
  r.run_id = field<std::string>(j, "run_id", what);
  r.range = box_from_json(field<json>(j, "range", what), nd, what);
  r.origin = field<ChunkCoord>(j, "origin", what);
  check_origin(r.origin, nd, what);
  r.vertex_count = field<std::uint64_t>(j, "vertex_count", what);
  if (const json bounds = field<json>(j, "bounds", what); !bounds.is_null()) {
    r.bounds = box_from_json(bounds, nd, what);
    // Finalisation bins them: finite, with bin indexes that fit int64 (as check_input requires of points).
    for (std::size_t d = 0; d < nd; ++d)
      for (double v : {r.bounds->lo[d], r.bounds->hi[d]})
        if (!std::isfinite(v) || std::abs(v) / r.layout.grid.bin_shape[d] > 9.0e18)
          fail(Error::Code::Corrupt, what + ": bounds are " + number_text(v) + " on axis " + std::to_string(d) +
                                         ", expected finite positions within the chunk grid's range");
  }
  r.in_place = field<std::vector<std::string>>(j, "in_place", what);
  r.staged = field<std::vector<std::string>>(j, "staged", what);
  return r;
}

json Ledger::to_json() const {
  json parts = json::object();
  for (const auto& [id, r] : partitions) parts[id] = r.to_json(false);
  return {{"layout", layout.to_json()}, {"origin", origin}, {"partitions", parts}};
}

Ledger Ledger::from_json(const json& j) {
  const std::string what = "root zarr.json attribute 'zvf'";
  Ledger l;
  l.layout = StoreLayout::from_json(field<json>(j, "layout", what), what);
  l.origin = field<ChunkCoord>(j, "origin", what);
  check_origin(l.origin, l.layout.ndim, what);
  const json parts = field<json>(j, "partitions", what);  // items() must not outlive it
  for (const auto& [id, r] : parts.items())
    l.partitions[id] = PartitionRecord::from_json(r, what + " partition " + id, l.layout);
  return l;
}

std::string partition_dir(const std::string& id) { return kPartitions + id; }

std::vector<StagedPartition> scan_partitions(const Store& store) {
  std::map<std::string, StagedPartition> found;
  for (const auto& key : store.list(kPartitions.substr(0, kPartitions.size() - 1))) {
    // .zvf/partitions/<id>/<file>; list() includes ".zvf/partitions" itself if that is a key
    if (key.size() <= kPartitions.size()) continue;
    auto rest = key.substr(kPartitions.size());
    auto slash = rest.find('/');
    if (slash == std::string::npos) continue;
    std::string id = rest.substr(0, slash), file = rest.substr(slash + 1);
    auto& p = found[id];
    p.id = id;
    if (file == "started.json") {
      auto j = meta::read_json(store, key);
      if (j) p.started_run = field<std::string>(*j, "run_id", key);
    } else if (file == "manifest.json") {
      auto j = meta::read_json(store, key);
      if (j) p.manifest = PartitionRecord::from_json(*j, store.describe() + "/" + key);
    } else if (file == "void.json") {
      p.voided = true;
    }
  }
  std::vector<StagedPartition> out;
  for (auto& [id, p] : found) out.push_back(std::move(p));
  return out;
}

bool same_partitions(const std::vector<StagedPartition>& a, const std::vector<StagedPartition>& b) {
  auto state = [](const std::vector<StagedPartition>& ps) {
    std::map<std::string, std::pair<std::string, std::string>> m;
    for (const auto& p : ps)
      m[p.id] = {p.started_run.value_or("") + (p.voided ? "/void" : ""), p.manifest ? p.manifest->run_id : ""};
    return m;
  };
  return state(a) == state(b);
}

std::vector<std::string> unclaimed_cells(const Store& store, const StoreLayout& layout,
                                         const std::set<std::string>& claimed) {
  std::set<std::string> arrays = {meta::vertices_path(), meta::fragments_path()};
  for (const auto& a : layout.attrs) arrays.insert(meta::attribute_path(a.name));
  std::string attr_root = meta::attribute_path("");  // "0/vertex_attributes/"
  attr_root.pop_back();
  for (const auto& name : store.list_dir(attr_root)) {
    const std::string path = attr_root + "/" + name;
    if (name != "zarr.json" && !arrays.count(path) && !store.exists(path + "/zarr.json")) arrays.insert(path);
  }
  std::vector<std::string> out;
  for (const auto& array : arrays)
    for (const auto& key : store.list(array + "/c"))
      if (!claimed.count(key.substr(array.size() + 1))) out.push_back(key);
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<json> read_root(const Store& store) { return meta::read_json(store, "zarr.json"); }

std::optional<Ledger> read_ledger(const Store& store) {
  auto root = read_root(store);
  if (!root || !root->contains("attributes") || !(*root)["attributes"].contains("zvf")) return std::nullopt;
  return Ledger::from_json((*root)["attributes"]["zvf"]);
}

void refuse_existing_store(const Store& store) {
  if (store.exists("zarr.json"))
    fail(Error::Code::Conflict, "a store already exists at " + store.describe() +
                                    " (it has a zarr.json); write_points creates a new store: remove it or "
                                    "choose another path");
  if (!store.list(kStaging).empty())
    fail(Error::Code::Conflict, store.describe() + " holds partitions written by write_points_partition; "
                                                   "finalise them instead of writing a new store there");
}

bool overlaps(const Box& a, const Box& b) {
  for (std::size_t d = 0; d < a.ndim(); ++d)
    if (!(a.lo[d] < b.hi[d] && b.lo[d] < a.hi[d])) return false;
  return true;
}

std::string new_run_id() {
  static thread_local std::mt19937_64 rng(std::random_device{}() ^
                                          static_cast<std::uint64_t>(
                                              std::chrono::steady_clock::now().time_since_epoch().count()));
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

}  // namespace zvf::detail
