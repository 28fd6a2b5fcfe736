// Puts the input rows (positions and every attribute) into storage order:
// by chunk, then by bin (fragment) inside the chunk, input order kept within a
// bin. Two stable counting sorts:
//  1. by chunk over the whole input: a counting pass and a scatter pass that copy
//     rows into one sorted copy (few write cursors, so the scatter stays in cache);
//  2. by bin inside each chunk, done when the chunk is written (chunk_view), in a
//     per-thread scratch buffer that fits in cache.
// Extra memory: one copy of the input plus a chunk per thread; no index arrays.
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

// Per-thread buffers for the bin sort of one chunk.
struct ChunkScratch {
  std::vector<std::uint8_t> positions;
  std::vector<std::vector<std::uint8_t>> attrs;
  std::vector<std::uint32_t> bins;
  std::vector<std::uint64_t> cursor;
  std::vector<std::int64_t> frag_counts;
};

struct SortedPoints {
  std::vector<ChunkCoord> chunks;                 // sorted by coordinate
  std::vector<std::uint64_t> offsets;             // chunks.size() + 1 row offsets
  RawBuffer positions;                            // rows grouped by chunk, input order within
  std::vector<RawBuffer> attrs;
  const Grid* grid = nullptr;
  // Chunk k's rows sorted by bin, in `scratch` (valid until its next use).
  ChunkView chunk_view(std::size_t k, const CellLayout& layout, ChunkScratch& scratch) const;
};

SortedPoints sort_points(const CheckedInput& in, const CellLayout& layout, int threads);

}  // namespace zvf::detail
