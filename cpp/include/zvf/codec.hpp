// Zarr v3 codec chains for ZV per-chunk arrays: "vlen-bytes" (always first,
// one element per cell), optionally one bytes-to-bytes compressor, optionally a
// "crc32c" checksum last. These are the chains zarr-vectors 0.9.2 writes for
// its compressor= choices (None, "zstd", "blosc", or a list of codecs such as
// [{"name": "gzip"}] or [{"name": "zstd"}, {"name": "crc32c"}]), so zarr-python
// and the reference decode our cells and we decode theirs. Its presets:
//   zstd : {"level": 0, "checksum": false}
//   blosc: {"typesize": 4, "cname": "zstd", "clevel": 5, "shuffle": "bitshuffle", "blocksize": 0}
//   gzip : {"level": 5} (zarr-python's default level)
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "zvf/buffer.hpp"
#include "zvf/store.hpp"

namespace zvf {

struct CodecSpec {
  enum class Kind { None, Zstd, Blosc, Gzip } kind = Kind::None;
  int level = 0;               // zstd level; blosc clevel; gzip level (defaults above)
  bool checksum = false;       // zstd frame checksum
  std::string cname = "zstd";  // blosc inner compressor
  std::string shuffle = "bitshuffle";  // blosc: "noshuffle" | "shuffle" | "bitshuffle"
  int typesize = 4;            // blosc
  int blocksize = 0;           // blosc
  bool crc32c = false;         // the chain ends with a crc32c checksum (4 bytes, little-endian)

  // A user's choice of compression: "none"/"" -> None, "zstd" -> Zstd level 0,
  // "blosc" -> Blosc(zstd, 5, bitshuffle), "gzip" -> Gzip level 5, or a JSON
  // list of the codecs that follow vlen-bytes, as zarr-vectors' compressor=
  // takes it ('[{"name": "zstd", "configuration": {"level": 3}}, {"name": "crc32c"}]').
  // Anything else throws Error(InvalidArgument) naming the value and the choices.
  static CodecSpec from_name(const std::string& name);
  // Parses an array's "codecs" list (zarr.json). Throws Error(Unsupported) for a
  // codec zvf does not implement and Error(Corrupt) for a malformed list, naming the codec.
  static CodecSpec from_json(const nlohmann::json& codecs);
  nlohmann::json to_json() const;  // the full "codecs" list, vlen-bytes first
  // The preset's name ("none" | "zstd" | "blosc" | "gzip") when the spec is one,
  // else the JSON list that from_name() takes back.
  std::string name() const;
  // Whether a cell is stored as its bare vlen-bytes frame (no compressor, no checksum).
  bool is_identity() const { return kind == Kind::None && !crc32c; }
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
