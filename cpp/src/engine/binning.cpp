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

ChunkedPoints group_by_chunk(const ArrayView& v, const Grid& g) {
  if (v.rows == 0) return ChunkedPoints{{}, {0}, {}};
  return v.dtype == DType::F32 ? group_sparse<float>(v, g) : group_sparse<double>(v, g);
}

}  // namespace zvf::detail
