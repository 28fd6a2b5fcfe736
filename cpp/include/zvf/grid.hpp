// Pure chunk/bin arithmetic of ZV 0.9 (no I/O), shared by writers and readers.
//
// Bin coordinates are absolute (origin 0): b = floor(p / bin_shape). The chunk of
// a bin is floor(b / bins_per_chunk), and its fragment index is the C-order
// linearisation of b - chunk * bins_per_chunk. We correct floor(p / bin) by one
// where the division rounded across a bin edge, so that b * bin <= p < (b+1) * bin
// holds exactly in double arithmetic; partition ownership relies on it.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "zvf/types.hpp"

namespace zvf {

constexpr int kMaxDims = 4;

inline std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

// floor() for |x| < 2^63 without a libm call (the baseline x86-64 target has no
// SSE4.1 round instruction); inputs are validated to stay in that range.
inline double fast_floor(double x) {
  double t = static_cast<double>(static_cast<std::int64_t>(x));
  return t > x ? t - 1 : t;
}

inline std::int64_t bin_coord(double p, double bin) {
  double b = fast_floor(p / bin);
  if (b * bin > p) b -= 1;
  else if ((b + 1) * bin <= p) b += 1;
  return static_cast<std::int64_t>(b);
}

// bin_coord() with a precomputed 1 / bin: the same result (the fix-ups against the
// bin edges make it exact) without a division.
inline std::int64_t bin_coord(double p, double bin, double inv_bin) {
  double b = fast_floor(p * inv_bin);
  if (b * bin > p) b -= 1;
  else if ((b + 1) * bin <= p) b += 1;
  return static_cast<std::int64_t>(b);
}

// chunk / bin as a whole number >= 1, or 0 if it is not one (within 1e-9
// relative, as the reference checks it).
std::int64_t whole_ratio(double chunk, double bin);

// Validated chunk/bin layout of one level.
struct Grid {
  std::vector<double> chunk_shape;
  std::vector<double> bin_shape;
  std::vector<std::int64_t> bins_per_chunk;
  std::size_t ndim() const { return chunk_shape.size(); }
  std::int64_t bins_per_chunk_total() const;
  // Validates shapes: lengths equal ndim (2..4), all finite and > 0, bin divides
  // chunk to an integer ratio (within 1e-9). Throws Error(InvalidArgument) naming
  // the offending value. Empty bin_shape means one bin per chunk.
  static Grid make(std::vector<double> chunk_shape, std::vector<double> bin_shape, std::size_t ndim);
  // Physical lower corner of chunk c along axis d, computed as (c*bpc)*bin so that
  // it agrees exactly with bin_coord().
  double chunk_lo(std::int64_t c, std::size_t d) const {
    return static_cast<double>(c * bins_per_chunk[d]) * bin_shape[d];
  }
  double chunk_hi(std::int64_t c, std::size_t d) const { return chunk_lo(c + 1, d); }
};

using ChunkCoord = std::vector<std::int64_t>;

// "-1.0.2": the dotted absolute key used in nonempty_chunks and manifests.
std::string dotted_key(const std::int64_t* c, std::size_t ndim);
inline std::string dotted_key(const ChunkCoord& c) { return dotted_key(c.data(), c.size()); }
// Inverse of dotted_key; throws Error(Corrupt) naming the key if it does not parse
// into exactly `ndim` integers.
ChunkCoord parse_dotted_key(const std::string& key, std::size_t ndim);
// "c/0/1/3": the Zarr v3 default chunk key of cell (c - origin) with '/' separator.
std::string cell_key(const ChunkCoord& c, const ChunkCoord& origin);

}  // namespace zvf
