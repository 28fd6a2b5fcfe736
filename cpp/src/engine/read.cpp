// Reads of ZV 0.9 point-cloud levels (ours or the reference's): chunks are
// pruned by bbox from nonempty_chunks, bins by the fragment index, and only the
// boundary bins are filtered point by point.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/level.hpp"
#include "engine/parallel.hpp"
#include "engine/store_state.hpp"
#include "zvf/error.hpp"
#include "zvf/fragments.hpp"
#include "zvf/points.hpp"

namespace zvf {
using namespace detail;

namespace {

[[noreturn]] void corrupt(const std::string& m) { fail(Error::Code::Corrupt, m); }

struct Run {
  std::uint64_t start, count;
};

struct ChunkResult {
  Bytes positions;
  std::vector<Bytes> attrs;
  std::uint64_t rows = 0;
};

template <class T>
double coord_at(const std::uint8_t* base, std::size_t row, std::size_t nd, std::size_t d) {
  T v;
  std::memcpy(&v, base + (row * nd + d) * sizeof(T), sizeof(T));
  return static_cast<double>(v);
}

// Rows of one chunk that fall inside the bbox, as runs.
std::vector<Run> select_rows(const Store& store, const LevelView& lv, const ChunkCoord& c, const Bytes& verts,
                             std::uint64_t n, const Box& box) {
  const std::size_t nd = lv.ndim;
  const Grid& g = lv.grid;
  bool chunk_inside = true;
  for (std::size_t d = 0; d < nd; ++d)
    chunk_inside = chunk_inside && g.chunk_lo(c[d], d) > box.lo[d] && g.chunk_hi(c[d], d) < box.hi[d];
  if (chunk_inside) return {{0, n}};
  auto inside = [&](std::uint64_t r) {
    for (std::size_t d = 0; d < nd; ++d) {
      double x = lv.vertices.dtype == DType::F32 ? coord_at<float>(verts.data(), r, nd, d)
                                                 : coord_at<double>(verts.data(), r, nd, d);
      if (!(x >= box.lo[d] && x <= box.hi[d])) return false;
    }
    return true;
  };
  std::vector<Run> runs;
  auto add = [&](std::uint64_t r, std::uint64_t k) {
    if (k == 0) return;
    if (!runs.empty() && runs.back().start + runs.back().count == r) runs.back().count += k;
    else runs.push_back({r, k});
  };
  auto filter = [&](std::uint64_t from, std::uint64_t to) {
    for (std::uint64_t r = from; r < to; ++r)
      if (inside(r)) add(r, 1);
  };
  // Bin pruning applies when the fragments are the chunk's bins as contiguous ranges.
  std::vector<Fragment> frags;
  if (auto fb = get_cell(store, lv.fragments, c))
    frags = decode_fragments(ByteSpan(*fb), lv.fragments.path + "/" + cell_key(c, lv.fragments.origin));
  bool bins = static_cast<std::int64_t>(frags.size()) == g.bins_per_chunk_total();
  std::uint64_t next = 0;
  for (const auto& f : frags) {
    bins = bins && f.is_range && static_cast<std::uint64_t>(f.start) == next;
    next += static_cast<std::uint64_t>(f.count);
  }
  if (!bins || next != n) {
    filter(0, n);
    return runs;
  }
  std::int64_t stride[kMaxDims];
  stride[nd - 1] = 1;
  for (std::size_t d = nd - 1; d > 0; --d) stride[d - 1] = stride[d] * g.bins_per_chunk[d];
  for (std::size_t f = 0; f < frags.size(); ++f) {
    if (frags[f].count == 0) continue;
    bool disjoint = false, whole = true;
    std::int64_t rem = static_cast<std::int64_t>(f);
    for (std::size_t d = 0; d < nd; ++d) {
      std::int64_t b = c[d] * g.bins_per_chunk[d] + rem / stride[d];
      rem %= stride[d];
      const double lo = static_cast<double>(b) * g.bin_shape[d], hi = static_cast<double>(b + 1) * g.bin_shape[d];
      const double eps = 1e-6 * g.bin_shape[d];  // writers may round a point across a bin edge
      if (hi + eps < box.lo[d] || lo - eps > box.hi[d]) disjoint = true;
      if (!(lo - eps > box.lo[d] && hi + eps < box.hi[d])) whole = false;
    }
    const auto s = static_cast<std::uint64_t>(frags[f].start), k = static_cast<std::uint64_t>(frags[f].count);
    if (disjoint) continue;
    if (whole) add(s, k);
    else filter(s, s + k);
  }
  return runs;
}

}  // namespace

PointCloud read_points(const Store& store, const ReadOptions& opt, const Exec& exec) {
  const int threads = resolve_threads(exec.threads);
  LevelView lv = open_level(store, opt.level);
  const std::size_t nd = lv.ndim;
  if (opt.bbox) {
    if (opt.bbox->lo.size() != nd || opt.bbox->hi.size() != nd)
      invalid("bbox has " + std::to_string(opt.bbox->lo.size()) + " dimensions; the store has " + std::to_string(nd));
    for (std::size_t d = 0; d < nd; ++d)
      if (std::isnan(opt.bbox->lo[d]) || std::isnan(opt.bbox->hi[d]) || opt.bbox->lo[d] > opt.bbox->hi[d])
        invalid("bbox " + box_text(*opt.bbox, false) + " is empty or not a number on axis " + std::to_string(d));
  }
  // Which attributes, in which order.
  std::vector<const std::pair<std::string, ArrayMeta>*> want;
  if (opt.attributes) {
    for (const auto& name : *opt.attributes) {
      auto it = std::find_if(lv.attrs.begin(), lv.attrs.end(), [&](const auto& a) { return a.first == name; });
      if (it == lv.attrs.end()) {
        std::string have;
        for (const auto& a : lv.attrs) have += (have.empty() ? "" : ", ") + a.first;
        invalid("attribute '" + name + "' is not in level " + std::to_string(opt.level) + " of " + store.describe() +
                " (attributes: " + (have.empty() ? "none" : have) + ")");
      }
      want.push_back(&*it);
    }
  } else {
    for (const auto& a : lv.attrs) want.push_back(&a);
  }

  std::vector<ChunkCoord> chunks = level_chunks(store, lv);
  if (opt.bbox) {
    std::erase_if(chunks, [&](const ChunkCoord& c) {
      for (std::size_t d = 0; d < nd; ++d)
        if (lv.grid.chunk_hi(c[d], d) < opt.bbox->lo[d] || lv.grid.chunk_lo(c[d], d) > opt.bbox->hi[d]) return true;
      return false;
    });
  }
  const std::size_t vrow = nd * dtype_size(lv.vertices.dtype);
  std::vector<ChunkResult> parts(chunks.size());
  parallel_for(
      chunks.size(), io_threads(threads, store.io_concurrency()),
      [&](std::size_t i) {
        const ChunkCoord& c = chunks[i];
        auto verts = get_cell(store, lv.vertices, c);
        if (!verts)
          corrupt(store.describe() + "/" + lv.vertices.path + "/" + cell_key(c, lv.vertices.origin) +
                  " is missing although chunk " + dotted_key(c) + " is listed as non-empty");
        if (verts->size() % vrow != 0)
          corrupt(store.describe() + "/" + lv.vertices.path + "/" + cell_key(c, lv.vertices.origin) + ": " +
                  std::to_string(verts->size()) + " bytes is not a whole number of " + std::to_string(vrow) +
                  "-byte rows");
        const std::uint64_t n = verts->size() / vrow;
        std::vector<Run> runs = opt.bbox ? select_rows(store, lv, c, *verts, n, *opt.bbox) : std::vector<Run>{{0, n}};
        ChunkResult& out = parts[i];
        for (const auto& r : runs) out.rows += r.count;
        auto copy_runs = [&](const Bytes& src, std::size_t row_bytes, Bytes& dst) {
          if (runs.size() == 1 && runs[0].start == 0 && runs[0].count * row_bytes == src.size()) {
            dst = src;
            return;
          }
          dst.resize(out.rows * row_bytes);
          std::size_t at = 0;
          for (const auto& r : runs) {
            std::memcpy(dst.data() + at, src.data() + r.start * row_bytes, r.count * row_bytes);
            at += r.count * row_bytes;
          }
        };
        copy_runs(*verts, vrow, out.positions);
        out.attrs.resize(want.size());
        for (std::size_t k = 0; k < want.size(); ++k) {
          const ArrayMeta& a = want[k]->second;
          const std::size_t arow = a.cols * dtype_size(a.dtype);
          auto cell = get_cell(store, a, c);
          std::string key = store.describe() + "/" + a.path + "/" + cell_key(c, a.origin);
          if (!cell) corrupt(key + " is missing: attribute cells must exist for every non-empty chunk");
          if (cell->size() != n * arow)
            corrupt(key + " holds " + std::to_string(cell->size()) + " bytes, expected " + std::to_string(n * arow) +
                    " (" + std::to_string(n) + " rows)");
          copy_runs(*cell, arow, out.attrs[k]);
        }
      },
      [&](std::size_t done) {
        if (exec.progress) exec.progress(done, chunks.size());
      });

  std::uint64_t total = 0;
  std::vector<std::uint64_t> offset(parts.size());
  for (std::size_t i = 0; i < parts.size(); ++i) {
    offset[i] = total;
    total += parts[i].rows;
  }
  PointCloud pc;
  pc.positions = {lv.vertices.dtype, total, nd, false, Bytes(total * vrow)};
  for (const auto* w : want)
    pc.attributes.emplace_back(
        w->first, OwnedArray{w->second.dtype, total, w->second.cols, w->second.one_d,
                             Bytes(total * w->second.cols * dtype_size(w->second.dtype))});
  parallel_for(parts.size(), threads, [&](std::size_t i) {
    auto& p = parts[i];
    if (p.rows == 0) return;
    std::memcpy(pc.positions.data.data() + offset[i] * vrow, p.positions.data(), p.positions.size());
    for (std::size_t k = 0; k < want.size(); ++k) {
      auto& dst = pc.attributes[k].second;
      std::size_t arow = dst.cols * dtype_size(dst.dtype);
      std::memcpy(dst.data.data() + offset[i] * arow, p.attrs[k].data(), p.attrs[k].size());
    }
    p = ChunkResult{};
  });
  return pc;
}

StoreInfo store_info(const Store& store) {
  json root = read_zv_root(store);
  StoreInfo info;
  const json& zv = root["attributes"]["zarr_vectors"];
  info.zv_version = zv.value("zv_version", std::string());
  for (int level : published_levels(root)) {
    LevelView lv = open_level(store, level);
    if (level == 0) {
      info.ndim = lv.ndim;
      info.dtype = lv.vertices.dtype;
      info.codec = lv.vertices.codec.name();
      for (const auto& [name, a] : lv.attrs) {
        std::vector<std::int64_t> row;
        if (!a.one_d) row.push_back(static_cast<std::int64_t>(a.cols));
        info.attributes.push_back({name, a.dtype, row});
      }
      try {
        info.bounds = {zv.at("bounds").at(0).get<std::vector<double>>(), zv.at("bounds").at(1).get<std::vector<double>>()};
      } catch (const json::exception& e) {
        corrupt(store.describe() + "/zarr.json: bad bounds: " + e.what());
      }
    }
    LevelInfo li;
    li.level = level;
    li.vertex_count = lv.vertex_count;
    li.chunk_shape = lv.grid.chunk_shape;
    li.bin_shape = lv.grid.bin_shape;
    li.grid_shape = lv.vertices.shape;
    li.grid_origin = lv.vertices.origin;
    li.nonempty_chunks = level_chunks(store, lv).size();
    info.levels.push_back(std::move(li));
  }
  return info;
}

}  // namespace zvf
