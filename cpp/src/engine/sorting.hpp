// Puts the input rows (positions and every attribute) into storage order:
// by chunk, then by bin (fragment) inside the chunk, input order kept within a
// bin. One counting sort on the combined (chunk, bin) key: a counting pass and a
// scatter pass that copies rows straight into the sorted buffers, both reading the
// input sequentially. Extra memory is one copy of the input, no index arrays.
#pragma once
#include <memory>
#include <vector>

#include "engine/cells.hpp"

namespace zvf::detail {

// Uninitialised byte buffer: sorted copies are written in full, so value-initialising
// them (as std::vector does) would only add a pass over memory.
struct RawBuffer {
  std::unique_ptr<std::uint8_t[]> data;
  std::size_t size = 0;
  explicit RawBuffer(std::size_t n = 0) : data(n ? new std::uint8_t[n] : nullptr), size(n) {}
};

struct SortedPoints {
  std::vector<ChunkCoord> chunks;                 // sorted by coordinate
  std::vector<std::uint64_t> offsets;             // chunks.size() + 1 row offsets
  std::vector<std::vector<std::int64_t>> frag_counts;  // per chunk, one count per bin
  RawBuffer positions;
  std::vector<RawBuffer> attrs;
  // Chunk k's rows, borrowed from the sorted buffers.
  ChunkView chunk_view(std::size_t k, const CellLayout& layout) const;
};

SortedPoints sort_points(const CheckedInput& in, const CellLayout& layout, int threads);

}  // namespace zvf::detail
