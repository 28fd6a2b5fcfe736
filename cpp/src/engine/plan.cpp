// Chunk-shape planner (see zvf/plan.hpp for the model and the selection rules).
#include "zvf/plan.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <set>

#include "format/metadata.hpp"
#include "zvf/error.hpp"
#include "zvf/grid.hpp"

namespace zvf {

namespace {

// The "nice" mantissas, times 10 so they are integers: edge = m * 10^(e - 1).
constexpr std::array<std::int64_t, 10> kNiceMantissas = {10, 12, 15, 20, 25, 30, 40, 50, 60, 80};
constexpr double kCellHeader = 8;  // vlen-bytes frame: u32 count, u32 length
constexpr double kMiB = 1024.0 * 1024.0;

std::string num(double v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string mb(double bytes) {
  char buf[32];
  if (bytes < 1e5) std::snprintf(buf, sizeof buf, "%.3g kB", bytes / 1e3);
  else std::snprintf(buf, sizeof buf, "%.2f MB", bytes / 1e6);
  return buf;
}

std::string box_text(const Box& b) {
  std::string s = "[";
  for (std::size_t d = 0; d < b.lo.size(); ++d) s += (d ? ", " : "") + num(b.lo[d]);
  s += "] .. [";
  for (std::size_t d = 0; d < b.hi.size(); ++d) s += (d ? ", " : "") + num(b.hi[d]);
  return s + "]";
}

double pow10(int e) { return std::pow(10.0, e); }  // exact for |e| <= 22, the range used here

// A candidate edge m * 10^(e - 1) and the bin that divides it, each computed in
// one correctly rounded operation so that they equal the decimal text printed.
struct NiceEdge {
  double edge = 0, bin = 0;
};
NiceEdge nice_edge(std::int64_t m, int e, std::int64_t bins_per_axis) {
  const int k = e - 1;
  if (k >= 0) {
    const double edge = static_cast<double>(m) * pow10(k);
    return {edge, edge / static_cast<double>(bins_per_axis)};
  }
  return {static_cast<double>(m) / pow10(-k), static_cast<double>(m) / (static_cast<double>(bins_per_axis) * pow10(-k))};
}

void validate(const PlanRequest& r) {
  if (r.point_count == 0) invalid("point count must be > 0, got 0");
  const std::size_t nd = r.bounds.lo.size();
  if (nd < 2 || nd > static_cast<std::size_t>(kMaxDims) || r.bounds.hi.size() != nd)
    invalid("bounds must have 2 to " + std::to_string(kMaxDims) + " values on each side (lo and hi), got " +
            std::to_string(r.bounds.lo.size()) + " and " + std::to_string(r.bounds.hi.size()));
  for (std::size_t d = 0; d < nd; ++d) {
    const double lo = r.bounds.lo[d], hi = r.bounds.hi[d];
    if (!std::isfinite(lo) || !std::isfinite(hi))
      invalid("bounds " + box_text(r.bounds) + " must be finite on every axis (axis " + axis_name(d) + ")");
    if (lo > hi)
      invalid("bounds " + box_text(r.bounds) + " are inverted on axis " + axis_name(d) + ": lo " + num(lo) +
              " > hi " + num(hi));
    if (std::max(std::abs(lo), std::abs(hi)) > 1e15)
      invalid("bounds " + box_text(r.bounds) + " exceed 1e15 in magnitude on axis " + axis_name(d));
  }
  if (!is_position_dtype(r.positions_dtype))
    invalid(std::string("positions dtype must be float32 or float64, got ") + dtype_name(r.positions_dtype));
  std::set<std::string> names;
  for (const auto& a : r.attributes) {
    meta::check_attribute_name(a.name);
    if (!names.insert(a.name).second) invalid("attribute '" + a.name + "' is given twice");
    if (a.components < 1 || a.components > 65536)
      invalid("attribute '" + a.name + "' has " + std::to_string(a.components) +
              " components; expected 1 to 65536");
  }
  if (!(r.occupancy > 0 && r.occupancy <= 1))
    invalid("occupancy " + num(r.occupancy) + " must be in (0, 1] (the fraction of the bounding box holding points)");
  if (!std::isfinite(r.min_bytes) || !std::isfinite(r.max_bytes) || r.min_bytes <= 0 || r.max_bytes <= r.min_bytes)
    invalid("chunk size band " + num(r.min_bytes) + " .. " + num(r.max_bytes) +
            " bytes is not a band: expected 0 < min < max, both finite");
  if (r.target_bytes && !(*r.target_bytes >= r.min_bytes && *r.target_bytes <= r.max_bytes))
    invalid("target chunk size " + num(*r.target_bytes) + " bytes lies outside the band " + num(r.min_bytes) +
            " .. " + num(r.max_bytes));
  if (!std::isfinite(r.compression_ratio) || r.compression_ratio < 1)
    invalid("compression ratio " + num(r.compression_ratio) + " must be >= 1 (raw size / compressed size)");
  if (r.codec.kind == CodecSpec::Kind::None && r.compression_ratio != 1)
    invalid("compression ratio " + num(r.compression_ratio) + " given without a compressor (codec is none)");
  if (r.partitions < 1 || r.partitions > 1000000)
    invalid("partitions must be 1 to 1000000, got " + std::to_string(r.partitions));
  if (r.partition_axis && *r.partition_axis >= nd)
    invalid("partition axis " + std::to_string(*r.partition_axis) + " does not exist in " + std::to_string(nd) +
            "-D bounds (axes 0.." + std::to_string(nd - 1) + ")");
  if (r.bins_per_axis < 1 || r.bins_per_axis > 64)
    invalid("bins per axis must be 1 to 64, got " + std::to_string(r.bins_per_axis));
}

// Along one axis: the chunk layers that intersect [lo, hi], grouped into at
// most three classes (first, interior, last) with the share of the extent each
// layer covers.
struct AxisLayers {
  std::int64_t first = 0, count = 0;
  // Layers with room for points: `count`, less a last layer that only the
  // upper bound itself touches (hi exactly on a chunk edge).
  std::int64_t data_count = 0;
  struct Class {
    double share;        // overlap / extent (1 for a degenerate axis)
    std::int64_t layers;
  };
  std::vector<Class> classes;
};

AxisLayers axis_layers(const Grid& g, std::size_t d, double lo, double hi) {
  AxisLayers a;
  const std::int64_t bpc = g.bins_per_chunk[d];
  a.first = floor_div(bin_coord(lo, g.bin_shape[d]), bpc);
  const std::int64_t last = floor_div(bin_coord(hi, g.bin_shape[d]), bpc);
  a.count = last - a.first + 1;
  const double extent = hi - lo;
  a.data_count = a.count;
  if (a.count == 1 || extent == 0) {
    a.classes.push_back({1.0, a.count});  // a degenerate axis has one layer
    return a;
  }
  a.classes.push_back({(g.chunk_hi(a.first, d) - lo) / extent, 1});
  if (a.count > 2) a.classes.push_back({g.chunk_shape[d] / extent, a.count - 2});
  a.classes.push_back({(hi - g.chunk_lo(last, d)) / extent, 1});
  if (a.classes.back().share == 0) --a.data_count;
  return a;
}

struct Evaluated {
  double edge = 0, bin = 0;
  std::vector<AxisLayers> axes;
  double chunk_count = 0;
  double nonempty = 0, mean_points = 0, full_points = 0;
  double bytes = 0;  // largest array, mean file size
  bool in_band = false;
  bool enough_layers = true;
  double cost = 0;   // |log(bytes / target)| + partition imbalance
  double tie = 0;    // |log(edge / ideal edge)|
};

// Expected non-empty chunks and points per chunk under the occupancy model:
// a chunk holds points with probability `f`, then Poisson(lambda / f).
void count_points(const PlanRequest& r, Evaluated& ev) {
  const double n = static_cast<double>(r.point_count), f = r.occupancy;
  double nonempty = 0, full = 0;
  const std::size_t nd = ev.axes.size();
  std::vector<std::size_t> idx(nd, 0);
  while (true) {
    double share = 1, mult = 1;
    for (std::size_t d = 0; d < nd; ++d) {
      share *= ev.axes[d].classes[idx[d]].share;
      mult *= static_cast<double>(ev.axes[d].classes[idx[d]].layers);
    }
    const double lambda = n * share;
    nonempty += mult * f * -std::expm1(-lambda / f);
    full = std::max(full, std::min(n, lambda / f));
    std::size_t d = 0;
    while (d < nd && ++idx[d] == ev.axes[d].classes.size()) idx[d++] = 0;
    if (d == nd) break;
  }
  ev.nonempty = std::clamp(nonempty, 1.0, ev.chunk_count);
  ev.mean_points = n / ev.nonempty;
  ev.full_points = std::max(full, ev.mean_points);
}

double fragments_bytes(std::int64_t bins) {
  // fragment_index_v1 with one range per bin: 16 B header, bitmap padded to 8, 16 B per range.
  const double bitmap = std::ceil(static_cast<double>(bins) / 64.0) * 8.0;
  return kCellHeader + 16 + bitmap + 16.0 * static_cast<double>(bins);
}

}  // namespace

const char* axis_name(std::size_t axis) {
  static const char* names[] = {"x", "y", "z", "t"};
  return axis < 4 ? names[axis] : "?";
}

std::uint64_t stripe_size_for(double file_bytes) {
  std::uint64_t mib = 1;
  while (mib < 4 && static_cast<double>(mib) * kMiB < file_bytes) mib *= 2;
  return mib * static_cast<std::uint64_t>(kMiB);
}

ChunkPlan plan_chunks(const PlanRequest& r) {
  validate(r);
  const std::size_t nd = r.bounds.lo.size();
  const std::size_t axis = r.partition_axis.value_or(std::min<std::size_t>(2, nd - 1));
  const double n = static_cast<double>(r.point_count);
  const double target = r.target_bytes.value_or(std::sqrt(r.min_bytes * r.max_bytes));
  const double ratio = r.compression_ratio;
  const std::int64_t bins_per_chunk = [&] {
    std::int64_t b = 1;
    for (std::size_t d = 0; d < nd; ++d) b *= r.bins_per_axis;
    return b;
  }();

  // Raw bytes per point of each array; the largest decides the chunk size.
  std::vector<ArrayPlan> arrays;
  arrays.push_back({"vertices", "0/vertices/c", static_cast<double>(dtype_size(r.positions_dtype) * nd), 0, 0});
  arrays.push_back({"vertex_fragments", "0/vertex_fragments/c", 0, 0, 0});
  for (const auto& a : r.attributes)
    arrays.push_back({a.name, "0/vertex_attributes/" + a.name + "/c",
                      static_cast<double>(dtype_size(a.dtype)) * static_cast<double>(a.components), 0, 0});
  double max_row = 0;
  for (const auto& a : arrays) max_row = std::max(max_row, a.row_bytes);

  // The ideal cube edge for the target, from the density over the occupied volume.
  std::size_t spread_axes = 0;
  double volume = 1, max_abs = 1;
  for (std::size_t d = 0; d < nd; ++d) {
    const double extent = r.bounds.hi[d] - r.bounds.lo[d];
    if (extent > 0) {
      ++spread_axes;
      volume *= extent;
    }
    max_abs = std::max({max_abs, std::abs(r.bounds.lo[d]), std::abs(r.bounds.hi[d])});
  }
  const double points_for_target = std::max(1.0, (target * ratio - kCellHeader) / max_row);
  const double ideal = spread_axes == 0
                           ? max_abs  // every point at one place: any chunk holds them all
                           : std::pow(points_for_target * volume * r.occupancy / n, 1.0 / static_cast<double>(spread_axes));

  // Evaluate every nice edge m * 10^(e-1) from about ideal / 100 to ideal * 800
  // (edges above the ideal, up to 100x, when all points coincide).
  const int e0 = static_cast<int>(std::floor(std::log10(ideal)));
  const int e_first = spread_axes == 0 ? e0 + 1 : e0 - 2, e_last = spread_axes == 0 ? e0 + 2 : e0 + 3;
  std::optional<Evaluated> best;
  std::optional<Grid> best_grid;
  auto better = [](const Evaluated& a, const Evaluated& b) {
    if (a.in_band != b.in_band) return a.in_band;
    if (a.enough_layers != b.enough_layers) return a.enough_layers;
    if (std::abs(a.cost - b.cost) > 1e-9) return a.cost < b.cost;
    if (std::abs(a.tie - b.tie) > 1e-9) return a.tie < b.tie;
    return a.edge < b.edge;
  };
  for (int e = e_first; e <= e_last; ++e) {
    if (e < -20 || e > 21) continue;
    for (std::int64_t m : kNiceMantissas) {
      const NiceEdge ne = nice_edge(m, e, r.bins_per_axis);
      if (spread_axes == 0 && ne.edge < ideal) continue;
      if (max_abs / ne.bin > 0x1p52) continue;  // bin coordinates must stay exact
      Grid g = Grid::make(std::vector<double>(nd, ne.edge), std::vector<double>(nd, ne.bin), nd);
      Evaluated ev;
      ev.edge = ne.edge;
      ev.bin = ne.bin;
      ev.chunk_count = 1;
      for (std::size_t d = 0; d < nd; ++d) {
        ev.axes.push_back(axis_layers(g, d, r.bounds.lo[d], r.bounds.hi[d]));
        ev.chunk_count *= static_cast<double>(ev.axes.back().count);
      }
      if (ev.chunk_count > 1e15) continue;
      count_points(r, ev);
      ev.bytes = (kCellHeader + max_row * ev.mean_points) / ratio;
      ev.in_band = ev.bytes >= r.min_bytes && ev.bytes <= r.max_bytes;
      const double layers = static_cast<double>(ev.axes[axis].data_count), k = static_cast<double>(r.partitions);
      ev.enough_layers = layers >= k;
      ev.cost = std::abs(std::log(ev.bytes / target));
      if (ev.enough_layers && r.partitions > 1) ev.cost += std::log(std::ceil(layers / k) / (layers / k));
      ev.tie = std::abs(std::log(ne.edge / ideal));
      if (!best || better(ev, *best)) {
        best = std::move(ev);
        best_grid = std::move(g);
      }
    }
  }
  if (!best)
    invalid("cannot plan chunks for " + std::to_string(r.point_count) + " points in bounds " + box_text(r.bounds) +
            ": no chunk edge keeps the grid below 1e15 chunks with exact bin coordinates");
  const Evaluated& ev = *best;
  const Grid& g = *best_grid;

  ChunkPlan p;
  p.chunk_shape = g.chunk_shape;
  p.bin_shape = g.bin_shape;
  p.bins_per_chunk = g.bins_per_chunk;
  p.chunk_count = 1;
  for (const auto& a : ev.axes) {
    p.grid_origin.push_back(a.first);
    p.grid_shape.push_back(a.count);
    p.chunk_count *= static_cast<std::uint64_t>(a.count);
    p.max_dir_entries = std::max(p.max_dir_entries, a.count);
  }
  p.nonempty_chunks = ev.nonempty;
  p.points_per_chunk = ev.mean_points;
  p.full_chunk_points = ev.full_points;
  p.bytes_per_chunk = ev.bytes;
  p.full_chunk_bytes = (kCellHeader + max_row * ev.full_points) / ratio;
  p.min_bytes = r.min_bytes;
  p.max_bytes = r.max_bytes;
  p.target_bytes = target;
  p.in_band = ev.in_band;
  p.codec = r.codec.name();
  p.compression_ratio = ratio;
  for (auto& a : arrays) {
    if (a.name == "vertex_fragments" && a.row_bytes == 0) {
      a.mean_bytes = a.full_bytes = fragments_bytes(bins_per_chunk) / ratio;
    } else {
      a.mean_bytes = (kCellHeader + a.row_bytes * ev.mean_points) / ratio;
      a.full_bytes = (kCellHeader + a.row_bytes * ev.full_points) / ratio;
    }
  }
  p.arrays = arrays;
  p.files = ev.nonempty * static_cast<double>(arrays.size());

  // Partition ranges: runs of whole chunk layers when there are enough layers,
  // otherwise equal slabs of the chunk-aligned extent (edges computed as
  // lo + (hi - lo) * t / K, so neighbours share an edge exactly). Layers are
  // shared out by data layers; the last task also takes a layer that only the
  // upper bound touches, so the ranges cover the (inclusive) bounds.
  p.partition_axis = axis;
  const AxisLayers& al = ev.axes[axis];
  const std::int64_t k = r.partitions;
  p.partitions_aligned = al.data_count >= k;
  for (std::int64_t t = 0; t < k; ++t) {
    PartitionRange pr;
    if (p.partitions_aligned) {
      const std::int64_t s = t * al.data_count / k;
      const std::int64_t e = t == k - 1 ? al.count : (t + 1) * al.data_count / k;
      pr.first_layer = al.first + s;
      pr.layer_count = e - s;
      pr.lo = g.chunk_lo(al.first + s, axis);
      pr.hi = g.chunk_lo(al.first + e, axis);
    } else {
      const double lo = g.chunk_lo(al.first, axis), hi = g.chunk_lo(al.first + al.count, axis);
      pr.lo = t == 0 ? lo : lo + (hi - lo) * static_cast<double>(t) / static_cast<double>(k);
      pr.hi = t == k - 1 ? hi : lo + (hi - lo) * static_cast<double>(t + 1) / static_cast<double>(k);
      pr.first_layer = floor_div(bin_coord(pr.lo, g.bin_shape[axis]), g.bins_per_chunk[axis]);
      pr.layer_count = 0;
    }
    p.partitions.push_back(pr);
  }

  // Warnings: what the user should act on.
  const double total_bytes = (kCellHeader + max_row * n) / ratio;
  const std::string band = mb(r.min_bytes) + " .. " + mb(r.max_bytes);
  if (total_bytes < r.min_bytes) {
    p.warnings.push_back("the data is too small for the band: all " + std::to_string(r.point_count) +
                         " points make " + mb(total_bytes) + " per array, below " + mb(r.min_bytes) +
                         "; chunk size hardly matters for such a store");
  } else if (!ev.in_band) {
    p.warnings.push_back("no nice chunk edge gives files in the band " + band + ": the closest gives " +
                         mb(ev.bytes) + " per chunk");
  }
  if (ev.nonempty < 8 && total_bytes >= r.min_bytes)
    p.warnings.push_back("only about " + num(std::round(ev.nonempty * 10) / 10) +
                         " non-empty chunks: too few for parallel reads or writes to help; "
                         "a single process can write this store");
  std::string other_axis;  // an axis with enough layers, if any
  for (std::size_t d = 0; d < nd && k > 1 && !p.partitions_aligned; ++d)
    if (d != axis && ev.axes[d].data_count >= k && other_axis.empty())
      other_axis = std::string(" (") + axis_name(d) + " has " + std::to_string(ev.axes[d].data_count) + ")";
  if (k > 1 && !p.partitions_aligned)
    p.warnings.push_back("only " + std::to_string(al.data_count) + " chunk layer(s) along " + axis_name(axis) + " for " +
                         std::to_string(k) + " partitions: the slabs cannot all start on chunk boundaries, so "
                         "chunks cut by a slab edge are staged and merged at finalisation (and some slabs may be "
                         "empty); use at most " + std::to_string(al.data_count) + " partitions along " + axis_name(axis) +
                         ", or another axis" + other_axis);
  if (k > 1 && p.partitions_aligned && al.data_count < al.count)
    p.notes.push_back("the last partition also owns the chunk layer from " + std::string(axis_name(axis)) + " = " +
                      num(g.chunk_lo(al.first + al.data_count, axis)) +
                      ", which only points exactly at the upper bound reach");
  if (k > 1 && p.partitions_aligned && al.data_count % k != 0)
    p.notes.push_back("partitions own " + std::to_string(al.data_count / k) + " or " +
                      std::to_string(al.data_count / k + 1) + " chunk layers each (" +
                      std::to_string(al.data_count) + " layers along " + axis_name(axis) +
                      " for " + std::to_string(k) + " tasks)");
  std::string negative;
  for (std::size_t d = 0; d < nd; ++d)
    if (p.grid_origin[d] < 0) negative += (negative.empty() ? "" : ", ") + std::string(axis_name(d));
  if (!negative.empty())
    p.notes.push_back("the bounds reach negative chunk coordinates (axis " + negative +
                      "): partitioned writes stage those chunks, as a partitioned store's grid starts at 0 until "
                      "finalisation moves it, so they are merged at finalisation; shift the coordinates to >= 0 to "
                      "write them in place");
  if (p.max_dir_entries > kPlanMaxDirEntries)
    p.warnings.push_back("up to " + std::to_string(p.max_dir_entries) + " entries in one cell directory (limit " +
                         std::to_string(kPlanMaxDirEntries) +
                         "): large directories load the Lustre/GPFS metadata servers; use larger chunks or tighter "
                         "bounds");
  if (p.files > kPlanMaxFiles)
    p.warnings.push_back("about " + num(std::round(p.files)) + " cell files (" + std::to_string(arrays.size()) +
                         " per chunk): check your inode quota (lfs quota -u $USER <fs>) before writing");

  // Notes: the assumptions behind the numbers.
  if (r.occupancy == 1)
    p.notes.push_back("assumes the points are spread uniformly over the bounds (give an occupancy below 1 if they "
                      "fill only part of the box)");
  else
    p.notes.push_back("assumes the points are spread uniformly over " + num(r.occupancy * 100) +
                      "% of the bounding box, in regions larger than a chunk");
  if (r.codec.kind != CodecSpec::Kind::None) {
    p.notes.push_back(r.codec.name() + " compresses by an unknown ratio: sizes are raw sizes / " + num(ratio) +
                      (ratio == 1 ? " (the raw size, an upper bound; files on disk will be smaller and may fall "
                                    "below the band)"
                                  : " (the assumed compression ratio)"));
  }
  return p;
}

}  // namespace zvf
