// Chunk-shape planner: planned sizes land in the band and match real clouds,
// bins divide chunks, partition ranges are whole chunk layers (a partitioned
// write stages nothing), extremes warn, bad input is refused.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "test_support.hpp"
#include "zvf/grid.hpp"
#include "zvf/plan.hpp"
#include "zvf/points.hpp"

using zvf::testing::expect_error;

namespace {

zvf::PlanRequest request(std::uint64_t n, double extent, std::size_t nd = 3) {
  zvf::PlanRequest r;
  r.point_count = n;
  r.bounds = {std::vector<double>(nd, 0.0), std::vector<double>(nd, extent)};
  r.attributes = {{"intensity", zvf::DType::F32, 1}};
  return r;
}

bool has_text(const std::vector<std::string>& lines, const std::string& needle) {
  return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) { return l.find(needle) != std::string::npos; });
}

// A nice edge is m * 10^e with m in {1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8}.
bool is_nice(double v) {
  const double e = std::floor(std::log10(v));
  const double m = v / std::pow(10.0, e);
  for (double n : {1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0})
    if (std::abs(m - n) < 1e-9) return true;
  return false;
}

struct Cloud {
  std::vector<float> xyz;
  std::size_t n() const { return xyz.size() / 3; }
};

Cloud uniform_cloud(std::size_t n, double lo, double hi, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(static_cast<float>(lo), static_cast<float>(hi));
  Cloud c;
  c.xyz.resize(n * 3);
  for (auto& v : c.xyz) v = u(rng);
  return c;
}

// Points per non-empty chunk of a real cloud under a planned grid.
double mean_points_per_chunk(const Cloud& c, const zvf::ChunkPlan& p) {
  zvf::Grid g = zvf::Grid::make(p.chunk_shape, p.bin_shape, 3);
  std::map<std::vector<std::int64_t>, std::size_t> counts;
  for (std::size_t i = 0; i < c.n(); ++i) {
    std::vector<std::int64_t> key(3);
    for (std::size_t d = 0; d < 3; ++d)
      key[d] = zvf::floor_div(zvf::bin_coord(c.xyz[i * 3 + d], g.bin_shape[d]), g.bins_per_chunk[d]);
    ++counts[key];
  }
  return static_cast<double>(c.n()) / static_cast<double>(counts.size());
}

}  // namespace

TEST(Plan, UniformCloudLandsInTheBand) {
  // The guide's case: 10^9 points in a 10 000^3 box gives an ideal edge of about 585.
  auto p = zvf::plan_chunks(request(1'000'000'000, 10'000));
  EXPECT_TRUE(p.in_band);
  EXPECT_GE(p.bytes_per_chunk, 1e6);
  EXPECT_LE(p.bytes_per_chunk, 4e6);
  ASSERT_EQ(p.chunk_shape.size(), 3u);
  EXPECT_TRUE(p.chunk_shape[0] == 500 || p.chunk_shape[0] == 600) << p.chunk_shape[0];
  EXPECT_EQ(p.chunk_shape[0], p.chunk_shape[1]);
  EXPECT_EQ(p.chunk_shape[0], p.chunk_shape[2]);
  EXPECT_EQ(p.bin_shape[0] * 4, p.chunk_shape[0]);
  // Positions dominate: 12 bytes per point plus the 8-byte cell header.
  EXPECT_NEAR(p.bytes_per_chunk, 8 + 12 * p.points_per_chunk, 1e-6);
  EXPECT_EQ(p.arrays[0].cell_dir, "0/vertices/c");
  EXPECT_EQ(p.arrays[2].cell_dir, "0/vertex_attributes/intensity/c");
  EXPECT_NEAR(p.arrays[2].mean_bytes, 8 + 4 * p.points_per_chunk, 1e-6);
  EXPECT_EQ(p.grid_shape[0] * p.grid_shape[1] * p.grid_shape[2], static_cast<std::int64_t>(p.chunk_count));
  EXPECT_TRUE(p.warnings.empty()) << p.warnings.front();
  EXPECT_TRUE(has_text(p.notes, "uniformly"));
}

TEST(Plan, PredictionMatchesARealCloud) {
  // 10^6 uniform points: the plan's points per non-empty chunk (edge chunks
  // included) must match what binning the cloud gives.
  for (double extent : {1000.0, 777.0}) {
    Cloud c = uniform_cloud(1'000'000, 0, extent, 7);
    auto r = request(c.n(), extent);
    auto p = zvf::plan_chunks(r);
    const double real = mean_points_per_chunk(c, p);
    EXPECT_NEAR(real / p.points_per_chunk, 1.0, 0.05) << "extent " << extent << " chunk " << p.chunk_shape[0];
    const double real_bytes = 8 + 12 * real;
    EXPECT_GE(real_bytes, 1e6) << "extent " << extent;
    EXPECT_LE(real_bytes, 4e6) << "extent " << extent;
  }
}

TEST(Plan, BinDividesChunkAndShapesAreNice) {
  for (std::uint64_t n : {1'000ull, 123'456ull, 50'000'000ull, 7'000'000'000ull}) {
    for (double extent : {0.5, 3.0, 1234.5, 1e6}) {
      for (std::int64_t bins : {1, 2, 3, 4, 8}) {
        auto r = request(n, extent);
        r.bins_per_axis = bins;
        auto p = zvf::plan_chunks(r);
        zvf::Grid g = zvf::Grid::make(p.chunk_shape, p.bin_shape, 3);  // throws if bin does not divide
        for (std::size_t d = 0; d < 3; ++d) {
          EXPECT_EQ(g.bins_per_chunk[d], bins);
          EXPECT_TRUE(is_nice(p.chunk_shape[d])) << p.chunk_shape[d];
        }
      }
    }
  }
}

TEST(Plan, PartitionRangesAreWholeChunkLayersCoveringTheBounds) {
  auto r = request(1'000'000'000, 10'000);
  r.bounds.lo[2] = -1234.5;  // an axis that does not start at a chunk edge
  r.partitions = 7;
  auto p = zvf::plan_chunks(r);
  ASSERT_TRUE(p.partitions_aligned);
  ASSERT_EQ(p.partitions.size(), 7u);
  EXPECT_EQ(p.partition_axis, 2u);
  zvf::Grid g = zvf::Grid::make(p.chunk_shape, p.bin_shape, 3);
  EXPECT_LE(p.partitions.front().lo, r.bounds.lo[2]);
  EXPECT_GT(p.partitions.back().hi, r.bounds.hi[2]);
  std::int64_t layers = 0;
  for (std::size_t t = 0; t < p.partitions.size(); ++t) {
    const auto& pr = p.partitions[t];
    EXPECT_LT(pr.lo, pr.hi);
    if (t > 0) {
      EXPECT_EQ(pr.lo, p.partitions[t - 1].hi) << "gap or overlap before task " << t;
    }
    EXPECT_EQ(pr.lo, g.chunk_lo(pr.first_layer, 2)) << "task " << t << " does not start on a chunk edge";
    EXPECT_EQ(pr.hi, g.chunk_lo(pr.first_layer + pr.layer_count, 2));
    EXPECT_GE(pr.layer_count, 1);
    layers += pr.layer_count;
  }
  EXPECT_EQ(layers, p.grid_shape[2]);
  EXPECT_EQ(p.partitions.front().first_layer, p.grid_origin[2]);
}

TEST(Plan, PlannedPartitionsStageNoChunk) {
  // Write a real cloud as the planned slabs: aligned ranges put every chunk
  // wholly inside one partition, so nothing is staged.
  Cloud c = uniform_cloud(400'000, 0, 100, 11);
  auto r = request(c.n(), 100);
  r.attributes.clear();
  r.min_bytes = 1e5;  // a smaller band so that a small cloud has many chunks
  r.max_bytes = 4e5;
  r.partitions = 3;
  auto p = zvf::plan_chunks(r);
  ASSERT_TRUE(p.partitions_aligned);
  zvf::MemoryStore store;
  zvf::Layout layout{p.chunk_shape, p.bin_shape, {}};
  std::uint64_t written = 0;
  for (const auto& pr : p.partitions) {
    std::vector<float> slab;
    for (std::size_t i = 0; i < c.n(); ++i)
      if (c.xyz[i * 3 + 2] >= pr.lo && c.xyz[i * 3 + 2] < pr.hi) slab.insert(slab.end(), &c.xyz[i * 3], &c.xyz[i * 3 + 3]);
    zvf::ArrayView view{slab.data(), zvf::DType::F32, slab.size() / 3, 3, false};
    zvf::Box range = zvf::Box::unbounded(3);
    range.lo[2] = pr.lo;
    range.hi[2] = pr.hi;
    auto s = zvf::write_points_partition(store, view, {}, layout, range);
    EXPECT_EQ(s.chunks_staged, 0u) << "slab [" << pr.lo << ", " << pr.hi << ")";
    written += s.vertex_count;
  }
  EXPECT_EQ(written, c.n());
  auto report = zvf::finalise(store);
  EXPECT_EQ(report.vertex_count, c.n());
  const double real_mean = 8 + 12 * static_cast<double>(c.n()) / static_cast<double>(report.chunk_count);
  EXPECT_GE(real_mean, r.min_bytes);
  EXPECT_LE(real_mean, r.max_bytes);
}

TEST(Plan, TooFewLayersForThePartitionsWarnsAndStillCovers) {
  auto r = request(1'000'000'000, 10'000);
  r.partitions = 64;
  r.partition_axis = 0;
  auto p = zvf::plan_chunks(r);
  EXPECT_FALSE(p.partitions_aligned);
  EXPECT_TRUE(has_text(p.warnings, "chunk layer(s) along x for 64 partitions")) << testing::PrintToString(p.warnings);
  ASSERT_EQ(p.partitions.size(), 64u);
  for (std::size_t t = 1; t < p.partitions.size(); ++t) EXPECT_EQ(p.partitions[t].lo, p.partitions[t - 1].hi);
  EXPECT_LE(p.partitions.front().lo, 0);
  EXPECT_GT(p.partitions.back().hi, 10'000);
}

TEST(Plan, PartitionsPreferEnoughLayers) {
  // 20 slabs along z of the guide's box: an in-band edge with >= 20 layers exists (500).
  auto r = request(1'000'000'000, 10'000);
  r.partitions = 20;
  auto p = zvf::plan_chunks(r);
  EXPECT_TRUE(p.in_band);
  EXPECT_TRUE(p.partitions_aligned);
  // 500: 20 layers of data, plus a 21st that only points at exactly z = 10 000
  // reach; the last task takes it so the ranges cover the inclusive bounds.
  EXPECT_EQ(p.chunk_shape[2], 500);
  EXPECT_EQ(p.grid_shape[2], 21);
  for (std::size_t t = 0; t + 1 < p.partitions.size(); ++t) EXPECT_EQ(p.partitions[t].layer_count, 1);
  EXPECT_EQ(p.partitions.back().layer_count, 2);
  EXPECT_EQ(p.partitions.back().hi, 10'500);
  EXPECT_TRUE(has_text(p.notes, "the last partition also owns the chunk layer from z = 10000"))
      << testing::PrintToString(p.notes);
  EXPECT_FALSE(has_text(p.notes, "chunk layers each")) << testing::PrintToString(p.notes);  // balanced
}

TEST(Plan, SparseExtremeWarns) {
  auto p = zvf::plan_chunks(request(1000, 1e6));
  EXPECT_FALSE(p.in_band);
  EXPECT_TRUE(has_text(p.warnings, "too small for the band")) << testing::PrintToString(p.warnings);
  EXPECT_NEAR(p.nonempty_chunks, 1, 1e-9);
  EXPECT_NEAR(p.points_per_chunk, 1000, 1e-6);
  // A little more data: in-band chunks exist but only a handful of them.
  auto q = zvf::plan_chunks(request(300'000, 1e6));
  EXPECT_TRUE(q.in_band);
  EXPECT_TRUE(has_text(q.warnings, "non-empty chunks: too few")) << testing::PrintToString(q.warnings);
}

TEST(Plan, DenseExtremeWarnsAboutFilesAndDirectories) {
  auto cube = zvf::plan_chunks(request(100'000'000'000'000ull, 1.0));
  EXPECT_TRUE(cube.in_band);
  EXPECT_LT(cube.chunk_shape[0], 0.01);
  EXPECT_TRUE(has_text(cube.warnings, "inode quota")) << testing::PrintToString(cube.warnings);
  zvf::Grid::make(cube.chunk_shape, cube.bin_shape, 3);
  // A long thin box: more than 10 000 chunks along x, so one directory grows too large.
  auto r = request(100'000'000'000ull, 1.0);
  r.bounds.hi[0] = 1e5;
  auto p = zvf::plan_chunks(r);
  EXPECT_TRUE(p.in_band);
  EXPECT_GT(p.max_dir_entries, zvf::kPlanMaxDirEntries);
  EXPECT_TRUE(has_text(p.warnings, "entries in one cell directory")) << testing::PrintToString(p.warnings);
  EXPECT_TRUE(has_text(p.warnings, "inode quota")) << testing::PrintToString(p.warnings);
}

TEST(Plan, OccupancyDegenerateAxesAndTwoD) {
  auto full = zvf::plan_chunks(request(1'000'000'000, 10'000));
  auto r = request(1'000'000'000, 10'000);
  r.occupancy = 0.1;  // denser where there are points: smaller chunks
  auto sparse_box = zvf::plan_chunks(r);
  EXPECT_TRUE(sparse_box.in_band);
  EXPECT_LT(sparse_box.chunk_shape[0], full.chunk_shape[0]);

  auto flat = request(50'000'000, 10'000);
  flat.bounds.lo[2] = flat.bounds.hi[2] = 5;  // every point at z = 5
  auto pf = zvf::plan_chunks(flat);
  EXPECT_TRUE(pf.in_band);
  EXPECT_EQ(pf.grid_shape[2], 1);

  auto two = zvf::plan_chunks(request(10'000'000, 1000, 2));
  EXPECT_EQ(two.chunk_shape.size(), 2u);
  EXPECT_EQ(two.partition_axis, 1u);
  EXPECT_TRUE(two.in_band);
  EXPECT_EQ(two.bins_per_chunk, (std::vector<std::int64_t>{4, 4}));
}

TEST(Plan, WideAttributesAndCompressionAssumption) {
  auto r = request(1'000'000'000, 10'000);
  r.attributes.push_back({"normals", zvf::DType::F64, 3});  // 24 bytes per point: the largest file
  auto p = zvf::plan_chunks(r);
  EXPECT_TRUE(p.in_band);
  EXPECT_NEAR(p.bytes_per_chunk, 8 + 24 * p.points_per_chunk, 1e-6);

  auto z = request(1'000'000'000, 10'000);
  z.codec = zvf::CodecSpec::from_name("zstd");
  auto pz = zvf::plan_chunks(z);
  EXPECT_TRUE(has_text(pz.notes, "upper bound")) << testing::PrintToString(pz.notes);
  z.compression_ratio = 2;
  auto p2 = zvf::plan_chunks(z);
  EXPECT_TRUE(p2.in_band);
  EXPECT_NEAR(p2.bytes_per_chunk, (8 + 12 * p2.points_per_chunk) / 2, 1e-6);
  EXPECT_GT(p2.points_per_chunk, pz.points_per_chunk);
  EXPECT_EQ(p2.codec, "zstd");
}

TEST(Plan, StripeSize) {
  EXPECT_EQ(zvf::stripe_size_for(1000), 1u << 20);
  EXPECT_EQ(zvf::stripe_size_for(1u << 20), 1u << 20);
  EXPECT_EQ(zvf::stripe_size_for(1.5e6), 2u << 20);
  EXPECT_EQ(zvf::stripe_size_for(2.4e6), 4u << 20);
  EXPECT_EQ(zvf::stripe_size_for(5e7), 4u << 20);
}

TEST(Plan, BadInputIsRefusedWithClearErrors) {
  using C = zvf::Error::Code;
  auto bad = [](auto edit, std::vector<std::string> needles) {
    auto r = request(1000, 10);
    edit(r);
    expect_error([&] { zvf::plan_chunks(r); }, C::InvalidArgument, needles);
  };
  bad([](auto& r) { r.point_count = 0; }, {"point count", "> 0"});
  bad([](auto& r) { r.bounds.lo[1] = std::nan(""); }, {"finite", "axis y"});
  bad([](auto& r) { r.bounds.hi[2] = INFINITY; }, {"finite"});
  bad([](auto& r) { r.bounds.lo[0] = 20; }, {"inverted", "axis x", "lo 20 > hi 10"});
  bad([](auto& r) { r.bounds = {{0}, {1}}; }, {"2 to 4"});
  bad([](auto& r) { r.bounds.hi.pop_back(); }, {"2 to 4"});
  bad([](auto& r) { r.positions_dtype = zvf::DType::I32; }, {"float32 or float64", "int32"});
  bad([](auto& r) { r.attributes.push_back({"../x", zvf::DType::F32, 1}); }, {"'../x'"});
  bad([](auto& r) { r.attributes.push_back({"intensity", zvf::DType::U8, 1}); }, {"'intensity' is given twice"});
  bad([](auto& r) { r.attributes[0].components = 0; }, {"0 components"});
  bad([](auto& r) { r.occupancy = 0; }, {"occupancy 0", "(0, 1]"});
  bad([](auto& r) { r.occupancy = 1.5; }, {"occupancy 1.5"});
  bad([](auto& r) { r.min_bytes = 4e6; }, {"not a band", "min < max"});
  bad([](auto& r) { r.max_bytes = -1; }, {"not a band"});
  bad([](auto& r) { r.min_bytes = std::nan(""); }, {"not a band"});
  bad([](auto& r) { r.target_bytes = 5e6; }, {"target", "outside the band"});
  bad([](auto& r) { r.compression_ratio = 2; }, {"without a compressor"});
  bad([](auto& r) { r.codec = zvf::CodecSpec::from_name("zstd"), r.compression_ratio = 0.5; }, {"compression ratio 0.5", ">= 1"});
  bad([](auto& r) { r.partitions = 0; }, {"partitions", "got 0"});
  bad([](auto& r) { r.partition_axis = 3; }, {"partition axis 3", "0..2"});
  bad([](auto& r) { r.bins_per_axis = 0; }, {"bins per axis", "got 0"});
  bad([](auto& r) { r.bins_per_axis = 100; }, {"got 100"});
  expect_error([] { zvf::dtype_from_name("complex64"); }, C::InvalidArgument, {"complex64", "float32", "float16", "bool"});
}
