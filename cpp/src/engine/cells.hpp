// The uncompressed content of one chunk (positions, fragment counts, attribute
// rows in fragment order) and the ways it moves: gathered from input arrays,
// written as Zarr cells, staged as a partition piece, read back, merged, filtered.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "engine/input.hpp"
#include "format/metadata.hpp"
#include "zvf/buffer.hpp"

namespace zvf::detail {

// A payload buffer with room for the 8-byte vlen-bytes frame in front, so an
// uncompressed cell is written without another copy.
// Uninitialised on resize: payloads are always filled right after.
struct Payload {
  static constexpr std::size_t kFrame = 8;
  ArrayBytes buf = ArrayBytes(kFrame);
  std::uint8_t* data() { return buf.data() + kFrame; }
  const std::uint8_t* data() const { return buf.data() + kFrame; }
  std::size_t size() const { return buf.size() - kFrame; }
  void resize(std::size_t n) { buf.resize(n + kFrame); }
  ByteSpan bytes() const { return {data(), size()}; }
};

struct CellLayout {
  std::size_t ndim = 3;
  DType dtype = DType::F32;
  std::vector<meta::AttrSpec> attrs;
  CodecSpec codec;
  std::int64_t nbins = 1;
  int level = 0;  // which level's arrays the cells belong to
  std::size_t vertex_row_bytes() const { return ndim * dtype_size(dtype); }
  std::size_t attr_row_bytes(std::size_t k) const { return attrs[k].cols * dtype_size(attrs[k].dtype); }
};

struct ChunkData {
  std::uint64_t count = 0;
  std::vector<std::int64_t> frag_counts;  // one per bin of the chunk
  Payload vertices;
  std::vector<Payload> attrs;
};

// A borrowed view of one chunk's rows, e.g. a slice of the sorted input buffers.
struct ChunkView {
  std::uint64_t count = 0;
  const std::vector<std::int64_t>* frag_counts = nullptr;
  ByteSpan vertices;
  std::vector<ByteSpan> attrs;
  // True when the vertices and every attribute payload follow kCellHeaderBytes
  // bytes of scratch space that the cell writer may overwrite (chunk_view's own
  // buffers): compressed cells are then framed in place, with no copy.
  bool header_room = false;
};
ChunkView view_of(const ChunkData& data);


// Writes vertices, vertex_fragments and every attribute cell of chunk `c`.
void write_cells(Store& store, const CellLayout& layout, const ChunkCoord& c, const ChunkCoord& origin,
                 const ChunkView& data);
void erase_cells(Store& store, const CellLayout& layout, const ChunkCoord& c, const ChunkCoord& origin);
// The order in which to write chunks (indices into `chunks`) so that threads
// writing at the same time create their files in different directories: a cell
// key's last component names the file and the others its directory, so chunks
// are ordered by their last axis first. In C order, neighbours share a directory,
// and two threads creating files in one directory queue on its lock (on ext4,
// while the holder allocates an inode: slower on 2 threads than on 1).
std::vector<std::size_t> directory_spread_order(const std::vector<ChunkCoord>& chunks);
// Reads a chunk's cells back; nullopt if the vertices cell is missing.
std::optional<ChunkData> read_cells(const Store& store, const CellLayout& layout, const ChunkCoord& c,
                                    const ChunkCoord& origin);

// Partition pieces: "ZVFP" u32 version, u64 count, u32 nbins, i64 counts[nbins],
// then the vertex bytes and each attribute's bytes, all little-endian, uncompressed.
// encode_piece fills `header` and returns the parts to write one after the other
// (they borrow from `header` and `data`): no copy of the rows.
std::vector<ByteSpan> encode_piece(const ChunkView& data, Bytes& header);
// A piece read back: its rows borrowed from `bytes` (which must outlive the view),
// its fragment counts copied into `frag_counts`.
ChunkView decode_piece(ByteSpan bytes, const CellLayout& layout, const std::string& what,
                       std::vector<std::int64_t>& frag_counts);

// Concatenates sources fragment by fragment (source order kept within a fragment).
ChunkData merge_chunks(const std::vector<ChunkView>& sources, const CellLayout& layout);
// Drops the points that lie inside any of the half-open boxes.
ChunkData drop_points_inside(const ChunkData& data, const CellLayout& layout, const std::vector<Box>& boxes);

}  // namespace zvf::detail
