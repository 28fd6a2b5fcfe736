// O(N) spatial binning by two stable counting sorts: points by chunk (threads
// count their own blocks, then scatter), then each chunk's points by fragment
// (= bin inside the chunk, C order). Input order is kept within a bin, as the
// reference writer does.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "zvf/grid.hpp"
#include "zvf/types.hpp"

namespace zvf::detail {

struct ChunkedPoints {
  std::vector<ChunkCoord> chunks;     // sorted by coordinate (C order)
  std::vector<std::uint64_t> offsets; // chunks.size() + 1 offsets into perm
  std::vector<std::uint64_t> perm;    // point indices grouped by chunk
  std::span<std::uint64_t> slice(std::size_t k) {
    return {perm.data() + offsets[k], offsets[k + 1] - offsets[k]};
  }
};

// pos_min / pos_max: per-axis extremes of the positions (already validated finite).
ChunkedPoints group_by_chunk(const ArrayView& positions, const Grid& grid,
                             const std::vector<double>& pos_min, const std::vector<double>& pos_max,
                             int threads);

// Stable-sorts one chunk's point indices by fragment; returns the point count of
// every fragment (length = bins per chunk). `scratch` is reused between calls.
std::vector<std::int64_t> sort_by_fragment(const ArrayView& positions, const Grid& grid,
                                           const ChunkCoord& chunk, std::span<std::uint64_t> slice,
                                           std::vector<std::uint64_t>& scratch);

// Chunk coordinate of one point.
ChunkCoord chunk_of(const ArrayView& positions, std::size_t row, const Grid& grid);
ChunkCoord chunk_of_point(const double* p, const Grid& grid);

}  // namespace zvf::detail
