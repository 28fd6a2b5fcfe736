// Zarr v3 codec chains for ZV per-chunk arrays: "vlen-bytes" (always first,
// one element per cell) optionally followed by one bytes-to-bytes compressor.
// The configurations match what zarr-vectors 0.9.2 writes, so zarr-python and
// the reference decode our cells and we decode theirs:
//   zstd : {"level": 0, "checksum": false}
//   blosc: {"typesize": 4, "cname": "zstd", "clevel": 5, "shuffle": "bitshuffle", "blocksize": 0}
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "zvf/buffer.hpp"
#include "zvf/store.hpp"

namespace zvf {

struct CodecSpec {
  enum class Kind { None, Zstd, Blosc } kind = Kind::None;
  int level = 0;               // zstd level; blosc clevel (defaults above)
  bool checksum = false;       // zstd frame checksum
  std::string cname = "zstd";  // blosc inner compressor
  std::string shuffle = "bitshuffle";  // blosc: "noshuffle" | "shuffle" | "bitshuffle"
  int typesize = 4;            // blosc
  int blocksize = 0;           // blosc

  // "none"/"" -> None, "zstd" -> Zstd level 0, "blosc" -> Blosc(zstd, 5, bitshuffle).
  // Anything else throws Error(InvalidArgument) naming the value and the choices.
  static CodecSpec from_name(const std::string& name);
  // Parses an array's "codecs" list (zarr.json). Throws Error(Corrupt) for chains
  // we cannot decode, naming the codec.
  static CodecSpec from_json(const nlohmann::json& codecs);
  nlohmann::json to_json() const;  // the full "codecs" list, vlen-bytes first
  std::string name() const;        // "none" | "zstd" | "blosc"
};

// Encodes one cell: vlen-bytes framing (u32le count=1, u32le length, payload),
// then the compressor if any. Thread-safe.
Bytes encode_cell(ByteSpan payload, const CodecSpec& spec);
// encode_cell() into a caller's buffer, reused from cell to cell (no allocation
// and no zero fill once it has grown); the result views `out`.
ByteSpan encode_cell_into(ByteSpan payload, const CodecSpec& spec, ArrayBytes& out);
// encode_cell_into() for a payload that follows kCellHeaderBytes bytes the caller
// lets us overwrite: `frame` is those bytes and then the payload. The header is
// written into them and the whole frame compressed in one call, so zstd reads the
// payload where it lies instead of first copying it into its window.
ByteSpan encode_cell_in_place(std::span<std::uint8_t> frame, const CodecSpec& spec, ArrayBytes& out);
// Inverse of encode_cell. Throws Error(Corrupt) with `what` (e.g. the key) in
// the message if the bytes are truncated, fail to decompress, or hold != 1 element.
Bytes decode_cell(ByteSpan stored, const CodecSpec& spec, const std::string& what);

// decode_cell() without the copy for uncompressed cells: `payload` borrows from
// `bytes`, which holds the stored bytes (no compressor) or the decompressed frame.
struct DecodedCell {
  Bytes bytes;
  ByteSpan payload;
};
DecodedCell decode_cell_view(Bytes stored, const CodecSpec& spec, const std::string& what);

// Uncompressed cells read in place: the vlen-bytes header is kCellHeaderBytes long
// and must say one element of `payload_bytes`; throws Error(Corrupt) naming `what`.
inline constexpr std::size_t kCellHeaderBytes = 8;
void check_cell_header(ByteSpan header, std::size_t payload_bytes, const std::string& what);

}  // namespace zvf
