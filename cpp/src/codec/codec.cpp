// Cell codecs: vlen-bytes framing, an optional zstd, blosc or gzip compressor
// and an optional crc32c checksum, byte-compatible with zarr-python 3.1 / numcodecs.
#include "zvf/codec.hpp"

#include <blosc.h>
#include <isa-l/crc.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <set>

#include "zvf/error.hpp"

namespace zvf {

namespace {

using json = nlohmann::json;

constexpr std::size_t kHeader = 8;  // u32le element count + u32le length
// Largest framed cell a u32 length field can describe; caps allocations driven
// by sizes read from (possibly corrupt) headers.
constexpr std::uint64_t kMaxFramed = kHeader + std::numeric_limits<std::uint32_t>::max();

// A decompressed size claimed by a header is trusted up to this, or up to this
// many times the stored bytes. Beyond, the decoder writes into memory that is
// not zero-filled first, so that only what it really decodes is touched, and the
// result is copied out: a corrupt 30-byte header must not cost gigabytes of
// memory, and real cells of that ratio (runs of zeros) still decode.
constexpr std::uint64_t kEagerBytes = std::uint64_t{64} << 20;
constexpr std::uint64_t kEagerRatio = 16;

// decode(dst) fills `claimed` bytes at dst or throws.
template <class Decode>
Bytes decode_claimed(std::size_t claimed, std::size_t stored, Decode&& decode) {
  if (claimed <= kEagerBytes || claimed / kEagerRatio <= stored) {
    Bytes out(claimed);
    decode(out.data());
    return out;
  }
  struct FreeLarge {
    void operator()(std::uint8_t* p) const noexcept { detail::free_large(p); }
  };
  const std::unique_ptr<std::uint8_t, FreeLarge> raw(static_cast<std::uint8_t*>(detail::allocate_large(claimed)));
  decode(raw.get());
  return Bytes(raw.get(), raw.get() + claimed);
}

const std::set<std::string> kBloscCnames = {"blosclz", "lz4", "lz4hc", "snappy", "zlib", "zstd"};

void put_u32le(std::uint8_t* p, std::uint32_t v) {
  p[0] = static_cast<std::uint8_t>(v);
  p[1] = static_cast<std::uint8_t>(v >> 8);
  p[2] = static_cast<std::uint8_t>(v >> 16);
  p[3] = static_cast<std::uint8_t>(v >> 24);
}

std::uint32_t get_u32le(const std::uint8_t* p) {
  return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
         static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
}

[[noreturn]] void corrupt(const std::string& message) { fail(Error::Code::Corrupt, message); }
[[noreturn]] void unsupported(const std::string& message) { fail(Error::Code::Unsupported, message); }

int blosc_shuffle_code(const std::string& shuffle) {
  if (shuffle == "noshuffle") return BLOSC_NOSHUFFLE;
  if (shuffle == "shuffle") return BLOSC_SHUFFLE;
  if (shuffle == "bitshuffle") return BLOSC_BITSHUFFLE;
  return -1;
}

// ---- from_json helpers -------------------------------------------------------

std::string codec_name_of(const json& c) {
  if (c.is_string()) return c.get<std::string>();  // zarr v3 allows a bare name
  if (c.is_object() && c.contains("name") && c["name"].is_string()) return c["name"].get<std::string>();
  corrupt("codec entry " + c.dump() + " has no \"name\" string");
}

const json& config_of(const json& c, const std::string& name) {
  static const json empty = json::object();
  if (c.is_string()) return empty;
  for (auto it = c.begin(); it != c.end(); ++it) {
    if (it.key() != "name" && it.key() != "configuration") {
      corrupt("codec '" + name + "' has an unexpected field \"" + it.key() + "\"");
    }
  }
  if (!c.contains("configuration")) return empty;
  const json& cfg = c["configuration"];
  if (!cfg.is_object()) corrupt("codec '" + name + "' has a non-object configuration: " + cfg.dump());
  return cfg;
}

void only_keys(const json& cfg, const std::string& name, std::initializer_list<const char*> allowed) {
  for (auto it = cfg.begin(); it != cfg.end(); ++it) {
    bool ok = false;
    for (const char* a : allowed) ok = ok || it.key() == a;
    if (!ok) corrupt("codec '" + name + "' has an unsupported configuration key \"" + it.key() + "\"");
  }
}

int int_field(const json& cfg, const std::string& name, const char* key, int dflt) {
  if (!cfg.contains(key)) return dflt;
  const json& v = cfg[key];
  if (!v.is_number_integer() || v.get<std::int64_t>() < std::numeric_limits<int>::min() ||
      v.get<std::int64_t>() > std::numeric_limits<int>::max()) {
    corrupt("codec '" + name + "': \"" + key + "\" must be an integer, got " + v.dump());
  }
  return v.get<int>();
}

std::string string_field(const json& cfg, const std::string& name, const char* key, const std::string& dflt) {
  if (!cfg.contains(key)) return dflt;
  const json& v = cfg[key];
  if (!v.is_string()) corrupt("codec '" + name + "': \"" + key + "\" must be a string, got " + v.dump());
  return v.get<std::string>();
}

// ---- compressors -------------------------------------------------------------

// Whether `spec` can encode: the ranges each library takes. Checked before a
// write starts, so that a bad choice leaves nothing half-written.
void check_encodable(const CodecSpec& spec) {
  switch (spec.kind) {
    case CodecSpec::Kind::None:
      return;
    case CodecSpec::Kind::Zstd:
      if (spec.level < ZSTD_minCLevel() || spec.level > ZSTD_maxCLevel())
        invalid("zstd level " + std::to_string(spec.level) + " is out of range [" + std::to_string(ZSTD_minCLevel()) +
                ", " + std::to_string(ZSTD_maxCLevel()) + "]");
      return;
    case CodecSpec::Kind::Blosc:
      if (blosc_shuffle_code(spec.shuffle) < 0)
        invalid("blosc shuffle '" + spec.shuffle + "' is not one of noshuffle, shuffle, bitshuffle");
      if (spec.level < 0 || spec.level > 9) invalid("blosc clevel " + std::to_string(spec.level) + " is not in [0, 9]");
      if (spec.typesize < 1 || spec.typesize > BLOSC_MAX_TYPESIZE)
        invalid("blosc typesize " + std::to_string(spec.typesize) + " is not in [1, " +
                std::to_string(BLOSC_MAX_TYPESIZE) + "]");
      if (spec.blocksize < 0) invalid("blosc blocksize " + std::to_string(spec.blocksize) + " is negative");
      if (blosc_compname_to_compcode(spec.cname.c_str()) < 0)
        invalid("blosc compressor '" + spec.cname + "' is not available in this c-blosc build");
      return;
    case CodecSpec::Kind::Gzip:
      if (spec.level < 0 || spec.level > 9) invalid("gzip level " + std::to_string(spec.level) + " is not in [0, 9]");
      return;
  }
}


struct ZstdCCtxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct ZstdDCtxFree {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

// This thread's compression context, reset to `spec`. Kept per thread: creating
// one per cell costs more than compressing a small cell.
ZSTD_CCtx* zstd_context(const CodecSpec& spec) {
  check_encodable(spec);
  thread_local std::unique_ptr<ZSTD_CCtx, ZstdCCtxFree> cctx(ZSTD_createCCtx());
  if (!cctx) throw std::bad_alloc();
  ZSTD_CCtx* c = cctx.get();
  ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters);
  // Level 0 is zstd's "default level", exactly as numcodecs passes it through.
  ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, spec.level);
  ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, spec.checksum ? 1 : 0);
  return c;
}

// Compresses the vlen-bytes frame header followed by the payload as one zstd
// frame, without first copying them together (zstd's streaming copies them into
// its window instead: encode_cell_in_place avoids both).
ByteSpan zstd_compress(ByteSpan header, ByteSpan payload, const CodecSpec& spec, ArrayBytes& out) {
  ZSTD_CCtx* c = zstd_context(spec);
  const std::size_t total = header.size() + payload.size();
  ZSTD_CCtx_setPledgedSrcSize(c, total);  // the frame records its content size, as a one-shot call does
  out.resize(ZSTD_compressBound(total));  // no fill: ArrayBytes leaves the bytes as they are
  ZSTD_outBuffer ob{out.data(), out.size(), 0};
  auto feed = [&](ByteSpan part, ZSTD_EndDirective mode) {
    ZSTD_inBuffer in{part.data(), part.size(), 0};
    for (;;) {
      const std::size_t r = ZSTD_compressStream2(c, &ob, &in, mode);
      if (ZSTD_isError(r)) fail(Error::Code::IO, std::string("zstd compression failed: ") + ZSTD_getErrorName(r));
      if (mode == ZSTD_e_continue ? in.pos == in.size : r == 0) return;
      if (ob.pos == ob.size) fail(Error::Code::IO, "zstd compression failed: output larger than its bound");
    }
  };
  feed(header, ZSTD_e_continue);
  feed(payload, ZSTD_e_end);
  return ByteSpan(out.data(), ob.pos);
}

// The framed cell in one buffer: one call, no copy of the input.
ByteSpan zstd_compress_frame(ByteSpan framed, const CodecSpec& spec, ArrayBytes& out) {
  ZSTD_CCtx* c = zstd_context(spec);
  out.resize(ZSTD_compressBound(framed.size()));
  const std::size_t r = ZSTD_compress2(c, out.data(), out.size(), framed.data(), framed.size());
  if (ZSTD_isError(r)) fail(Error::Code::IO, std::string("zstd compression failed: ") + ZSTD_getErrorName(r));
  return ByteSpan(out.data(), r);
}

Bytes zstd_decompress(ByteSpan stored, const std::string& what) {
  const unsigned long long size = ZSTD_getFrameContentSize(stored.data(), stored.size());
  if (size == ZSTD_CONTENTSIZE_ERROR) {
    corrupt(what + ": not a zstd frame (" + std::to_string(stored.size()) + " bytes, bad or truncated header)");
  }
  const bool known = size != ZSTD_CONTENTSIZE_UNKNOWN;
  if (known && size > kMaxFramed) {
    corrupt(what + ": zstd frame claims " + std::to_string(size) + " decompressed bytes, more than a cell can hold (" +
            std::to_string(kMaxFramed) + ")");
  }
  if (known) {
    auto decode = [&](std::uint8_t* dst) {
      const std::size_t n = ZSTD_decompress(dst, static_cast<std::size_t>(size), stored.data(), stored.size());
      if (ZSTD_isError(n)) corrupt(what + ": zstd decompression failed: " + ZSTD_getErrorName(n));
      if (n != size) {
        corrupt(what + ": zstd frame decompressed to " + std::to_string(n) + " bytes, header said " +
                std::to_string(size));
      }
    };
    return decode_claimed(static_cast<std::size_t>(size), stored.size(), decode);
  }
  // Frames written by streaming compressors may omit the content size: the
  // output grows as data arrives.
  const std::uint64_t cap = kMaxFramed;
  std::unique_ptr<ZSTD_DCtx, ZstdDCtxFree> dctx(ZSTD_createDCtx());
  if (!dctx) throw std::bad_alloc();
  const std::uint64_t first = std::max<std::size_t>(ZSTD_DStreamOutSize(), stored.size() * 4);
  Bytes out(static_cast<std::size_t>(std::min(cap, first)));
  ZSTD_inBuffer in{stored.data(), stored.size(), 0};
  ZSTD_outBuffer ob{out.data(), out.size(), 0};
  std::size_t ret = 1;
  while (true) {
    ret = ZSTD_decompressStream(dctx.get(), &ob, &in);
    if (ZSTD_isError(ret)) corrupt(what + ": zstd decompression failed: " + ZSTD_getErrorName(ret));
    if (ret == 0 && in.pos == in.size) break;  // frame(s) complete, input consumed
    if (ob.pos == ob.size) {
      if (out.size() >= cap) {
        corrupt(what + ": zstd stream decompresses to more than a cell can hold (" + std::to_string(kMaxFramed) +
                " bytes)");
      }
      out.resize(static_cast<std::size_t>(std::min<std::uint64_t>(cap, out.size() * 2)));
      ob.dst = out.data();
      ob.size = out.size();
    } else if (in.pos == in.size) {
      // Output space left but no input: the frame is cut short.
      corrupt(what + ": zstd frame is truncated (" + std::to_string(stored.size()) + " bytes)");
    }
  }
  out.resize(ob.pos);
  return out;
}

ByteSpan blosc_compress(ByteSpan framed, const CodecSpec& spec, ArrayBytes& out) {
  check_encodable(spec);
  const int shuffle = blosc_shuffle_code(spec.shuffle);
  if (framed.size() > static_cast<std::size_t>(BLOSC_MAX_BUFFERSIZE)) {
    invalid("cell of " + std::to_string(framed.size()) + " bytes exceeds blosc's limit of " +
            std::to_string(BLOSC_MAX_BUFFERSIZE) + " bytes");
  }
  out.resize(framed.size() + BLOSC_MAX_OVERHEAD);
  // The _ctx variant takes no global lock and keeps no global state.
  const int n = blosc_compress_ctx(spec.level, shuffle, static_cast<std::size_t>(spec.typesize), framed.size(),
                                   framed.data(), out.data(), out.size(), spec.cname.c_str(),
                                   static_cast<std::size_t>(spec.blocksize), 1);
  if (n <= 0) fail(Error::Code::IO, "blosc compression failed (code " + std::to_string(n) + ")");
  return ByteSpan(out.data(), static_cast<std::size_t>(n));
}

Bytes blosc_decompress(ByteSpan stored, const std::string& what) {
  if (stored.size() < BLOSC_MIN_HEADER_LENGTH) {
    corrupt(what + ": blosc chunk has " + std::to_string(stored.size()) + " bytes, need at least " +
            std::to_string(BLOSC_MIN_HEADER_LENGTH) + " for the header");
  }
  std::size_t nbytes = 0, cbytes = 0, blocksize = 0;
  blosc_cbuffer_sizes(stored.data(), &nbytes, &cbytes, &blocksize);
  // blosc_decompress_ctx takes no source length, so the header's claim must
  // match what we actually hold before we let it read.
  if (cbytes != stored.size()) {
    corrupt(what + ": blosc header says " + std::to_string(cbytes) + " compressed bytes, found " +
            std::to_string(stored.size()));
  }
  std::size_t checked = 0;
  if (blosc_cbuffer_validate(stored.data(), stored.size(), &checked) != 0) {
    corrupt(what + ": blosc header is invalid (" + std::to_string(stored.size()) + " bytes)");
  }
  if (nbytes > kMaxFramed) {
    corrupt(what + ": blosc chunk claims " + std::to_string(nbytes) + " decompressed bytes, more than a cell can hold");
  }
  auto check = [&](int n) {
    if (n < 0 || static_cast<std::size_t>(n) != nbytes) {
      corrupt(what + ": blosc decompression failed (returned " + std::to_string(n) + ", expected " +
              std::to_string(nbytes) + " bytes)");
    }
  };
  if (nbytes == 0) return Bytes();
  return decode_claimed(nbytes, stored.size(),
                        [&](std::uint8_t* dst) { check(blosc_decompress_ctx(stored.data(), dst, nbytes, 1)); });
}

// ---- gzip (zlib) ------------------------------------------------------------------

// zlib counts bytes in 32-bit fields: big buffers go through in steps.
constexpr std::size_t kZlibStep = std::size_t{1} << 30;

// The member's header and trailer are the gzip ones (RFC 1952): windowBits 15 + 16.
constexpr int kGzipWindowBits = 15 + 16;

// One gzip member of the concatenated parts (no name, mtime 0, as numcodecs' GZip writes).
ByteSpan gzip_compress(std::initializer_list<ByteSpan> parts, const CodecSpec& spec, ArrayBytes& out) {
  check_encodable(spec);
  z_stream z{};
  if (deflateInit2(&z, spec.level, Z_DEFLATED, kGzipWindowBits, 8, Z_DEFAULT_STRATEGY) != Z_OK) throw std::bad_alloc();
  const std::unique_ptr<z_stream, int (*)(z_stream*)> end(&z, deflateEnd);
  std::size_t total = 0;
  for (ByteSpan part : parts) total += part.size();
  out.resize(deflateBound(&z, total));  // room for the whole member: deflate never runs short
  std::size_t produced = 0;
  auto pump = [&](int flush) {
    z.next_out = out.data() + produced;
    z.avail_out = static_cast<uInt>(std::min(out.size() - produced, kZlibStep));
    const uInt room = z.avail_out;
    const int r = deflate(&z, flush);
    produced += room - z.avail_out;
    if (r == Z_STREAM_ERROR || (r == Z_BUF_ERROR && produced == out.size()))
      fail(Error::Code::IO, "gzip compression failed (zlib " + std::to_string(r) + ")");
    return r;
  };
  for (ByteSpan part : parts) {
    for (std::size_t off = 0; off < part.size();) {
      const std::size_t step = std::min(part.size() - off, kZlibStep);
      z.next_in = const_cast<Bytef*>(part.data() + off);
      z.avail_in = static_cast<uInt>(step);
      while (z.avail_in > 0) pump(Z_NO_FLUSH);
      off += step;
    }
  }
  while (pump(Z_FINISH) != Z_STREAM_END) {
  }
  return ByteSpan(out.data(), produced);
}

Bytes gzip_decompress(ByteSpan stored, const std::string& what) {
  z_stream z{};
  if (inflateInit2(&z, kGzipWindowBits) != Z_OK) throw std::bad_alloc();
  const std::unique_ptr<z_stream, int (*)(z_stream*)> end(&z, inflateEnd);
  // The trailer's ISIZE is the (last) member's size mod 2^32: a first guess,
  // trusted only as far as deflate can compress (about 1032:1).
  std::uint64_t guess = std::max<std::uint64_t>(std::uint64_t{64} << 10, std::uint64_t{4} * stored.size());
  if (stored.size() >= 18) {
    const std::uint64_t isize = get_u32le(stored.data() + stored.size() - 4);
    if (isize > 0 && isize <= std::uint64_t{1032} * stored.size()) guess = isize;
  }
  Bytes out(static_cast<std::size_t>(std::min(guess, kMaxFramed)));
  std::size_t consumed = 0, produced = 0;
  for (;;) {
    if (produced == out.size()) {
      if (out.size() >= kMaxFramed)
        corrupt(what + ": gzip data decompresses to more than a cell can hold (" + std::to_string(kMaxFramed) + " bytes)");
      out.resize(static_cast<std::size_t>(std::min<std::uint64_t>(kMaxFramed, std::uint64_t{2} * out.size())));
    }
    z.next_in = const_cast<Bytef*>(stored.data() + consumed);
    z.avail_in = static_cast<uInt>(std::min(stored.size() - consumed, kZlibStep));
    z.next_out = out.data() + produced;
    z.avail_out = static_cast<uInt>(std::min(out.size() - produced, kZlibStep));
    const uInt in_before = z.avail_in, out_before = z.avail_out;
    const int r = inflate(&z, Z_NO_FLUSH);
    consumed += in_before - z.avail_in;
    produced += out_before - z.avail_out;
    if (r == Z_STREAM_END) {
      if (consumed == stored.size()) break;
      inflateReset(&z);  // another member follows, as gzip allows
    } else if (r == Z_BUF_ERROR || (r == Z_OK && consumed == stored.size() && produced < out.size())) {
      if (consumed == stored.size())
        corrupt(what + ": gzip data is truncated (" + std::to_string(stored.size()) + " bytes)");
    } else if (r != Z_OK) {
      corrupt(what + ": gzip decompression failed: " + (z.msg ? std::string(z.msg) : "zlib error " + std::to_string(r)));
    }
  }
  out.resize(produced);
  return out;
}

// ---- crc32c (ISA-L) ------------------------------------------------------------

constexpr std::size_t kCrcBytes = 4;

std::uint32_t crc32c_of(ByteSpan data) {
  // ISA-L leaves CRC-32C's initial and final inversions to the caller.
  std::uint32_t crc = 0xFFFFFFFFu;
  for (std::size_t off = 0; off < data.size();) {
    const std::size_t step = std::min(data.size() - off, kZlibStep);
    crc = crc32_iscsi(const_cast<unsigned char*>(data.data() + off), static_cast<int>(step), crc);
    off += step;
  }
  return crc ^ 0xFFFFFFFFu;
}

// `encoded` followed by its checksum, in `out` (where `encoded` may already lie).
ByteSpan append_crc32c(ByteSpan encoded, ArrayBytes& out) {
  const std::uint32_t crc = crc32c_of(encoded);
  const std::size_t n = encoded.size();
  if (encoded.data() != out.data()) {
    out.resize(n + kCrcBytes);
    if (n) std::memcpy(out.data(), encoded.data(), n);
  } else {
    out.resize(n + kCrcBytes);  // keeps the first n bytes
  }
  put_u32le(out.data() + n, crc);
  return ByteSpan(out.data(), n + kCrcBytes);
}

// The bytes before the checksum, once it matches (zarr-python raises on a mismatch too).
ByteSpan strip_crc32c(ByteSpan stored, const std::string& what) {
  if (stored.size() < kCrcBytes)
    corrupt(what + ": " + std::to_string(stored.size()) + " bytes cannot hold the 4-byte crc32c checksum");
  const ByteSpan body = stored.first(stored.size() - kCrcBytes);
  const std::uint32_t want = get_u32le(stored.data() + body.size()), got = crc32c_of(body);
  if (want != got) {
    char text[64];
    std::snprintf(text, sizeof text, "stored 0x%08x, computed 0x%08x", want, got);
    corrupt(what + ": crc32c checksum mismatch (" + text + ")");
  }
  return body;
}

}  // namespace

// ---- CodecSpec -----------------------------------------------------------------

CodecSpec CodecSpec::from_name(const std::string& name) {
  CodecSpec s;
  if (name.empty() || name == "none") return s;
  if (name == "zstd") {
    s.kind = Kind::Zstd;
    s.level = 0;
    s.checksum = false;
    return s;
  }
  if (name == "blosc") {
    s.kind = Kind::Blosc;
    s.level = 5;
    s.cname = "zstd";
    s.shuffle = "bitshuffle";
    s.typesize = 4;
    s.blocksize = 0;
    return s;
  }
  if (name == "gzip") {
    s.kind = Kind::Gzip;
    s.level = 5;
    return s;
  }
  const std::string choices = "expected none, zstd, blosc, gzip, or a JSON list of codecs such as "
                              "'[{\"name\": \"zstd\", \"configuration\": {\"level\": 3}}, {\"name\": \"crc32c\"}]'";
  const std::size_t first = name.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || name[first] != '[') invalid("unknown compressor '" + name + "'; " + choices);
  const json list = json::parse(name, nullptr, false);
  if (list.is_discarded() || !list.is_array()) invalid("compressor '" + name + "' is not valid JSON; " + choices);
  // As zarr-vectors' compressor= list: the codecs after the serializer, which may be given too.
  json chain = json::array({{{"name", "vlen-bytes"}, {"configuration", json::object()}}});
  for (std::size_t i = 0; i < list.size(); ++i) {
    const json& c = list[i];
    const bool serializer = i == 0 && ((c.is_object() && c.contains("name") && (c["name"] == "bytes" || c["name"] == "vlen-bytes")) ||
                                       c == "bytes" || c == "vlen-bytes");
    if (!serializer) chain.push_back(c);
  }
  try {
    s = from_json(chain);
    check_encodable(s);
  } catch (const Error& e) {
    invalid("compressor '" + name + "': " + e.what());
  }
  return s;
}

CodecSpec CodecSpec::from_json(const nlohmann::json& codecs) {
  if (!codecs.is_array() || codecs.empty()) {
    corrupt("codecs must be a non-empty list starting with vlen-bytes, got " + codecs.dump());
  }
  const std::string first = codec_name_of(codecs[0]);
  if (first != "vlen-bytes") {
    unsupported("unsupported codec '" + first + "' at the start of the codec chain; zvf reads cells framed by 'vlen-bytes'");
  }
  const json& vcfg = config_of(codecs[0], first);
  only_keys(vcfg, first, {});
  CodecSpec s;
  bool compressor = false;
  for (std::size_t i = 1; i < codecs.size(); ++i) {
    const std::string name = codec_name_of(codecs[i]);
    const json& cfg = config_of(codecs[i], name);
    if (s.crc32c) {
      unsupported("unsupported codec chain: '" + name + "' after 'crc32c'; zvf reads vlen-bytes, then at most one "
                  "compressor (zstd, blosc or gzip), then crc32c");
    }
    if (name == "crc32c") {
      only_keys(cfg, name, {});
      s.crc32c = true;
      continue;
    }
    if (name != "zstd" && name != "blosc" && name != "gzip") {
      unsupported("unsupported codec '" + name + "' after vlen-bytes; zvf reads zstd, blosc, gzip and crc32c");
    }
    if (compressor) {
      unsupported("unsupported codec chain: two compressors ('" + s.name() + "', then '" + name +
                  "'); zvf reads at most one after vlen-bytes");
    }
    compressor = true;
    if (name == "zstd") {
      only_keys(cfg, name, {"level", "checksum"});
      s.kind = Kind::Zstd;
      s.level = int_field(cfg, name, "level", 0);
      if (cfg.contains("checksum")) {
        if (!cfg["checksum"].is_boolean())
          corrupt("codec 'zstd': \"checksum\" must be a boolean, got " + cfg["checksum"].dump());
        s.checksum = cfg["checksum"].get<bool>();
      }
    } else if (name == "blosc") {
      only_keys(cfg, name, {"typesize", "cname", "clevel", "shuffle", "blocksize"});
      // Missing keys take the values zarr-vectors writes (see codec.hpp); they
      // only matter for encoding, since a blosc header describes itself.
      s.kind = Kind::Blosc;
      s.typesize = int_field(cfg, name, "typesize", 4);
      s.cname = string_field(cfg, name, "cname", "zstd");
      s.level = int_field(cfg, name, "clevel", 5);
      s.shuffle = string_field(cfg, name, "shuffle", "bitshuffle");
      s.blocksize = int_field(cfg, name, "blocksize", 0);
      if (!kBloscCnames.count(s.cname)) corrupt("codec 'blosc': unknown cname '" + s.cname + "'");
      if (blosc_shuffle_code(s.shuffle) < 0) {
        corrupt("codec 'blosc': shuffle '" + s.shuffle + "' is not one of noshuffle, shuffle, bitshuffle");
      }
    } else {
      only_keys(cfg, name, {"level"});
      s.kind = Kind::Gzip;
      s.level = int_field(cfg, name, "level", 5);
      if (s.level < 0 || s.level > 9) corrupt("codec 'gzip': \"level\" " + std::to_string(s.level) + " is not in [0, 9]");
    }
  }
  return s;
}

nlohmann::json CodecSpec::to_json() const {
  json chain = json::array();
  chain.push_back({{"name", "vlen-bytes"}, {"configuration", json::object()}});
  switch (kind) {
    case Kind::None:
      break;
    case Kind::Zstd:
      chain.push_back({{"name", "zstd"}, {"configuration", {{"level", level}, {"checksum", checksum}}}});
      break;
    case Kind::Blosc:
      chain.push_back({{"name", "blosc"},
                       {"configuration",
                        {{"typesize", typesize},
                         {"cname", cname},
                         {"clevel", level},
                         {"shuffle", shuffle},
                         {"blocksize", blocksize}}}});
      break;
    case Kind::Gzip:
      chain.push_back({{"name", "gzip"}, {"configuration", {{"level", level}}}});
      break;
  }
  if (crc32c) chain.push_back({{"name", "crc32c"}});  // no configuration, as zarr-python writes it
  return chain;
}

std::string CodecSpec::name() const {
  for (const char* preset : {"none", "zstd", "blosc", "gzip"})
    if (to_json() == from_name(preset).to_json()) return preset;
  json after = to_json();
  after.erase(after.begin());  // vlen-bytes is implied
  return after.dump();
}

// ---- cells -----------------------------------------------------------------------

namespace {

void put_cell_header(std::uint8_t* head, std::size_t payload_bytes) {
  if (payload_bytes > std::numeric_limits<std::uint32_t>::max()) {
    invalid("cell payload of " + std::to_string(payload_bytes) +
            " bytes exceeds the 4 GiB limit of the vlen-bytes length field");
  }
  put_u32le(head, 1);
  put_u32le(head + 4, static_cast<std::uint32_t>(payload_bytes));
}

}  // namespace

ByteSpan encode_cell_in_place(std::span<std::uint8_t> frame, const CodecSpec& spec, ArrayBytes& out) {
  if (frame.size() < kHeader) invalid("encode_cell_in_place: the frame has no room for the cell header");
  put_cell_header(frame.data(), frame.size() - kHeader);
  ByteSpan encoded(frame);
  if (spec.kind == CodecSpec::Kind::Zstd) encoded = zstd_compress_frame(ByteSpan(frame), spec, out);
  if (spec.kind == CodecSpec::Kind::Blosc) encoded = blosc_compress(ByteSpan(frame), spec, out);
  if (spec.kind == CodecSpec::Kind::Gzip) encoded = gzip_compress({ByteSpan(frame)}, spec, out);
  return spec.crc32c ? append_crc32c(encoded, out) : encoded;
}

ByteSpan encode_cell_into(ByteSpan payload, const CodecSpec& spec, ArrayBytes& out) {
  std::uint8_t head[kHeader];
  put_cell_header(head, payload.size());
  ByteSpan encoded;
  if (spec.kind == CodecSpec::Kind::Zstd) {
    encoded = zstd_compress(ByteSpan(head, kHeader), payload, spec, out);
  } else if (spec.kind == CodecSpec::Kind::Gzip) {
    encoded = gzip_compress({ByteSpan(head, kHeader), payload}, spec, out);
  } else {
    // blosc compresses the whole frame: build it aside, then compress into `out`.
    ArrayBytes blosc_input;
    ArrayBytes& framed = spec.kind == CodecSpec::Kind::Blosc ? blosc_input : out;
    framed.resize(kHeader + payload.size());
    std::memcpy(framed.data(), head, kHeader);
    if (!payload.empty()) std::memcpy(framed.data() + kHeader, payload.data(), payload.size());
    encoded = spec.kind == CodecSpec::Kind::Blosc ? blosc_compress(ByteSpan(framed), spec, out) : ByteSpan(framed);
  }
  return spec.crc32c ? append_crc32c(encoded, out) : encoded;
}

Bytes encode_cell(ByteSpan payload, const CodecSpec& spec) {
  ArrayBytes scratch;
  const ByteSpan enc = encode_cell_into(payload, spec, scratch);
  return Bytes(enc.begin(), enc.end());
}

namespace {

// The payload of a vlen-bytes frame holding exactly one element.
ByteSpan vlen_payload(ByteSpan framed, const std::string& what) {
  if (framed.size() < kHeader) {
    corrupt(what + ": vlen-bytes cell has " + std::to_string(framed.size()) + " bytes, need at least " +
            std::to_string(kHeader) + " for the header");
  }
  check_cell_header(framed.first(kHeader), framed.size() - kHeader, what);
  return framed.subspan(kHeader);
}

Bytes decompress(ByteSpan stored, const CodecSpec& spec, const std::string& what) {
  switch (spec.kind) {
    case CodecSpec::Kind::Zstd:
      return zstd_decompress(stored, what);
    case CodecSpec::Kind::Blosc:
      return blosc_decompress(stored, what);
    case CodecSpec::Kind::Gzip:
      return gzip_decompress(stored, what);
    case CodecSpec::Kind::None:
      break;
  }
  return Bytes(stored.begin(), stored.end());
}

}  // namespace

void check_cell_header(ByteSpan header, std::size_t payload_bytes, const std::string& what) {
  static_assert(kCellHeaderBytes == kHeader);
  const std::uint32_t count = get_u32le(header.data());
  if (count != 1) corrupt(what + ": vlen-bytes cell holds " + std::to_string(count) + " elements, expected 1");
  const std::uint32_t length = get_u32le(header.data() + 4);
  if (length != payload_bytes) {
    corrupt(what + ": vlen-bytes length field says " + std::to_string(length) + " bytes but " +
            std::to_string(payload_bytes) + " bytes follow the header");
  }
}

Bytes decode_cell(ByteSpan stored, const CodecSpec& spec, const std::string& what) {
  if (spec.crc32c) stored = strip_crc32c(stored, what);
  if (spec.kind == CodecSpec::Kind::None) {
    const ByteSpan payload = vlen_payload(stored, what);
    return Bytes(payload.begin(), payload.end());
  }
  Bytes framed = decompress(stored, spec, what);
  vlen_payload(framed, what);
  framed.erase(framed.begin(), framed.begin() + kHeader);
  return framed;
}

DecodedCell decode_cell_view(Bytes stored, const CodecSpec& spec, const std::string& what) {
  DecodedCell d;
  const ByteSpan body = spec.crc32c ? strip_crc32c(ByteSpan(stored), what) : ByteSpan(stored);
  if (spec.kind == CodecSpec::Kind::None) {
    stored.resize(body.size());  // drops the checksum, if any
    d.bytes = std::move(stored);
  } else {
    d.bytes = decompress(body, spec, what);
  }
  d.payload = vlen_payload(d.bytes, what);
  return d;
}

}  // namespace zvf
