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

// One chunk's share of a read: its decoded cells (borrowing the stored bytes when
// uncompressed) and the runs of rows to copy out of them.
struct ChunkRead {
  DecodedCell vertices;
  std::vector<DecodedCell> attrs;
  std::vector<Run> runs;
  std::uint64_t rows = 0;
};

// Keeps only the selected rows of a cell, so that a query touching many chunks
// holds what it returns rather than whole cells until the copy.
void compact(DecodedCell& cell, std::size_t row_bytes, const std::vector<Run>& runs) {
  Bytes kept;
  for (const auto& r : runs)
    kept.insert(kept.end(), cell.payload.begin() + static_cast<std::ptrdiff_t>(r.start * row_bytes),
                cell.payload.begin() + static_cast<std::ptrdiff_t>((r.start + r.count) * row_bytes));
  cell.bytes = std::move(kept);
  cell.payload = ByteSpan(cell.bytes);
}

template <class T>
double coord_at(const std::uint8_t* base, std::size_t row, std::size_t nd, std::size_t d) {
  T v;
  std::memcpy(&v, base + (row * nd + d) * sizeof(T), sizeof(T));
  return static_cast<double>(v);
}

// Rows of one chunk that fall inside the bbox, as runs.
std::vector<Run> select_rows(const Store& store, const LevelView& lv, const ChunkCoord& c, ByteSpan verts,
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
    frags = decode_fragments(fb->payload, lv.fragments.path + "/" + cell_key(c, lv.fragments.origin));
  bool bins = lv.bin_fragments && static_cast<std::int64_t>(frags.size()) == g.bins_per_chunk_total();
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

// Every byte of an uncompressed level read straight into the result: the cell sizes
// first (a stat each), then each cell into its place, its header checked after.
void read_in_place(const Store& store, const LevelView& lv, const std::vector<ChunkCoord>& chunks,
                   const std::vector<const std::pair<std::string, ArrayMeta>*>& want, int threads,
                   const Exec& exec, PointCloud& pc) {
  const std::size_t nd = lv.ndim, vrow = nd * dtype_size(lv.vertices.dtype);
  const int io = io_threads(threads, store.io_concurrency());
  auto where = [&](const ArrayMeta& a, const ChunkCoord& c) {
    return a.path + "/" + cell_key(c, a.origin);
  };
  std::vector<std::uint64_t> rows(chunks.size());
  parallel_for(chunks.size(), io, [&](std::size_t i) {
    const ChunkCoord& c = chunks[i];
    const std::string vkey = where(lv.vertices, c);
    const auto size = store.size_of(vkey);
    if (!size)
      corrupt(store.describe() + "/" + vkey + " is missing although chunk " + dotted_key(c) +
              " is listed as non-empty");
    if (*size < kCellHeaderBytes || (*size - kCellHeaderBytes) % vrow != 0)
      corrupt(store.describe() + "/" + vkey + ": " + std::to_string(*size) + " bytes is not a vlen-bytes header and a whole number of " +
              std::to_string(vrow) + "-byte rows");
    rows[i] = (*size - kCellHeaderBytes) / vrow;
    for (const auto* w : want) {
      const std::string key = where(w->second, c);
      const std::uint64_t expect = kCellHeaderBytes + rows[i] * w->second.row_bytes();
      const auto asize = store.size_of(key);
      if (!asize) corrupt(store.describe() + "/" + key + " is missing: attribute cells must exist for every non-empty chunk");
      if (*asize != expect)
        corrupt(store.describe() + "/" + key + " holds " + std::to_string(*asize - std::min<std::uint64_t>(*asize, kCellHeaderBytes)) +
                " bytes, expected " + std::to_string(expect - kCellHeaderBytes) + " (" + std::to_string(rows[i]) + " rows)");
    }
  });
  std::vector<std::uint64_t> offset(chunks.size() + 1, 0);
  for (std::size_t i = 0; i < chunks.size(); ++i) offset[i + 1] = offset[i] + rows[i];
  const std::uint64_t total = offset.back();
  pc.positions = {lv.vertices.dtype, total, nd, false, ArrayBytes(total * vrow)};
  for (const auto* w : want)
    pc.attributes.emplace_back(w->first, OwnedArray{w->second.dtype, total, w->second.cols, w->second.one_d,
                                                    ArrayBytes(total * w->second.row_bytes())});
  auto read_cell = [&](const std::string& key, std::uint8_t* dst, std::size_t payload) {
    std::uint8_t head[kCellHeaderBytes], probe;  // probe: a byte past the end must not exist
    const std::span<std::uint8_t> parts[3] = {{head, kCellHeaderBytes}, {dst, payload}, {&probe, 1}};
    const auto got = store.read_parts(key, parts);
    if (!got) corrupt(store.describe() + "/" + key + " disappeared during the read");
    if (*got != kCellHeaderBytes + payload)
      corrupt(store.describe() + "/" + key + " changed size during the read (" + std::to_string(*got) +
              " bytes or more, expected " + std::to_string(kCellHeaderBytes + payload) + ")");
    check_cell_header(ByteSpan(head, kCellHeaderBytes), payload, store.describe() + "/" + key);
  };
  parallel_for(
      chunks.size(), io,
      [&](std::size_t i) {  // empty cells too: their headers are checked like any other
        read_cell(where(lv.vertices, chunks[i]), pc.positions.data.data() + offset[i] * vrow, rows[i] * vrow);
        for (std::size_t k = 0; k < want.size(); ++k) {
          const std::size_t arow = want[k]->second.row_bytes();
          read_cell(where(want[k]->second, chunks[i]), pc.attributes[k].second.data.data() + offset[i] * arow,
                    rows[i] * arow);
        }
      },
      [&](std::size_t done) {
        if (exec.progress) exec.progress(done, chunks.size());
      });
}

bool uncompressed(const LevelView& lv, const std::vector<const std::pair<std::string, ArrayMeta>*>& want) {
  if (!lv.vertices.codec.is_identity()) return false;
  return std::all_of(want.begin(), want.end(), [](const auto* w) { return w->second.codec.is_identity(); });
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
      if (!it->second.unsupported.empty())
        invalid("attribute '" + name + "' of " + store.describe() + " has " + it->second.unsupported +
                ", which zvf cannot read; leave it out of attributes=[...] (--attrs)");
      want.push_back(&*it);
    }
  } else {
    for (const auto& a : lv.attrs)
      if (a.second.unsupported.empty()) want.push_back(&a);
  }
  auto annotate = [&](PointCloud& pc) {
    for (const auto* w : want)
      if (!w->second.categories.empty()) pc.categories[w->first] = w->second.categories;
    if (!opt.attributes)
      for (const auto& a : lv.attrs)
        if (!a.second.unsupported.empty()) pc.skipped.emplace_back(a.first, a.second.unsupported);
  };

  std::vector<ChunkCoord> chunks = level_chunks(store, lv);
  if (opt.bbox) {
    std::erase_if(chunks, [&](const ChunkCoord& c) {
      for (std::size_t d = 0; d < nd; ++d)
        if (lv.grid.chunk_hi(c[d], d) < opt.bbox->lo[d] || lv.grid.chunk_lo(c[d], d) > opt.bbox->hi[d]) return true;
      return false;
    });
  }
  if (!opt.bbox && store.sizes_are_cheap() && uncompressed(lv, want)) {
    PointCloud pc;
    read_in_place(store, lv, chunks, want, threads, exec, pc);
    annotate(pc);
    return pc;
  }
  // Two passes, so that every byte is copied once after the store hands it over:
  // read and decode the cells of each chunk, then copy them into the result at
  // offsets known from the row counts.
  const std::size_t vrow = nd * dtype_size(lv.vertices.dtype);
  std::vector<ChunkRead> parts(chunks.size());
  parallel_for(
      chunks.size(), io_threads(threads, store.io_concurrency()),
      [&](std::size_t i) {
        const ChunkCoord& c = chunks[i];
        ChunkRead& out = parts[i];
        auto verts = get_cell(store, lv.vertices, c);
        if (!verts)
          corrupt(store.describe() + "/" + lv.vertices.path + "/" + cell_key(c, lv.vertices.origin) +
                  " is missing although chunk " + dotted_key(c) + " is listed as non-empty");
        if (verts->payload.size() % vrow != 0)
          corrupt(store.describe() + "/" + lv.vertices.path + "/" + cell_key(c, lv.vertices.origin) + ": " +
                  std::to_string(verts->payload.size()) + " bytes is not a whole number of " + std::to_string(vrow) +
                  "-byte rows");
        const std::uint64_t n = verts->payload.size() / vrow;
        out.runs = opt.bbox ? select_rows(store, lv, c, verts->payload, n, *opt.bbox) : std::vector<Run>{{0, n}};
        for (const auto& r : out.runs) out.rows += r.count;
        if (out.rows == 0) return;
        out.vertices = std::move(*verts);
        out.attrs.reserve(want.size());
        for (const auto* w : want) {
          const ArrayMeta& a = w->second;
          const std::size_t arow = a.cols * dtype_size(a.dtype);
          auto cell = get_cell(store, a, c);
          std::string key = store.describe() + "/" + a.path + "/" + cell_key(c, a.origin);
          if (!cell) corrupt(key + " is missing: attribute cells must exist for every non-empty chunk");
          if (cell->payload.size() != n * arow)
            corrupt(key + " holds " + std::to_string(cell->payload.size()) + " bytes, expected " +
                    std::to_string(n * arow) + " (" + std::to_string(n) + " rows)");
          out.attrs.push_back(std::move(*cell));
        }
        if (out.rows * 2 < n) {
          compact(out.vertices, vrow, out.runs);
          for (std::size_t k = 0; k < want.size(); ++k)
            compact(out.attrs[k], want[k]->second.cols * dtype_size(want[k]->second.dtype), out.runs);
          out.runs = {{0, out.rows}};
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
  pc.positions = {lv.vertices.dtype, total, nd, false, ArrayBytes(total * vrow)};
  for (const auto* w : want)
    pc.attributes.emplace_back(
        w->first, OwnedArray{w->second.dtype, total, w->second.cols, w->second.one_d,
                             ArrayBytes(total * w->second.cols * dtype_size(w->second.dtype))});
  parallel_for(parts.size(), threads, [&](std::size_t i) {
    ChunkRead& p = parts[i];
    auto copy_runs = [&](ByteSpan src, std::size_t row_bytes, std::uint8_t* dst) {
      for (const auto& r : p.runs) {
        std::memcpy(dst, src.data() + r.start * row_bytes, r.count * row_bytes);
        dst += r.count * row_bytes;
      }
    };
    if (p.rows == 0) return;
    copy_runs(p.vertices.payload, vrow, pc.positions.data.data() + offset[i] * vrow);
    for (std::size_t k = 0; k < want.size(); ++k) {
      auto& dst = pc.attributes[k].second;
      const std::size_t arow = dst.cols * dtype_size(dst.dtype);
      copy_runs(p.attrs[k].payload, arow, dst.data.data() + offset[i] * arow);
    }
    p = ChunkRead{};  // free the cells as soon as they are copied
  });
  annotate(pc);
  return pc;
}

StoreInfo store_info(const Store& store) {
  json root = read_zv_root(store);
  StoreInfo info;
  const json& zv = root["attributes"]["zarr_vectors"];
  for (int level : published_levels(root)) {
    LevelView lv = open_level(store, level);
    if (level == 0) {
      info.ndim = lv.ndim;
      info.dtype = lv.vertices.dtype;
      info.codec = lv.vertices.codec.name();
      for (const auto& [name, a] : lv.attrs) {
        std::vector<std::int64_t> row;
        if (!a.one_d) row.push_back(static_cast<std::int64_t>(a.cols));
        std::string note = a.unsupported.empty() ? std::string() : "not readable by zvf: " + a.unsupported;
        if (!a.categories.empty()) note = "dictionary: " + std::to_string(a.categories.size()) + " categories";
        info.attributes.push_back({name, a.dtype, row, note, a.unsupported.empty()});
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
    li.bin_shape = lv.bin_shape;
    li.grid_shape = lv.vertices.shape;
    li.grid_origin = lv.vertices.origin;
    li.nonempty_chunks = level_chunks(store, lv).size();
    info.levels.push_back(std::move(li));
  }
  // open_level(0) refused a zv_version that is not a string; value() would throw for one.
  if (zv.contains("zv_version") && zv["zv_version"].is_string()) info.zv_version = zv["zv_version"].get<std::string>();
  return info;
}

}  // namespace zvf
