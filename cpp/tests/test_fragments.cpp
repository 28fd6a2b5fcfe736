// fragment_index_v1 payloads (zvf/fragments.hpp): exact bytes of the range-only
// encoding, decoding of range and explicit (CSR) fragments, and rejection of
// every kind of damaged payload.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "test_support.hpp"
#include "zvf/error.hpp"
#include "zvf/fragments.hpp"

using zvf::Bytes;
using zvf::ByteSpan;
using zvf::Error;
using zvf::Fragment;

namespace {

using zvf::testing::expect_error;

// Little-endian writers, independent of the library.
void u16(Bytes& b, std::uint16_t v) {
  for (int i = 0; i < 2; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
void u32(Bytes& b, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
void i64(Bytes& b, std::int64_t v) {
  const auto u = static_cast<std::uint64_t>(v);
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<std::uint8_t>(u >> (8 * i)));
}
void header(Bytes& b, std::uint32_t f, std::uint32_t r, std::uint32_t magic = 0x5A564647, std::uint16_t version = 1) {
  u32(b, magic);
  u16(b, version);
  u16(b, 0);
  u32(b, f);
  u32(b, r);
}
// Bitmap of F bits, ceil(F/8) bytes padded to a multiple of 8.
void bitmap(Bytes& b, const std::vector<bool>& is_range) {
  std::size_t n = (is_range.size() + 7) / 8;
  n = (n + 7) / 8 * 8;
  Bytes bm(n, 0);
  for (std::size_t f = 0; f < is_range.size(); ++f)
    if (is_range[f]) bm[f / 8] |= static_cast<std::uint8_t>(1u << (f % 8));
  b.insert(b.end(), bm.begin(), bm.end());
}

// Hand-built range-only payload.
Bytes expected_ranges(const std::vector<std::int64_t>& counts) {
  Bytes b;
  header(b, static_cast<std::uint32_t>(counts.size()), static_cast<std::uint32_t>(counts.size()));
  if (counts.empty()) return b;
  bitmap(b, std::vector<bool>(counts.size(), true));
  std::int64_t start = 0;
  for (auto c : counts) {
    i64(b, start);
    i64(b, c);
    start += c;
  }
  u32(b, 0);
  return b;
}

// F=4: 0 range (0,2), 1 explicit {5,3}, 2 range (2,1), 3 explicit {}.
Bytes mixed_payload() {
  Bytes b;
  header(b, 4, 2);
  bitmap(b, {true, false, true, false});
  i64(b, 0);
  i64(b, 2);
  i64(b, 2);
  i64(b, 1);
  u32(b, 0);
  u32(b, 2);
  u32(b, 2);
  i64(b, 5);
  i64(b, 3);
  return b;
}

const std::string kWhat = "scan.zarrvectors/0/vertex_fragments/c/1/0/-2";

std::vector<Fragment> decode(const Bytes& b) { return zvf::decode_fragments(ByteSpan(b), kWhat); }

}  // namespace

// ---- encoding ---------------------------------------------------------------

TEST(EncodeRangeFragments, ExactBytesForEightBins) {
  const std::vector<std::int64_t> counts = {1, 0, 1, 0, 2, 1, 0, 0};
  const Bytes got = zvf::encode_range_fragments(counts);
  ASSERT_EQ(got.size(), 156u);
  // Spelled out, so a mistake in the helper above cannot hide one in the library.
  const Bytes head = {0x47, 0x46, 0x56, 0x5A, 0x01, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00};
  EXPECT_EQ(Bytes(got.begin(), got.begin() + 16), head);
  EXPECT_EQ(Bytes(got.begin() + 16, got.begin() + 24), (Bytes{0xFF, 0, 0, 0, 0, 0, 0, 0}));
  const std::int64_t table[8][2] = {{0, 1}, {1, 0}, {1, 1}, {2, 0}, {2, 2}, {4, 1}, {5, 0}, {5, 0}};
  for (int f = 0; f < 8; ++f) {
    std::int64_t s, c;
    std::memcpy(&s, got.data() + 24 + 16 * f, 8);
    std::memcpy(&c, got.data() + 32 + 16 * f, 8);
    EXPECT_EQ(s, table[f][0]) << "fragment " << f;
    EXPECT_EQ(c, table[f][1]) << "fragment " << f;
  }
  EXPECT_EQ(Bytes(got.begin() + 152, got.end()), (Bytes{0, 0, 0, 0}));
  EXPECT_EQ(got, expected_ranges(counts));
}

TEST(EncodeRangeFragments, ZeroFragmentsIsHeaderOnly) {
  const Bytes got = zvf::encode_range_fragments({});
  EXPECT_EQ(got, (Bytes{0x47, 0x46, 0x56, 0x5A, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
}

TEST(EncodeRangeFragments, BitmapPaddingAtBoundaries) {
  // F -> expected size 16 + pad8(ceil(F/8)) + 16F + 4.
  for (std::size_t f : {1u, 7u, 8u, 9u, 63u, 64u, 65u, 128u, 200u}) {
    std::vector<std::int64_t> counts(f);
    for (std::size_t i = 0; i < f; ++i) counts[i] = static_cast<std::int64_t>((i * 7) % 5);
    const Bytes got = zvf::encode_range_fragments(counts);
    const std::size_t bm = ((f + 7) / 8 + 7) / 8 * 8;
    EXPECT_EQ(got.size(), 16 + bm + 16 * f + 4) << "F=" << f;
    EXPECT_EQ(got, expected_ranges(counts)) << "F=" << f;
  }
}

TEST(EncodeRangeFragments, LargeCounts) {
  const std::vector<std::int64_t> counts = {std::int64_t{1} << 40, 0, 3};
  EXPECT_EQ(zvf::encode_range_fragments(counts), expected_ranges(counts));
}

// ---- decoding ---------------------------------------------------------------

TEST(DecodeFragments, RoundTripOfRanges) {
  for (const auto& counts : std::vector<std::vector<std::int64_t>>{
           {1, 0, 1, 0, 2, 1, 0, 0}, {5}, {0}, {0, 0, 0}, std::vector<std::int64_t>(27, 4), {9, 0, 0, 1, 1, 1, 1, 1, 0, 12}}) {
    const auto frags = decode(zvf::encode_range_fragments(counts));
    ASSERT_EQ(frags.size(), counts.size());
    std::int64_t start = 0;
    for (std::size_t f = 0; f < counts.size(); ++f) {
      EXPECT_TRUE(frags[f].is_range);
      EXPECT_EQ(frags[f].start, start);
      EXPECT_EQ(frags[f].count, counts[f]);
      EXPECT_TRUE(frags[f].indices.empty());
      start += counts[f];
    }
  }
  EXPECT_TRUE(decode(zvf::encode_range_fragments({})).empty());
}

TEST(DecodeFragments, ExplicitCsrFragmentsCraftedByHand) {
  const Bytes b = mixed_payload();
  ASSERT_EQ(b.size(), 84u);
  const auto frags = decode(b);
  ASSERT_EQ(frags.size(), 4u);
  EXPECT_TRUE(frags[0].is_range);
  EXPECT_EQ(frags[0].start, 0);
  EXPECT_EQ(frags[0].count, 2);
  EXPECT_FALSE(frags[1].is_range);
  EXPECT_EQ(frags[1].indices, (std::vector<std::int64_t>{5, 3}));
  EXPECT_TRUE(frags[2].is_range);
  EXPECT_EQ(frags[2].start, 2);
  EXPECT_EQ(frags[2].count, 1);
  EXPECT_FALSE(frags[3].is_range);
  EXPECT_TRUE(frags[3].indices.empty());
}

TEST(DecodeFragments, AllExplicit) {
  Bytes b;
  header(b, 3, 0);
  bitmap(b, {false, false, false});
  for (std::uint32_t o : {0u, 1u, 1u, 4u}) u32(b, o);
  for (std::int64_t i : {7, 0, 1, 2}) i64(b, i);
  const auto frags = decode(b);
  ASSERT_EQ(frags.size(), 3u);
  for (const auto& f : frags) EXPECT_FALSE(f.is_range);
  EXPECT_EQ(frags[0].indices, (std::vector<std::int64_t>{7}));
  EXPECT_TRUE(frags[1].indices.empty());
  EXPECT_EQ(frags[2].indices, (std::vector<std::int64_t>{0, 1, 2}));
}

// ---- corruption -------------------------------------------------------------

TEST(DecodeFragments, ShortPayload) {
  expect_error([] { decode(Bytes{}); }, Error::Code::Corrupt, {kWhat});
  expect_error([] { decode(Bytes(15, 0)); }, Error::Code::Corrupt, {kWhat, "15"});
}

TEST(DecodeFragments, BadMagic) {
  Bytes b = zvf::encode_range_fragments({1, 2});
  b[3] = 'X';
  expect_error([&] { decode(b); }, Error::Code::Corrupt, {kWhat, "magic"});
  Bytes h;
  header(h, 0, 0, 0x4746565A);  // byte-swapped magic
  expect_error([&] { decode(h); }, Error::Code::Corrupt, {kWhat, "magic"});
}

TEST(DecodeFragments, BadVersion) {
  Bytes b;
  header(b, 0, 0, 0x5A564647, 2);
  expect_error([&] { decode(b); }, Error::Code::Corrupt, {kWhat, "version 2"});
  Bytes c = zvf::encode_range_fragments({3});
  c[4] = 0;  // version 0
  expect_error([&] { decode(c); }, Error::Code::Corrupt, {kWhat, "version 0"});
}

TEST(DecodeFragments, MoreRangesThanFragments) {
  Bytes b;
  header(b, 2, 3);
  bitmap(b, {true, true});
  for (int i = 0; i < 3; ++i) {
    i64(b, 0);
    i64(b, 0);
  }
  u32(b, 0);
  expect_error([&] { decode(b); }, Error::Code::Corrupt, {kWhat});
}

TEST(DecodeFragments, EveryTruncationOfARangePayloadIsCorrupt) {
  const Bytes full = zvf::encode_range_fragments({1, 0, 1, 0, 2, 1, 0, 0});
  for (std::size_t n = 0; n < full.size(); ++n) {
    SCOPED_TRACE("length " + std::to_string(n));
    Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    expect_error([&] { decode(cut); }, Error::Code::Corrupt, {kWhat});
  }
}

TEST(DecodeFragments, EveryTruncationOfAnExplicitPayloadIsCorrupt) {
  const Bytes full = mixed_payload();
  for (std::size_t n = 0; n < full.size(); ++n) {
    SCOPED_TRACE("length " + std::to_string(n));
    Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    expect_error([&] { decode(cut); }, Error::Code::Corrupt, {kWhat});
  }
  // The specific stages name what is missing.
  expect_error([&] { decode(Bytes(full.begin(), full.begin() + 50)); }, Error::Code::Corrupt, {"range"});
  expect_error([&] { decode(Bytes(full.begin(), full.begin() + 64)); }, Error::Code::Corrupt, {"offsets"});
  expect_error([&] { decode(Bytes(full.begin(), full.begin() + 76)); }, Error::Code::Corrupt, {"indices"});
}

TEST(DecodeFragments, BitmapDisagreesWithRangeCount) {
  Bytes more;  // bitmap marks 3 ranges, header says 2
  header(more, 4, 2);
  bitmap(more, {true, true, true, false});
  for (int i = 0; i < 2; ++i) {
    i64(more, 0);
    i64(more, 0);
  }
  u32(more, 0);
  u32(more, 0);
  u32(more, 0);
  expect_error([&] { decode(more); }, Error::Code::Corrupt, {kWhat});

  Bytes fewer;  // bitmap marks 1 range, header says 2
  header(fewer, 4, 2);
  bitmap(fewer, {false, true, false, false});
  for (int i = 0; i < 2; ++i) {
    i64(fewer, 0);
    i64(fewer, 0);
  }
  for (int i = 0; i < 3; ++i) u32(fewer, 0);
  expect_error([&] { decode(fewer); }, Error::Code::Corrupt, {kWhat});
}

TEST(DecodeFragments, NegativeRange) {
  Bytes b;
  header(b, 1, 1);
  bitmap(b, {true});
  i64(b, 0);
  i64(b, -1);
  u32(b, 0);
  expect_error([&] { decode(b); }, Error::Code::Corrupt, {kWhat, "negative"});
  Bytes c;
  header(c, 1, 1);
  bitmap(c, {true});
  i64(c, -4);
  i64(c, 1);
  u32(c, 0);
  expect_error([&] { decode(c); }, Error::Code::Corrupt, {kWhat, "negative"});
}

TEST(DecodeFragments, DecreasingCsrOffsets) {
  Bytes b;
  header(b, 2, 0);
  bitmap(b, {false, false});
  for (std::uint32_t o : {0u, 2u, 1u}) u32(b, o);
  i64(b, 1);
  i64(b, 2);
  expect_error([&] { decode(b); }, Error::Code::Corrupt, {kWhat});
}

// A header that claims billions of fragments on a 16-byte payload must be
// rejected as truncated, not trusted for an allocation. Runs in a child with a
// capped address space so a huge allocation fails fast instead of paging.
[[noreturn]] void decode_huge_header_in_child() {
  Bytes b;
  header(b, 0xFFFFFFFFu, 0);
  const rlimit lim{std::size_t{8} << 30, std::size_t{8} << 30};
  ::setrlimit(RLIMIT_AS, &lim);
  try {
    decode(b);
    std::_Exit(3);  // accepted a 16-byte payload claiming 2^32-1 fragments
  } catch (const Error& e) {
    std::_Exit(e.code() == Error::Code::Corrupt ? 0 : 4);
  } catch (const std::bad_alloc&) {
    std::_Exit(5);  // trusted the header for an allocation
  } catch (...) {
    std::_Exit(6);
  }
}

TEST(DecodeFragmentsDeathTest, HugeFragmentCountInHeaderIsCorruptNotAnAllocation) {
  EXPECT_EXIT(decode_huge_header_in_child(), ::testing::ExitedWithCode(0), "");
}

// CSR offsets that rise past the payload and then fall back must be rejected
// without reading past the end of the payload. The payload sits right before an
// inaccessible page, so an out-of-bounds read faults in the child.
[[noreturn]] void decode_rising_then_falling_offsets_in_child() {
  Bytes b;
  header(b, 2, 0);
  bitmap(b, {false, false});
  for (std::uint32_t o : {0u, 1u << 16, 1u}) u32(b, o);  // offsets[E] = 1 passes the length check
  i64(b, 42);
  const long page = ::sysconf(_SC_PAGESIZE);
  auto* mem = static_cast<std::uint8_t*>(
      ::mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (mem == MAP_FAILED || ::mprotect(mem + page, page, PROT_NONE) != 0) std::_Exit(7);
  std::uint8_t* at = mem + page - b.size();
  std::memcpy(at, b.data(), b.size());
  try {
    zvf::decode_fragments(ByteSpan(at, b.size()), kWhat);
    std::_Exit(3);
  } catch (const Error& e) {
    std::_Exit(e.code() == Error::Code::Corrupt ? 0 : 4);
  } catch (...) {
    std::_Exit(6);
  }
}

TEST(DecodeFragmentsDeathTest, NonMonotonicCsrOffsetsNeverReadPastThePayload) {
  EXPECT_EXIT(decode_rising_then_falling_offsets_in_child(), ::testing::ExitedWithCode(0), "");
}
