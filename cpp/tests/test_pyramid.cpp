// Pyramids (zvf/pyramid.hpp) on MemoryStore: a 2-D case small enough to compute
// by hand (metavertex means, counts, float means, integer mode / mean / min / max /
// first), automatic chunk growth, re-runs that write nothing, overwrite, bad
// factors and the level-of-detail helper select_level.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "test_support.hpp"
#include "zvf/error.hpp"
#include "zvf/points.hpp"
#include "zvf/pyramid.hpp"
#include "zvf/store.hpp"
#include "zvf/types.hpp"

using zvf::ArrayView;
using zvf::Box;
using zvf::Bytes;
using zvf::DType;
using zvf::Error;
using zvf::MemoryStore;
using zvf::PyramidLevelSpec;
using zvf::PyramidOptions;
using zvf::Reduction;

namespace {

const zvf::Exec kExec{2, {}};

using zvf::testing::expect_error;

// The hand-computed cloud: chunk 4 x 4, bin 1 x 1; level 1 has bins 2 x 2.
//
//   bin A [0,2)x[0,2):  (1.75,0.5) w=1 l=3 | (0.25,0.5) w=2 l=6 | (1.0,1.25) w=6 l=3
//                       mean (1, 0.75), count 3, w 3, mode 3, first 6 (bin (0,0) is
//                       stored before bins (1,0) and (1,1)), mean 4, min 3, max 6
//   bin B [2,4)x[0,2):  (3,1) w=7 l=9
//   bin C [-2,0)x[2,4): (-1.5,2.5) w=-1 l=4 | (-0.5,3.5) w=-2 l=2
//                       mean (-1, 3), count 2, w -1.5, mode 2 (tie: smallest), first 4,
//                       mean 3, min 2, max 4
//   bin D [4,6)x[4,6):  (5.5,5.5) w=0.5 l=2 | (5.5,4.5) w=0.5 l=1 | (4.5,5.5) w=0.5 l=2 |
//                       (4.5,4.5) w=2.5 l=3
//                       mean (5, 5), count 4, w 1, mode 2, first 3 (bin (4,4) is stored
//                       first), mean 2, min 1, max 3
struct Pt {
  float x, y, w;
  std::int32_t label;
};
const std::vector<Pt> kPoints = {
    {1.75f, 0.5f, 1.0f, 3}, {0.25f, 0.5f, 2.0f, 6}, {1.0f, 1.25f, 6.0f, 3},  {3.0f, 1.0f, 7.0f, 9},
    {-1.5f, 2.5f, -1.0f, 4}, {-0.5f, 3.5f, -2.0f, 2}, {5.5f, 5.5f, 0.5f, 2}, {5.5f, 4.5f, 0.5f, 1},
    {4.5f, 5.5f, 0.5f, 2},   {4.5f, 4.5f, 2.5f, 3},
};

void write_cloud(MemoryStore& store, const std::string& label_name = "label") {
  std::vector<float> pos, w;
  std::vector<std::int32_t> label;
  for (const auto& p : kPoints) {
    pos.push_back(p.x);
    pos.push_back(p.y);
    w.push_back(p.w);
    label.push_back(p.label);
  }
  const std::size_t n = kPoints.size();
  zvf::Layout layout;
  layout.chunk_shape = {4.0, 4.0};
  layout.bin_shape = {1.0, 1.0};
  zvf::write_points(store, ArrayView{pos.data(), DType::F32, n, 2, false},
                    {{"w", ArrayView{w.data(), DType::F32, n, 1, true}},
                     {label_name, ArrayView{label.data(), DType::I32, n, 1, true}}},
                    layout, std::nullopt, kExec);
}

PyramidOptions factors(std::vector<double> coarsen) {
  PyramidOptions o;
  for (double c : coarsen) o.levels.push_back(PyramidLevelSpec{c, 1.0, {}});
  return o;
}

// One metavertex as read back: position, count, w, label.
struct Meta {
  float x, y;
  std::uint64_t count;
  float w;
  std::int32_t label;
};

template <class T>
T at(const zvf::OwnedArray& a, std::size_t i) {
  T v;
  std::memcpy(&v, a.data.data() + i * sizeof(T), sizeof(T));
  return v;
}

const zvf::OwnedArray& attr(const zvf::PointCloud& pc, const std::string& name) {
  for (const auto& [n, a] : pc.attributes)
    if (n == name) return a;
  throw std::runtime_error("attribute " + name + " not read");
}

// Metavertices of a level keyed by position.
std::map<std::pair<float, float>, Meta> read_level(const MemoryStore& store, int level) {
  zvf::ReadOptions ro;
  ro.level = level;
  zvf::PointCloud pc = zvf::read_points(store, ro, kExec);
  EXPECT_EQ(pc.positions.dtype, DType::F32);
  const auto& count = attr(pc, "count");
  const auto& w = attr(pc, "w");
  const auto& label = attr(pc, "label");
  EXPECT_EQ(count.dtype, DType::U64);
  EXPECT_EQ(w.dtype, DType::F32);
  EXPECT_EQ(label.dtype, DType::I32);
  std::map<std::pair<float, float>, Meta> out;
  for (std::size_t i = 0; i < pc.positions.rows; ++i) {
    Meta m{at<float>(pc.positions, 2 * i), at<float>(pc.positions, 2 * i + 1), at<std::uint64_t>(count, i),
           at<float>(w, i), at<std::int32_t>(label, i)};
    EXPECT_TRUE(out.emplace(std::make_pair(m.x, m.y), m).second) << "two metavertices at " << m.x << "," << m.y;
  }
  return out;
}

std::map<std::string, Bytes> snapshot(const MemoryStore& store) {
  std::map<std::string, Bytes> out;
  for (const auto& k : store.list("")) out[k] = *store.get(k);
  return out;
}

nlohmann::json json_at(const MemoryStore& store, const std::string& key) {
  auto b = store.get(key);
  if (!b) return nullptr;
  return nlohmann::json::parse(std::string(b->begin(), b->end()));
}

void expect_meta(const std::map<std::pair<float, float>, Meta>& lv, float x, float y, std::uint64_t count, float w,
                 std::int32_t label) {
  auto it = lv.find({x, y});
  ASSERT_NE(it, lv.end()) << "no metavertex at (" << x << ", " << y << ")";
  EXPECT_EQ(it->second.count, count) << "count at (" << x << ", " << y << ")";
  EXPECT_FLOAT_EQ(it->second.w, w) << "w at (" << x << ", " << y << ")";
  EXPECT_EQ(it->second.label, label) << "label at (" << x << ", " << y << ")";
}

TEST(Pyramid, ExactMeansCountsAndModesIn2D) {
  MemoryStore store;
  write_cloud(store);
  auto report = zvf::build_pyramid(store, factors({2.0, 2.0}), kExec);
  EXPECT_TRUE(report.changed);
  EXPECT_TRUE(report.complete);
  ASSERT_EQ(report.levels.size(), 2u);
  EXPECT_EQ(report.levels[0].vertex_count, 4u);
  EXPECT_EQ(report.levels[1].vertex_count, 3u);
  EXPECT_EQ(report.levels[0].bin_shape, (std::vector<double>{2.0, 2.0}));
  EXPECT_EQ(report.levels[1].bin_shape, (std::vector<double>{4.0, 4.0}));

  auto l1 = read_level(store, 1);
  EXPECT_EQ(l1.size(), 4u);
  expect_meta(l1, 1.0f, 0.75f, 3, 3.0f, 3);    // A
  expect_meta(l1, 3.0f, 1.0f, 1, 7.0f, 9);     // B
  expect_meta(l1, -1.0f, 3.0f, 2, -1.5f, 2);   // C: tie 4/2 -> smallest
  expect_meta(l1, 5.0f, 5.0f, 4, 1.0f, 2);     // D

  // Level 2 (bin 4) is computed from level 0: A+B weighted by their points.
  auto l2 = read_level(store, 2);
  EXPECT_EQ(l2.size(), 3u);
  expect_meta(l2, 1.5f, 0.8125f, 4, 4.0f, 3);  // labels 3,6,3,9
  expect_meta(l2, -1.0f, 3.0f, 2, -1.5f, 2);
  expect_meta(l2, 5.0f, 5.0f, 4, 1.0f, 2);

  auto info = zvf::store_info(store);
  ASSERT_EQ(info.levels.size(), 3u);
  EXPECT_EQ(info.levels[1].vertex_count, 4u);
  EXPECT_EQ(info.levels[2].vertex_count, 3u);
  auto lj = json_at(store, "2/zarr.json");
  ASSERT_FALSE(lj.is_null());
  EXPECT_EQ(lj["attributes"]["zarr_vectors_level"]["vertex_count"], 3);
  EXPECT_EQ(lj["attributes"]["zarr_vectors_level"]["parent_level"], 1);
  auto root = json_at(store, "zarr.json");
  const auto& ds = root["attributes"]["multiscales"][0]["datasets"];
  ASSERT_EQ(ds.size(), 3u);
  EXPECT_EQ(ds[2]["coordinateTransformations"][0]["scale"], nlohmann::json({4.0, 4.0}));
  EXPECT_EQ(ds[2]["coordinateTransformations"][1]["translation"], nlohmann::json({2.0, 2.0}));
}

TEST(Pyramid, IntegerReductionsByChoice) {
  // label at level 1 for bins A, B, C, D.
  const std::vector<std::tuple<Reduction, std::int32_t, std::int32_t, std::int32_t, std::int32_t>> cases = {
      {Reduction::Mean, 4, 9, 3, 2},  // 12/3, 9, 6/2, 8/4
      {Reduction::Min, 3, 9, 2, 1},
      {Reduction::Max, 6, 9, 4, 3},
      {Reduction::First, 6, 9, 4, 3},  // first in storage order (bin order), not input order
      {Reduction::Mode, 3, 9, 2, 2},
  };
  for (const auto& [r, a, b, c, d] : cases) {
    SCOPED_TRACE(zvf::reduction_name(r));
    MemoryStore store;
    write_cloud(store);
    auto opt = factors({2.0});
    opt.reductions["label"] = r;
    zvf::build_pyramid(store, opt, kExec);
    auto l1 = read_level(store, 1);
    expect_meta(l1, 1.0f, 0.75f, 3, 3.0f, a);
    expect_meta(l1, 3.0f, 1.0f, 1, 7.0f, b);
    expect_meta(l1, -1.0f, 3.0f, 2, -1.5f, c);
    expect_meta(l1, 5.0f, 5.0f, 4, 1.0f, d);
  }
  EXPECT_EQ(zvf::reduction_from_name("first"), Reduction::First);
  expect_error([] { zvf::reduction_from_name("median"); }, Error::Code::InvalidArgument, {"median", "mode"});
}

TEST(Pyramid, BinOutgrowingChunkGetsLargerChunk) {
  MemoryStore store;
  write_cloud(store);
  auto report = zvf::build_pyramid(store, factors({2.0, 2.0, 2.0}), kExec);
  ASSERT_EQ(report.levels.size(), 3u);
  EXPECT_EQ(report.levels[2].bin_shape, (std::vector<double>{8.0, 8.0}));
  EXPECT_EQ(report.levels[2].chunk_shape, (std::vector<double>{8.0, 8.0}));
  auto info = zvf::store_info(store);
  ASSERT_EQ(info.levels.size(), 4u);
  EXPECT_EQ(info.levels[3].chunk_shape, (std::vector<double>{8.0, 8.0}));
  EXPECT_EQ(json_at(store, "3/zarr.json")["attributes"]["zarr_vectors_level"]["chunk_shape"],
            nlohmann::json({8.0, 8.0}));
  // Level 3 bins: [0,8)^2 holds A, B, D (8 points); [-8,0)x[0,8) holds C.
  auto l3 = read_level(store, 3);
  ASSERT_EQ(l3.size(), 2u);
  std::uint64_t total = 0;
  for (const auto& [k, m] : l3) total += m.count;
  EXPECT_EQ(total, kPoints.size());
  expect_meta(l3, -1.0f, 3.0f, 2, -1.5f, 2);

  // An explicit chunk the bin does not divide is refused before anything is written.
  MemoryStore other;
  write_cloud(other);
  auto before = snapshot(other);
  auto opt = factors({2.0, 2.0, 2.0});
  opt.levels[2].chunk_scale = {1};
  expect_error([&] { zvf::build_pyramid(other, opt, kExec); }, Error::Code::InvalidArgument, {"bin", "chunk"});
  EXPECT_EQ(snapshot(other), before);
}

TEST(Pyramid, RerunWithSameSettingsWritesNothing) {
  MemoryStore store;
  write_cloud(store);
  zvf::build_pyramid(store, factors({2.0, 2.0}), kExec);
  auto before = snapshot(store);
  auto again = zvf::build_pyramid(store, factors({2.0, 2.0}), kExec);
  EXPECT_FALSE(again.changed);
  ASSERT_EQ(again.levels.size(), 2u);
  EXPECT_EQ(again.levels[0].vertex_count, 4u);
  EXPECT_EQ(again.levels[1].vertex_count, 3u);
  auto after = snapshot(store);
  EXPECT_EQ(after.size(), before.size());
  EXPECT_TRUE(after == before) << "a re-run with the same settings modified the store";
}

TEST(Pyramid, OtherSettingsNeedOverwriteWhichReplacesCleanly) {
  MemoryStore store;
  write_cloud(store);
  zvf::build_pyramid(store, factors({2.0, 2.0}), kExec);
  auto before = snapshot(store);
  expect_error([&] { zvf::build_pyramid(store, factors({4.0}), kExec); }, Error::Code::Conflict, {"overwrite"});
  auto reduce = factors({2.0, 2.0});
  reduce.reductions["label"] = Reduction::Max;
  expect_error([&] { zvf::build_pyramid(store, reduce, kExec); }, Error::Code::Conflict, {"overwrite"});
  EXPECT_TRUE(snapshot(store) == before) << "a refused build modified the store";

  auto opt = factors({4.0});
  opt.overwrite = true;
  auto r = zvf::build_pyramid(store, opt, kExec);
  EXPECT_TRUE(r.changed);
  for (const auto& k : store.list("")) EXPECT_NE(k.rfind("2/", 0), 0u) << "left-over key of level 2: " << k;
  auto info = zvf::store_info(store);
  ASSERT_EQ(info.levels.size(), 2u);
  EXPECT_EQ(info.levels[1].bin_shape, (std::vector<double>{4.0, 4.0}));
  EXPECT_EQ(json_at(store, "zarr.json")["attributes"]["multiscales"][0]["datasets"].size(), 2u);
  auto l1 = read_level(store, 1);
  EXPECT_EQ(l1.size(), 3u);
  expect_meta(l1, 1.5f, 0.8125f, 4, 4.0f, 3);

  // The result equals a clean build with the new settings, byte for byte.
  MemoryStore clean;
  write_cloud(clean);
  zvf::build_pyramid(clean, factors({4.0}), kExec);
  EXPECT_TRUE(snapshot(clean) == snapshot(store)) << "overwrite differs from a clean build";
}

TEST(Pyramid, BadFactorsAreRefusedWithoutTrace) {
  MemoryStore store;
  write_cloud(store);
  auto before = snapshot(store);
  expect_error([&] { zvf::build_pyramid(store, factors({0.5}), kExec); }, Error::Code::InvalidArgument, {"below 1"});
  expect_error([&] { zvf::build_pyramid(store, factors({2.0, 0.0}), kExec); }, Error::Code::InvalidArgument,
               {"factors[1]"});
  expect_error([&] { zvf::build_pyramid(store, PyramidOptions{}, kExec); }, Error::Code::InvalidArgument, {"factors"});
  auto sparse = factors({2.0});
  sparse.levels[0].sparsity = 2.0;
  expect_error([&] { zvf::build_pyramid(store, sparse, kExec); }, Error::Code::InvalidArgument, {"sparsity", "object"});
  auto mode_float = factors({2.0});
  mode_float.reductions["w"] = Reduction::Mode;
  expect_error([&] { zvf::build_pyramid(store, mode_float, kExec); }, Error::Code::InvalidArgument, {"mode", "w"});
  auto missing = factors({2.0});
  missing.reductions["nosuch"] = Reduction::Max;
  expect_error([&] { zvf::build_pyramid(store, missing, kExec); }, Error::Code::InvalidArgument, {"nosuch"});
  // Parts: -1 of 0 is "no part"; any other pair must be a real part, without finalise_parts.
  for (auto [index, count] : {std::pair{0, 0}, {-1, 2}, {2, 2}, {0, -3}, {5, 0}}) {
    auto o = factors({2.0});
    o.part_index = index;
    o.part_count = count;
    expect_error([&] { zvf::build_pyramid(store, o, kExec); }, Error::Code::InvalidArgument, {"out of range"});
  }
  auto both = factors({2.0});
  both.part_index = 0;
  both.part_count = 2;
  both.finalise_parts = true;
  expect_error([&] { zvf::build_pyramid(store, both, kExec); }, Error::Code::InvalidArgument, {"finalise_parts"});
  EXPECT_TRUE(snapshot(store) == before) << "a refused build modified the store";

  MemoryStore counted;
  write_cloud(counted, "count");
  expect_error([&] { zvf::build_pyramid(counted, factors({2.0}), kExec); }, Error::Code::Conflict, {"count"});

  MemoryStore empty;
  expect_error([&] { zvf::build_pyramid(empty, factors({2.0}), kExec); }, Error::Code::NotFound);
}

TEST(Pyramid, SelectLevelPicksCoarsestDenseEnough) {
  MemoryStore store;
  write_cloud(store);
  zvf::build_pyramid(store, factors({2.0, 2.0}), kExec);
  const Box all{{-10.0, -10.0}, {10.0, 10.0}};  // 10, 4 and 3 points at levels 0, 1, 2
  EXPECT_EQ(zvf::select_level(store, all, 0, kExec), 2);
  EXPECT_EQ(zvf::select_level(store, all, 3, kExec), 2);
  EXPECT_EQ(zvf::select_level(store, all, 4, kExec), 1);
  EXPECT_EQ(zvf::select_level(store, all, 5, kExec), 0);
  EXPECT_EQ(zvf::select_level(store, all, 11, kExec), 0);
  const Box right{{0.0, 0.0}, {4.0, 2.0}};  // level 0: 4 points, level 1: A and B, level 2: (1.5, 0.8125)
  EXPECT_EQ(zvf::select_level(store, right, 1, kExec), 2);
  EXPECT_EQ(zvf::select_level(store, right, 2, kExec), 1);
  EXPECT_EQ(zvf::select_level(store, right, 3, kExec), 0);
}

// Found by fuzzing (docs/fuzzing.md): a level-0 coordinate that no bin index can
// hold (NaN, 1e30) reached the float -> int64 cast of bin_coord (undefined behaviour).
TEST(Pyramid, CorruptLevel0CoordinateIsCorruptNamingTheCell) {
  for (const float bad : {std::numeric_limits<float>::quiet_NaN(), 1e30f}) {
    SCOPED_TRACE(bad);
    MemoryStore store;
    write_cloud(store);
    const std::string cell = "0/vertices/c/0/0";  // uncompressed: 8-byte vlen header, then x, y per row
    auto bytes = store.get(cell);
    ASSERT_TRUE(bytes.has_value());
    std::memcpy(bytes->data() + 8, &bad, sizeof bad);
    store.set(cell, zvf::ByteSpan(*bytes));
    zvf::testing::expect_error([&] { zvf::build_pyramid(store, factors({2.0}), kExec); }, Error::Code::Corrupt,
                               {cell, "row 0", "axis 0"});
  }
}

}  // namespace

// A vertices cell cut mid-row: the pyramid read it its own way and dropped the
// partial row without a word, where read_points refuses it.
TEST(Pyramid, Level0CellWithPartialRowIsCorruptNamingTheCell) {
  MemoryStore store;
  write_cloud(store);
  const std::string cell = "0/vertices/c/0/0";  // uncompressed: u32 item count, u32 length, then the rows
  auto bytes = store.get(cell);
  ASSERT_TRUE(bytes.has_value());
  std::uint32_t length = 0;
  std::memcpy(&length, bytes->data() + 4, 4);
  length += 4;  // one float more: half an (x, y) row
  std::memcpy(bytes->data() + 4, &length, 4);
  bytes->insert(bytes->end(), {0, 0, 0, 0});
  store.set(cell, zvf::ByteSpan(*bytes));
  zvf::testing::expect_error([&] { zvf::build_pyramid(store, factors({2.0}), kExec); }, Error::Code::Corrupt,
                             {cell, "not a whole number of 8-byte rows"});
}

// Re-finalising withdraws the stale coarse levels from the root's multiscales
// first. A root whose multiscales is not the list finalise wrote (edited by hand,
// or corrupt) made nlohmann throw its own type_error out of finalise; now that
// entry goes whole, and the metadata step writes it again.
TEST(Pyramid, RefinaliseWithdrawsLevelsFromAMalformedMultiscales) {
  const double inf = std::numeric_limits<double>::infinity();
  zvf::Layout layout;
  layout.chunk_shape = {4.0, 4.0};
  layout.bin_shape = {1.0, 1.0};
  auto partition = [&](MemoryStore& store, double lo, double hi) {
    std::vector<float> pos;
    for (const auto& p : kPoints)
      if (p.x >= lo && p.x < hi) pos.insert(pos.end(), {p.x, p.y});
    zvf::write_points_partition(store, ArrayView{pos.data(), DType::F32, pos.size() / 2, 2, false}, {}, layout,
                                Box{{lo, -inf}, {hi, inf}}, kExec);
  };
  for (const auto& multiscales : {nlohmann::json(5), nlohmann::json::array({"x"}), nlohmann::json::array()}) {
    SCOPED_TRACE(multiscales.dump());
    MemoryStore store;
    partition(store, -inf, 0.0);
    partition(store, 0.0, 4.0);
    zvf::finalise(store, {}, kExec);
    zvf::build_pyramid(store, factors({2.0}), kExec);
    const auto raw = *store.get("zarr.json");
    auto root = nlohmann::json::parse(raw.begin(), raw.end());
    root["attributes"]["multiscales"] = multiscales;
    store.set("zarr.json", root.dump());
    partition(store, 4.0, inf);
    const zvf::FinaliseReport report = zvf::finalise(store, {}, kExec);
    EXPECT_TRUE(report.pyramid_dropped);
    const auto raw_after = *store.get("zarr.json");
    const auto after = nlohmann::json::parse(raw_after.begin(), raw_after.end());
    ASSERT_TRUE(after["attributes"]["multiscales"].is_array());
    EXPECT_EQ(after["attributes"]["multiscales"][0]["datasets"].size(), 1u) << after.dump();
    EXPECT_EQ(zvf::read_points(store).positions.rows, kPoints.size());
  }
}

// Records of a scale-out build (.zvf/pyramid/part-<i>-of-<n>.json) come from a
// file, so finalise_parts checks each before it publishes anything: a malformed
// record is Corrupt naming it (not nlohmann's type_error, not a level published
// with chunks that no part built), and the records stay for a re-run.
TEST(Pyramid, MalformedPartRecordIsCorruptAndPublishesNothing) {
  const std::string rec0 = ".zvf/pyramid/part-0-of-2.json", rec1 = ".zvf/pyramid/part-1-of-2.json";
  auto built_in_parts = [&](MemoryStore& store) {
    write_cloud(store);
    for (int i = 0; i < 2; ++i) {
      PyramidOptions o = factors({2.0});
      o.part_index = i;
      o.part_count = 2;
      zvf::build_pyramid(store, o, kExec);
    }
  };
  MemoryStore probe;
  built_in_parts(probe);
  const nlohmann::json good0 = json_at(probe, rec0), good1 = json_at(probe, rec1);
  ASSERT_TRUE(good0.is_object()) << "part 0 wrote no record";
  ASSERT_EQ(good0["levels"].size(), 1u);
  ASSERT_FALSE(good1["levels"][0]["chunks"].empty()) << "part 1 built no chunk: " << good1.dump();

  auto edited = [&](auto edit) {
    nlohmann::json j = good0;
    edit(j);
    return j;
  };
  const std::vector<std::pair<std::string, nlohmann::json>> cases = {
      {"not an object", nlohmann::json::array()},
      {"count a string", edited([](auto& j) { j["count"] = "2"; })},
      {"count out of range", edited([](auto& j) { j["count"] = 1e300; })},
      {"count against the name", edited([](auto& j) { j["count"] = 3; })},
      {"index against the name", edited([](auto& j) { j["index"] = 1; })},
      {"no levels", edited([](auto& j) { j.erase("levels"); })},
      {"levels short", edited([](auto& j) { j["levels"] = nlohmann::json::array(); })},
      {"level not an object", edited([](auto& j) { j["levels"][0] = 7; })},
      {"vertex_count negative", edited([](auto& j) { j["levels"][0]["vertex_count"] = -1; })},
      {"vertex_count a string", edited([](auto& j) { j["levels"][0]["vertex_count"] = "5"; })},
      {"vertex_count above level 0's", edited([](auto& j) { j["levels"][0]["vertex_count"] = 1u << 30; })},
      {"chunks not a list", edited([](auto& j) { j["levels"][0]["chunks"] = "0.0"; })},
      {"chunk key a number", edited([](auto& j) { j["levels"][0]["chunks"] = {5}; })},
      {"chunk key malformed", edited([](auto& j) { j["levels"][0]["chunks"] = {"0.x"}; })},
      {"chunk outside the plan", edited([](auto& j) { j["levels"][0]["chunks"] = {"99.99"}; })},
      {"chunk of the other part", edited([&](auto& j) { j["levels"][0]["chunks"] = good1["levels"][0]["chunks"]; })},
  };
  for (const auto& [what, record] : cases) {
    SCOPED_TRACE(what);
    MemoryStore store;
    built_in_parts(store);
    store.set(rec0, record.dump());
    const auto before = snapshot(store);
    expect_error([&] {
      PyramidOptions o = factors({2.0});
      o.finalise_parts = true;
      zvf::build_pyramid(store, o, kExec);
    }, Error::Code::Corrupt, {"part-0-of-2.json"});
    EXPECT_TRUE(snapshot(store) == before) << "a refused finalise changed the store";
  }
}

// A record that claims a huge part count is refused at once, naming the first
// missing parts and how many there are, without visiting each of them.
TEST(Pyramid, PartRecordOfAHugeRunNamesTheMissingParts) {
  MemoryStore store;
  write_cloud(store);
  PyramidOptions o = factors({2.0});
  o.part_index = 0;
  o.part_count = 1;
  zvf::build_pyramid(store, o, kExec);
  nlohmann::json rec = json_at(store, ".zvf/pyramid/part-0-of-1.json");
  ASSERT_TRUE(rec.is_object());
  rec["count"] = 2000000000;
  rec["levels"][0] = {{"chunks", nlohmann::json::array()}, {"vertex_count", 0}};  // part 0 of so many builds none
  store.erase(".zvf/pyramid/part-0-of-1.json");
  store.set(".zvf/pyramid/part-0-of-2000000000.json", rec.dump());
  o.part_index = -1;
  o.part_count = 0;
  o.finalise_parts = true;
  expect_error([&] { zvf::build_pyramid(store, o, kExec); }, Error::Code::Conflict,
               {"parts 1, 2, 3", "of 2000000000", "1999999999 missing"});
}
