#include "engine/sorting.hpp"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>

#include "engine/binning.hpp"
#include "engine/parallel.hpp"
#include "engine/trace.hpp"
#include "zvf/buffer.hpp"

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

// Calls f(width) with the row width as a compile-time constant for the common
// widths (a fixed-size memcpy is one or two moves), else as a plain size_t. The
// hot loops go inside f, so that the width is not switched on for every row.
template <class F>
inline void with_row_bytes(std::size_t bytes, F&& f) {
  switch (bytes) {
    case 4: f(std::integral_constant<std::size_t, 4>{}); break;
    case 8: f(std::integral_constant<std::size_t, 8>{}); break;
    case 12: f(std::integral_constant<std::size_t, 12>{}); break;
    case 16: f(std::integral_constant<std::size_t, 16>{}); break;
    case 24: f(std::integral_constant<std::size_t, 24>{}); break;
    default: f(bytes);
  }
}

struct KeySpace {
  double inv_bin[kMaxDims], inv_bpc[kMaxDims];  // multiplications instead of divisions
  ChunkCoord cmin;
  std::vector<std::uint64_t> chunk_stride;  // C order over the chunk bounding box
  std::uint64_t buckets = 0;
};

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
    const std::int64_t b = bin_coord(coord<T>(data, nd, row, d), g.bin_shape[d], ks.inv_bin[d]);
    const std::int64_t c = fast_chunk(b, g.bins_per_chunk[d], ks.inv_bpc[d]);
    chunk += static_cast<std::uint64_t>(c - ks.cmin[d]) * ks.chunk_stride[d];
  }
  return chunk;
}

// Coordinate of the chunk with C-order index c inside the key space's chunk box.
ChunkCoord chunk_at(std::uint64_t c, const KeySpace& ks, std::size_t nd) {
  ChunkCoord cc(nd);
  for (std::size_t d = 0; d < nd; ++d) {
    cc[d] = ks.cmin[d] + static_cast<std::int64_t>(c / ks.chunk_stride[d]);
    c %= ks.chunk_stride[d];
  }
  return cc;
}

// The sorted copies of the positions and every attribute, n rows each.
void allocate_rows(SortedPoints& out, std::size_t n, const CellLayout& layout) {
  out.positions = RawBuffer(n * layout.vertex_row_bytes());
  out.attrs.reserve(layout.attrs.size());
  for (std::size_t a = 0; a < layout.attrs.size(); ++a) out.attrs.emplace_back(n * layout.attr_row_bytes(a));
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
    out.chunks.push_back(chunk_at(c, ks, nd));
    out.offsets.push_back(chunk_start);
  }
  out.offsets.push_back(run);
  const std::size_t prow = layout.vertex_row_bytes();
  allocate_rows(out, n, layout);
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

// ---- Direct path: the full (chunk, bin) key, computed once. ----
// When the chunk bounding box times the bins per chunk is small, a vectorised
// kernel computes each row's key once into a 16-bit array (counting as it goes).
// The rows are then scattered by chunk only: a few hundred write cursors stay in
// cache, where thousands (one per bin of every chunk) would miss on nearly every
// row. Each row's bin goes along, so that chunk_view() orders a chunk by bin in
// cache, from the counts, without recomputing anything.
// Narrow keys (16 bits) are counted per key, so the bin counts come for free.
// Wide keys (32 bits: many chunks, as with small chunks) are counted per chunk,
// since a count per key would no longer stay in cache; chunk_view then counts
// each chunk's bins from the bins carried with its rows.
constexpr std::uint64_t kDirectMaxBuckets = 1u << 15;       // narrow: counts stay cache-resident
constexpr std::uint64_t kDirectWideMaxBuckets = 1ull << 32;  // wide: keys fit 32 bits
constexpr std::uint64_t kDirectMaxBinsPerChunk = 1u << 16;   // bins travel as uint16
constexpr std::size_t kKeyBlock = 512;

struct DirectKeys {
  double bin[kMaxDims], inv_bin[kMaxDims], inv_bpc[kMaxDims];
  std::int32_t bmin[kMaxDims];
  std::uint32_t chunk_coef[kMaxDims], bin_stride[kMaxDims];  // see axis_key()
};

// Axis d's share of the key for global bin index b. With r = b - bmin, the
// bin's offset in the box, its chunk is c = floor(r / bpc) and the key gains
// c * chunk_stride * nbins + (r - c * bpc) * bin_stride, which is
// c * chunk_coef + r * bin_stride. c comes from one product, truncated, with no
// fix-ups: (r + 1/2) / bpc lies at least 1/(2 bpc) from every integer, and the
// product's error is below that: under 2^-23 relative in float for r < 2^21
// (which block_keys ensures for the float kernel), far less in double.
// K is DirectKeys or DirectKeysF32 (inv_bpc in the kernel's precision).
template <class K>
inline std::uint32_t axis_key(const K& k, int d, std::int32_t b) {
  using Real = std::remove_cv_t<std::remove_reference_t<decltype(k.inv_bpc[0])>>;
  const std::int32_t r = b - k.bmin[d];  // >= 0 inside the box
  const auto c = static_cast<std::uint32_t>(static_cast<std::int32_t>((static_cast<Real>(r) + Real(0.5)) * k.inv_bpc[d]));
  return c * k.chunk_coef[d] + static_cast<std::uint32_t>(r) * k.bin_stride[d];
}

// key = chunk index in the box * nbins + bin inside the chunk (C order). Same bin
// as bin_coord(): floor of the product, then the exact fix-ups against the bin
// edges. The int32 conversions are safe: sort_points checked the bin range.
template <class T, int ND>
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
void direct_keys(const T* __restrict p, std::size_t m, const DirectKeys& params, std::uint32_t* __restrict out) {
  const DirectKeys k = params;  // a local copy: no aliasing with `out`, so the loop vectorises
  for (std::size_t i = 0; i < m; ++i) {
    std::uint32_t key = 0;
    for (int d = 0; d < ND; ++d) {
      const double x = static_cast<double>(p[i * ND + d]);
      const double q = x * k.inv_bin[d];
      // Comparisons turned into 0/1 integers rather than branches or selects.
      std::int32_t b = static_cast<std::int32_t>(q);  // truncation, then down to the floor
      b -= static_cast<std::int32_t>(static_cast<double>(b) > q);
      b -= static_cast<std::int32_t>(static_cast<double>(b) * k.bin[d] > x);
      b += static_cast<std::int32_t>((static_cast<double>(b) + 1.0) * k.bin[d] <= x);
      key += axis_key(k, d, b);
    }
    out[i] = key;
  }
}

// The float32 kernel: the same keys as direct_keys<float>, in single precision
// (twice the SIMD lanes, no conversions to double). A float product can land on
// the wrong side of a bin edge only when the quotient lies within its rounding
// error (about 2^-23 relative) of an integer; such rows are flagged (margin
// 2^-20) and direct_keys() recomputes them in double. Rows away from an edge get
// the exact floor either way, so the result is bit-for-bit that of the double
// kernel. Used for |x / bin| < 2^20: beyond that the margin reaches 1 and every
// row would be flagged.
struct DirectKeysF32 {
  float inv_bin[kMaxDims], inv_bpc[kMaxDims];
  std::int32_t bmin[kMaxDims];
  std::uint32_t chunk_coef[kMaxDims], bin_stride[kMaxDims];
};

template <int ND>
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
bool direct_keys_f32(const float* __restrict p, std::size_t m, const DirectKeysF32& params,
                     std::uint32_t* __restrict out, std::uint8_t* __restrict near_edge) {
  const DirectKeysF32 k = params;
  std::uint32_t any = 0;
  for (std::size_t i = 0; i < m; ++i) {
    std::uint32_t key = 0, near = 0;
    for (int d = 0; d < ND; ++d) {
      const float q = p[i * ND + d] * k.inv_bin[d];
      std::int32_t b = static_cast<std::int32_t>(q);
      b -= static_cast<std::int32_t>(static_cast<float>(b) > q);  // truncation to floor
      const float frac = q - static_cast<float>(b);                // exact: 0 <= frac < 1
      const float margin = std::fabs(q) * 0x1p-20f + 0x1p-40f;
      near |= static_cast<std::uint32_t>(frac < margin) | static_cast<std::uint32_t>(frac > 1.0f - margin);
      key += axis_key(k, d, b);
    }
    out[i] = key;
    near_edge[i] = static_cast<std::uint8_t>(near);
    any |= near;
  }
  return any != 0;
}

// Keys of m rows: the float32 kernel with the double one for rows near an edge,
// or the double kernel alone.
template <class T, int ND>
inline void block_keys(const T* p, std::size_t m, const DirectKeys& k, const DirectKeysF32* kf, std::uint32_t* out) {
  if constexpr (std::is_same_v<T, float>) {
    if (kf) {
      std::uint8_t near_edge[kKeyBlock];
      if (direct_keys_f32<ND>(p, m, *kf, out, near_edge))
        for (std::size_t j = 0; j < m; ++j)
          if (near_edge[j]) direct_keys<T, ND>(p + j * ND, 1, k, out + j);
      return;
    }
  }
  direct_keys<T, ND>(p, m, k, out);
}

// Key is std::uint16_t (narrow) or std::uint32_t (wide); see kDirectMaxBuckets.
template <class T, int ND, class Key>
SortedPoints sort_direct(const CheckedInput& in, const CellLayout& layout, const KeySpace& ks, int threads) {
  constexpr bool kNarrow = sizeof(Key) == 2;
  const ArrayView& pos = *in.positions;
  const std::size_t n = pos.rows;
  const Grid& g = in.grid;
  DirectKeys k;
  const auto nbins = static_cast<std::uint32_t>(g.bins_per_chunk_total());
  std::uint32_t bstride = 1;
  for (int d = ND - 1; d >= 0; --d) {
    const auto bpc = static_cast<std::uint32_t>(g.bins_per_chunk[d]);
    k.bin[d] = g.bin_shape[d];
    k.inv_bin[d] = ks.inv_bin[d];
    k.inv_bpc[d] = ks.inv_bpc[d];
    k.bmin[d] = static_cast<std::int32_t>(ks.cmin[d] * g.bins_per_chunk[d]);
    k.chunk_coef[d] = static_cast<std::uint32_t>(ks.chunk_stride[d]) * nbins - bpc * bstride;
    k.bin_stride[d] = bstride;
    bstride *= bpc;
  }
  const std::uint64_t B = kNarrow ? ks.buckets * nbins : ks.buckets;  // counted keys or chunks
  DirectKeysF32 kf;
  bool use_f32 = std::is_same_v<T, float>;
  for (int d = 0; d < ND; ++d) {
    kf.inv_bin[d] = static_cast<float>(k.inv_bin[d]);
    kf.inv_bpc[d] = static_cast<float>(k.inv_bpc[d]);
    kf.bmin[d] = k.bmin[d];
    kf.chunk_coef[d] = k.chunk_coef[d];
    kf.bin_stride[d] = k.bin_stride[d];
    // |b| and |bmin| below 2^20 keep r = b - bmin below 2^21, as axis_key() needs.
    const double reach = std::max(std::abs(in.pos_min[d]), std::abs(in.pos_max[d])) * k.inv_bin[d];
    use_f32 = use_f32 && reach < 0x1p20 && std::abs(static_cast<double>(k.bmin[d])) < 0x1p20;
  }
  const DirectKeysF32* fast = use_f32 ? &kf : nullptr;
  const T* src = static_cast<const T*>(pos.data);
  const int t = std::max(1, std::min<int>(threads, static_cast<int>(std::max<std::size_t>(1, n / 65536))));

  // A key's chunk is key / nbins, by a multiplication. Narrow: key * ceil(2^32 /
  // nbins) >> 32 is exact for keys and nbins below 2^16, since the product's excess
  // over key / nbins is under 2^16 / 2^32 <= 1 / nbins (also checked exhaustively).
  // Wide: the same with 2^64, exact for keys below 2^32 (excess under 2^-32) and
  // nbins up to 2^16 (direct_key_width() ensures it).
  const std::uint64_t magic32 = ((std::uint64_t(1) << 32) + nbins - 1) / nbins;
  const std::uint64_t magic64 = ~std::uint64_t(0) / nbins + 1;  // ceil(2^64 / nbins) for nbins > 1
  auto chunk_of_key = [&](std::uint32_t f) -> std::uint32_t {
    if constexpr (kNarrow) return static_cast<std::uint32_t>((f * magic32) >> 32);
    else return nbins == 1 ? f : static_cast<std::uint32_t>((static_cast<unsigned __int128>(f) * magic64) >> 64);
  };

  PhaseClock clock("sort");
  // Pass 1: every row's key, and per-thread counts of each key (narrow) or chunk (wide).
  RawBuffer keys(n * sizeof(Key));
  auto* key = reinterpret_cast<Key*>(keys.data.get());
  std::vector<std::vector<std::uint64_t>> counts(t);
  parallel_blocks(n, t, [&](std::size_t b, std::size_t lo, std::size_t hi) {
    auto& cnt = counts[b];
    cnt.assign(B, 0);
    std::uint32_t block[kKeyBlock];
    for (std::size_t i = lo; i < hi; i += kKeyBlock) {
      const std::size_t m = std::min(kKeyBlock, hi - i);
      block_keys<T, ND>(src + i * ND, m, k, fast, block);
      for (std::size_t j = 0; j < m; ++j) {
        if constexpr (kNarrow) ++cnt[block[j]];
        else ++cnt[chunk_of_key(block[j])];
        key[i + j] = static_cast<Key>(block[j]);
      }
    }
  });

  // Occupied chunks, their bin counts (narrow), and per-thread chunk cursors
  // (chunk-major, thread-minor, so the scatter keeps input order within a chunk).
  SortedPoints out;
  out.grid = &in.grid;
  std::vector<std::vector<std::uint64_t>> cursor(t, std::vector<std::uint64_t>(ks.buckets, 0));
  std::uint64_t run = 0;
  for (std::uint64_t c = 0; c < ks.buckets; ++c) {
    const std::uint64_t chunk_start = run;
    for (int b = 0; b < t; ++b) {
      cursor[b][c] = run;
      if constexpr (kNarrow) {
        for (std::uint64_t f = c * nbins; f < (c + 1) * nbins; ++f) run += counts[b][f];
      } else {
        run += counts[b][c];
      }
    }
    if (run == chunk_start) continue;  // keep only occupied chunks
    if constexpr (kNarrow) {
      for (std::uint64_t f = c * nbins; f < (c + 1) * nbins; ++f) {
        std::uint64_t in_bin = 0;
        for (int b = 0; b < t; ++b) in_bin += counts[b][f];
        out.bin_counts.push_back(static_cast<std::int64_t>(in_bin));
      }
    }
    out.chunks.push_back(chunk_at(c, ks, ND));
    out.offsets.push_back(chunk_start);
  }
  out.offsets.push_back(run);
  counts.clear();
  clock.mark("keys");

  // Pass 2: rows, attributes and bins scattered by chunk.
  const std::size_t prow = layout.vertex_row_bytes();
  allocate_rows(out, n, layout);
  out.bins = RawBuffer(n * sizeof(std::uint16_t));
  auto* bins = reinterpret_cast<std::uint16_t*>(out.bins.data.get());
  parallel_blocks(n, t, [&](std::size_t b, std::size_t lo, std::size_t hi) {
    std::uint64_t* cur = cursor[b].data();
    std::uint64_t dst[kKeyBlock];
    for (std::size_t i = lo; i < hi; i += kKeyBlock) {
      const std::size_t m = std::min(kKeyBlock, hi - i);
      for (std::size_t j = 0; j < m; ++j) {
        const std::uint32_t f = key[i + j];
        const std::uint32_t c = chunk_of_key(f);
        dst[j] = cur[c]++;
        bins[dst[j]] = static_cast<std::uint16_t>(f - c * nbins);
        // The row's destination line, asked for now and written by the loop below:
        // a hundred streams are more than the hardware prefetchers follow.
        __builtin_prefetch(out.positions.data.get() + dst[j] * prow, 1);
      }
      // One stream at a time: fewer live write cursors per loop.
      const auto* ps = reinterpret_cast<const std::uint8_t*>(src + i * ND);
      std::uint8_t* pd = out.positions.data.get();
      with_row_bytes(prow, [&](auto w) {
        for (std::size_t j = 0; j < m; ++j) std::memcpy(pd + dst[j] * w, ps + j * w, w);
      });
      for (std::size_t a = 0; a < layout.attrs.size(); ++a) {
        const std::size_t ab = layout.attr_row_bytes(a);
        const auto* as = static_cast<const std::uint8_t*>((*in.attributes)[a].view.data) + i * ab;
        std::uint8_t* ad = out.attrs[a].data.get();
        with_row_bytes(ab, [&](auto w) {
          for (std::size_t j = 0; j < m; ++j) std::memcpy(ad + dst[j] * w, as + j * w, w);
        });
      }
    }
  });
  clock.mark("scatter");
  return out;
}

enum class DirectKeyWidth { None, Narrow, Wide };

// The direct kernel works in int32 bin indices and uint32 keys, and carries
// bins as uint16.
DirectKeyWidth direct_key_width(const CheckedInput& in, const KeySpace& ks) {
  const Grid& g = in.grid;
  const long double buckets = static_cast<long double>(ks.buckets) * static_cast<long double>(g.bins_per_chunk_total());
  for (std::size_t d = 0; d < g.ndim(); ++d) {
    const double lo = std::abs(in.pos_min[d]) / g.bin_shape[d], hi = std::abs(in.pos_max[d]) / g.bin_shape[d];
    if (std::max(lo, hi) > 1.0e9 || static_cast<double>(std::abs(ks.cmin[d] * g.bins_per_chunk[d])) > 1.0e9)
      return DirectKeyWidth::None;
  }
  if (buckets <= kDirectMaxBuckets) return DirectKeyWidth::Narrow;
  if (buckets < kDirectWideMaxBuckets && static_cast<std::uint64_t>(g.bins_per_chunk_total()) <= kDirectMaxBinsPerChunk)
    return DirectKeyWidth::Wide;
  return DirectKeyWidth::None;
}

template <class T, class Key>
SortedPoints sort_direct_nd(const CheckedInput& in, const CellLayout& layout, const KeySpace& ks, int threads) {
  switch (in.positions->cols) {
    case 2: return sort_direct<T, 2, Key>(in, layout, ks, threads);
    case 3: return sort_direct<T, 3, Key>(in, layout, ks, threads);
    default: return sort_direct<T, 4, Key>(in, layout, ks, threads);
  }
}

template <class Key>
SortedPoints sort_direct_any(const CheckedInput& in, const CellLayout& layout, const KeySpace& ks, int threads) {
  return in.positions->dtype == DType::F32 ? sort_direct_nd<float, Key>(in, layout, ks, threads)
                                           : sort_direct_nd<double, Key>(in, layout, ks, threads);
}

// Scattered data whose chunk bounding box is too large to count into: group by
// chunk through a hash map, then sort each chunk by fragment.
SortedPoints sort_sparse(const CheckedInput& in, const CellLayout& layout, int threads) {
  const ArrayView& pos = *in.positions;
  ChunkedPoints groups = group_by_chunk(pos, in.grid);
  SortedPoints out;
  out.grid = &in.grid;
  out.chunks = groups.chunks;
  out.offsets = groups.offsets;
  const std::size_t n = pos.rows, prow = layout.vertex_row_bytes();
  allocate_rows(out, n, layout);
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

RawBuffer::RawBuffer(std::size_t n) : size(n) {
  if (n != 0) data.reset(static_cast<std::uint8_t*>(allocate_large(n)));
}

void RawBuffer::Free::operator()(std::uint8_t* p) const noexcept { free_large(p); }

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
  if (nbins == 1) {  // already in storage order
    sc.frag_counts[0] = static_cast<std::int64_t>(n);
    v.vertices = ByteSpan(pos, n * prow);
    for (std::size_t a = 0; a < attrs.size(); ++a)
      v.attrs.emplace_back(attrs[a].data.get() + first * layout.attr_row_bytes(a), n * layout.attr_row_bytes(a));
    return v;
  }
  if (!bin_counts.empty()) {  // narrow direct path: bins and their counts known from the sort
    std::copy_n(bin_counts.begin() + static_cast<std::ptrdiff_t>(k * nbins), nbins, sc.frag_counts.begin());
  } else if (bins.size != 0) {  // wide direct path: the bins are known, their counts are not
    const auto* b16 = reinterpret_cast<const std::uint16_t*>(bins.data.get()) + first;
    for (std::uint64_t r = 0; r < n; ++r) ++sc.frag_counts[b16[r]];
  } else {
    sc.bins.resize(n);
    // Fragment of every row.
    std::int64_t base[kMaxDims], stride[kMaxDims];
    double inv[kMaxDims];
    stride[nd - 1] = 1;
    for (std::size_t d = nd - 1; d > 0; --d) stride[d - 1] = stride[d] * g.bins_per_chunk[d];
    for (std::size_t d = 0; d < nd; ++d) {
      base[d] = chunks[k][d] * g.bins_per_chunk[d];
      inv[d] = 1.0 / g.bin_shape[d];
    }
    for (std::uint64_t r = 0; r < n; ++r) {
      std::int64_t f = 0;
      for (std::size_t d = 0; d < nd; ++d) {
        const double p = layout.dtype == DType::F32 ? coord<float>(pos, nd, r, d) : coord<double>(pos, nd, r, d);
        f += (bin_coord(p, g.bin_shape[d], inv[d]) - base[d]) * stride[d];
      }
      sc.bins[r] = static_cast<std::uint32_t>(f);
      ++sc.frag_counts[f];
    }
  }
  // A stable counting sort by bin into the scratch buffers: one pass that moves
  // each row's position and attributes together (a chunk is larger than L2, so
  // one read of the bins and one cursor update per row, not one per array).
  sc.cursor.resize(static_cast<std::size_t>(nbins));
  std::uint64_t run = 0;
  for (std::int64_t f = 0; f < nbins; ++f) {
    sc.cursor[f] = run;
    run += static_cast<std::uint64_t>(sc.frag_counts[f]);
  }
  const std::size_t na = attrs.size();
  // Each array starts kRoom bytes in, so that the cell writer can put the header
  // in front of it (ChunkView::header_room).
  constexpr std::size_t kRoom = 64;
  static_assert(kRoom >= kCellHeaderBytes);
  if (sc.positions.size() < kRoom + n * prow) sc.positions.resize(kRoom + n * prow);
  sc.attrs.resize(na);
  std::uint8_t* pdst = sc.positions.data() + kRoom;
  for (std::size_t a = 0; a < na; ++a)
    if (sc.attrs[a].size() < kRoom + n * layout.attr_row_bytes(a)) sc.attrs[a].resize(kRoom + n * layout.attr_row_bytes(a));
  const auto* bins16 = bins.size != 0 ? reinterpret_cast<const std::uint16_t*>(bins.data.get()) + first : nullptr;
  auto bin_of_row = [&](std::uint64_t r) -> std::uint32_t { return bins16 ? bins16[r] : sc.bins[r]; };
  std::uint64_t* cur = sc.cursor.data();
  if (na == 1 && bins16) {  // the common case: both row widths fixed for the loop
    const std::size_t ab = layout.attr_row_bytes(0);
    const std::uint8_t* asrc = attrs[0].data.get() + first * ab;
    std::uint8_t* adst = sc.attrs[0].data() + kRoom;
    with_row_bytes(prow, [&](auto pw) {
      with_row_bytes(ab, [&](auto aw) {
        for (std::uint64_t r = 0; r < n; ++r) {
          const std::uint64_t d = cur[bins16[r]]++;
          std::memcpy(pdst + d * pw, pos + r * pw, pw);
          std::memcpy(adst + d * aw, asrc + r * aw, aw);
        }
      });
    });
  } else {
    for (std::uint64_t r = 0; r < n; ++r) {
      const std::uint64_t d = cur[bin_of_row(r)]++;
      copy_row(pdst + d * prow, pos + r * prow, prow);
      for (std::size_t a = 0; a < na; ++a) {
        const std::size_t ab = layout.attr_row_bytes(a);
        copy_row(sc.attrs[a].data() + kRoom + d * ab, attrs[a].data.get() + (first + r) * ab, ab);
      }
    }
  }
  v.vertices = ByteSpan(pdst, n * prow);
  for (std::size_t a = 0; a < na; ++a) v.attrs.emplace_back(sc.attrs[a].data() + kRoom, n * layout.attr_row_bytes(a));
  v.header_room = true;
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
  switch (direct_key_width(in, ks)) {
    case DirectKeyWidth::Narrow: return sort_direct_any<std::uint16_t>(in, layout, ks, threads);
    case DirectKeyWidth::Wide: return sort_direct_any<std::uint32_t>(in, layout, ks, threads);
    case DirectKeyWidth::None: break;
  }
  return pos.dtype == DType::F32 ? sort_dense<float>(in, layout, ks, threads) : sort_dense<double>(in, layout, ks, threads);
}

}  // namespace zvf::detail
