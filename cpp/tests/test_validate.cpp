// validate_store (zvf/validate.hpp): stores written by the engine validate clean
// at every level (one-shot, partitioned + finalised, with a pyramid); targeted
// damage yields the specific finding at the expected level, key and severity;
// partition leftovers are warnings; bad arguments and missing stores throw.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "test_support.hpp"
#include "zvf/error.hpp"
#include "zvf/fragments.hpp"
#include "zvf/points.hpp"
#include "zvf/pyramid.hpp"
#include "zvf/store.hpp"
#include "zvf/validate.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;
using zvf::Box;
using zvf::Bytes;
using zvf::DType;
using zvf::Error;
using zvf::Severity;
using zvf::Store;
using zvf::ValidationReport;

namespace {

const zvf::Exec kExec{2, {}};
constexpr double kInf = std::numeric_limits<double>::infinity();

struct Data {
  std::vector<float> pos;
  std::vector<float> intensity;
  std::vector<std::uint16_t> label;
  std::size_t n = 0;
};

Data make_data(std::size_t n, unsigned seed) {
  Data d;
  d.n = n;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.0f, 999.0f);
  for (std::size_t i = 0; i < n * 3; ++i) d.pos.push_back(u(rng));
  for (std::size_t i = 0; i < n; ++i) {
    d.intensity.push_back(static_cast<float>(i % 97) / 97.0f);
    d.label.push_back(static_cast<std::uint16_t>(i % 5));
  }
  return d;
}

// The rows of d with lo <= z < hi, and that half-open range along z.
Data z_slab(const Data& d, double lo, double hi) {
  Data part;
  for (std::size_t i = 0; i < d.n; ++i) {
    const float z = d.pos[i * 3 + 2];
    if (z < lo || z >= hi) continue;
    for (int k = 0; k < 3; ++k) part.pos.push_back(d.pos[i * 3 + k]);
    part.intensity.push_back(d.intensity[i]);
    part.label.push_back(d.label[i]);
    ++part.n;
  }
  return part;
}

Box z_range(double lo, double hi) {
  Box range = Box::unbounded(3);
  range.lo[2] = lo;
  range.hi[2] = hi;
  return range;
}

zvf::ArrayView view(const std::vector<float>& v, std::size_t rows, std::size_t cols, bool one_d) {
  return {v.data(), DType::F32, rows, cols, one_d};
}

std::vector<zvf::NamedArray> attrs_of(const Data& d) {
  return {{"intensity", view(d.intensity, d.n, 1, true)},
          {"label", {d.label.data(), DType::U16, d.n, 1, true}}};
}

zvf::Layout layout(const char* codec = "none") {
  return {{500.0, 500.0, 500.0}, {125.0, 125.0, 125.0}, zvf::CodecSpec::from_name(codec)};
}

// A one-shot store with a two-level pyramid.
void write_store(Store& s, const char* codec = "none", bool pyramid = true) {
  Data d = make_data(3000, 7);
  zvf::write_points(s, view(d.pos, d.n, 3, false), attrs_of(d), layout(codec), std::nullopt, kExec);
  if (pyramid) {
    zvf::PyramidOptions opt;
    opt.levels = {{2.0, 1.0, {}}, {2.0, 1.0, {}}};
    zvf::build_pyramid(s, opt, kExec);
  }
}

ValidationReport validate(const Store& s, int level) { return zvf::validate_store(s, {level}, kExec); }

std::string dump(const ValidationReport& r) {
  std::string out;
  for (const auto& f : r.findings)
    out += std::string("  ") + zvf::severity_name(f.severity) + " L" + std::to_string(f.level) + " [" + f.key + "] " +
           f.message + "\n";
  return out.empty() ? "  (no findings)\n" : out;
}

// The finding with this severity whose key is `key` and whose message holds `needle`.
const zvf::Finding* find(const ValidationReport& r, Severity s, const std::string& key, const std::string& needle) {
  for (const auto& f : r.findings)
    if (f.severity == s && f.key == key && f.message.find(needle) != std::string::npos) return &f;
  return nullptr;
}

void expect_finding(const ValidationReport& r, Severity s, int level, const std::string& key, const std::string& needle) {
  const zvf::Finding* f = find(r, s, key, needle);
  ASSERT_NE(f, nullptr) << "no " << zvf::severity_name(s) << " at key '" << key << "' containing '" << needle
                        << "'; findings:\n"
                        << dump(r);
  EXPECT_EQ(f->level, level) << dump(r);
}

void expect_clean(const ValidationReport& r) {
  EXPECT_TRUE(r.ok()) << dump(r);
  EXPECT_TRUE(r.findings.empty()) << dump(r);
  EXPECT_FALSE(r.passed.empty());
}

json get_json(const Store& s, const std::string& key) {
  auto b = s.get(key);
  EXPECT_TRUE(b.has_value()) << key;
  return json::parse(b->begin(), b->end());
}

void put_json(Store& s, const std::string& key, const json& j) { s.set(key, j.dump()); }

// Key of the first listed cell of an array, e.g. "0/vertices/c/0/0/0".
std::string first_cell(const Store& s, const std::string& array) {
  json a = get_json(s, array + "/zarr.json");
  const std::string k = a["attributes"]["nonempty_chunks"][0].get<std::string>();
  std::vector<std::int64_t> origin(3, 0);
  if (a["attributes"].contains("chunk_grid_origin")) origin = a["attributes"]["chunk_grid_origin"].get<std::vector<std::int64_t>>();
  std::string key = array + "/c";
  std::size_t at = 0;
  for (int d = 0; d < 3; ++d) {
    std::size_t dot = k.find('.', at);
    key += "/" + std::to_string(std::stoll(k.substr(at, dot - at)) - origin[d]);
    at = dot + 1;
  }
  return key;
}

// Uncompressed cell helpers: the vlen-bytes frame is u32 count, u32 length, payload.
Bytes payload_of(const Bytes& cell) { return Bytes(cell.begin() + 8, cell.end()); }
Bytes frame(const Bytes& payload) {
  Bytes out(8);
  std::uint32_t one = 1, len = static_cast<std::uint32_t>(payload.size());
  std::memcpy(out.data(), &one, 4);
  std::memcpy(out.data() + 4, &len, 4);
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

// Range counts of a fragment cell (uncompressed).
std::vector<std::int64_t> fragment_counts(const Store& s, const std::string& key) {
  Bytes p = payload_of(*s.get(key));
  std::vector<std::int64_t> counts;
  for (const auto& f : zvf::decode_fragments(zvf::ByteSpan(p), key)) counts.push_back(f.count);
  return counts;
}

class Validate : public ::testing::Test {
 protected:
  void SetUp() override { write_store(store); }
  zvf::MemoryStore store;
};

// ---------------------------------------------------------------- clean stores

TEST_F(Validate, EngineStoreIsCleanAtEveryLevel) {
  for (int level = 1; level <= zvf::kMaxValidationLevel; ++level) {
    SCOPED_TRACE("level " + std::to_string(level));
    auto r = validate(store, level);
    EXPECT_EQ(r.level, level);
    expect_clean(r);
  }
}

TEST(ValidateClean, CompressedStoresAreClean) {
  for (const char* codec : {"zstd", "blosc"}) {
    SCOPED_TRACE(codec);
    zvf::MemoryStore s;
    write_store(s, codec);
    expect_clean(validate(s, 5));
  }
}

TEST(ValidateClean, PartitionedAndFinalisedStoreIsClean) {
  zvf::MemoryStore s;
  Data d = make_data(4000, 11);
  // Two slabs along z, the boundary (600) inside a chunk, so both partitions stage pieces.
  for (auto [lo, hi] : {std::pair{0.0, 600.0}, std::pair{600.0, kInf}}) {
    const Data part = z_slab(d, lo, hi);
    const Box range = z_range(lo, hi);
    zvf::write_points_partition(s, view(part.pos, part.n, 3, false), attrs_of(part), layout(), range, kExec);
  }
  zvf::finalise(s, {}, kExec);
  expect_clean(validate(s, 5));
}

// ---------------------------------------------------------------- damaged cells

TEST_F(Validate, DeletedVertexCellIsALevel3Error) {
  const std::string key = first_cell(store, "0/vertices");
  store.erase(key);
  EXPECT_TRUE(validate(store, 2).ok()) << "levels 1-2 do not read cells";
  auto r = validate(store, 3);
  EXPECT_FALSE(r.ok());
  expect_finding(r, Severity::Error, 3, key, "vertices cell is missing");
}

TEST_F(Validate, TruncatedCellIsALevel3Error) {
  const std::string key = first_cell(store, "0/vertices");
  Bytes cell = *store.get(key);
  cell.resize(cell.size() / 2);
  store.set(key, zvf::ByteSpan(cell));
  auto r = validate(store, 3);
  EXPECT_FALSE(r.ok());
  expect_finding(r, Severity::Error, 3, key, "does not decode");
}

TEST_F(Validate, CellCutToWholeRowsBreaksTheFragmentIndex) {
  // A payload shortened by exactly one row still decodes: the fragment index catches it.
  const std::string key = first_cell(store, "0/vertices");
  Bytes p = payload_of(*store.get(key));
  p.resize(p.size() - 12);
  store.set(key, zvf::ByteSpan(frame(p)));
  auto r = validate(store, 3);
  expect_finding(r, Severity::Error, 3, first_cell(store, "0/vertex_fragments"), "but the cell has");
}

TEST_F(Validate, MissingAttributeCellIsALevel3Error) {
  const std::string key = first_cell(store, "0/vertex_attributes/label");
  store.erase(key);
  auto r = validate(store, 3);
  expect_finding(r, Severity::Error, 3, key, "'label' attribute cell is missing");
}

TEST_F(Validate, AttributeCellWithWrongRowCountIsALevel3Error) {
  const std::string key = first_cell(store, "0/vertex_attributes/intensity");
  Bytes p = payload_of(*store.get(key));
  p.resize(p.size() - 4);
  store.set(key, zvf::ByteSpan(frame(p)));
  expect_finding(validate(store, 3), Severity::Error, 3, key, "attribute 'intensity' holds");
}

TEST_F(Validate, FragmentIndexThatOvercountsIsAnError) {
  const std::string key = first_cell(store, "0/vertex_fragments");
  auto counts = fragment_counts(store, key);
  counts.back() += 3;
  store.set(key, zvf::ByteSpan(frame(zvf::encode_range_fragments(counts))));
  auto r = validate(store, 3);
  expect_finding(r, Severity::Error, 3, key, "covers rows");
}

TEST_F(Validate, FragmentIndexThatLeavesRowsOutBreaksFragmentsTile) {
  const std::string key = first_cell(store, "0/vertex_fragments");
  auto counts = fragment_counts(store, key);
  for (auto& c : counts)
    if (c > 0) {
      --c;
      break;
    }
  store.set(key, zvf::ByteSpan(frame(zvf::encode_range_fragments(counts))));
  auto r = validate(store, 3);
  expect_finding(r, Severity::Error, 3, key, "do not tile");
}

TEST_F(Validate, MoreFragmentsThanBinsIsAnError) {
  const std::string key = first_cell(store, "0/vertex_fragments");
  auto counts = fragment_counts(store, key);
  counts.push_back(0);  // 65 fragments in a chunk of 4 x 4 x 4 bins
  store.set(key, zvf::ByteSpan(frame(zvf::encode_range_fragments(counts))));
  expect_finding(validate(store, 3), Severity::Error, 3, key, "more than its 64 bins");
}

TEST_F(Validate, PointsInTheWrongBinAreWarnings) {
  // Swap the first two non-empty fragments' counts: rows now sit under the wrong bins.
  const std::string key = first_cell(store, "0/vertex_fragments");
  auto counts = fragment_counts(store, key);
  std::size_t a = 0;
  while (counts[a] == 0) ++a;
  std::size_t b = a + 1;
  while (counts[b] == counts[a] || counts[b] == 0) ++b;
  std::swap(counts[a], counts[b]);
  store.set(key, zvf::ByteSpan(frame(zvf::encode_range_fragments(counts))));
  auto r = validate(store, 3);
  EXPECT_TRUE(r.ok()) << dump(r);
  expect_finding(r, Severity::Warning, 3, first_cell(store, "0/vertices"), "outside the bin");
}

TEST_F(Validate, OrphanCellIsAWarning) {
  const std::string orphan = "0/vertices/c/7/7/7";
  store.set(orphan, zvf::ByteSpan(*store.get(first_cell(store, "0/vertices"))));
  auto r = validate(store, 3);
  EXPECT_TRUE(r.ok()) << dump(r);
  expect_finding(r, Severity::Warning, 3, orphan, "orphan cell");
}

// ---------------------------------------------------------------- damaged metadata

TEST_F(Validate, BrokenArrayJsonIsALevel1Error) {
  store.set("0/vertices/zarr.json", std::string("{not json"));
  auto r = validate(store, 5);
  EXPECT_FALSE(r.ok());
  expect_finding(r, Severity::Error, 1, "0/vertices/zarr.json", "not valid JSON");
  for (const auto& f : r.findings) EXPECT_EQ(f.level, 1) << "level 1 errors stop the run:\n" << dump(r);
}

TEST_F(Validate, BrokenRootJsonIsALevel1Error) {
  store.set("zarr.json", std::string("{\"attributes\": "));
  expect_finding(validate(store, 1), Severity::Error, 1, "zarr.json", "not valid JSON");
}

TEST_F(Validate, RootWithoutZarrVectorsBlockIsALevel1Error) {
  json root = get_json(store, "zarr.json");
  root["attributes"].erase("zarr_vectors");
  put_json(store, "zarr.json", root);
  expect_finding(validate(store, 1), Severity::Error, 1, "zarr.json", "'zarr_vectors'");
}

TEST_F(Validate, MissingVerticesArrayIsALevel1Error) {
  store.erase_prefix("0/vertices");
  expect_finding(validate(store, 1), Severity::Error, 1, "0/vertices", "missing");
}

TEST_F(Validate, WrongPositionDtypeIsALevel3Error) {
  json a = get_json(store, "0/vertices/zarr.json");
  a["attributes"]["dtype"] = "float64";  // the cells hold float32: half as many rows
  put_json(store, "0/vertices/zarr.json", a);
  EXPECT_TRUE(validate(store, 2).ok());
  auto r = validate(store, 3);
  // Every chunk fails: its bytes are not whole float64 rows, or (when they happen to
  // be) its fragment index addresses rows beyond the halved row count.
  const std::size_t chunks = get_json(store, "0/vertices/zarr.json")["attributes"]["nonempty_chunks"].size();
  EXPECT_EQ(r.error_count(), chunks) << dump(r);
  for (const auto& f : r.findings) {
    EXPECT_EQ(f.level, 3);
    EXPECT_TRUE(f.message.find("x float64 rows") != std::string::npos || f.message.find("but the cell has") != std::string::npos)
        << f.message;
  }
}

TEST_F(Validate, FindingsComeInChunkOrderWhateverTheThreadCount) {
  json a = get_json(store, "0/vertices/zarr.json");
  a["attributes"]["dtype"] = "float64";  // an error in every chunk
  put_json(store, "0/vertices/zarr.json", a);
  auto one = zvf::validate_store(store, {3}, zvf::Exec{1, {}});
  ASSERT_GT(one.error_count(), 1u);
  for (int threads : {3, 8}) {
    auto many = zvf::validate_store(store, {3}, zvf::Exec{threads, {}});
    ASSERT_EQ(many.findings.size(), one.findings.size());
    for (std::size_t i = 0; i < one.findings.size(); ++i) {
      EXPECT_EQ(many.findings[i].key, one.findings[i].key) << i;
      EXPECT_EQ(many.findings[i].message, one.findings[i].message) << i;
    }
  }
}

TEST_F(Validate, UnknownAttributeDtypeIsALevel3Error) {
  json a = get_json(store, "0/vertex_attributes/label/zarr.json");
  a["attributes"]["dtype"] = "uint17";
  put_json(store, "0/vertex_attributes/label/zarr.json", a);
  expect_finding(validate(store, 3), Severity::Error, 3, "0/vertex_attributes/label/zarr.json", "unsupported dtype 'uint17'");
}

TEST_F(Validate, WrongVertexCountIsALevel3Error) {
  json l = get_json(store, "0/zarr.json");
  l["attributes"]["zarr_vectors_level"]["vertex_count"] = 2999;
  put_json(store, "0/zarr.json", l);
  expect_finding(validate(store, 3), Severity::Error, 3, "0/zarr.json", "vertex_count = 2999 but the cells hold 3000");
}

TEST_F(Validate, BinThatDoesNotDivideTheChunkIsALevel2Error) {
  json root = get_json(store, "zarr.json");
  root["attributes"]["zarr_vectors"]["base_bin_shape"] = {300.0, 125.0, 125.0};
  put_json(store, "zarr.json", root);
  auto r = validate(store, 5);
  expect_finding(r, Severity::Error, 2, "zarr.json", "not a whole multiple of base_bin_shape[0]");
  for (const auto& f : r.findings) EXPECT_LE(f.level, 2) << "level 2 errors stop the data checks:\n" << dump(r);
}

TEST_F(Validate, MissingLevelMetadataKeyIsALevel2Error) {
  json l = get_json(store, "1/zarr.json");
  l["attributes"]["zarr_vectors_level"].erase("arrays_present");
  put_json(store, "1/zarr.json", l);
  EXPECT_TRUE(validate(store, 1).ok());
  expect_finding(validate(store, 2), Severity::Error, 2, "1/zarr.json", "'arrays_present'");
}

// ---------------------------------------------------------------- pyramid

TEST_F(Validate, MissingPyramidLevelIsALevel5Error) {
  store.erase_prefix("1");
  EXPECT_TRUE(validate(store, 4).ok()) << "levels 1-4 check the levels that exist";
  auto r = validate(store, 5);
  EXPECT_FALSE(r.ok());
  expect_finding(r, Severity::Error, 5, "1/zarr.json", "publishes level 1");
  expect_finding(r, Severity::Error, 5, "", "levels on disk are [0, 2], expected [0, 1]");
}

TEST_F(Validate, UnpublishedLevelIsAWarning) {
  // As a killed pyramid build leaves it: the level written, the root not updated yet.
  json root = get_json(store, "zarr.json");
  auto& datasets = root["attributes"]["multiscales"][0]["datasets"];
  datasets.erase(datasets.size() - 1);
  put_json(store, "zarr.json", root);
  auto r = validate(store, 5);
  EXPECT_TRUE(r.ok()) << dump(r);
  expect_finding(r, Severity::Warning, 5, "2", "not published");
}

TEST_F(Validate, CountAttributeThatLosesPointsIsALevel5Error) {
  const std::string key = first_cell(store, "1/vertex_attributes/count");
  Bytes p = payload_of(*store.get(key));
  std::uint64_t v;
  std::memcpy(&v, p.data(), 8);
  v += 1;
  std::memcpy(p.data(), &v, 8);
  store.set(key, zvf::ByteSpan(frame(p)));
  EXPECT_TRUE(validate(store, 4).ok());
  expect_finding(validate(store, 5), Severity::Error, 5, "1/vertex_attributes/count", "sums to 3001");
}

TEST_F(Validate, CoarseLevelWithMorePointsIsALevel5Error) {
  // Level 2 claims (and holds) what level 0 holds: copy level 0's cells over it.
  store.erase_prefix("2");
  for (const auto& key : store.list("0")) store.set("2" + key.substr(1), zvf::ByteSpan(*store.get(key)));
  auto r = validate(store, 5);
  expect_finding(r, Severity::Error, 5, "2", "more than level 1");
}

// Found by fuzzing (docs/fuzzing.md): fields of an unexpected JSON type made
// json::value() throw out of validate_store, which must report instead.
TEST_F(Validate, FieldsOfTheWrongTypeAreFindingsNotExceptions) {
  json root = get_json(store, "zarr.json");
  root["attributes"]["multiscales"][0]["datasets"][1]["coordinateTransformations"][1]["type"] = nullptr;
  put_json(store, "zarr.json", root);
  json arr = get_json(store, "0/vertices/zarr.json");
  arr["codecs"][0]["name"] = 5;
  put_json(store, "0/vertices/zarr.json", arr);
  ValidationReport r;
  ASSERT_NO_THROW(r = validate(store, 5));
  expect_finding(r, Severity::Error, 3, "0/vertices/zarr.json", "codecs cannot be decoded");
}

TEST_F(Validate, FragmentRangeWhoseEndOverflowsIsAnError) {
  // An uncompressed cell (vlen-bytes header: count 1, length 44) holding a fragment
  // index with one range fragment (start, count) = (2^62 + 1, 2^62 + 1), whose end
  // overflows int64: header 'ZVFG' v1 F=1 R=1, bitmap, the range, CSR offsets[0] = 0.
  Bytes cell(8 + 44, 0);
  const std::uint32_t words[6] = {1, 44, 0x5A564647, 1, 1, 1};  // words[3]: version 1, flags 0
  std::memcpy(cell.data(), words, sizeof words);
  cell[8 + 16] = 1;  // bitmap: fragment 0 is a range
  const std::int64_t big = (std::int64_t{1} << 62) + 1;
  std::memcpy(cell.data() + 8 + 24, &big, 8);
  std::memcpy(cell.data() + 8 + 32, &big, 8);
  const std::string key = first_cell(store, "0/vertex_fragments");
  store.set(key, zvf::ByteSpan(cell));
  expect_finding(validate(store, 3), Severity::Error, 3, key, "covers rows [4611686018427387905, 9223372036854775810)");
}

TEST_F(Validate, LinksFamilyWithNonIntegerWidthIsAnError) {
  put_json(store, "0/links/0/zarr.json",
           {{"zarr_format", 3}, {"node_type", "group"}, {"attributes", {{"link_width", 2.5}, {"sid_ndim", 3}}}});
  ValidationReport r;
  ASSERT_NO_THROW(r = validate(store, 3));
  expect_finding(r, Severity::Error, 3, "0/links/0/zarr.json", "must be integers");
}

// ---------------------------------------------------------------- partitions

class ValidatePartitions : public ::testing::Test {
 protected:
  void write_partition(double lo, double hi) {
    Data d = make_data(1000, 3);
    const Data part = z_slab(d, lo, hi);
    const Box range = z_range(lo, hi);
    id = zvf::write_points_partition(store, view(part.pos, part.n, 3, false), attrs_of(part), layout(), range, kExec)
             .partition_id;
  }
  zvf::MemoryStore store;
  std::string id;
};

TEST_F(ValidatePartitions, UnfinalisedStoreIsALevel1Error) {
  write_partition(0, 600);
  auto r = validate(store, 3);
  EXPECT_FALSE(r.ok());
  expect_finding(r, Severity::Error, 1, "zarr.json", "not finalised");
}

TEST_F(ValidatePartitions, PendingPartitionInAFinalisedStoreIsAWarning) {
  write_partition(0, 600);
  write_partition(600, kInf);
  zvf::finalise(store, {}, kExec);
  // A re-run of the first partition killed mid-write: started.json of a new run, no manifest.
  write_partition(0, 600);
  store.erase(".zvf/partitions/" + id + "/manifest.json");
  auto r = validate(store, 3);
  EXPECT_TRUE(r.ok()) << dump(r);
  expect_finding(r, Severity::Warning, 1, ".zvf/partitions/" + id, "is pending");
}

TEST_F(ValidatePartitions, CompleteButUnmergedPartitionIsAWarning) {
  write_partition(0, 600);
  write_partition(600, kInf);
  zvf::finalise(store, {}, kExec);
  write_partition(0, 600);  // a re-run that finished; finalise not run again yet
  auto r = validate(store, 1);
  EXPECT_TRUE(r.ok()) << dump(r);
  expect_finding(r, Severity::Warning, 1, ".zvf/partitions/" + id, "not merged yet");
}

TEST_F(ValidatePartitions, LedgerWithAMalformedBoxIsAWarning) {
  write_partition(0, 600);
  write_partition(600, kInf);
  zvf::finalise(store, {}, kExec);
  json root = get_json(store, "zarr.json");
  root["attributes"]["zvf"]["partitions"][id]["range"][0][0] = "x";  // was json::type_error out of validate
  put_json(store, "zarr.json", root);
  ValidationReport r;
  ASSERT_NO_THROW(r = validate(store, 1));
  expect_finding(r, Severity::Warning, 1, "zarr.json", "malformed box");
}

TEST(ValidatePosix, TempFileOfAKilledWriterIsAWarning) {
  const fs::path dir = fs::temp_directory_path() / ("zvf_validate_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  {
    zvf::PosixStore store(dir.string());
    write_store(store, "none", false);
    const std::string cell = first_cell(store, "0/vertices");
    const std::string temp = cell + ".1a2b3c4d.zvftmp";
    std::FILE* f = std::fopen((dir / temp).c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fputs("partial", f);
    std::fclose(f);
    auto r = zvf::validate_store(store, {3}, kExec);
    EXPECT_TRUE(r.ok()) << dump(r);
    expect_finding(r, Severity::Warning, 1, temp, "temporary file");
  }
  fs::remove_all(dir);
}

// ---------------------------------------------------------------- arguments

TEST(ValidateArguments, LevelOutsideOneToFiveIsInvalid) {
  zvf::MemoryStore s;
  write_store(s, "none", false);
  for (int level : {0, 6, -1})
    zvf::testing::expect_error([&] { zvf::validate_store(s, {level}); }, Error::Code::InvalidArgument,
                               {"validation level must be 1 to 5", std::to_string(level)});
}

TEST(ValidateArguments, MissingStoreIsNotFound) {
  zvf::PosixStore s((fs::temp_directory_path() / "zvf_validate_no_such_store").string());
  zvf::testing::expect_error([&] { zvf::validate_store(s); }, Error::Code::NotFound, {"no store at"});
}

TEST(ValidateArguments, EmptyDirectoryIsAnInvalidStoreNotAnException) {
  zvf::MemoryStore s;
  s.set("unrelated.txt", std::string("x"));
  auto r = zvf::validate_store(s);
  EXPECT_FALSE(r.ok());
  expect_finding(r, Severity::Error, 1, "zarr.json", "not a Zarr group");
}

TEST(ValidateProgress, ReportsEveryCell) {
  zvf::MemoryStore s;
  write_store(s);
  std::uint64_t last_done = 0, last_total = 0;
  zvf::Exec exec{2, [&](std::uint64_t done, std::uint64_t total) {
                   last_done = done;
                   last_total = total;
                 }};
  auto r = zvf::validate_store(s, {3}, exec);
  ASSERT_TRUE(r.ok()) << dump(r);
  std::uint64_t chunks = 0;
  for (const char* level : {"0", "1", "2"})
    chunks += get_json(s, std::string(level) + "/vertices/zarr.json")["attributes"]["nonempty_chunks"].size();
  EXPECT_EQ(last_total, chunks);
  EXPECT_EQ(last_done, chunks);
}

}  // namespace
