// Grouping of points by chunk for data spread so thinly that the chunk bounding
// box is too large to count into (engine/sorting.cpp handles the common, dense
// case): occupied chunks are found through a hash map, then the points are
// counting-sorted on the compact chunk ids. Input order is kept within a chunk.
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

ChunkedPoints group_by_chunk(const ArrayView& positions, const Grid& grid);

// Chunk coordinate of one point.
ChunkCoord chunk_of(const ArrayView& positions, std::size_t row, const Grid& grid);
ChunkCoord chunk_of_point(const double* p, const Grid& grid);

}  // namespace zvf::detail
