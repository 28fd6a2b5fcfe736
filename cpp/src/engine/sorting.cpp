#include "engine/sorting.hpp"

#include <cmath>
#include <cstring>

#include "engine/binning.hpp"
#include "engine/parallel.hpp"

namespace zvf::detail {
namespace {

template <class T>
inline double coord(const void* data, std::size_t cols, std::size_t row, std::size_t d) {
  return static_cast<double>(static_cast<const T*>(data)[row * cols + d]);
}

inline void copy_row(std::uint8_t* dst, const std::uint8_t* src, std::size_t bytes) {
  switch (bytes) {  // fixed sizes inline to single moves
    case 4: std::memcpy(dst, src, 4); break;
    case 8: std::memcpy(dst, src, 8); break;
    case 12: std::memcpy(dst, src, 12); break;
    case 24: std::memcpy(dst, src, 24); break;
    default: std::memcpy(dst, src, bytes);
  }
}

struct KeySpace {
  double inv_bin[kMaxDims], inv_bpc[kMaxDims];  // multiplications instead of divisions
  ChunkCoord cmin;
  std::vector<std::uint64_t> chunk_stride;  // C order over the chunk bounding box
  std::uint64_t buckets = 0;
};

// Same results as bin_coord (the fix-ups make it exact), without the division
// and libm floor that dominated the profile.
inline std::int64_t fast_bin(double p, double bin, double inv_bin) {
  double bf = fast_floor(p * inv_bin);
  if (bf * bin > p) bf -= 1;
  else if ((bf + 1) * bin <= p) bf += 1;
  return static_cast<std::int64_t>(bf);
}

// floor(b / bpc) for the small positive bpc, without an integer division.
inline std::int64_t fast_chunk(std::int64_t b, std::int64_t bpc, double inv_bpc) {
  std::int64_t c = static_cast<std::int64_t>(fast_floor(static_cast<double>(b) * inv_bpc));
  if (c * bpc > b) --c;
  else if ((c + 1) * bpc <= b) ++c;
  return c;
}

// Key = C-order index of the point's chunk inside the chunk bounding box.
template <class T>
inline std::uint64_t key_of(const void* data, std::size_t nd, std::size_t row, const Grid& g, const KeySpace& ks) {
  std::uint64_t chunk = 0;
  for (std::size_t d = 0; d < nd; ++d) {
    const std::int64_t b = fast_bin(coord<T>(data, nd, row, d), g.bin_shape[d], ks.inv_bin[d]);
    const std::int64_t c = fast_chunk(b, g.bins_per_chunk[d], ks.inv_bpc[d]);
    chunk += static_cast<std::uint64_t>(c - ks.cmin[d]) * ks.chunk_stride[d];
  }
  return chunk;
}

template <class T>
SortedPoints sort_dense(const CheckedInput& in, const CellLayout& layout, const KeySpace& ks, int threads) {
  const ArrayView& pos = *in.positions;
  const std::size_t n = pos.rows, nd = pos.cols;
  const Grid& g = in.grid;
  const std::uint64_t B = ks.buckets;
  const int t = std::max(1, std::min<int>(threads, static_cast<int>(std::max<std::size_t>(1, n / 65536))));
  std::vector<std::vector<std::uint64_t>> counts(t);
  parallel_blocks(n, t, [&](std::size_t b, std::size_t lo, std::size_t hi) {
    auto& cnt = counts[b];
    cnt.assign(B, 0);
    for (std::size_t i = lo; i < hi; ++i) ++cnt[key_of<T>(pos.data, nd, i, g, ks)];
  });
  // Cursors: chunk-major, block-minor, so the scatter keeps input order.
  SortedPoints out;
  out.grid = &in.grid;
  std::uint64_t run = 0;
  for (std::uint64_t c = 0; c < B; ++c) {
    const std::uint64_t chunk_start = run;
    for (int b = 0; b < t; ++b) {
      const std::uint64_t k = counts[b][c];
      counts[b][c] = run;  // reuse as the scatter cursor
      run += k;
    }
    if (run == chunk_start) continue;
    ChunkCoord cc(nd);
    std::uint64_t rem = c;
    for (std::size_t d = 0; d < nd; ++d) {
      cc[d] = ks.cmin[d] + static_cast<std::int64_t>(rem / ks.chunk_stride[d]);
      rem %= ks.chunk_stride[d];
    }
    out.chunks.push_back(std::move(cc));
    out.offsets.push_back(chunk_start);
  }
  out.offsets.push_back(run);
  const std::size_t prow = layout.vertex_row_bytes();
  out.positions = RawBuffer(n * prow);
  out.attrs.reserve(layout.attrs.size());
  for (std::size_t k = 0; k < layout.attrs.size(); ++k) out.attrs.emplace_back(n * layout.attr_row_bytes(k));
  parallel_blocks(n, t, [&](std::size_t b, std::size_t lo, std::size_t hi) {
    std::uint64_t* cur = counts[b].data();
    const auto* src = static_cast<const std::uint8_t*>(pos.data);
    for (std::size_t i = lo; i < hi; ++i) {
      const std::uint64_t dst = cur[key_of<T>(pos.data, nd, i, g, ks)]++;
      copy_row(out.positions.data.get() + dst * prow, src + i * prow, prow);
      for (std::size_t k = 0; k < layout.attrs.size(); ++k) {
        const std::size_t ab = layout.attr_row_bytes(k);
        copy_row(out.attrs[k].data.get() + dst * ab,
                 static_cast<const std::uint8_t*>((*in.attributes)[k].view.data) + i * ab, ab);
      }
    }
  });
  return out;
}

// Scattered data whose chunk bounding box is too large to count into: group by
// chunk through a hash map, then sort each chunk by fragment.
SortedPoints sort_sparse(const CheckedInput& in, const CellLayout& layout, int threads) {
  const ArrayView& pos = *in.positions;
  ChunkedPoints groups = group_by_chunk(pos, in.grid, in.pos_min, in.pos_max, threads);
  SortedPoints out;
  out.grid = &in.grid;
  out.chunks = groups.chunks;
  out.offsets = groups.offsets;
  const std::size_t n = pos.rows, prow = layout.vertex_row_bytes();
  out.positions = RawBuffer(n * prow);
  for (std::size_t k = 0; k < layout.attrs.size(); ++k) out.attrs.emplace_back(n * layout.attr_row_bytes(k));
  parallel_for(groups.chunks.size(), threads, [&](std::size_t c) {
    auto rows = groups.slice(c);
    std::uint64_t dst = groups.offsets[c];
    for (auto r : rows) {
      copy_row(out.positions.data.get() + dst * prow, static_cast<const std::uint8_t*>(pos.data) + r * prow, prow);
      for (std::size_t k = 0; k < layout.attrs.size(); ++k) {
        const std::size_t ab = layout.attr_row_bytes(k);
        copy_row(out.attrs[k].data.get() + dst * ab,
                 static_cast<const std::uint8_t*>((*in.attributes)[k].view.data) + r * ab, ab);
      }
      ++dst;
    }
  });
  return out;
}

}  // namespace

ChunkView SortedPoints::chunk_view(std::size_t k, const CellLayout& layout, ChunkScratch& sc) const {
  const std::uint64_t first = offsets[k], n = offsets[k + 1] - first;
  const std::size_t nd = layout.ndim, prow = layout.vertex_row_bytes();
  const Grid& g = *grid;
  const std::int64_t nbins = g.bins_per_chunk_total();
  const std::uint8_t* pos = positions.data.get() + first * prow;
  ChunkView v;
  v.count = n;
  sc.frag_counts.assign(static_cast<std::size_t>(nbins), 0);
  v.frag_counts = &sc.frag_counts;
  if (nbins == 1) {  // one bin per chunk: already in storage order
    sc.frag_counts[0] = static_cast<std::int64_t>(n);
    v.vertices = ByteSpan(pos, n * prow);
    for (std::size_t a = 0; a < attrs.size(); ++a)
      v.attrs.emplace_back(attrs[a].data.get() + first * layout.attr_row_bytes(a), n * layout.attr_row_bytes(a));
    return v;
  }
  // Fragment of every row, then a stable counting sort into the scratch buffers.
  std::int64_t base[kMaxDims], stride[kMaxDims];
  double inv[kMaxDims];
  stride[nd - 1] = 1;
  for (std::size_t d = nd - 1; d > 0; --d) stride[d - 1] = stride[d] * g.bins_per_chunk[d];
  for (std::size_t d = 0; d < nd; ++d) {
    base[d] = chunks[k][d] * g.bins_per_chunk[d];
    inv[d] = 1.0 / g.bin_shape[d];
  }
  sc.bins.resize(n);
  for (std::uint64_t r = 0; r < n; ++r) {
    std::int64_t f = 0;
    for (std::size_t d = 0; d < nd; ++d) {
      const double p = layout.dtype == DType::F32 ? coord<float>(pos, nd, r, d) : coord<double>(pos, nd, r, d);
      f += (fast_bin(p, g.bin_shape[d], inv[d]) - base[d]) * stride[d];
    }
    sc.bins[r] = static_cast<std::uint32_t>(f);
    ++sc.frag_counts[f];
  }
  sc.cursor.resize(static_cast<std::size_t>(nbins));
  std::uint64_t run = 0;
  for (std::int64_t f = 0; f < nbins; ++f) {
    sc.cursor[f] = run;
    run += static_cast<std::uint64_t>(sc.frag_counts[f]);
  }
  auto sort_rows = [&](const std::uint8_t* src, std::size_t row_bytes, std::vector<std::uint8_t>& dst) {
    if (dst.size() < n * row_bytes) dst.resize(n * row_bytes);
    std::vector<std::uint64_t> cur = sc.cursor;
    for (std::uint64_t r = 0; r < n; ++r) copy_row(dst.data() + cur[sc.bins[r]]++ * row_bytes, src + r * row_bytes, row_bytes);
    return ByteSpan(dst.data(), n * row_bytes);
  };
  v.vertices = sort_rows(pos, prow, sc.positions);
  sc.attrs.resize(attrs.size());
  for (std::size_t a = 0; a < attrs.size(); ++a) {
    const std::size_t ab = layout.attr_row_bytes(a);
    v.attrs.push_back(sort_rows(attrs[a].data.get() + first * ab, ab, sc.attrs[a]));
  }
  return v;
}

SortedPoints sort_points(const CheckedInput& in, const CellLayout& layout, int threads) {
  const ArrayView& pos = *in.positions;
  const std::size_t nd = pos.cols;
  if (pos.rows == 0) {
    SortedPoints empty;
    empty.offsets = {0};
    empty.grid = &in.grid;
    return empty;
  }
  const Grid& g = in.grid;
  KeySpace ks;
  ks.cmin = chunk_of_point(in.pos_min.data(), g);
  const ChunkCoord cmax = chunk_of_point(in.pos_max.data(), g);
  ks.chunk_stride.assign(nd, 1);
  long double box = 1;
  for (std::size_t d = 0; d < nd; ++d) box *= static_cast<long double>(cmax[d] - ks.cmin[d] + 1);
  for (std::size_t d = nd - 1; d > 0; --d)
    ks.chunk_stride[d - 1] = ks.chunk_stride[d] * static_cast<std::uint64_t>(cmax[d] - ks.cmin[d] + 1);
  for (std::size_t d = 0; d < nd; ++d) {
    ks.inv_bin[d] = 1.0 / g.bin_shape[d];
    ks.inv_bpc[d] = 1.0 / static_cast<double>(g.bins_per_chunk[d]);
  }
  // Each counting thread holds one word per chunk of the bounding box; keep that
  // well below the input size, else compact the occupied chunks through a hash map.
  const long double limit = std::max<long double>(1 << 20, static_cast<long double>(pos.rows) / 8);
  if (box > limit) return sort_sparse(in, layout, threads);
  ks.buckets = static_cast<std::uint64_t>(box);
  return pos.dtype == DType::F32 ? sort_dense<float>(in, layout, ks, threads) : sort_dense<double>(in, layout, ks, threads);
}

}  // namespace zvf::detail
