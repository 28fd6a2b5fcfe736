// Puts the input rows (positions and every attribute) into storage order:
// by chunk, then by bin (fragment) inside the chunk, input order kept within a
// bin. Stable counting sorts, two ways:
//  - direct: when the chunk bounding box times the bins per chunk is small, one
//    counting sort by the full (chunk, bin) key; chunk cells are then slices of the
//    sorted copy and chunk_view() copies nothing;
//  - two-level: by chunk over the whole input (few write cursors, so the scatter
//    stays in cache), then by bin inside each chunk when it is written
//    (chunk_view), in a per-thread scratch buffer.
// Extra memory: one copy of the input plus (two-level) a chunk per thread; no
// index arrays.
#pragma once
#include <memory>
#include <vector>

#include "engine/cells.hpp"

namespace zvf::detail {

// Uninitialised byte buffer: sorted copies are written in full, so value-initialising
// them (as std::vector does) would only add a pass over memory.
// Large buffers ask for transparent huge pages: the scatter writes to thousands of
// places at once, and 4 KiB pages would miss the TLB on nearly every row.
struct RawBuffer {
  struct Free {
    void operator()(std::uint8_t* p) const noexcept;
  };
  std::unique_ptr<std::uint8_t[], Free> data;
  std::size_t size = 0;
  explicit RawBuffer(std::size_t n = 0);
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
  // Direct path only: rows are already in bin order; chunk k's bin counts are
  // bin_counts[k * nbins, (k + 1) * nbins). Empty: chunk_view sorts by bin.
  std::vector<std::int64_t> bin_counts;
  // Chunk k's rows sorted by bin, in `scratch` (valid until its next use).
  ChunkView chunk_view(std::size_t k, const CellLayout& layout, ChunkScratch& scratch) const;
};

SortedPoints sort_points(const CheckedInput& in, const CellLayout& layout, int threads);

}  // namespace zvf::detail
