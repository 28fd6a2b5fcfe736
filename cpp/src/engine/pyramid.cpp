// build_pyramid: coarse levels computed from level 0, coarse chunk by coarse chunk.
//
// Visibility: a level becomes visible to readers through its group zarr.json and
// the root multiscales. A build first withdraws levels it will replace from the
// root, writes each level's cells, then its array and group metadata, and the root
// last, so a killed build leaves level 0 (and earlier levels) readable and nothing
// half-written visible; re-running completes it. The plan is recorded in the root
// ("zvf_pyramid"), so a re-run with the same settings writes nothing.
#include "zvf/pyramid.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <tuple>

#include "engine/input.hpp"
#include "engine/level.hpp"
#include "engine/parallel.hpp"
#include "engine/store_state.hpp"
#include "zvf/error.hpp"

namespace zvf {
using namespace detail;

namespace {

using ojson = meta::ojson;
const char* const kCountAttr = "count";
const std::string kPyramidStaging = ".zvf/pyramid/";

struct AttrPlan {
  std::string name;
  ArrayMeta meta;
  Reduction reduction;
};

struct LevelPlan {
  int level = 0;
  PyramidLevelSpec spec;
  Grid grid;                            // chunk and bin of this level
  std::vector<std::int64_t> ratio;      // chunk_k / chunk_0 per axis
  ChunkCoord origin;
  std::vector<std::int64_t> shape;
  std::vector<ChunkCoord> chunks;       // coarse chunks holding data, sorted
  std::vector<std::vector<ChunkCoord>> sources;  // level-0 chunks of each coarse chunk
};

struct Plan {
  LevelView base;
  std::vector<AttrPlan> attrs;
  std::vector<LevelPlan> levels;
  json signature;
};

bool is_whole(double x) { return std::abs(x - std::round(x)) <= 1e-9 * std::max(1.0, std::abs(x)); }

std::string vec_text(const std::vector<double>& v) {
  std::string s = "(";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + number_text(v[i]);
  return s + ")";
}

Plan make_plan(const Store& store, const PyramidOptions& opt) {
  if (opt.levels.empty()) invalid("factors is empty: give at least one (coarsen, sparsity) pair");
  if (!store.list_dir(".zvf/partitions").empty())
    fail(Error::Code::Conflict, store.describe() + " has partitions pending finalisation; finalise the store before "
                                                   "building its pyramid");
  Plan plan;
  plan.base = open_level(store, 0);
  const LevelView& b = plan.base;
  const std::size_t nd = b.ndim;
  for (const auto& [name, a] : b.attrs) {
    if (name == kCountAttr)
      fail(Error::Code::Conflict, "level 0 has an attribute named 'count', which coarse levels use for the number of "
                                  "points per metavertex; rename the attribute to build a pyramid");
    // Attributes zvf cannot decode stay on level 0.
    if (!a.unsupported.empty()) continue;
    Reduction r = is_float(a.dtype) ? Reduction::Mean : Reduction::Mode;
    if (auto it = opt.reductions.find(name); it != opt.reductions.end()) {
      r = it->second;
      if (r == Reduction::Mode && is_float(a.dtype))
        invalid("reduction 'mode' for attribute '" + name + "' (" + dtype_name(a.dtype) +
                "): mode applies to integer attributes; use mean, min, max or first");
      // Codes of a dictionary (string) attribute have no order to average or compare.
      if (!a.categories.empty() && r != Reduction::Mode && r != Reduction::First)
        invalid(std::string("reduction '") + reduction_name(r) + "' for attribute '" + name +
                "', which holds strings (dictionary codes): use mode or first");
    }
    plan.attrs.push_back({name, a, r});
  }
  for (const auto& [name, r] : opt.reductions)
    if (std::none_of(plan.attrs.begin(), plan.attrs.end(), [&](const AttrPlan& a) { return a.name == name; }))
      invalid("reductions name attribute '" + name + "', which level 0 does not have");

  const std::vector<std::string> nonempty0 = [&] {
    std::vector<std::string> k;
    for (const auto& c : level_chunks(store, b)) k.push_back(dotted_key(c));
    return k;
  }();
  std::vector<double> bin = b.bin_shape;
  const std::vector<double>& chunk0 = b.grid.chunk_shape;
  json levels_sig = json::array();
  for (std::size_t i = 0; i < opt.levels.size(); ++i) {
    const PyramidLevelSpec& spec = opt.levels[i];
    const int k = static_cast<int>(i) + 1;
    if (!std::isfinite(spec.coarsen) || spec.coarsen < 1)
      invalid("factors[" + std::to_string(i) + "]: coarsen factor " + number_text(spec.coarsen) +
              (std::isfinite(spec.coarsen) ? " is below 1" : " is not a finite number") +
              "; each level's bins must be at least as large as the previous level's");
    if (!std::isfinite(spec.sparsity) || spec.sparsity < 1)
      invalid("factors[" + std::to_string(i) + "]: sparsity factor " + number_text(spec.sparsity) +
              (std::isfinite(spec.sparsity) ? " is below 1" : " is not a finite number") +
              " (it keeps 1/sparsity of the objects)");
    if (spec.sparsity != 1.0)
      invalid("factors[" + std::to_string(i) + "]: sparsity factor " + number_text(spec.sparsity) +
              " needs objects to drop, but this point cloud has no object ids (every point stands alone); "
              "use 1.0, or coarsen more to thin it out");
    if (spec.coarsen == 1.0)
      invalid("factors[" + std::to_string(i) + "]: coarsen factor 1 with sparsity 1 repeats level " +
              std::to_string(k - 1) + " exactly; each level must coarsen (one level is written "
              "factors=[(2.0, 1.0)], a list of (coarsen, sparsity) pairs)");
    for (auto& x : bin) x *= spec.coarsen;
    LevelPlan lp;
    lp.level = k;
    lp.spec = spec;
    std::vector<double> chunk(nd);
    if (!spec.chunk_scale.empty()) {
      if (spec.chunk_scale.size() != nd && spec.chunk_scale.size() != 1)
        invalid("chunk_scale_factors[" + std::to_string(i) + "] has " + std::to_string(spec.chunk_scale.size()) +
                " values; expected 1 or " + std::to_string(nd));
      for (std::size_t d = 0; d < nd; ++d) {
        std::int64_t r = spec.chunk_scale.size() == 1 ? spec.chunk_scale[0] : spec.chunk_scale[d];
        if (r < 1) invalid("chunk_scale_factors[" + std::to_string(i) + "] must be positive integers");
        lp.ratio.push_back(r);
        chunk[d] = chunk0[d] * static_cast<double>(r);
        if (!is_whole(chunk[d] / bin[d]))
          invalid("level " + std::to_string(k) + ": bin " + vec_text(bin) + " does not divide the chunk " +
                  vec_text(chunk) + " given by chunk_scale_factors; choose a scale whose chunk is a multiple of the bin");
      }
    } else {
      // Smallest multiple of the root chunk that the level's bin divides: a bin that
      // outgrows the chunk gets a larger chunk (the ZV 0.7+ per-level override).
      for (std::size_t d = 0; d < nd; ++d) {
        std::int64_t r = 1;
        while (r <= 4096 && !is_whole(chunk0[d] * static_cast<double>(r) / bin[d])) ++r;
        if (r > 4096)
          invalid("level " + std::to_string(k) + ": no chunk up to 4096x the root chunk is a multiple of bin " +
                  number_text(bin[d]) + " on axis " + std::to_string(d) + "; use factors whose products divide evenly");
        lp.ratio.push_back(r);
        chunk[d] = chunk0[d] * static_cast<double>(r);
      }
    }
    lp.grid = Grid::make(chunk, bin, nd);
    check_bins_per_chunk(lp.grid, "level " + std::to_string(k) + ": its bin in its chunk");
    // Coarse chunks = level-0 chunks grouped by floor(c / ratio).
    std::map<ChunkCoord, std::vector<ChunkCoord>> groups;
    for (const auto& key : nonempty0) {
      ChunkCoord c = parse_dotted_key(key, nd), K(nd);
      for (std::size_t d = 0; d < nd; ++d) K[d] = floor_div(c[d], lp.ratio[d]);
      groups[K].push_back(c);
    }
    for (auto& [K, src] : groups) {
      lp.chunks.push_back(K);
      lp.sources.push_back(std::move(src));
    }
    for (std::size_t d = 0; d < nd; ++d) {
      const std::int64_t lo = floor_div(b.vertices.origin[d], lp.ratio[d]);
      const std::int64_t hi = floor_div(b.vertices.origin[d] + b.vertices.shape[d] - 1, lp.ratio[d]);
      lp.origin.push_back(lo);
      lp.shape.push_back(hi - lo + 1);
    }
    levels_sig.push_back({{"coarsen", spec.coarsen}, {"sparsity", spec.sparsity}, {"chunk_shape", chunk}, {"bin_shape", bin}});
    plan.levels.push_back(std::move(lp));
  }
  json red = json::object();
  for (const auto& a : plan.attrs) red[a.name] = reduction_name(a.reduction);
  plan.signature = {{"levels", levels_sig}, {"reductions", red}, {"source_vertex_count", b.vertex_count}};
  return plan;
}

template <class T>
long double load(const std::uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return static_cast<long double>(v);
}
template <class T>
void widen(const std::uint8_t* src, std::size_t count, std::vector<long double>& out) {
  for (std::size_t i = 0; i < count; ++i) out[i] = load<T>(src + i * sizeof(T));
}
// A whole attribute cell as long doubles: the dtype switch runs once per cell.
void widen_as(DType t, const std::uint8_t* src, std::size_t count, std::vector<long double>& out) {
  out.resize(count);
  switch (t) {
    case DType::F32: return widen<float>(src, count, out);
    case DType::F64: return widen<double>(src, count, out);
    case DType::I8: return widen<std::int8_t>(src, count, out);
    case DType::I16: return widen<std::int16_t>(src, count, out);
    case DType::I32: return widen<std::int32_t>(src, count, out);
    case DType::I64: return widen<std::int64_t>(src, count, out);
    case DType::U8: return widen<std::uint8_t>(src, count, out);
    case DType::U16: return widen<std::uint16_t>(src, count, out);
    case DType::U32: return widen<std::uint32_t>(src, count, out);
    case DType::U64: return widen<std::uint64_t>(src, count, out);
    case DType::Bool:
      for (std::size_t i = 0; i < count; ++i) out[i] = src[i] != 0;
      return;
    case DType::F16:
      for (std::size_t i = 0; i < count; ++i) {
        std::uint16_t h;
        std::memcpy(&h, src + i * 2, 2);
        out[i] = half_to_float(h);
      }
      return;
  }
}

template <class T>
void store_v(std::uint8_t* p, long double v) {
  T x = static_cast<T>(v);
  std::memcpy(p, &x, sizeof x);
}
void store_as(DType t, std::uint8_t* p, long double v) {
  if (!is_float(t)) v = std::nearbyint(v);  // integer means round to nearest
  switch (t) {
    case DType::F32: store_v<float>(p, v); break;
    case DType::F64: store_v<double>(p, v); break;
    case DType::I8: store_v<std::int8_t>(p, v); break;
    case DType::I16: store_v<std::int16_t>(p, v); break;
    case DType::I32: store_v<std::int32_t>(p, v); break;
    case DType::I64: store_v<std::int64_t>(p, v); break;
    case DType::U8: store_v<std::uint8_t>(p, v); break;
    case DType::U16: store_v<std::uint16_t>(p, v); break;
    case DType::U32: store_v<std::uint32_t>(p, v); break;
    case DType::U64: store_v<std::uint64_t>(p, v); break;
    case DType::Bool: *p = v != 0; break;  // a mean rounds to 0 or 1 above; mode/min/max/first are 0 or 1
    case DType::F16: {
      const std::uint16_t h = half_from_double(static_cast<double>(v));
      std::memcpy(p, &h, 2);
      break;
    }
  }
}

// Float positions as doubles (exact), for the per-point loop.
void to_double(DType t, const std::uint8_t* src, std::size_t count, std::vector<double>& out) {
  out.resize(count);
  if (t == DType::F32) {
    for (std::size_t i = 0; i < count; ++i) {
      float v;
      std::memcpy(&v, src + i * 4, 4);
      out[i] = v;
    }
  } else {
    std::memcpy(out.data(), src, count * 8);
  }
}

// Builds the cells of one coarse chunk; returns its number of metavertices.
std::uint64_t build_chunk(Store& store, const Plan& plan, const LevelPlan& lp, std::size_t idx, const CellLayout& cl) {
  const LevelView& b = plan.base;
  const std::size_t nd = b.ndim;
  const Grid& g = lp.grid;
  const ChunkCoord& K = lp.chunks[idx];
  const std::int64_t nbins = g.bins_per_chunk_total();
  std::int64_t stride[kMaxDims];
  stride[nd - 1] = 1;
  for (std::size_t d = nd - 1; d > 0; --d) stride[d - 1] = stride[d] * g.bins_per_chunk[d];
  std::vector<std::uint64_t> count(nbins, 0);
  std::vector<long double> pos_sum(nbins * nd, 0);
  struct AttrAcc {
    std::vector<long double> val;                           // sum / min / max / first per bin x channel
    std::vector<char> seen;                                 // first / min / max initialised
    std::vector<std::pair<std::int64_t, long double>> mode; // (bin*cols + channel, value)
  };
  std::vector<AttrAcc> acc(plan.attrs.size());
  for (std::size_t a = 0; a < plan.attrs.size(); ++a) {
    acc[a].val.assign(nbins * plan.attrs[a].meta.cols, 0);
    acc[a].seen.assign(nbins * plan.attrs[a].meta.cols, 0);
  }
  const std::size_t vrow = nd * dtype_size(b.vertices.dtype);
  double inv_bin[kMaxDims];
  for (std::size_t d = 0; d < nd; ++d) inv_bin[d] = 1.0 / g.bin_shape[d];
  std::vector<double> coords;
  std::vector<std::vector<long double>> attr_vals;
  for (const auto& c : lp.sources[idx]) {
    auto verts = get_cell(store, b.vertices, c);
    if (!verts)
      fail(Error::Code::Corrupt, store.describe() + "/" + b.vertices.path + "/" + cell_key(c, b.vertices.origin) +
                                     " is missing although chunk " + dotted_key(c) + " is listed as non-empty");
    if (verts->payload.size() % vrow != 0)  // a cut row would otherwise be dropped silently
      fail(Error::Code::Corrupt, store.describe() + "/" + b.vertices.path + "/" + cell_key(c, b.vertices.origin) +
                                     ": " + std::to_string(verts->payload.size()) + " bytes is not a whole number of " +
                                     std::to_string(vrow) + "-byte rows");
    const std::size_t n = verts->payload.size() / vrow;
    attr_vals.resize(plan.attrs.size());
    for (const auto& a : plan.attrs) {
      auto cell = get_cell(store, a.meta, c);
      if (!cell || cell->payload.size() != n * a.meta.row_bytes())
        fail(Error::Code::Corrupt, store.describe() + "/" + a.meta.path + "/" + cell_key(c, a.meta.origin) +
                                       " is missing or does not match its vertices cell");
      widen_as(a.meta.dtype, cell->payload.data(), n * a.meta.cols, attr_vals[&a - plan.attrs.data()]);
    }
    // Widen the cell once (one dtype switch per cell, not per value).
    to_double(b.vertices.dtype, verts->payload.data(), n * nd, coords);
    for (std::size_t r = 0; r < n; ++r) {
      std::int64_t f = 0;
      long double p[kMaxDims];
      for (std::size_t d = 0; d < nd; ++d) {
        p[d] = coords[r * nd + d];
        // A corrupt cell can hold NaN or 1e30, and bin_coord casts to int64: the limit
        // check_input puts on positions (and this bin is at least the level-0 bin).
        if (!(std::abs(coords[r * nd + d] * inv_bin[d]) <= 9.0e18)) [[unlikely]]
          fail(Error::Code::Corrupt, store.describe() + "/" + b.vertices.path + "/" + cell_key(c, b.vertices.origin) +
                                         ": row " + std::to_string(r) + " has coordinate " +
                                         number_text(coords[r * nd + d]) + " on axis " + std::to_string(d) +
                                         ", expected a finite position inside chunk " + dotted_key(c));
        // Clamp: a point one ulp across the coarse chunk's edge stays in the edge bin.
        std::int64_t local = bin_coord(coords[r * nd + d], g.bin_shape[d], inv_bin[d]) - K[d] * g.bins_per_chunk[d];
        local = std::clamp<std::int64_t>(local, 0, g.bins_per_chunk[d] - 1);
        f += local * stride[d];
      }
      const bool first = count[f] == 0;
      ++count[f];
      for (std::size_t d = 0; d < nd; ++d) pos_sum[f * nd + d] += p[d];
      for (std::size_t a = 0; a < plan.attrs.size(); ++a) {
        const ArrayMeta& m = plan.attrs[a].meta;
        const std::size_t cols = m.cols;
        for (std::size_t ch = 0; ch < cols; ++ch) {
          const long double v = attr_vals[a][r * cols + ch];
          const std::size_t slot = f * cols + ch;
          auto& A = acc[a];
          switch (plan.attrs[a].reduction) {
            case Reduction::Mean: A.val[slot] += v; break;
            case Reduction::Min: A.val[slot] = A.seen[slot] ? std::min(A.val[slot], v) : v; A.seen[slot] = 1; break;
            case Reduction::Max: A.val[slot] = A.seen[slot] ? std::max(A.val[slot], v) : v; A.seen[slot] = 1; break;
            case Reduction::First: if (first) A.val[slot] = v; break;
            case Reduction::Mode: A.mode.emplace_back(static_cast<std::int64_t>(slot), v); break;
          }
        }
      }
    }
  }
  for (std::size_t a = 0; a < plan.attrs.size(); ++a) {
    if (plan.attrs[a].reduction != Reduction::Mode) continue;
    auto& pairs = acc[a].mode;
    std::sort(pairs.begin(), pairs.end());
    for (std::size_t i = 0; i < pairs.size();) {  // runs of equal (slot, value)
      std::size_t j = i;
      std::size_t best_run = 0;
      long double best = 0;
      const std::int64_t slot = pairs[i].first;
      while (j < pairs.size() && pairs[j].first == slot) {
        std::size_t k = j;
        while (k < pairs.size() && pairs[k] == pairs[j]) ++k;
        if (k - j > best_run) {  // strictly greater: ties keep the smaller value
          best_run = k - j;
          best = pairs[j].second;
        }
        j = k;
      }
      acc[a].val[slot] = best;
      i = j;
    }
  }
  // Emit one metavertex per non-empty bin, in bin order.
  std::uint64_t m = 0;
  for (auto c : count) m += c ? 1 : 0;
  ChunkData out;
  out.count = m;
  out.frag_counts.resize(nbins);
  out.vertices.resize(m * vrow);
  out.attrs.resize(cl.attrs.size());
  for (std::size_t a = 0; a < cl.attrs.size(); ++a) out.attrs[a].resize(m * cl.attr_row_bytes(a));
  std::uint64_t o = 0;
  for (std::int64_t f = 0; f < nbins; ++f) {
    out.frag_counts[f] = count[f] ? 1 : 0;
    if (!count[f]) continue;
    const long double n = static_cast<long double>(count[f]);
    for (std::size_t d = 0; d < nd; ++d)
      store_as(b.vertices.dtype, out.vertices.data() + o * vrow + d * dtype_size(b.vertices.dtype), pos_sum[f * nd + d] / n);
    for (std::size_t a = 0; a < plan.attrs.size(); ++a) {
      const ArrayMeta& am = plan.attrs[a].meta;
      for (std::size_t ch = 0; ch < am.cols; ++ch) {
        long double v = acc[a].val[f * am.cols + ch];
        if (plan.attrs[a].reduction == Reduction::Mean) v /= n;
        store_as(am.dtype, out.attrs[a].data() + (o * am.cols + ch) * dtype_size(am.dtype), v);
      }
    }
    store_as(DType::U64, out.attrs.back().data() + o * 8, n);
    ++o;
  }
  write_cells(store, cl, K, lp.origin, view_of(out));
  return m;
}

CellLayout level_layout(const Plan& plan, const LevelPlan& lp) {
  CellLayout cl;
  cl.ndim = plan.base.ndim;
  cl.dtype = plan.base.vertices.dtype;
  for (const auto& a : plan.attrs)
    cl.attrs.push_back({a.name, a.meta.dtype, a.meta.cols, a.meta.one_d, a.meta.categories, a.meta.ordered});
  cl.attrs.push_back({kCountAttr, DType::U64, 1, true});
  cl.codec = plan.base.vertices.codec;
  cl.nbins = lp.grid.bins_per_chunk_total();
  cl.level = lp.level;
  return cl;
}

// Array and group metadata of one level (its cells already written).
void write_level_arrays(Store& store, const Plan& plan, const LevelPlan& lp, const CellLayout& cl,
                        const std::vector<std::string>& nonempty) {
  meta::StoreMeta m;
  m.ndim = plan.base.ndim;
  m.dtype = cl.dtype;
  m.grid = lp.grid;
  m.codec = cl.codec;
  m.attrs = cl.attrs;
  m.origin = lp.origin;
  m.shape = lp.shape;
  m.nonempty = nonempty;
  const std::string k = std::to_string(lp.level);
  meta::write_json(store, k + "/vertices/zarr.json", meta::vertices_doc(m));
  meta::write_json(store, k + "/vertex_fragments/zarr.json", meta::fragments_doc(m));
  for (const auto& a : cl.attrs)
    meta::write_json(store, k + "/vertex_attributes/" + a.name + "/zarr.json", meta::attribute_doc(m, a));
  meta::write_json(store, k + "/vertex_attributes/zarr.json", meta::group_doc());
}

// The level's group document: written last, when the whole pyramid is ready.
void write_level_group(Store& store, const Plan& plan, const LevelPlan& lp, std::uint64_t vertex_count) {
  const std::string k = std::to_string(lp.level);
  ojson lv = {{"level", lp.level},
              {"object_sparsity", 1.0 / lp.spec.sparsity},
              {"vertex_count", vertex_count},
              {"coarsening_method", "bin_mean"},
              {"parent_level", lp.level - 1},
              {"arrays_present", ojson::array({"vertices", "vertex_attributes"})}};
  if (lp.grid.chunk_shape != plan.base.grid.chunk_shape) lv["chunk_shape"] = lp.grid.chunk_shape;
  meta::write_json(store, k + "/zarr.json",
                   {{"attributes", {{"zarr_vectors_level", lv}}}, {"zarr_format", 3}, {"node_type", "group"}});
}

// Root document with exactly levels 0..levels.size() and the pyramid record.
void write_root(Store& store, const Plan* plan, const std::vector<const LevelPlan*>& levels) {
  auto raw = meta::read_json(store, "zarr.json");
  ojson root = ojson::parse(raw->dump());
  auto& attrs = root["attributes"];
  // Edited in place below: a damaged root must fail here, not as json::type_error.
  const auto& ms = attrs.contains("multiscales") ? attrs["multiscales"] : ojson();
  const bool editable = ms.is_array() && !ms.empty() && ms[0].is_object() && ms[0].contains("datasets") &&
                        ms[0]["datasets"].is_array() && !ms[0]["datasets"].empty() &&
                        (!attrs.contains("ome") || attrs["ome"].is_object());
  if (!editable)
    fail(Error::Code::Corrupt, store.describe() + "/zarr.json: expected a 'multiscales' list whose first entry has a "
                                                  "non-empty 'datasets' list (and 'ome', if present, an object)");
  auto& datasets = attrs["multiscales"][0]["datasets"];
  ojson kept = ojson::array();
  kept.push_back(datasets[0]);
  ojson nodes = ojson::array({{{"type", "zv:level"}, {"name", "0"}}});
  const auto& b0 = plan ? plan->base.grid.bin_shape : std::vector<double>{};
  for (const auto* lp : levels) {
    std::vector<double> scale, half;
    for (std::size_t d = 0; d < lp->grid.ndim(); ++d) {
      scale.push_back(lp->grid.bin_shape[d] / b0[d]);
      half.push_back(lp->grid.bin_shape[d] / 2);
    }
    kept.push_back({{"path", std::to_string(lp->level)},
                    {"coordinateTransformations",
                     ojson::array({{{"type", "scale"}, {"scale", scale}}, {{"type", "translation"}, {"translation", half}}})}});
    nodes.push_back({{"type", "zv:level"}, {"name", std::to_string(lp->level)}});
  }
  datasets = kept;
  if (attrs.contains("ome")) attrs["ome"]["nodes"] = nodes;
  if (plan && !levels.empty()) attrs["zvf_pyramid"] = ojson::parse(plan->signature.dump());
  else attrs.erase("zvf_pyramid");
  // While a build runs, the root says so: a killed build is then recognised as
  // unpublished leftovers that a re-run may replace, not as someone else's levels.
  if (plan && levels.empty()) attrs["zvf_pyramid_building"] = ojson::parse(plan->signature.dump());
  else attrs.erase("zvf_pyramid_building");
  meta::refresh_consolidated(store, root);
  meta::write_json(store, "zarr.json", root);
}

// Withdraws every coarse level from the root (marking `plan` as being built),
// then deletes their files.
void drop_levels(Store& store, const Plan& plan) {
  write_root(store, &plan, {});
  drop_level_dirs(store);
}

PyramidReport report_of(const Plan& plan, const std::vector<std::uint64_t>& counts, const std::vector<std::size_t>& chunks) {
  PyramidReport r;
  for (std::size_t i = 0; i < plan.levels.size(); ++i)
    r.levels.push_back({plan.levels[i].level, counts[i], plan.levels[i].grid.chunk_shape, plan.levels[i].grid.bin_shape,
                        chunks[i]});
  return r;
}

std::string part_key(int i, int n) { return kPyramidStaging + "part-" + std::to_string(i) + "-of-" + std::to_string(n) + ".json"; }

// The contiguous slab [first, second) of a level's coarse chunks (in coordinate
// order) that part i of n builds.
std::pair<std::size_t, std::size_t> part_slab(const LevelPlan& lp, int i, int n) {
  const std::size_t m = lp.chunks.size();
  return {m * static_cast<std::size_t>(i) / static_cast<std::size_t>(n),
          m * (static_cast<std::size_t>(i) + 1) / static_cast<std::size_t>(n)};
}

// Reads i and n from a record's name "part-<i>-of-<n>.json"; false for any other name.
bool parse_part_name(const std::string& name, int& i, int& n) {
  const char* p = name.data();
  const char* end = p + name.size();
  auto literal = [&](std::string_view lit) {
    if (static_cast<std::size_t>(end - p) < lit.size() || std::string_view(p, lit.size()) != lit) return false;
    p += lit.size();
    return true;
  };
  auto number = [&](int& v) {
    if (p == end || *p < '0' || *p > '9') return false;
    const auto r = std::from_chars(p, end, v);
    p = r.ptr;
    return r.ec == std::errc();
  };
  return literal("part-") && number(i) && literal("-of-") && number(n) && literal(".json") && p == end && n > 0 &&
         i < n;
}

// What the parts of a scale-out build recorded, merged: each level's non-empty
// coarse chunks (sorted) and vertex count.
struct MergedParts {
  std::vector<std::vector<ChunkCoord>> chunks;
  std::vector<std::uint64_t> counts;
};

// Reads and checks every part record before anything is published. A record is
// a file, so anything in it may be wrong: each must be the record its name says,
// of this plan, listing only chunks of its own part's slab, in order.
MergedParts merge_part_records(const Store& store, const Plan& plan) {
  const std::size_t nl = plan.levels.size(), nd = plan.base.ndim;
  MergedParts m{std::vector<std::vector<ChunkCoord>>(nl), std::vector<std::uint64_t>(nl, 0)};
  int n = -1;
  std::set<int> present;
  for (const auto& name : store.list_dir(".zvf/pyramid")) {
    int i = 0, count = 0;
    if (!parse_part_name(name, i, count)) continue;  // not a record (a temporary file, a user's note)
    auto j = meta::read_json(store, kPyramidStaging + name);
    if (!j) continue;
    const std::string where = store.describe() + "/" + kPyramidStaging + name;
    auto bad = [&](const std::string& why) { fail(Error::Code::Corrupt, "pyramid part record " + where + ": " + why); };
    if (!j->is_object()) bad("expected a JSON object, got " + std::string(j->type_name()));
    if (!j->contains("plan") || (*j)["plan"] != plan.signature)
      fail(Error::Code::Conflict, "pyramid part " + name + " was built with other settings than requested");
    for (const char* f : {"index", "count"})
      if (!j->contains(f) || !(*j)[f].is_number_integer() || (*j)[f].get<std::int64_t>() != (f[0] == 'i' ? i : count))
        bad(std::string(f) + " " + (j->contains(f) ? (*j)[f].dump() : "missing") + " disagrees with the record's name");
    if (n >= 0 && count != n)  // records of an earlier run split another way
      fail(Error::Code::Conflict, "pyramid parts in " + store.describe() + "/.zvf/pyramid were built with " +
                                      std::to_string(n) + " and with " + std::to_string(count) +
                                      " parts; delete the records of the run you abandoned, then finalise again");
    n = count;
    const json& levels = (*j)["levels"];
    if (!levels.is_array() || levels.size() != nl)
      bad("levels must be a list of " + std::to_string(nl) + " level records, got " + levels.dump());
    for (std::size_t l = 0; l < nl; ++l) {
      const json& lj = levels[l];
      const std::string at = "level " + std::to_string(plan.levels[l].level) + ": ";
      if (!lj.is_object() || !lj.contains("chunks") || !lj["chunks"].is_array() || !lj.contains("vertex_count") ||
          !lj["vertex_count"].is_number_unsigned())
        bad(at + "expected {\"chunks\": [chunk keys], \"vertex_count\": count}, got " + lj.dump());
      const auto [lo, hi] = part_slab(plan.levels[l], i, count);
      const auto first = plan.levels[l].chunks.begin() + static_cast<std::ptrdiff_t>(lo);
      const auto last = plan.levels[l].chunks.begin() + static_cast<std::ptrdiff_t>(hi);
      std::optional<ChunkCoord> prev;  // the record's chunks are strictly increasing
      for (const auto& k : lj["chunks"]) {
        if (!k.is_string()) bad(at + "chunk key " + k.dump() + " is not a string");
        ChunkCoord c;
        try {
          c = parse_dotted_key(k.get<std::string>(), nd);
        } catch (const Error& e) {
          bad(at + e.what());
        }
        if (!std::binary_search(first, last, c))
          bad(at + "chunk " + k.get<std::string>() + " is not one that part " + std::to_string(i) + " of " +
              std::to_string(count) + " builds");
        if (prev && !(*prev < c)) bad(at + "chunk " + k.get<std::string>() + " is listed twice or out of order");
        m.chunks[l].push_back(c);
        prev = std::move(c);
      }
      // A coarse level holds at most as many points as level 0 has (checked
      // before the sum, which could otherwise wrap).
      const auto vertices = lj["vertex_count"].get<std::uint64_t>();
      if (vertices > plan.base.vertex_count || m.counts[l] + vertices > plan.base.vertex_count)
        bad(at + "vertex_count " + std::to_string(vertices) + " is more than level 0's " +
            std::to_string(plan.base.vertex_count) + " points, with the other parts' " + std::to_string(m.counts[l]));
      m.counts[l] += vertices;
    }
    present.insert(i);
  }
  if (n < 0) fail(Error::Code::NotFound, "no pyramid parts to finalise in " + store.describe());
  if (present.size() < static_cast<std::size_t>(n)) {
    // Name the first few missing parts; the count may be huge, so do not walk it.
    std::string missing;
    int named = 0;
    for (int i = 0; i < n && named < 10; ++i)
      if (!present.count(i)) missing += (named++ ? ", " : "") + std::to_string(i);
    const std::size_t absent = static_cast<std::size_t>(n) - present.size();
    if (absent > 10) missing += ", ...";
    fail(Error::Code::Conflict, "pyramid parts " + missing + " of " + std::to_string(n) + " have not finished (no record" +
                                    (absent > 10 ? "; " + std::to_string(absent) + " missing" : std::string()) +
                                    "); run them, then finalise again");
  }
  for (auto& cs : m.chunks) std::sort(cs.begin(), cs.end());
  return m;
}

}  // namespace

Reduction reduction_from_name(const std::string& name) {
  if (name == "mean") return Reduction::Mean;
  if (name == "min") return Reduction::Min;
  if (name == "max") return Reduction::Max;
  if (name == "first") return Reduction::First;
  if (name == "mode") return Reduction::Mode;
  invalid("unknown reduction '" + name + "': expected mean, min, max, first or mode");
}

const char* reduction_name(Reduction r) {
  switch (r) {
    case Reduction::Mean: return "mean";
    case Reduction::Min: return "min";
    case Reduction::Max: return "max";
    case Reduction::First: return "first";
    case Reduction::Mode: return "mode";
  }
  return "?";
}

PyramidReport build_pyramid(Store& store, const PyramidOptions& opt, const Exec& exec) {
  const int threads = resolve_threads(exec.threads);
  // No part is index -1 of count 0; anything else must be a real part, and
  // publishing the parts is a call of its own.
  const bool part = opt.part_count != 0 || opt.part_index != -1;
  if (part && (opt.part_count < 1 || opt.part_index < 0 || opt.part_index >= opt.part_count))
    invalid("part " + std::to_string(opt.part_index) + " of " + std::to_string(opt.part_count) +
            " is out of range: expected count >= 1 and 0 <= part < count");
  if (part && opt.finalise_parts)
    invalid("finalise_parts publishes the parts built before; it builds no part itself (got part " +
            std::to_string(opt.part_index) + " of " + std::to_string(opt.part_count) + ")");
  EarlyWriteBack write_back(store, exec.durable);
  Plan plan = make_plan(store, opt);

  // What exists already.
  json root = read_zv_root(store);
  const json& attrs = root["attributes"];
  const bool recorded = attrs.contains("zvf_pyramid");
  const bool same = recorded && attrs["zvf_pyramid"] == plan.signature;
  const bool unfinished = attrs.contains("zvf_pyramid_building");  // a build stopped half-way
  const int existing = static_cast<int>(published_levels(root).size());
  if (same && existing == static_cast<int>(plan.levels.size()) + 1) {
    PyramidReport r;  // already built with these settings
    for (const auto& lp : plan.levels) {
      LevelView lv = open_level(store, lp.level);
      r.levels.push_back({lp.level, lv.vertex_count, lp.grid.chunk_shape, lp.grid.bin_shape, level_chunks(store, lv).size()});
    }
    return r;
  }
  const bool foreign = !recorded && !unfinished && level_count(store) > 1;  // levels another tool built
  if ((existing > 1 || foreign) && !same && !opt.overwrite) {
    std::string had = recorded ? attrs["zvf_pyramid"]["levels"].dump() : std::string("(built by another tool)");
    fail(Error::Code::Conflict, store.describe() + " already has " + std::to_string(existing - 1) +
                                    " coarse level(s) built with other settings " + had +
                                    "; pass overwrite=True (zvf pyramid --overwrite) to replace them");
  }

  if (opt.finalise_parts) {
    // Merge the parts' records, then publish metadata.
    const MergedParts parts = merge_part_records(store, plan);
    std::vector<const LevelPlan*> published;
    std::vector<std::size_t> nchunks;
    for (std::size_t l = 0; l < plan.levels.size(); ++l) {
      std::vector<std::string> keys;
      for (const auto& c : parts.chunks[l]) keys.push_back(dotted_key(c));
      write_level_arrays(store, plan, plan.levels[l], level_layout(plan, plan.levels[l]), keys);
      published.push_back(&plan.levels[l]);
      nchunks.push_back(keys.size());
    }
    for (std::size_t l = 0; l < plan.levels.size(); ++l) write_level_group(store, plan, plan.levels[l], parts.counts[l]);
    if (exec.durable) store.sync();  // the levels' cells and metadata, before the root publishes them
    write_root(store, &plan, published);
    // Every part has finished, so no writer is active: drop the temporary files
    // that a part killed inside a cell write left (a re-run wrote the cell anew).
    if (auto* posix = dynamic_cast<PosixStore*>(&store)) {
      std::set<std::string> dirs;
      for (std::size_t l = 0; l < plan.levels.size(); ++l) {
        const int k = plan.levels[l].level;
        std::vector<std::string> arrays = {meta::vertices_path(k), meta::fragments_path(k)};
        for (const auto& a : level_layout(plan, plan.levels[l]).attrs) arrays.push_back(meta::attribute_path(a.name, k));
        for (const auto& c : parts.chunks[l]) {
          const std::string cell = cell_key(c, plan.levels[l].origin);
          for (const auto& a : arrays) {
            const std::string key = a + "/" + cell;
            dirs.insert(key.substr(0, key.rfind('/')));
          }
        }
      }
      for (const auto& d : dirs) posix->remove_temporaries(d);
    }
    store.erase_prefix(".zvf/pyramid");
    if (exec.durable) store.sync();
    PyramidReport r = report_of(plan, parts.counts, nchunks);
    r.changed = true;
    return r;
  }

  if (part && (existing > 1 || foreign) && !same)
    fail(Error::Code::Conflict, store.describe() + " has a pyramid built with other settings; drop it first "
                                                   "(a single-process build with overwrite) before building in parts");
  if (!part) drop_levels(store, plan);  // a single-process build starts clean

  std::vector<std::uint64_t> counts(plan.levels.size(), 0);
  std::vector<std::size_t> nchunks(plan.levels.size(), 0);
  json part_levels = json::array();
  std::uint64_t total_units = 0, done_units = 0;
  for (const auto& lp : plan.levels) total_units += lp.chunks.size();
  std::vector<const LevelPlan*> published;
  for (std::size_t l = 0; l < plan.levels.size(); ++l) {
    const LevelPlan& lp = plan.levels[l];
    const CellLayout cl = level_layout(plan, lp);
    std::size_t lo = 0, hi = lp.chunks.size();
    if (part) std::tie(lo, hi) = part_slab(lp, opt.part_index, opt.part_count);
    std::vector<std::uint64_t> made(hi - lo, 0);
    const std::vector<std::size_t> order = directory_spread_order(
        std::vector<ChunkCoord>(lp.chunks.begin() + static_cast<std::ptrdiff_t>(lo),
                                lp.chunks.begin() + static_cast<std::ptrdiff_t>(hi)));
    parallel_for(
        hi - lo, io_threads(threads, store.io_concurrency()),
        [&](std::size_t j) {
          const std::size_t i = order[j];
          made[i] = build_chunk(store, plan, lp, lo + i, cl);
        },
        [&](std::size_t done) {
          if (exec.progress) exec.progress(done_units + done, total_units);
        });
    done_units += lp.chunks.size();
    std::vector<std::string> keys;
    for (std::size_t i = lo; i < hi; ++i)
      if (made[i - lo]) {
        keys.push_back(dotted_key(lp.chunks[i]));
        counts[l] += made[i - lo];
      }
    nchunks[l] = keys.size();
    if (part) {
      part_levels.push_back({{"chunks", keys}, {"vertex_count", counts[l]}});
    } else {
      write_level_arrays(store, plan, lp, cl, keys);
      published.push_back(&lp);
    }
  }
  PyramidReport r = report_of(plan, counts, nchunks);
  r.changed = true;
  if (exec.durable) store.sync();  // the cells, before the part's record or the root that publishes them
  if (part) {
    store.set(part_key(opt.part_index, opt.part_count),
              json({{"plan", plan.signature}, {"index", opt.part_index}, {"count", opt.part_count}, {"levels", part_levels}})
                  .dump());
    r.complete = false;
  } else {
    for (std::size_t l = 0; l < plan.levels.size(); ++l) write_level_group(store, plan, plan.levels[l], counts[l]);
    if (exec.durable) store.sync();
    write_root(store, &plan, published);
  }
  if (exec.durable) store.sync();
  return r;
}

int select_level(const Store& store, const Box& bbox, std::uint64_t min_points, const Exec& exec) {
  const int n = static_cast<int>(published_levels(read_zv_root(store)).size());
  for (int k = n - 1; k > 0; --k) {
    ReadOptions opt;
    opt.level = k;
    opt.bbox = bbox;
    opt.attributes = std::vector<std::string>{};
    if (read_points(store, opt, exec).positions.rows >= min_points) return k;
  }
  return 0;
}

}  // namespace zvf
