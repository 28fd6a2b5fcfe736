// Chunk/bin arithmetic of zvf/grid.hpp: floor division, exact bin coordinates
// at and around bin edges, Grid validation, dotted keys and cell keys.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "test_support.hpp"
#include "zvf/error.hpp"
#include "zvf/grid.hpp"

using zvf::ChunkCoord;
using zvf::Error;
using zvf::Grid;

namespace {

using zvf::testing::expect_error;

// The invariant the library promises, evaluated in double arithmetic.
::testing::AssertionResult bin_holds(double p, double bin) {
  const std::int64_t b = zvf::bin_coord(p, bin);
  const double lo = static_cast<double>(b) * bin, hi = static_cast<double>(b + 1) * bin;
  if (lo <= p && p < hi) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << std::hexfloat << "bin_coord(" << p << ", " << bin << ") = " << b
                                       << " but [" << lo << ", " << hi << ") does not contain p";
}

constexpr double kInf = std::numeric_limits<double>::infinity();

}  // namespace

// ---- floor_div --------------------------------------------------------------

TEST(FloorDiv, SignCombinations) {
  EXPECT_EQ(zvf::floor_div(7, 2), 3);
  EXPECT_EQ(zvf::floor_div(-7, 2), -4);
  EXPECT_EQ(zvf::floor_div(7, -2), -4);
  EXPECT_EQ(zvf::floor_div(-7, -2), 3);
  EXPECT_EQ(zvf::floor_div(6, 2), 3);
  EXPECT_EQ(zvf::floor_div(-6, 2), -3);
  EXPECT_EQ(zvf::floor_div(6, -2), -3);
  EXPECT_EQ(zvf::floor_div(-6, -2), 3);
  EXPECT_EQ(zvf::floor_div(0, 5), 0);
  EXPECT_EQ(zvf::floor_div(0, -5), 0);
  EXPECT_EQ(zvf::floor_div(-1, 4), -1);
  EXPECT_EQ(zvf::floor_div(1, 4), 0);
  EXPECT_EQ(zvf::floor_div(-4, 4), -1);
  EXPECT_EQ(zvf::floor_div(-5, 4), -2);
  EXPECT_EQ(zvf::floor_div(3, 1), 3);
  EXPECT_EQ(zvf::floor_div(-3, 1), -3);
}

TEST(FloorDiv, MatchesMathematicalFloorOnASweep) {
  for (std::int64_t a = -60; a <= 60; ++a)
    for (std::int64_t b = -9; b <= 9; ++b) {
      if (b == 0) continue;
      const std::int64_t q = zvf::floor_div(a, b);
      EXPECT_EQ(q, static_cast<std::int64_t>(std::floor(static_cast<double>(a) / static_cast<double>(b))))
          << a << " / " << b;
      // q*b <= a < (q+1)*b for b > 0; reversed for b < 0.
      if (b > 0) {
        EXPECT_LE(q * b, a);
        EXPECT_GT((q + 1) * b, a);
      } else {
        EXPECT_GE(q * b, a);
        EXPECT_LT((q + 1) * b, a);
      }
    }
}

TEST(FloorDiv, Extremes) {
  constexpr auto kMin = std::numeric_limits<std::int64_t>::min();
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  EXPECT_EQ(zvf::floor_div(kMin, 1), kMin);
  EXPECT_EQ(zvf::floor_div(kMax, 1), kMax);
  EXPECT_EQ(zvf::floor_div(kMin, 2), kMin / 2);
  EXPECT_EQ(zvf::floor_div(kMin + 1, 2), kMin / 2);  // -4611686018427387903.5 -> ...904
  EXPECT_EQ(zvf::floor_div(-1, kMax), -1);
  EXPECT_EQ(zvf::floor_div(1, kMax), 0);
  EXPECT_EQ(zvf::floor_div(kMax, kMin), -1);
}

// ---- bin_coord --------------------------------------------------------------

TEST(BinCoord, SimpleValues) {
  EXPECT_EQ(zvf::bin_coord(0.0, 10.0), 0);
  EXPECT_EQ(zvf::bin_coord(-0.0, 10.0), 0);
  EXPECT_EQ(zvf::bin_coord(9.999, 10.0), 0);
  EXPECT_EQ(zvf::bin_coord(10.0, 10.0), 1);
  EXPECT_EQ(zvf::bin_coord(-0.001, 10.0), -1);
  EXPECT_EQ(zvf::bin_coord(-10.0, 10.0), -1);
  EXPECT_EQ(zvf::bin_coord(-10.000001, 10.0), -2);
  EXPECT_EQ(zvf::bin_coord(125.0, 125.0), 1);
  EXPECT_EQ(zvf::bin_coord(-125.0, 125.0), -1);
  EXPECT_EQ(zvf::bin_coord(1e12, 1.0), 1000000000000);
  EXPECT_EQ(zvf::bin_coord(-1e12, 1.0), -1000000000000);
}

TEST(BinCoord, ExactAtAndOneUlpAroundEdgesFloat64) {
  for (double bin : {0.1, 0.3, 0.7, 1.0, 1.1, 3.7, 25.0, 62.5, 100.0 / 3.0, 1e-3, 12345.678}) {
    for (std::int64_t b = -2000; b <= 2000; b += 7) {
      const double edge = static_cast<double>(b) * bin;
      const double below = std::nextafter(edge, -kInf), above = std::nextafter(edge, kInf);
      EXPECT_TRUE(bin_holds(edge, bin));
      EXPECT_TRUE(bin_holds(below, bin));
      EXPECT_TRUE(bin_holds(above, bin));
      // The edge itself starts bin b (it is the product the library compares with).
      EXPECT_EQ(zvf::bin_coord(edge, bin), b) << std::hexfloat << edge << " bin " << bin;
      EXPECT_EQ(zvf::bin_coord(below, bin), b - 1) << std::hexfloat << below << " bin " << bin;
    }
  }
}

TEST(BinCoord, ExactForFloat32ConvertedInputs) {
  // float32 positions are widened to double before binning; edges computed in
  // float land next to, not on, the double edges.
  for (double bin : {0.1, 0.25, 0.3, 1.1, 7.0, 50.0, 62.5, 100.0 / 3.0}) {
    for (std::int64_t b = -3000; b <= 3000; b += 11) {
      const float f = static_cast<float>(static_cast<double>(b) * bin);
      for (float v : {f, std::nextafter(f, -std::numeric_limits<float>::infinity()),
                      std::nextafter(f, std::numeric_limits<float>::infinity())}) {
        EXPECT_TRUE(bin_holds(static_cast<double>(v), bin));
      }
    }
  }
}

TEST(BinCoord, RandomValuesBothSigns) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(-1e6, 1e6);
  for (double bin : {0.1, 0.7, 3.0, 125.0}) {
    for (int i = 0; i < 20000; ++i) {
      double p = u(rng);
      EXPECT_TRUE(bin_holds(p, bin));
      EXPECT_TRUE(bin_holds(static_cast<double>(static_cast<float>(p)), bin));
    }
  }
}

TEST(BinCoord, KnownRoundingCases) {
  // 0.3 / 0.1 == 2.9999999999999996 and 3 * 0.1 == 0.30000000000000004 > 0.3:
  // 0.3 lies in bin 2 under double arithmetic.
  EXPECT_EQ(zvf::bin_coord(0.3, 0.1), 2);
  EXPECT_EQ(zvf::bin_coord(3 * 0.1, 0.1), 3);
  EXPECT_EQ(zvf::bin_coord(-0.3, 0.1), -3);
  EXPECT_EQ(zvf::bin_coord(-3 * 0.1, 0.1), -3);
  EXPECT_EQ(zvf::bin_coord(std::nextafter(-3 * 0.1, -kInf), 0.1), -4);
}

// ---- Grid::make -------------------------------------------------------------

TEST(GridMake, BinsPerChunk) {
  Grid g = Grid::make({100, 200, 300}, {50, 100, 100}, 3);
  EXPECT_EQ(g.ndim(), 3u);
  EXPECT_EQ(g.bins_per_chunk, (std::vector<std::int64_t>{2, 2, 3}));
  EXPECT_EQ(g.bins_per_chunk_total(), 12);
  EXPECT_EQ(g.chunk_shape, (std::vector<double>{100, 200, 300}));
  EXPECT_EQ(g.bin_shape, (std::vector<double>{50, 100, 100}));

  Grid g4 = Grid::make({8, 8, 8, 8}, {1, 2, 4, 8}, 4);
  EXPECT_EQ(g4.bins_per_chunk, (std::vector<std::int64_t>{8, 4, 2, 1}));
  EXPECT_EQ(g4.bins_per_chunk_total(), 64);

  // Ratios that are whole only up to rounding are accepted.
  Grid gr = Grid::make({0.3, 0.7}, {0.1, 0.35}, 2);
  EXPECT_EQ(gr.bins_per_chunk, (std::vector<std::int64_t>{3, 2}));
}

TEST(GridMake, DefaultBinIsChunk) {
  Grid g = Grid::make({250, 125}, {}, 2);
  EXPECT_EQ(g.bin_shape, (std::vector<double>{250, 125}));
  EXPECT_EQ(g.bins_per_chunk, (std::vector<std::int64_t>{1, 1}));
  EXPECT_EQ(g.bins_per_chunk_total(), 1);
}

TEST(GridMake, ChunkBoundsAgreeWithBinCoord) {
  Grid g = Grid::make({0.3, 100}, {0.1, 25}, 2);
  EXPECT_EQ(g.chunk_lo(-1, 1), -100.0);
  EXPECT_EQ(g.chunk_hi(-1, 1), 0.0);
  EXPECT_EQ(g.chunk_lo(2, 1), 200.0);
  for (std::int64_t c = -50; c <= 50; ++c) {
    const double lo = g.chunk_lo(c, 0);
    EXPECT_EQ(g.chunk_hi(c - 1, 0), lo);
    // The lower corner belongs to chunk c, the value just below it to chunk c-1.
    EXPECT_EQ(zvf::floor_div(zvf::bin_coord(lo, 0.1), 3), c) << std::hexfloat << lo;
    EXPECT_EQ(zvf::floor_div(zvf::bin_coord(std::nextafter(lo, -kInf), 0.1), 3), c - 1);
  }
}

TEST(GridMake, WrongChunkLength) {
  expect_error([] { Grid::make({100, 100}, {}, 3); }, Error::Code::InvalidArgument, {"(100, 100)", "3"});
  expect_error([] { Grid::make({100, 100, 100, 100}, {}, 3); }, Error::Code::InvalidArgument,
               {"(100, 100, 100, 100)"});
}

TEST(GridMake, WrongBinLength) {
  expect_error([] { Grid::make({100, 100, 100}, {50, 50}, 3); }, Error::Code::InvalidArgument, {"(50, 50)"});
}

TEST(GridMake, ZeroNegativeNanInfChunk) {
  expect_error([] { Grid::make({0, 100, 100}, {}, 3); }, Error::Code::InvalidArgument, {"(0, 100, 100)"});
  expect_error([] { Grid::make({100, -5, 100}, {}, 3); }, Error::Code::InvalidArgument, {"-5"});
  expect_error([] { Grid::make({100, 100, std::nan("")}, {}, 3); }, Error::Code::InvalidArgument, {"nan"});
  expect_error([] { Grid::make({100, kInf}, {}, 2); }, Error::Code::InvalidArgument, {"inf"});
}

TEST(GridMake, ZeroNegativeNanBin) {
  expect_error([] { Grid::make({100, 100}, {0, 50}, 2); }, Error::Code::InvalidArgument, {"(0, 50)"});
  expect_error([] { Grid::make({100, 100}, {50, -50}, 2); }, Error::Code::InvalidArgument, {"-50"});
  expect_error([] { Grid::make({100, 100}, {std::nan(""), 50}, 2); }, Error::Code::InvalidArgument, {"nan"});
}

TEST(GridMake, BinMustDivideChunk) {
  expect_error([] { Grid::make({250, 250, 250}, {100, 100, 100}, 3); }, Error::Code::InvalidArgument,
               {"(100, 100, 100)", "(250, 250, 250)", "2.5"});
  // Bin larger than chunk: ratio 0.5.
  expect_error([] { Grid::make({100, 100}, {100, 200}, 2); }, Error::Code::InvalidArgument, {"(100, 200)", "axis 1"});
  // Nearly but not exactly whole.
  expect_error([] { Grid::make({100, 100}, {100, 100.0 / 3.0001}, 2); }, Error::Code::InvalidArgument, {"axis 1"});
}

// Found by fuzzing (docs/fuzzing.md): store metadata with chunk/bin = 3e165 cast
// the ratio to int64 (undefined), and large per-axis counts overflowed their product.
TEST(GridMake, RatiosAndBinCountsBeyondWhatAFragmentIndexCountsAreRefused) {
  EXPECT_EQ(zvf::whole_ratio(1e300, 1e-300), 0);
  EXPECT_EQ(zvf::whole_ratio(0x1p53, 1), std::int64_t{1} << 53);
  expect_error([] { Grid::make({1e300, 1}, {1e135, 1}, 2); }, Error::Code::InvalidArgument, {"axis 0"});
  expect_error([] { Grid::make({0x1p40, 0x1p40}, {1, 1}, 2); }, Error::Code::InvalidArgument, {"2^32 bins"});
  EXPECT_EQ(Grid::make({0x1p16, 0x1p16}, {1, 1}, 2).bins_per_chunk_total(), std::int64_t{1} << 32);
}

TEST(GridMake, DimensionCount) {
  expect_error([] { Grid::make({100}, {}, 1); }, Error::Code::InvalidArgument, {"got 1"});
  expect_error([] { Grid::make({1, 1, 1, 1, 1}, {}, 5); }, Error::Code::InvalidArgument, {"got 5"});
  expect_error([] { Grid::make({}, {}, 0); }, Error::Code::InvalidArgument, {"got 0"});
  EXPECT_NO_THROW(Grid::make({1, 1}, {}, 2));
  EXPECT_NO_THROW(Grid::make({1, 1, 1, 1}, {}, 4));
}

// ---- keys -------------------------------------------------------------------

TEST(DottedKey, Format) {
  EXPECT_EQ(zvf::dotted_key(ChunkCoord{-1, 0, 2}), "-1.0.2");
  EXPECT_EQ(zvf::dotted_key(ChunkCoord{0, 0}), "0.0");
  EXPECT_EQ(zvf::dotted_key(ChunkCoord{12, -345, 6789, -1}), "12.-345.6789.-1");
  EXPECT_EQ(zvf::dotted_key(ChunkCoord{std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max()}),
            "-9223372036854775808.9223372036854775807");
}

TEST(DottedKey, RoundTrip) {
  std::mt19937_64 rng(3);
  std::vector<ChunkCoord> cases = {{0, 0}, {-1, 0, 2}, {-7, -8, -9, -10}, {1, 2, 3, 4},
                                   {std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max()}};
  for (int i = 0; i < 200; ++i) {
    ChunkCoord c(2 + i % 3);
    for (auto& x : c) x = static_cast<std::int64_t>(rng()) >> (rng() % 63);
    cases.push_back(c);
  }
  for (const auto& c : cases) {
    const std::string k = zvf::dotted_key(c);
    EXPECT_EQ(zvf::parse_dotted_key(k, c.size()), c) << k;
  }
}

TEST(DottedKey, ParseErrorsAreCorruptAndNameTheKey) {
  const std::vector<std::pair<std::string, std::size_t>> bad = {
      {"", 2},        {"1", 2},        {"1.2.3", 2},   {"1.2", 3},    {"1..2", 2},  {"1.2.", 2},
      {".1.2", 2},    {"a.b", 2},      {"1.2x", 2},    {" 1.2", 2},   {"1.2 ", 2},  {"+1.2", 2},
      {"1,2", 2},     {"1.-", 2},      {"-.1", 2},     {"1e3.2", 2},  {"0x1.2", 2}, {"1/2", 2},
      {"99999999999999999999.1", 2},   {"1.-9223372036854775809", 2},
  };
  for (const auto& [key, nd] : bad) {
    SCOPED_TRACE("key '" + key + "' ndim " + std::to_string(nd));
    expect_error([&] { zvf::parse_dotted_key(key, nd); }, Error::Code::Corrupt, {"'" + key + "'"});
  }
}

TEST(CellKey, RelativeToOrigin) {
  EXPECT_EQ(zvf::cell_key(ChunkCoord{-1, 0, 2}, ChunkCoord{-1, -1, 0}), "c/0/1/2");
  EXPECT_EQ(zvf::cell_key(ChunkCoord{3, 4}, ChunkCoord{0, 0}), "c/3/4");
  EXPECT_EQ(zvf::cell_key(ChunkCoord{-5, -5, -5, 7}, ChunkCoord{-10, -5, -6, 0}), "c/5/0/1/7");
  EXPECT_EQ(zvf::cell_key(ChunkCoord{10, 20, 30}, ChunkCoord{10, 20, 30}), "c/0/0/0");
}
