// Puts the input rows (positions and every attribute) into storage order:
// by chunk, then by bin (fragment) inside the chunk, input order kept within a
// bin. Stable counting sorts: by chunk over the whole input (few write cursors,
// so the scatter stays in cache), then by bin inside each chunk when it is
// written (chunk_view), in a per-thread scratch buffer. Three ways to find keys:
//  - direct: when the chunk bounding box times the bins per chunk fits 32 bits, a
//    vectorised kernel computes each row's (chunk, bin) key once; the bins travel
//    with the rows, so chunk_view only counts them (wide keys) or not even that
//    (narrow keys, below 2^15: their counts come from the sort), then moves rows;
//  - dense: chunk keys by counting over the chunk bounding box; chunk_view
//    computes the bins;
//  - sparse: scattered data whose chunk box is too large to count into: chunks
//    through a hash map.
// Extra memory: one copy of the input and a chunk per thread, plus (direct) 4
// bytes per row for the keys and bins (6 with wide keys).
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
  // Direct path only: each sorted row's bin inside its chunk (uint16), and, with
  // narrow keys, chunk k's bin counts in bin_counts[k * nbins, (k + 1) * nbins).
  // Empty otherwise: chunk_view computes the bins, or counts them.
  RawBuffer bins;
  std::vector<std::int64_t> bin_counts;
  // Chunk k's rows sorted by bin, in `scratch` (valid until its next use); no
  // copy when a chunk has one bin.
  ChunkView chunk_view(std::size_t k, const CellLayout& layout, ChunkScratch& scratch) const;
};

SortedPoints sort_points(const CheckedInput& in, const CellLayout& layout, int threads);

}  // namespace zvf::detail
