#include "zvf/fragments.hpp"

#include <cstring>

#include "zvf/error.hpp"

namespace zvf {
namespace {
constexpr std::uint32_t kMagic = 0x5A564647;  // 'ZVFG' read as little-endian u32
constexpr std::size_t kHeader = 16;

template <class T>
void put(Bytes& out, std::size_t at, T v) {
  std::memcpy(out.data() + at, &v, sizeof v);  // the targets we build for are little-endian
}
template <class T>
T get(ByteSpan in, std::size_t at) {
  T v;
  std::memcpy(&v, in.data() + at, sizeof v);
  return v;
}
std::size_t bitmap_bytes(std::size_t f) { return ((f + 7) / 8 + 7) / 8 * 8; }
}  // namespace

Bytes encode_range_fragments(const std::vector<std::int64_t>& counts) {
  const std::size_t f = counts.size();
  const std::size_t bm = f ? bitmap_bytes(f) : 0;
  Bytes out(kHeader + bm + f * 16 + (f ? 4 : 0), 0);
  put<std::uint32_t>(out, 0, kMagic);
  put<std::uint16_t>(out, 4, 1);
  put<std::uint16_t>(out, 6, 0);
  put<std::uint32_t>(out, 8, static_cast<std::uint32_t>(f));
  put<std::uint32_t>(out, 12, static_cast<std::uint32_t>(f));
  if (f == 0) return out;  // F=0: header only
  for (std::size_t i = 0; i < f; ++i) out[kHeader + i / 8] |= static_cast<std::uint8_t>(1u << (i % 8));
  std::size_t at = kHeader + bm;
  std::int64_t start = 0;
  for (std::size_t i = 0; i < f; ++i) {
    put<std::int64_t>(out, at, start);
    put<std::int64_t>(out, at + 8, counts[i]);
    start += counts[i];
    at += 16;
  }
  put<std::uint32_t>(out, at, 0);  // explicit CSR: offsets[0] = 0, no explicit fragments
  return out;
}

std::vector<Fragment> decode_fragments(ByteSpan in, const std::string& what) {
  auto corrupt = [&](const std::string& why) -> void {
    fail(Error::Code::Corrupt, what + ": fragment index is corrupt: " + why);
  };
  if (in.size() < kHeader)
    corrupt("expected at least 16 bytes, got " + std::to_string(in.size()));
  if (get<std::uint32_t>(in, 0) != kMagic) corrupt("bad magic (expected 'ZVFG')");
  if (get<std::uint16_t>(in, 4) != 1)
    corrupt("unsupported version " + std::to_string(get<std::uint16_t>(in, 4)));
  const std::size_t f = get<std::uint32_t>(in, 8);
  const std::size_t r = get<std::uint32_t>(in, 12);
  if (r > f) corrupt("more range fragments than fragments");
  if (f == 0) return {};
  // Sizes come from untrusted bytes: check them against the payload before allocating.
  const std::size_t bm = bitmap_bytes(f);
  std::size_t at = kHeader + bm;
  if (in.size() < at + r * 16 + 4) corrupt("truncated range table");
  std::vector<Fragment> frags(f);
  std::size_t seen_ranges = 0;
  for (std::size_t i = 0; i < f; ++i) {
    frags[i].is_range = (in[kHeader + i / 8] >> (i % 8)) & 1u;
    if (frags[i].is_range) {
      if (seen_ranges == r) corrupt("bitmap marks more ranges than the header");
      frags[i].start = get<std::int64_t>(in, at + seen_ranges * 16);
      frags[i].count = get<std::int64_t>(in, at + seen_ranges * 16 + 8);
      if (frags[i].start < 0 || frags[i].count < 0) corrupt("negative range");
      ++seen_ranges;
    }
  }
  if (seen_ranges != r) corrupt("bitmap marks fewer ranges than the header");
  at += r * 16;
  const std::size_t e = f - r;
  if (in.size() < at + (e + 1) * 4) corrupt("truncated CSR offsets");
  std::vector<std::uint32_t> off(e + 1);
  std::memcpy(off.data(), in.data() + at, (e + 1) * 4);
  at += (e + 1) * 4;
  for (std::size_t k = 0; k < e; ++k)
    if (off[k + 1] < off[k]) corrupt("CSR offsets decrease");
  if (in.size() < at + std::size_t(off[e]) * 8) corrupt("truncated CSR indices");
  std::size_t k = 0;
  for (std::size_t i = 0; i < f; ++i) {
    if (frags[i].is_range) continue;
    frags[i].indices.resize(off[k + 1] - off[k]);
    std::memcpy(frags[i].indices.data(), in.data() + at + std::size_t(off[k]) * 8,
                frags[i].indices.size() * 8);
    ++k;
  }
  return frags;
}

}  // namespace zvf
