#include "engine/binning.hpp"

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "engine/parallel.hpp"
#include "zvf/error.hpp"

namespace zvf::detail {
namespace {

template <class T>
inline double coord(const ArrayView& v, std::size_t row, std::size_t d) {
  return static_cast<double>(static_cast<const T*>(v.data)[row * v.cols + d]);
}

inline std::int64_t chunk_axis(double p, const Grid& g, std::size_t d) {
  return floor_div(bin_coord(p, g.bin_shape[d]), g.bins_per_chunk[d]);
}

// Dense chunk-grid path: the chunk id is the C-order index inside the bounding
// box of occupied chunks. Used when that box is small enough to count into.
template <class T>
ChunkedPoints group_dense(const ArrayView& v, const Grid& g, const ChunkCoord& cmin,
                          const std::vector<std::uint64_t>& dims, std::uint64_t cells, int threads) {
  const std::size_t n = v.rows, nd = g.ndim();
  std::vector<std::uint64_t> stride(nd, 1);
  for (std::size_t d = nd - 1; d > 0; --d) stride[d - 1] = stride[d] * dims[d];
  const int t = std::max(1, std::min<int>(threads, static_cast<int>(std::max<std::size_t>(1, n / 65536))));
  std::vector<std::uint32_t> id(n);
  std::vector<std::vector<std::uint64_t>> counts(t, std::vector<std::uint64_t>(cells, 0));
  parallel_blocks(n, t, [&](std::size_t b, std::size_t lo, std::size_t hi) {
    auto& cnt = counts[b];
    for (std::size_t i = lo; i < hi; ++i) {
      std::uint64_t lin = 0;
      for (std::size_t d = 0; d < nd; ++d)
        lin += static_cast<std::uint64_t>(chunk_axis(coord<T>(v, i, d), g, d) - cmin[d]) * stride[d];
      id[i] = static_cast<std::uint32_t>(lin);
      ++cnt[lin];
    }
  });
  // Exclusive prefix over (cell, block) so the scatter below is stable.
  ChunkedPoints out;
  std::vector<std::uint64_t> cursor(static_cast<std::size_t>(t) * cells);
  std::uint64_t run = 0;
  for (std::uint64_t c = 0; c < cells; ++c) {
    std::uint64_t start = run;
    for (int b = 0; b < t; ++b) {
      cursor[static_cast<std::size_t>(b) * cells + c] = run;
      run += counts[b][c];
    }
    if (run > start) {
      ChunkCoord cc(nd);
      std::uint64_t rem = c;
      for (std::size_t d = 0; d < nd; ++d) {
        cc[d] = cmin[d] + static_cast<std::int64_t>(rem / stride[d]);
        rem %= stride[d];
      }
      out.chunks.push_back(std::move(cc));
      out.offsets.push_back(start);
    }
  }
  out.offsets.push_back(run);
  counts.clear();
  out.perm.resize(n);
  parallel_blocks(n, t, [&](std::size_t b, std::size_t lo, std::size_t hi) {
    std::uint64_t* cur = cursor.data() + b * cells;
    for (std::size_t i = lo; i < hi; ++i) out.perm[cur[id[i]]++] = i;
  });
  return out;
}

// Sparse path for scattered data whose chunk bounding box is huge: compact the
// occupied chunks through a hash map (expected O(N)), then counting-sort on the
// compact ids.
template <class T>
ChunkedPoints group_sparse(const ArrayView& v, const Grid& g) {
  const std::size_t n = v.rows, nd = g.ndim();
  struct Hash {
    std::size_t operator()(const ChunkCoord& c) const {
      std::uint64_t h = 1469598103934665603ull;
      for (auto x : c) h = (h ^ static_cast<std::uint64_t>(x)) * 1099511628211ull;
      return h;
    }
  };
  std::unordered_map<ChunkCoord, std::uint32_t, Hash> ids;
  std::vector<std::uint32_t> id(n);
  std::vector<ChunkCoord> coords;
  ChunkCoord cc(nd);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t d = 0; d < nd; ++d) cc[d] = chunk_axis(coord<T>(v, i, d), g, d);
    auto [it, inserted] = ids.try_emplace(cc, static_cast<std::uint32_t>(coords.size()));
    if (inserted) coords.push_back(cc);
    id[i] = it->second;
  }
  // Order the compact ids by coordinate, then counting-sort points on them.
  std::vector<std::uint32_t> order(coords.size()), rank(coords.size());
  for (std::uint32_t k = 0; k < order.size(); ++k) order[k] = k;
  std::sort(order.begin(), order.end(), [&](auto a, auto b) { return coords[a] < coords[b]; });
  for (std::uint32_t k = 0; k < order.size(); ++k) rank[order[k]] = k;
  ChunkedPoints out;
  std::vector<std::uint64_t> cnt(coords.size() + 1, 0);
  for (std::size_t i = 0; i < n; ++i) ++cnt[rank[id[i]] + 1];
  for (std::size_t k = 1; k < cnt.size(); ++k) cnt[k] += cnt[k - 1];
  out.offsets = cnt;
  out.perm.resize(n);
  for (std::size_t i = 0; i < n; ++i) out.perm[cnt[rank[id[i]]]++] = i;
  for (auto k : order) out.chunks.push_back(coords[k]);
  return out;
}

template <class T>
std::vector<std::int64_t> sort_fragments(const ArrayView& v, const Grid& g, const ChunkCoord& chunk,
                                         std::span<std::uint64_t> slice, std::vector<std::uint64_t>& scratch) {
  const std::size_t nd = g.ndim();
  const std::int64_t nbins = g.bins_per_chunk_total();
  std::vector<std::int64_t> counts(static_cast<std::size_t>(nbins), 0);
  std::int64_t base[kMaxDims], stride[kMaxDims];
  stride[nd - 1] = 1;
  for (std::size_t d = nd - 1; d > 0; --d) stride[d - 1] = stride[d] * g.bins_per_chunk[d];
  for (std::size_t d = 0; d < nd; ++d) base[d] = chunk[d] * g.bins_per_chunk[d];
  scratch.resize(slice.size() * 2);
  std::uint64_t* frag = scratch.data() + slice.size();
  for (std::size_t k = 0; k < slice.size(); ++k) {
    std::int64_t f = 0;
    for (std::size_t d = 0; d < nd; ++d)
      f += (bin_coord(coord<T>(v, slice[k], d), g.bin_shape[d]) - base[d]) * stride[d];
    frag[k] = static_cast<std::uint64_t>(f);
    ++counts[f];
  }
  if (nbins == 1) return counts;
  std::vector<std::uint64_t> cursor(static_cast<std::size_t>(nbins));
  std::uint64_t run = 0;
  for (std::int64_t f = 0; f < nbins; ++f) {
    cursor[f] = run;
    run += counts[f];
  }
  for (std::size_t k = 0; k < slice.size(); ++k) scratch[cursor[frag[k]]++] = slice[k];
  std::memcpy(slice.data(), scratch.data(), slice.size() * sizeof(std::uint64_t));
  return counts;
}

}  // namespace

ChunkCoord chunk_of_point(const double* p, const Grid& g) {
  ChunkCoord c(g.ndim());
  for (std::size_t d = 0; d < g.ndim(); ++d) c[d] = chunk_axis(p[d], g, d);
  return c;
}

ChunkCoord chunk_of(const ArrayView& v, std::size_t row, const Grid& g) {
  double p[kMaxDims];
  for (std::size_t d = 0; d < g.ndim(); ++d)
    p[d] = v.dtype == DType::F32 ? coord<float>(v, row, d) : coord<double>(v, row, d);
  return chunk_of_point(p, g);
}

ChunkedPoints group_by_chunk(const ArrayView& v, const Grid& g, const std::vector<double>& pos_min,
                             const std::vector<double>& pos_max, int threads) {
  const std::size_t nd = g.ndim();
  if (v.rows == 0) return ChunkedPoints{{}, {0}, {}};
  ChunkCoord cmin = chunk_of_point(pos_min.data(), g), cmax = chunk_of_point(pos_max.data(), g);
  std::vector<std::uint64_t> dims(nd);
  long double cells = 1;
  for (std::size_t d = 0; d < nd; ++d) {
    dims[d] = static_cast<std::uint64_t>(cmax[d] - cmin[d] + 1);
    cells *= static_cast<long double>(dims[d]);
  }
  // Counting into a dense grid costs threads x cells words; beyond this the
  // occupied chunks are compacted through a hash map instead.
  const long double dense_limit = std::min<long double>(
      std::max<long double>(1 << 20, static_cast<long double>(v.rows) / 8), 4294967295.0L);
  const bool dense = cells <= dense_limit;
  if (v.dtype == DType::F32)
    return dense ? group_dense<float>(v, g, cmin, dims, static_cast<std::uint64_t>(cells), threads)
                 : group_sparse<float>(v, g);
  return dense ? group_dense<double>(v, g, cmin, dims, static_cast<std::uint64_t>(cells), threads)
               : group_sparse<double>(v, g);
}

std::vector<std::int64_t> sort_by_fragment(const ArrayView& v, const Grid& g, const ChunkCoord& chunk,
                                           std::span<std::uint64_t> slice, std::vector<std::uint64_t>& scratch) {
  return v.dtype == DType::F32 ? sort_fragments<float>(v, g, chunk, slice, scratch)
                               : sort_fragments<double>(v, g, chunk, slice, scratch);
}

}  // namespace zvf::detail
