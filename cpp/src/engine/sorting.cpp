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
  std::int64_t bin_stride[kMaxDims];
  std::uint64_t nbins = 1, buckets = 0;
};

// Combined key = chunk index in the bounding box * nbins + fragment index.
template <class T>
inline std::uint64_t key_of(const void* data, std::size_t nd, std::size_t row, const Grid& g, const KeySpace& ks) {
  std::uint64_t chunk = 0;
  std::int64_t frag = 0;
  for (std::size_t d = 0; d < nd; ++d) {
    // Same results as bin_coord / floor_div (the fix-ups make them exact), but
    // without the divisions that dominated the profile.
    const double p = coord<T>(data, nd, row, d), bin = g.bin_shape[d];
    double bf = fast_floor(p * ks.inv_bin[d]);
    if (bf * bin > p) bf -= 1;
    else if ((bf + 1) * bin <= p) bf += 1;
    const std::int64_t b = static_cast<std::int64_t>(bf), bpc = g.bins_per_chunk[d];
    std::int64_t c = static_cast<std::int64_t>(fast_floor(bf * ks.inv_bpc[d]));
    if (c * bpc > b) --c;
    else if ((c + 1) * bpc <= b) ++c;
    chunk += static_cast<std::uint64_t>(c - ks.cmin[d]) * ks.chunk_stride[d];
    frag += (b - c * g.bins_per_chunk[d]) * ks.bin_stride[d];
  }
  return chunk * ks.nbins + static_cast<std::uint64_t>(frag);
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
  // Cursors: bucket-major, block-minor, so the scatter keeps input order.
  SortedPoints out;
  std::uint64_t run = 0;
  const std::uint64_t nchunk_box = B / ks.nbins;
  for (std::uint64_t c = 0; c < nchunk_box; ++c) {
    const std::uint64_t chunk_start = run;
    std::vector<std::int64_t> frags(ks.nbins, 0);
    for (std::uint64_t f = 0; f < ks.nbins; ++f) {
      const std::uint64_t bucket = c * ks.nbins + f;
      for (int b = 0; b < t; ++b) {
        const std::uint64_t k = counts[b][bucket];
        counts[b][bucket] = run;  // reuse as the scatter cursor
        run += k;
        frags[f] += static_cast<std::int64_t>(k);
      }
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
    out.frag_counts.push_back(std::move(frags));
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
  out.chunks = groups.chunks;
  out.offsets = groups.offsets;
  out.frag_counts.resize(groups.chunks.size());
  const std::size_t n = pos.rows, prow = layout.vertex_row_bytes();
  out.positions = RawBuffer(n * prow);
  for (std::size_t k = 0; k < layout.attrs.size(); ++k) out.attrs.emplace_back(n * layout.attr_row_bytes(k));
  parallel_for(groups.chunks.size(), threads, [&](std::size_t c) {
    std::vector<std::uint64_t> scratch;
    auto rows = groups.slice(c);
    out.frag_counts[c] = sort_by_fragment(pos, in.grid, groups.chunks[c], rows, scratch);
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

ChunkView SortedPoints::chunk_view(std::size_t k, const CellLayout& layout) const {
  const std::uint64_t first = offsets[k], n = offsets[k + 1] - first;
  ChunkView v;
  v.count = n;
  v.frag_counts = &frag_counts[k];
  v.vertices = ByteSpan(positions.data.get() + first * layout.vertex_row_bytes(), n * layout.vertex_row_bytes());
  for (std::size_t a = 0; a < attrs.size(); ++a)
    v.attrs.emplace_back(attrs[a].data.get() + first * layout.attr_row_bytes(a), n * layout.attr_row_bytes(a));
  return v;
}

SortedPoints sort_points(const CheckedInput& in, const CellLayout& layout, int threads) {
  const ArrayView& pos = *in.positions;
  const std::size_t nd = pos.cols;
  if (pos.rows == 0) return SortedPoints{{}, {0}, {}, RawBuffer(), {}};
  const Grid& g = in.grid;
  KeySpace ks;
  ks.cmin = chunk_of_point(in.pos_min.data(), g);
  const ChunkCoord cmax = chunk_of_point(in.pos_max.data(), g);
  ks.chunk_stride.assign(nd, 1);
  long double box = 1;
  for (std::size_t d = 0; d < nd; ++d) box *= static_cast<long double>(cmax[d] - ks.cmin[d] + 1);
  for (std::size_t d = nd - 1; d > 0; --d)
    ks.chunk_stride[d - 1] = ks.chunk_stride[d] * static_cast<std::uint64_t>(cmax[d] - ks.cmin[d] + 1);
  ks.bin_stride[nd - 1] = 1;
  for (std::size_t d = nd - 1; d > 0; --d) ks.bin_stride[d - 1] = ks.bin_stride[d] * g.bins_per_chunk[d];
  ks.nbins = static_cast<std::uint64_t>(g.bins_per_chunk_total());
  for (std::size_t d = 0; d < nd; ++d) {
    ks.inv_bin[d] = 1.0 / g.bin_shape[d];
    ks.inv_bpc[d] = 1.0 / static_cast<double>(g.bins_per_chunk[d]);
  }
  const long double buckets = box * static_cast<long double>(ks.nbins);
  // Each counting thread holds one word per bucket; keep that well below the input size.
  const long double limit = std::max<long double>(1 << 20, static_cast<long double>(pos.rows) / 8);
  if (buckets > limit) return sort_sparse(in, layout, threads);
  ks.buckets = static_cast<std::uint64_t>(buckets);
  return pos.dtype == DType::F32 ? sort_dense<float>(in, layout, ks, threads) : sort_dense<double>(in, layout, ks, threads);
}

}  // namespace zvf::detail
