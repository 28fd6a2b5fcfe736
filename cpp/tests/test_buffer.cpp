// Large-block storage of zvf/buffer.hpp: 2 MiB alignment, reuse of freed blocks
// of about the requested size, and release of kept blocks on a request they
// cannot serve (so that keeping them never adds to a process's peak memory).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "zvf/buffer.hpp"

using zvf::detail::allocate_large;
using zvf::detail::cached_large_bytes;
using zvf::detail::free_large;
using zvf::detail::release_cached_large_blocks;

namespace {

constexpr std::size_t MiB = std::size_t(1) << 20;

class LargeBlocksTest : public ::testing::Test {
 protected:
  void SetUp() override { release_cached_large_blocks(); }
  void TearDown() override { release_cached_large_blocks(); }
};

TEST_F(LargeBlocksTest, LargeBlocksAreHugePageAligned) {
  void* p = allocate_large(9 * MiB + 5);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % (2 * MiB), 0u);
  std::memset(p, 0xab, 9 * MiB + 5);  // every byte is usable
  free_large(p);
}

TEST_F(LargeBlocksTest, FreedBlockIsReusedForAboutTheSameSize) {
  auto* p = static_cast<std::uint8_t*>(allocate_large(16 * MiB));
  std::memset(p, 1, 16 * MiB);
  free_large(p);
  EXPECT_EQ(cached_large_bytes(), 16 * MiB);
  void* q = allocate_large(15 * MiB);  // rounds up to the same 16 MiB
  EXPECT_EQ(q, p);
  EXPECT_EQ(cached_large_bytes(), 0u);
  std::memset(q, 2, 15 * MiB);
  free_large(q);
}

TEST_F(LargeBlocksTest, RequestNoKeptBlockFitsReleasesThemAll) {
  void* small = allocate_large(11 * MiB);
  void* big = allocate_large(64 * MiB);
  free_large(small);
  free_large(big);
  EXPECT_EQ(cached_large_bytes(), 76 * MiB);  // 11 MiB rounds up to 12
  // 32 MiB: the 64 MiB block is more than a quarter too large, the 12 MiB too small.
  void* mid = allocate_large(32 * MiB);
  EXPECT_NE(mid, big);
  EXPECT_EQ(cached_large_bytes(), 0u);
  free_large(mid);
}

TEST_F(LargeBlocksTest, BestFitAmongKeptBlocks) {
  void* a = allocate_large(40 * MiB);
  void* b = allocate_large(34 * MiB);
  free_large(a);
  free_large(b);
  EXPECT_EQ(allocate_large(33 * MiB), b);  // 34 fits more tightly than 40
  EXPECT_EQ(cached_large_bytes(), 40 * MiB);
  free_large(b);
}

TEST_F(LargeBlocksTest, SmallBlocksComeFromMallocAndAreNotKept) {
  void* p = allocate_large(100);
  void* z = allocate_large(0);
  ASSERT_NE(p, nullptr);
  ASSERT_NE(z, nullptr);
  free_large(p);
  free_large(z);
  free_large(nullptr);
  EXPECT_EQ(cached_large_bytes(), 0u);
}

TEST_F(LargeBlocksTest, ArrayBytesUsesLargeBlocks) {
  const std::uint8_t* first;
  {
    zvf::ArrayBytes v(12 * MiB);
    first = v.data();
    v[12 * MiB - 1] = 7;
  }
  EXPECT_EQ(cached_large_bytes(), 12 * MiB);
  zvf::ArrayBytes w(12 * MiB);
  EXPECT_EQ(w.data(), first);
}

TEST_F(LargeBlocksTest, ConcurrentAllocateAndFree) {
  std::vector<std::thread> pool;
  for (int t = 0; t < 4; ++t)
    pool.emplace_back([t] {
      for (int i = 0; i < 50; ++i) {
        const std::size_t n = (8 + static_cast<std::size_t>((t + i) % 3) * 4) * MiB;
        auto* p = static_cast<std::uint8_t*>(allocate_large(n));
        p[0] = p[n - 1] = static_cast<std::uint8_t>(i);
        EXPECT_EQ(p[0], p[n - 1]);
        free_large(p);
      }
    });
  for (auto& th : pool) th.join();
  EXPECT_LE(cached_large_bytes(), std::size_t(1024) * MiB);
}

}  // namespace
