// The ZV "fragment_index_v1" payload of a vertex_fragments cell:
//   header 16 B  "<IHHII": magic 0x5A564647 'ZVFG', version 1, flags 0, F, R
//   bitmap       ceil(F/8) bytes padded to a multiple of 8; bit f (LSB first) = range
//   ranges       R x (int64 start, int64 count), in fragment order
//   explicit CSR uint32 offsets[E+1] (E = F - R), int64 indices[offsets[E]]
// All little-endian.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "zvf/store.hpp"

namespace zvf {

struct Fragment {
  bool is_range = true;
  std::int64_t start = 0, count = 0;   // when is_range
  std::vector<std::int64_t> indices;   // when !is_range
};

// Range-only index from per-fragment counts (fragment f covers the next counts[f] rows).
Bytes encode_range_fragments(const std::vector<std::int64_t>& counts);
// Decodes any fragment_index_v1 payload; Error(Corrupt) naming `what` on bad bytes.
std::vector<Fragment> decode_fragments(ByteSpan payload, const std::string& what);

}  // namespace zvf
