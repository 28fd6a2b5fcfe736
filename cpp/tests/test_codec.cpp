// Codec chains: JSON round trip, vlen-bytes framing, compression round trips
// and rejection of damaged cells.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>

#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"
#include "zvf/codec.hpp"
#include "zvf/error.hpp"

using nlohmann::json;
using zvf::Bytes;
using zvf::ByteSpan;
using zvf::CodecSpec;
using zvf::Error;

namespace {

Bytes bytes(const std::string& s) { return Bytes(s.begin(), s.end()); }

using zvf::testing::expect_error;

const json kNoneJson = json::parse(R"([{"name":"vlen-bytes","configuration":{}}])");
const json kZstdJson = json::parse(
    R"([{"name":"vlen-bytes","configuration":{}},{"name":"zstd","configuration":{"level":0,"checksum":false}}])");
const json kBloscJson = json::parse(
    R"([{"name":"vlen-bytes","configuration":{}},{"name":"blosc","configuration":{"typesize":4,"cname":"zstd","clevel":5,"shuffle":"bitshuffle","blocksize":0}}])");

// Something compressible but not trivial: float-like little-endian words.
Bytes sample_payload(std::size_t n) {
  Bytes b(n);
  std::mt19937 rng(42);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>((i % 4 == 3) ? 0x44 : rng() % 16);
  return b;
}

class CodecKinds : public ::testing::TestWithParam<std::string> {
 protected:
  CodecSpec spec() const { return CodecSpec::from_name(GetParam()); }
};

TEST_P(CodecKinds, RoundTripEmptySmallAndLarge) {
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{3}, std::size_t{100}, std::size_t{1} << 20}) {
    SCOPED_TRACE("payload bytes=" + std::to_string(n));
    const Bytes payload = sample_payload(n);
    const Bytes stored = zvf::encode_cell(payload, spec());
    EXPECT_EQ(zvf::decode_cell(stored, spec(), "cell"), payload);
    if (n == (std::size_t{1} << 20) && spec().kind != CodecSpec::Kind::None) {
      EXPECT_LT(stored.size(), n);  // it compressed
    }
  }
}

TEST_P(CodecKinds, InPlaceFramingEncodesTheSameCell) {
  // The writers' path: the payload follows 8 bytes of room, which the encoder
  // overwrites with the header. Same stored bytes as encode_cell, and a frame
  // without room is refused.
  for (std::size_t n : {std::size_t{0}, std::size_t{5}, std::size_t{1} << 20}) {
    SCOPED_TRACE("payload bytes=" + std::to_string(n));
    const Bytes payload = sample_payload(n);
    Bytes frame(zvf::kCellHeaderBytes, 0xEE);
    frame.insert(frame.end(), payload.begin(), payload.end());
    zvf::ArrayBytes out;
    const ByteSpan enc = zvf::encode_cell_in_place(frame, spec(), out);
    EXPECT_EQ(Bytes(enc.begin(), enc.end()), zvf::encode_cell(payload, spec()));
    EXPECT_EQ(zvf::decode_cell(Bytes(enc.begin(), enc.end()), spec(), "cell"), payload);
  }
  Bytes short_frame(zvf::kCellHeaderBytes - 1);
  zvf::ArrayBytes out;
  expect_error([&] { zvf::encode_cell_in_place(short_frame, spec(), out); }, Error::Code::InvalidArgument,
               {"no room for the cell header"});
}

TEST_P(CodecKinds, TruncatedCellIsCorruptAndNamesWhat) {
  const Bytes stored = zvf::encode_cell(sample_payload(5000), spec());
  for (std::size_t keep : {std::size_t{0}, std::size_t{3}, std::size_t{7}, std::size_t{12}, stored.size() / 2, stored.size() - 1}) {
    SCOPED_TRACE("kept bytes=" + std::to_string(keep));
    const Bytes cut(stored.begin(), stored.begin() + static_cast<std::ptrdiff_t>(keep));
    expect_error([&] { zvf::decode_cell(cut, spec(), "0/vertices/c/1/2/3"); }, Error::Code::Corrupt,
                 {"0/vertices/c/1/2/3"});
  }
}

TEST_P(CodecKinds, GarbledCellIsCorrupt) {
  Bytes stored = zvf::encode_cell(sample_payload(5000), spec());
  for (std::size_t i = 0; i < 8 && i < stored.size(); ++i) stored[i] ^= 0x5a;  // smash the header
  expect_error([&] { zvf::decode_cell(stored, spec(), "key-x"); }, Error::Code::Corrupt, {"key-x"});
}

TEST_P(CodecKinds, TrailingGarbageIsCorrupt) {
  Bytes stored = zvf::encode_cell(bytes("abc"), spec());
  stored.push_back(0);
  expect_error([&] { zvf::decode_cell(stored, spec(), "key-t"); }, Error::Code::Corrupt, {"key-t"});
}

TEST_P(CodecKinds, ThreadSafe) {
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        const Bytes p = sample_payload(static_cast<std::size_t>(1000 * t + 37 * i));
        if (zvf::decode_cell(zvf::encode_cell(p, spec()), spec(), "c") != p) ++bad;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST_P(CodecKinds, JsonRoundTrip) {
  const CodecSpec s = spec();
  const CodecSpec back = CodecSpec::from_json(s.to_json());
  EXPECT_EQ(back.name(), GetParam());
  EXPECT_EQ(back.to_json(), s.to_json());
}

// The presets, then chains given as JSON (as name() spells them): a checksum
// alone and after a compressor, and gzip at a level of its own.
const char* const kCrcAlone = R"([{"name":"crc32c"}])";
const char* const kZstdCrc = R"([{"configuration":{"checksum":false,"level":3},"name":"zstd"},{"name":"crc32c"}])";
const char* const kGzipCrc = R"([{"configuration":{"level":1},"name":"gzip"},{"name":"crc32c"}])";
const char* const kBloscCrc =
    R"([{"configuration":{"blocksize":0,"clevel":5,"cname":"lz4","shuffle":"shuffle","typesize":4},"name":"blosc"},{"name":"crc32c"}])";

std::string kind_label(const ::testing::TestParamInfo<std::string>& info) {
  static const char* const labels[] = {"none",   "zstd",        "blosc",        "gzip",
                                       "crc32c", "zstd_crc32c", "gzip1_crc32c", "blosc_lz4_crc32c"};
  return labels[info.index];
}

INSTANTIATE_TEST_SUITE_P(Kinds, CodecKinds,
                         ::testing::Values("none", "zstd", "blosc", "gzip", kCrcAlone, kZstdCrc, kGzipCrc, kBloscCrc),
                         kind_label);

// CRC-32C bit by bit (Castagnoli, reflected 0x82F63B78): the oracle for ISA-L's.
std::uint32_t crc32c_bitwise(ByteSpan data) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (std::uint8_t byte : data) {
    crc ^= byte;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  return ~crc;
}

TEST(Codec, Crc32cIsAppendedLittleEndianAndVerified) {
  const Bytes check = bytes("123456789");
  ASSERT_EQ(crc32c_bitwise(check), 0xE3069283u);  // the CRC-32C check value
  const CodecSpec crc = CodecSpec::from_name(kCrcAlone);
  EXPECT_TRUE(crc.crc32c);
  EXPECT_FALSE(crc.is_identity());
  for (std::size_t n : {std::size_t{0}, std::size_t{9}, std::size_t{100001}}) {
    SCOPED_TRACE("payload bytes=" + std::to_string(n));
    const Bytes payload = n == 9 ? check : sample_payload(n);
    const Bytes framed = zvf::encode_cell(payload, CodecSpec{});
    Bytes stored = zvf::encode_cell(payload, crc);
    ASSERT_EQ(stored.size(), framed.size() + 4);
    EXPECT_TRUE(std::equal(framed.begin(), framed.end(), stored.begin()));
    const std::uint32_t want = crc32c_bitwise(framed);
    EXPECT_EQ(stored[framed.size()] | stored[framed.size() + 1] << 8 | stored[framed.size() + 2] << 16 |
                  static_cast<std::uint32_t>(stored[framed.size() + 3]) << 24,
              want);
    EXPECT_EQ(zvf::decode_cell(stored, crc, "c"), payload);
    const zvf::DecodedCell view = zvf::decode_cell_view(stored, crc, "c");
    EXPECT_EQ(Bytes(view.payload.begin(), view.payload.end()), payload);
    // One flipped bit anywhere, payload or checksum, is caught.
    for (std::size_t at : {std::size_t{0}, stored.size() / 2, stored.size() - 1}) {
      Bytes bad = stored;
      bad[at] ^= 0x10;
      expect_error([&] { zvf::decode_cell(bad, crc, "0/vertices/c/0/0/0"); }, Error::Code::Corrupt,
                   {"0/vertices/c/0/0/0", "crc32c checksum mismatch"});
      expect_error([&] { zvf::decode_cell_view(bad, crc, "k"); }, Error::Code::Corrupt, {"crc32c"});
    }
  }
  // The checksum covers the compressed bytes when a compressor comes first.
  const CodecSpec zc = CodecSpec::from_name(kZstdCrc);
  const Bytes stored = zvf::encode_cell(sample_payload(5000), zc);
  EXPECT_EQ(stored[0], 0x28);  // a zstd frame first
  EXPECT_EQ(stored[stored.size() - 4] | stored[stored.size() - 3] << 8 | stored[stored.size() - 2] << 16 |
                static_cast<std::uint32_t>(stored[stored.size() - 1]) << 24,
            crc32c_bitwise(ByteSpan(stored).first(stored.size() - 4)));
}

// One gzip member of `data`, made by zlib directly (not through the codec).
Bytes gzip_member(ByteSpan data) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  Bytes out(deflateBound(&z, data.size()));
  z.next_in = const_cast<Bytef*>(data.data());
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

TEST(Codec, GzipCellsAreGzipMembers) {
  const CodecSpec gz = CodecSpec::from_name("gzip");
  EXPECT_EQ(gz.kind, CodecSpec::Kind::Gzip);
  EXPECT_EQ(gz.level, 5);
  const Bytes payload = sample_payload(200000);
  const Bytes stored = zvf::encode_cell(payload, gz);
  const std::size_t n = stored.size();
  ASSERT_GE(n, 18u);
  EXPECT_EQ(stored[0], 0x1f);  // gzip magic, then deflate
  EXPECT_EQ(stored[1], 0x8b);
  EXPECT_EQ(stored[2], 8);
  EXPECT_EQ(stored[4] | stored[5] | stored[6] | stored[7], 0);  // mtime 0, as numcodecs writes
  const Bytes framed = zvf::encode_cell(payload, CodecSpec{});
  EXPECT_EQ(stored[n - 4] | stored[n - 3] << 8 | stored[n - 2] << 16 | static_cast<std::uint32_t>(stored[n - 1]) << 24,
            framed.size());  // ISIZE: the framed cell
  EXPECT_LT(n, payload.size());
  // zlib reads our member; we read zlib's.
  EXPECT_EQ(zvf::decode_cell(gzip_member(framed), gz, "c"), payload);
  // Members one after another decode as their concatenation, as gzip allows.
  Bytes two = gzip_member(ByteSpan(framed).first(5));
  const Bytes second = gzip_member(ByteSpan(framed).subspan(5));
  two.insert(two.end(), second.begin(), second.end());
  EXPECT_EQ(zvf::decode_cell(two, gz, "c"), payload);
  // A trailer whose length lies is caught by zlib's own check.
  Bytes lying = stored;
  lying[n - 4] = 1;
  lying[n - 3] = lying[n - 2] = lying[n - 1] = 0;
  expect_error([&] { zvf::decode_cell(lying, gz, "k-isize"); }, Error::Code::Corrupt, {"k-isize", "gzip"});
  // A trailer claiming 4 GiB of a few bytes is not believed (nothing of that size is allocated).
  Bytes huge = zvf::encode_cell(bytes("abc"), gz);
  for (std::size_t i = huge.size() - 4; i < huge.size(); ++i) huge[i] = 0xFF;
  expect_error([&] { zvf::decode_cell(huge, gz, "k-huge"); }, Error::Code::Corrupt, {"k-huge"});
  // Every level encodes; a level outside [0, 9] is refused before anything is written.
  for (int level = 0; level <= 9; ++level) {
    CodecSpec l = gz;
    l.level = level;
    EXPECT_EQ(zvf::decode_cell(zvf::encode_cell(payload, l), l, "c"), payload) << level;
  }
  CodecSpec bad = gz;
  bad.level = 10;
  expect_error([&] { zvf::encode_cell(payload, bad); }, Error::Code::InvalidArgument, {"gzip level 10"});
}

TEST(Codec, FramingIsExact) {
  const Bytes expected = {0x01, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x61, 0x62, 0x63};
  EXPECT_EQ(zvf::encode_cell(bytes("abc"), CodecSpec{}), expected);
  EXPECT_EQ(zvf::encode_cell(Bytes{}, CodecSpec{}), (Bytes{1, 0, 0, 0, 0, 0, 0, 0}));
  const Bytes p300(300, 0xAB);
  const Bytes enc = zvf::encode_cell(p300, CodecSpec{});
  ASSERT_EQ(enc.size(), 308u);
  EXPECT_EQ(enc[4], 0x2C);  // 300 = 0x012C, little-endian
  EXPECT_EQ(enc[5], 0x01);
}

TEST(Codec, CompressedCellsDecompressToTheFraming) {
  const Bytes framed = zvf::encode_cell(bytes("abc"), CodecSpec{});
  const Bytes z = zvf::encode_cell(bytes("abc"), CodecSpec::from_name("zstd"));
  ASSERT_GE(z.size(), 4u);
  EXPECT_EQ(z[0], 0x28);  // zstd magic 0xFD2FB528, little-endian
  Bytes out(64);
  const std::size_t n = ZSTD_decompress(out.data(), out.size(), z.data(), z.size());
  ASSERT_FALSE(ZSTD_isError(n));
  out.resize(n);
  EXPECT_EQ(out, framed);
  EXPECT_EQ(ZSTD_getFrameContentSize(z.data(), z.size()), framed.size());  // size recorded, like numcodecs

  const Bytes b = zvf::encode_cell(bytes("abc"), CodecSpec::from_name("blosc"));
  ASSERT_GE(b.size(), 16u);
  EXPECT_EQ(b[3], 4);  // typesize byte of the blosc header
  EXPECT_EQ(b[4] | b[5] << 8 | b[6] << 16 | b[7] << 24, static_cast<int>(framed.size()));  // nbytes
}

TEST(Codec, ZstdFrameWithoutContentSizeDecodes) {
  // Streaming writers may leave the content size out; decode must cope.
  const Bytes framed = zvf::encode_cell(sample_payload(300000), CodecSpec{});
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
  Bytes z(ZSTD_compressBound(framed.size()));
  const std::size_t n = ZSTD_compress2(cctx, z.data(), z.size(), framed.data(), framed.size());
  ZSTD_freeCCtx(cctx);
  ASSERT_FALSE(ZSTD_isError(n));
  z.resize(n);
  ASSERT_EQ(ZSTD_getFrameContentSize(z.data(), z.size()), ZSTD_CONTENTSIZE_UNKNOWN);
  EXPECT_EQ(zvf::decode_cell(z, CodecSpec::from_name("zstd"), "c"), sample_payload(300000));
  z.resize(z.size() - 10);
  expect_error([&] { zvf::decode_cell(z, CodecSpec::from_name("zstd"), "streamed-key"); }, Error::Code::Corrupt,
               {"streamed-key"});
}

TEST(Codec, ZstdChecksumIsWrittenAndVerified) {
  CodecSpec s = CodecSpec::from_name("zstd");
  s.checksum = true;
  s.level = 19;
  Bytes z = zvf::encode_cell(sample_payload(2000), s);
  EXPECT_EQ(zvf::decode_cell(z, s, "c"), sample_payload(2000));
  z.back() ^= 0xff;  // the last 4 bytes are the checksum
  expect_error([&] { zvf::decode_cell(z, s, "ck"); }, Error::Code::Corrupt, {"ck"});
}

TEST(Codec, VlenHeaderValidation) {
  const CodecSpec none;
  expect_error([&] { zvf::decode_cell(Bytes{1, 0, 0}, none, "short"); }, Error::Code::Corrupt, {"short", "3", "8"});
  expect_error([&] { zvf::decode_cell(Bytes{2, 0, 0, 0, 0, 0, 0, 0}, none, "two"); }, Error::Code::Corrupt,
               {"two", "2 elements", "expected 1"});
  expect_error([&] { zvf::decode_cell(Bytes{0, 0, 0, 0, 0, 0, 0, 0}, none, "zero"); }, Error::Code::Corrupt,
               {"zero", "0 elements"});
  expect_error([&] { zvf::decode_cell(Bytes{1, 0, 0, 0, 5, 0, 0, 0, 'a', 'b'}, none, "len"); }, Error::Code::Corrupt,
               {"len", "5", "2"});
  expect_error([&] { zvf::decode_cell(Bytes{1, 0, 0, 0, 1, 0, 0, 0, 'a', 'b'}, none, "trail"); }, Error::Code::Corrupt,
               {"trail", "1", "2"});
  EXPECT_EQ(zvf::decode_cell(Bytes{1, 0, 0, 0, 2, 0, 0, 0, 'a', 'b'}, none, "ok"), bytes("ab"));
}

TEST(Codec, ToJsonIsExact) {
  EXPECT_EQ(CodecSpec::from_name("none").to_json(), kNoneJson);
  EXPECT_EQ(CodecSpec::from_name("").to_json(), kNoneJson);
  EXPECT_EQ(CodecSpec::from_name("zstd").to_json(), kZstdJson);
  EXPECT_EQ(CodecSpec::from_name("blosc").to_json(), kBloscJson);
  EXPECT_EQ(CodecSpec{}.to_json(), kNoneJson);
  EXPECT_EQ(CodecSpec::from_name("zstd").name(), "zstd");
  EXPECT_EQ(CodecSpec::from_name("blosc").name(), "blosc");
  EXPECT_EQ(CodecSpec::from_name("none").name(), "none");
}

TEST(Codec, FromJsonOfEachKind) {
  EXPECT_EQ(CodecSpec::from_json(kNoneJson).kind, CodecSpec::Kind::None);

  const CodecSpec z = CodecSpec::from_json(kZstdJson);
  EXPECT_EQ(z.kind, CodecSpec::Kind::Zstd);
  EXPECT_EQ(z.level, 0);
  EXPECT_FALSE(z.checksum);

  const CodecSpec b = CodecSpec::from_json(kBloscJson);
  EXPECT_EQ(b.kind, CodecSpec::Kind::Blosc);
  EXPECT_EQ(b.level, 5);
  EXPECT_EQ(b.cname, "zstd");
  EXPECT_EQ(b.shuffle, "bitshuffle");
  EXPECT_EQ(b.typesize, 4);
  EXPECT_EQ(b.blocksize, 0);

  const CodecSpec b2 = CodecSpec::from_json(json::parse(
      R"([{"name":"vlen-bytes"},{"name":"blosc","configuration":{"typesize":1,"cname":"lz4","clevel":9,"shuffle":"noshuffle","blocksize":65536}}])"));
  EXPECT_EQ(b2.typesize, 1);
  EXPECT_EQ(b2.cname, "lz4");
  EXPECT_EQ(b2.level, 9);
  EXPECT_EQ(b2.shuffle, "noshuffle");
  EXPECT_EQ(b2.blocksize, 65536);
  const Bytes p = sample_payload(100000);
  EXPECT_EQ(zvf::decode_cell(zvf::encode_cell(p, b2), b2, "c"), p);

  const CodecSpec z2 = CodecSpec::from_json(json::parse(
      R"([{"name":"vlen-bytes","configuration":{}},{"name":"zstd","configuration":{"level":-3,"checksum":true}}])"));
  EXPECT_EQ(z2.level, -3);
  EXPECT_TRUE(z2.checksum);
}

TEST(Codec, FromJsonDefaultsForMissingKeys) {
  const CodecSpec z = CodecSpec::from_json(json::parse(R"([{"name":"vlen-bytes"},{"name":"zstd"}])"));
  EXPECT_EQ(z.kind, CodecSpec::Kind::Zstd);
  EXPECT_EQ(z.level, 0);
  EXPECT_FALSE(z.checksum);
  const CodecSpec b =
      CodecSpec::from_json(json::parse(R"([{"name":"vlen-bytes"},{"name":"blosc","configuration":{"cname":"zstd"}}])"));
  EXPECT_EQ(b.to_json(), kBloscJson);
  EXPECT_EQ(CodecSpec::from_json(json::parse(R"(["vlen-bytes","zstd"])")).kind, CodecSpec::Kind::Zstd);
  EXPECT_EQ(CodecSpec::from_json(json::parse(R"([{"name":"vlen-bytes"}])")).kind, CodecSpec::Kind::None);
}

TEST(Codec, FromJsonRejectsUnsupportedChains) {
  // Malformed lists are Corrupt; well-formed chains zvf does not implement are Unsupported.
  auto rejects = [](const char* text, const std::string& needle, Error::Code code) {
    SCOPED_TRACE(text);
    expect_error([&] { CodecSpec::from_json(json::parse(text)); }, code, {needle});
  };
  const auto corrupt = Error::Code::Corrupt, unsupported = Error::Code::Unsupported;
  rejects(R"([])", "vlen-bytes", corrupt);
  rejects(R"({"name":"vlen-bytes"})", "vlen-bytes", corrupt);
  rejects(R"([{"name":"bytes","configuration":{"endian":"little"}}])", "bytes", unsupported);
  rejects(R"([{"name":"vlen-utf8","configuration":{}}])", "vlen-utf8", unsupported);
  rejects(R"([{"name":"vlen-bytes"},{"name":"lz4"}])", "lz4", unsupported);
  rejects(R"([{"name":"vlen-bytes"},{"name":"crc32c"},{"name":"zstd"}])", "after 'crc32c'", unsupported);
  rejects(R"([{"name":"vlen-bytes"},{"name":"crc32c"},{"name":"crc32c"}])", "after 'crc32c'", unsupported);
  rejects(R"([{"name":"vlen-bytes"},{"name":"zstd"},{"name":"gzip"}])", "two compressors", unsupported);
  rejects(R"([{"name":"zstd"},{"name":"vlen-bytes"}])", "zstd", unsupported);
  rejects(R"([{"name":"vlen-bytes"},{"name":"zstd","configuration":{"level":"high"}}])", "zstd", corrupt);
  rejects(R"([{"name":"vlen-bytes"},{"name":"zstd","configuration":{"checksum":1}}])", "zstd", corrupt);
  rejects(R"([{"name":"vlen-bytes"},{"name":"zstd","configuration":{"level":1,"window":3}}])", "window", corrupt);
  rejects(R"([{"name":"vlen-bytes"},{"name":"blosc","configuration":{"shuffle":"sideways"}}])", "sideways", corrupt);
  rejects(R"([{"name":"vlen-bytes"},{"name":"blosc","configuration":{"cname":"brotli"}}])", "brotli", corrupt);
  rejects(R"([{"name":"vlen-bytes"},{"name":"blosc","configuration":{"shuffle":1}}])", "blosc", corrupt);
  rejects(R"([{"name":"vlen-bytes"},{"name":"gzip","configuration":{"level":11}}])", "11", corrupt);
  rejects(R"([{"name":"vlen-bytes"},{"name":"gzip","configuration":{"level":5,"mtime":0}}])", "mtime", corrupt);
  rejects(R"([{"name":"vlen-bytes"},{"name":"crc32c","configuration":{"seed":1}}])", "seed", corrupt);
  rejects(R"([{"name":"vlen-bytes","configuration":{"x":1}}])", "vlen-bytes", corrupt);
  rejects(R"([{"configuration":{}}])", "name", corrupt);
}

TEST(Codec, FromJsonReadsTheReferencesOtherChains) {
  // What zarr-vectors writes for compressor=[{"name": "gzip", ...}] and friends.
  const CodecSpec g = CodecSpec::from_json(json::parse(R"([{"name":"vlen-bytes","configuration":{}},{"name":"gzip","configuration":{"level":5}}])"));
  EXPECT_EQ(g.kind, CodecSpec::Kind::Gzip);
  EXPECT_EQ(g.level, 5);
  EXPECT_FALSE(g.crc32c);
  EXPECT_EQ(g.name(), "gzip");
  const CodecSpec c = CodecSpec::from_json(json::parse(R"([{"name":"vlen-bytes","configuration":{}},{"name":"crc32c"}])"));
  EXPECT_EQ(c.kind, CodecSpec::Kind::None);
  EXPECT_TRUE(c.crc32c);
  EXPECT_EQ(c.to_json(), json::parse(R"([{"name":"vlen-bytes","configuration":{}},{"name":"crc32c"}])"));
  const CodecSpec zc = CodecSpec::from_json(json::parse(
      R"([{"name":"vlen-bytes","configuration":{}},{"name":"zstd","configuration":{"level":3,"checksum":false}},{"name":"crc32c","configuration":{}}])"));
  EXPECT_EQ(zc.kind, CodecSpec::Kind::Zstd);
  EXPECT_EQ(zc.level, 3);
  EXPECT_TRUE(zc.crc32c);
  EXPECT_EQ(zc.name(), kZstdCrc);
  EXPECT_EQ(CodecSpec::from_name(zc.name()).to_json(), zc.to_json());
}

TEST(Codec, FromNameTakesPresetsAndJsonLists) {
  EXPECT_EQ(CodecSpec::from_name("gzip").to_json(),
            json::parse(R"([{"name":"vlen-bytes","configuration":{}},{"name":"gzip","configuration":{"level":5}}])"));
  // As zarr-vectors' compressor= list: the serializer may lead, a bare name is a codec.
  EXPECT_EQ(CodecSpec::from_name(R"([{"name": "bytes"}, {"name": "zstd"}])").name(), "zstd");
  EXPECT_EQ(CodecSpec::from_name(R"(["gzip"])").name(), "gzip");
  EXPECT_EQ(CodecSpec::from_name(R"( [ ] )").name(), "none");
  EXPECT_EQ(CodecSpec::from_name(R"([{"name": "zstd", "configuration": {"level": 3}}, {"name": "crc32c"}])").name(),
            kZstdCrc);
  // A bad list is the caller's mistake: InvalidArgument, naming what is wrong.
  auto refuses = [](const std::string& text, std::initializer_list<std::string> needles) {
    SCOPED_TRACE(text);
    expect_error([&] { CodecSpec::from_name(text); }, Error::Code::InvalidArgument, needles);
  };
  refuses("[{\"name\": \"zstd\"", {"not valid JSON", "a JSON list of codecs"});
  refuses(R"([{"name": "lz4"}])", {"lz4", "zstd, blosc, gzip and crc32c"});
  refuses(R"([{"name": "zstd", "configuration": {"level": 99}}])", {"zstd level 99"});
  refuses(R"([{"name": "gzip", "configuration": {"level": -1}}])", {"-1"});
  refuses(R"([{"name": "blosc", "configuration": {"cname": "lz4", "clevel": 12}}])", {"clevel 12"});
  refuses(R"([{"name": "blosc", "configuration": {"typesize": 0}}])", {"typesize 0"});
  refuses(R"([{"name": "zstd"}, {"name": "blosc"}])", {"two compressors"});
  refuses(R"([{"name": "crc32c"}, {"name": "zstd"}])", {"after 'crc32c'"});
  refuses(R"({"name": "zstd"})", {"unknown compressor"});
  refuses(R"([1])", {"no \"name\""});
}

TEST(Codec, FromNameRejectsUnknown) {
  expect_error([] { CodecSpec::from_name("lz4"); }, Error::Code::InvalidArgument, {"lz4", "none", "zstd", "blosc", "gzip"});
  expect_error([] { CodecSpec::from_name("ZSTD"); }, Error::Code::InvalidArgument, {"ZSTD"});
}

TEST(Codec, BadEncoderSettingsAreInvalidArgument) {
  CodecSpec z = CodecSpec::from_name("zstd");
  z.level = 99;
  expect_error([&] { zvf::encode_cell(bytes("x"), z); }, Error::Code::InvalidArgument, {"99"});
  CodecSpec b = CodecSpec::from_name("blosc");
  b.shuffle = "twist";
  expect_error([&] { zvf::encode_cell(bytes("x"), b); }, Error::Code::InvalidArgument, {"twist"});
  b = CodecSpec::from_name("blosc");
  b.level = 10;
  expect_error([&] { zvf::encode_cell(bytes("x"), b); }, Error::Code::InvalidArgument, {"10"});
  b = CodecSpec::from_name("blosc");
  b.cname = "nope";
  expect_error([&] { zvf::encode_cell(bytes("x"), b); }, Error::Code::InvalidArgument, {"nope"});
}

TEST(Codec, BloscHeaderSizeMismatchIsCorrupt) {
  Bytes b = zvf::encode_cell(sample_payload(1000), CodecSpec::from_name("blosc"));
  b.push_back(0);
  expect_error([&] { zvf::decode_cell(b, CodecSpec::from_name("blosc"), "bk"); }, Error::Code::Corrupt,
               {"bk", std::to_string(b.size() - 1), std::to_string(b.size())});
}

long peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024;
}

// Found by fuzzing (docs/fuzzing.md): a header claiming gigabytes made the decoder
// allocate and zero-fill them before finding out the data is not there.
TEST(Codec, HeaderClaimingGigabytesIsCorruptWithoutTouchingThem) {
  // A single-segment zstd frame declaring 3 GiB, holding one raw block of 3 bytes.
  const Bytes zstd = {0x28, 0xb5, 0x2f, 0xfd, 0xe0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0x19, 0, 0, 'a', 'b', 'c'};
  // A real blosc chunk whose header then claims 1.75 GiB (bytes 4..7: nbytes).
  Bytes blosc = zvf::encode_cell(ByteSpan(Bytes(400, 7)), CodecSpec::from_name("blosc"));
  const std::uint32_t claim = 0x70000000;
  std::memcpy(blosc.data() + 4, &claim, 4);
  const long before = peak_rss_mb();
  expect_error([&] { zvf::decode_cell(ByteSpan(zstd), CodecSpec::from_name("zstd"), "zk"); }, Error::Code::Corrupt,
               {"zk"});
  expect_error([&] { zvf::decode_cell(ByteSpan(blosc), CodecSpec::from_name("blosc"), "bk"); }, Error::Code::Corrupt,
               {"bk"});
  EXPECT_LT(peak_rss_mb() - before, 256) << "a corrupt header made the decoder touch its claimed size";
}

}  // namespace
