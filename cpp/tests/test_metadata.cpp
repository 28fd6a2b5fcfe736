// zarr.json documents of a ZV 0.9 point-cloud store (format/metadata.hpp):
// root, level, vertices, vertex_fragments and attribute arrays, write order,
// JSON reading, and attribute-name validation.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "format/metadata.hpp"
#include "test_support.hpp"
#include "zvf/error.hpp"
#include "zvf/store.hpp"

using zvf::Box;
using zvf::CodecSpec;
using zvf::DType;
using zvf::Error;
using zvf::Grid;
using zvf::meta::AttrSpec;
using zvf::meta::ojson;
using zvf::meta::StoreMeta;

namespace {

using zvf::testing::expect_error;

StoreMeta small_meta(bool bin_given) {
  StoreMeta m;
  m.ndim = 3;
  m.dtype = DType::F32;
  m.grid = bin_given ? Grid::make({100, 100, 50}, {50, 25, 25}, 3) : Grid::make({100, 100, 50}, {}, 3);
  m.bin_given = bin_given;
  m.codec = CodecSpec{};
  m.attrs = {AttrSpec{"intensity", DType::F32, 1, true}, AttrSpec{"rgb", DType::U8, 3, false}};
  m.bounds = Box{{0.5, -20.25, 3.0}, {180.0, 99.5, 60.0}};
  m.vertex_count = 1234;
  m.origin = {0, -1, 0};
  m.shape = {2, 2, 2};
  m.nonempty = {"0.-1.0", "0.0.1", "1.0.0"};
  m.name = "scan";
  return m;
}

std::vector<std::string> keys_of(const ojson& o) {
  std::vector<std::string> k;
  for (auto it = o.begin(); it != o.end(); ++it) k.push_back(it.key());
  return k;
}

// Records the order of set() calls.
class RecordingStore final : public zvf::Store {
 public:
  std::vector<std::string> order;
  std::optional<zvf::Bytes> get(const std::string& k) const override { return inner.get(k); }
  void set(const std::string& k, zvf::ByteSpan v) override {
    order.push_back(k);
    inner.set(k, v);
  }
  using Store::set;
  bool exists(const std::string& k) const override { return inner.exists(k); }
  void erase(const std::string& k) override { inner.erase(k); }
  void erase_prefix(const std::string& p) override { inner.erase_prefix(p); }
  std::vector<std::string> list(const std::string& p) const override { return inner.list(p); }
  std::string describe() const override { return "recording://"; }
  bool root_exists() const override { return inner.root_exists(); }

 private:
  zvf::MemoryStore inner;
};

}  // namespace

// ---- root -------------------------------------------------------------------

TEST(RootDoc, ZarrVectorsBlock) {
  const StoreMeta m = small_meta(true);
  const ojson doc = zvf::meta::root_doc(m);
  EXPECT_EQ(doc["zarr_format"], 3);
  EXPECT_EQ(doc["node_type"], "group");
  const ojson& zv = doc["attributes"]["zarr_vectors"];
  EXPECT_EQ(zv["zv_version"], "0.9.2");
  EXPECT_EQ(zv["format_capabilities"], ojson::array());
  // Shapes are written as floats, as the reference writes them.
  EXPECT_EQ(zv["chunk_shape"].dump(), "[100.0,100.0,50.0]");
  for (const auto& x : zv["chunk_shape"]) EXPECT_TRUE(x.is_number_float());
  EXPECT_EQ(zv["base_bin_shape"].dump(), "[50.0,25.0,25.0]");
  EXPECT_EQ(zv["bounds"].dump(), "[[0.5,-20.25,3.0],[180.0,99.5,60.0]]");
  EXPECT_EQ(zv["geometry_types"], ojson::array({"point_cloud"}));
  EXPECT_EQ(zv["links_convention"], "implicit_sequential");
  EXPECT_EQ(zv["object_index_convention"], "standard");
  EXPECT_EQ(zv["cross_chunk_strategy"], "explicit_links");
  EXPECT_EQ(keys_of(zv), (std::vector<std::string>{"zv_version", "format_capabilities", "chunk_shape", "bounds",
                                                   "geometry_types", "base_bin_shape", "links_convention",
                                                   "object_index_convention", "cross_chunk_strategy"}));
}

TEST(RootDoc, BaseBinShapeOnlyWhenGiven) {
  const ojson doc = zvf::meta::root_doc(small_meta(false));
  const ojson& zv = doc["attributes"]["zarr_vectors"];
  EXPECT_FALSE(zv.contains("base_bin_shape"));
  EXPECT_EQ(zv["chunk_shape"].dump(), "[100.0,100.0,50.0]");
  // Level 0 translation falls back to half a chunk.
  const ojson& ct = doc["attributes"]["multiscales"][0]["datasets"][0]["coordinateTransformations"];
  EXPECT_EQ(ct[1]["translation"].dump(), "[50.0,50.0,25.0]");
}

TEST(RootDoc, NgffMultiscales) {
  const ojson doc = zvf::meta::root_doc(small_meta(true));
  const ojson& ms = doc["attributes"]["multiscales"];
  ASSERT_TRUE(ms.is_array());
  ASSERT_EQ(ms.size(), 1u);
  EXPECT_EQ(ms[0]["version"], "0.4");
  EXPECT_EQ(ms[0]["name"], "default");
  ASSERT_EQ(ms[0]["axes"].size(), 3u);
  const char* names[] = {"x", "y", "z"};
  for (int d = 0; d < 3; ++d) {
    EXPECT_EQ(ms[0]["axes"][d]["name"], names[d]);
    EXPECT_EQ(ms[0]["axes"][d]["type"], "space");
    EXPECT_FALSE(ms[0]["axes"][d].contains("unit"));
  }
  ASSERT_EQ(ms[0]["datasets"].size(), 1u);
  const ojson& ds = ms[0]["datasets"][0];
  EXPECT_EQ(ds["path"], "0");
  ASSERT_EQ(ds["coordinateTransformations"].size(), 2u);
  EXPECT_EQ(ds["coordinateTransformations"][0]["type"], "scale");
  EXPECT_EQ(ds["coordinateTransformations"][0]["scale"].dump(), "[1.0,1.0,1.0]");
  EXPECT_EQ(ds["coordinateTransformations"][1]["type"], "translation");
  EXPECT_EQ(ds["coordinateTransformations"][1]["translation"].dump(), "[25.0,12.5,12.5]");
  EXPECT_EQ(ms[0]["metadata"]["format"], "zarr_vectors");
}

TEST(RootDoc, OmeCollectionAndExtraAttributes) {
  const ojson extra = {{"zvf", {{"k", 1}}}};
  const ojson doc = zvf::meta::root_doc(small_meta(true), extra);
  const ojson& ome = doc["attributes"]["ome"];
  EXPECT_EQ(ome["version"], "0.6");
  EXPECT_EQ(ome["type"], "collection");
  EXPECT_EQ(ome["name"], "scan");
  EXPECT_EQ(ome["nodes"], ojson::parse(R"([{"type":"zv:level","name":"0"}])"));
  EXPECT_EQ(ome["attributes"]["scene"]["coordinateSystems"][0]["name"], "world");
  EXPECT_EQ(ome["attributes"]["scene"]["coordinateSystems"][0]["axes"].size(), 3u);
  EXPECT_EQ(doc["attributes"]["zvf"]["k"], 1);
  EXPECT_FALSE(zvf::meta::root_doc(small_meta(true)).at("attributes").contains("zvf"));
}

TEST(RootDoc, TwoDimensionalAxes) {
  StoreMeta m = small_meta(false);
  m.ndim = 2;
  m.grid = Grid::make({10, 20}, {}, 2);
  m.bounds = Box{{0, 0}, {1, 1}};
  const ojson doc = zvf::meta::root_doc(m);
  const ojson& axes = doc["attributes"]["multiscales"][0]["axes"];
  ASSERT_EQ(axes.size(), 2u);
  EXPECT_EQ(axes[1]["name"], "y");
  EXPECT_EQ(doc["attributes"]["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"].dump(),
            "[1.0,1.0]");
}

// ---- level ------------------------------------------------------------------

TEST(LevelDoc, Contents) {
  const ojson doc = zvf::meta::level_doc(small_meta(true));
  EXPECT_EQ(doc["zarr_format"], 3);
  EXPECT_EQ(doc["node_type"], "group");
  const ojson& lv = doc["attributes"]["zarr_vectors_level"];
  EXPECT_EQ(lv["level"], 0);
  EXPECT_EQ(lv["vertex_count"], 1234);
  EXPECT_EQ(lv["object_sparsity"].dump(), "1.0");
  EXPECT_EQ(lv["coarsening_method"], "none");
  EXPECT_TRUE(lv["parent_level"].is_null());
  EXPECT_EQ(lv["arrays_present"], ojson::array({"vertices", "vertex_attributes"}));
  EXPECT_EQ(lv["fragments_tile"], true);
  EXPECT_FALSE(lv.contains("bin_shape"));

  StoreMeta bare = small_meta(true);
  bare.attrs.clear();
  EXPECT_EQ(zvf::meta::level_doc(bare)["attributes"]["zarr_vectors_level"]["arrays_present"],
            ojson::array({"vertices"}));
}

// ---- arrays -----------------------------------------------------------------

TEST(ArrayDocs, Vertices) {
  const ojson doc = zvf::meta::vertices_doc(small_meta(true));
  EXPECT_EQ(doc["zarr_format"], 3);
  EXPECT_EQ(doc["node_type"], "array");
  EXPECT_EQ(doc["shape"], ojson::array({2, 2, 2}));
  EXPECT_EQ(doc["data_type"], "variable_length_bytes");
  EXPECT_EQ(doc["chunk_grid"], ojson::parse(R"({"name":"regular","configuration":{"chunk_shape":[1,1,1]}})"));
  EXPECT_EQ(doc["chunk_key_encoding"], ojson::parse(R"({"name":"default","configuration":{"separator":"/"}})"));
  EXPECT_EQ(doc["fill_value"], "");
  // Compared as unordered JSON: key order inside a codec is not significant.
  EXPECT_EQ(nlohmann::json::parse(doc["codecs"].dump()), nlohmann::json::parse(R"([{"name":"vlen-bytes","configuration":{}}])"));
  const ojson& at = doc["attributes"];
  EXPECT_EQ(at["nonempty_chunks"], ojson::array({"0.-1.0", "0.0.1", "1.0.0"}));
  EXPECT_EQ(at["chunk_grid_origin"], ojson::array({0, -1, 0}));
  EXPECT_EQ(at["zv_array"], "vertices");
  EXPECT_EQ(at["dtype"], "float32");
  EXPECT_EQ(at["encoding"], "raw");

  StoreMeta m64 = small_meta(true);
  m64.dtype = DType::F64;
  EXPECT_EQ(zvf::meta::vertices_doc(m64)["attributes"]["dtype"], "float64");
}

TEST(ArrayDocs, ChunkGridOriginOmittedWhenZero) {
  StoreMeta m = small_meta(true);
  m.origin = {0, 0, 0};
  for (const ojson& doc : {zvf::meta::vertices_doc(m), zvf::meta::fragments_doc(m),
                           zvf::meta::attribute_doc(m, m.attrs[0])})
    EXPECT_FALSE(doc["attributes"].contains("chunk_grid_origin")) << doc.dump();
  m.origin = {0, 0, 5};
  for (const ojson& doc : {zvf::meta::vertices_doc(m), zvf::meta::fragments_doc(m),
                           zvf::meta::attribute_doc(m, m.attrs[1])})
    EXPECT_EQ(doc["attributes"]["chunk_grid_origin"], ojson::array({0, 0, 5})) << doc.dump();
}

TEST(ArrayDocs, CodecsFollowTheSpec) {
  for (const char* name : {"none", "zstd", "blosc"}) {
    StoreMeta m = small_meta(true);
    m.codec = CodecSpec::from_name(name);
    const ojson codecs = zvf::meta::vertices_doc(m)["codecs"];
    // Same codecs as the spec, with keys in zarr-python's order ("name" first).
    EXPECT_EQ(nlohmann::json::parse(codecs.dump()), m.codec.to_json()) << name;
    for (const auto& c : codecs) EXPECT_EQ(c.begin().key(), "name") << codecs.dump();
    EXPECT_EQ(codecs[0]["name"], "vlen-bytes") << name;
    EXPECT_EQ(codecs.size(), std::string(name) == "none" ? 1u : 2u) << name;
    EXPECT_EQ(zvf::meta::fragments_doc(m)["codecs"], codecs);
    EXPECT_EQ(zvf::meta::attribute_doc(m, m.attrs[0])["codecs"], codecs);
  }
}

TEST(ArrayDocs, Fragments) {
  const ojson doc = zvf::meta::fragments_doc(small_meta(true));
  EXPECT_EQ(doc["data_type"], "variable_length_bytes");
  EXPECT_EQ(doc["attributes"]["zv_array"], "vertex_fragments");
  EXPECT_EQ(doc["attributes"]["encoding"], "fragment_index_v1");
  EXPECT_EQ(doc["attributes"]["nonempty_chunks"].size(), 3u);
  EXPECT_FALSE(doc["attributes"].contains("dtype"));
}

TEST(ArrayDocs, AttributeRowShapes) {
  const StoreMeta m = small_meta(true);
  const ojson one = zvf::meta::attribute_doc(m, m.attrs[0]);
  EXPECT_EQ(one["data_type"], "variable_length_bytes");
  EXPECT_EQ(one["attributes"]["zv_array"], "attribute");
  EXPECT_EQ(one["attributes"]["name"], "intensity");
  EXPECT_EQ(one["attributes"]["dtype"], "float32");
  EXPECT_EQ(one["attributes"]["row_shape"], ojson::array());
  EXPECT_FALSE(one["attributes"].contains("channel_names"));
  EXPECT_EQ(one["attributes"]["nonempty_chunks"].size(), 3u);

  const ojson three = zvf::meta::attribute_doc(m, m.attrs[1]);
  EXPECT_EQ(three["attributes"]["name"], "rgb");
  EXPECT_EQ(three["attributes"]["dtype"], "uint8");
  EXPECT_EQ(three["attributes"]["row_shape"], ojson::array({3}));
  const ojson& ch = three["attributes"]["channel_names"];
  ASSERT_TRUE(ch.is_array());
  ASSERT_EQ(ch.size(), 3u);
  std::set<std::string> distinct;
  for (const auto& c : ch) {
    ASSERT_TRUE(c.is_string());
    distinct.insert(c.get<std::string>());
  }
  EXPECT_EQ(distinct.size(), 3u);

  // A (N, 1) column is not a (N,) column.
  const ojson col1 = zvf::meta::attribute_doc(m, AttrSpec{"w", DType::I64, 1, false});
  EXPECT_EQ(col1["attributes"]["row_shape"], ojson::array({1}));
  EXPECT_EQ(col1["attributes"]["dtype"], "int64");
}

// ---- writing and reading ----------------------------------------------------

TEST(WriteAll, KeysAndRootLast) {
  RecordingStore store;
  zvf::meta::write_all(store, small_meta(true));
  std::vector<std::string> keys = store.list("");
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys, (std::vector<std::string>{"0/vertex_attributes/intensity/zarr.json",
                                            "0/vertex_attributes/rgb/zarr.json", "0/vertex_attributes/zarr.json",
                                            "0/vertex_fragments/zarr.json", "0/vertices/zarr.json", "0/zarr.json",
                                            "zarr.json"}));
  ASSERT_FALSE(store.order.empty());
  EXPECT_EQ(store.order.back(), "zarr.json");
  // Each document reads back as what the builder produced.
  auto root = zvf::meta::read_json(store, "zarr.json");
  ASSERT_TRUE(root);
  EXPECT_EQ(root->dump(), nlohmann::json::parse(zvf::meta::root_doc(small_meta(true)).dump()).dump());
  auto grp = zvf::meta::read_json(store, "0/vertex_attributes/zarr.json");
  ASSERT_TRUE(grp);
  EXPECT_EQ((*grp)["node_type"], "group");
}

TEST(WriteAll, NoAttributeGroupWithoutAttributes) {
  zvf::MemoryStore store;
  StoreMeta m = small_meta(true);
  m.attrs.clear();
  zvf::meta::write_all(store, m);
  EXPECT_TRUE(store.list("0/vertex_attributes").empty());
  EXPECT_TRUE(store.exists("0/vertices/zarr.json"));
  EXPECT_TRUE(store.exists("0/vertex_fragments/zarr.json"));
}

TEST(ReadJson, MissingAndInvalid) {
  zvf::MemoryStore store;
  EXPECT_FALSE(zvf::meta::read_json(store, "zarr.json"));
  store.set("0/zarr.json", std::string("{\"a\": [1, 2"));
  expect_error([&] { zvf::meta::read_json(store, "0/zarr.json"); }, Error::Code::Corrupt, {"0/zarr.json"});
  store.set("ok.json", std::string("{\"a\": [1, 2]}"));
  EXPECT_EQ((*zvf::meta::read_json(store, "ok.json"))["a"][1], 2);
}

TEST(StoreName, LastComponentWithoutExtension) {
  EXPECT_EQ(zvf::meta::store_name(zvf::PosixStore("/data/run1/scan.zarrvectors")), "scan");
  EXPECT_EQ(zvf::meta::store_name(zvf::PosixStore("/data/run1/scan.zarrvectors/")), "scan");
  EXPECT_EQ(zvf::meta::store_name(zvf::PosixStore("/data/plain")), "plain");
}

// ---- attribute names --------------------------------------------------------

TEST(AttributeName, Accepted) {
  for (const std::string& n : std::vector<std::string>{"intensity", "a.b-c", "_x", "X9", "a..b", "0", "rgb_2", "a-",
                                                       std::string(255, 'a')})
    EXPECT_NO_THROW(zvf::meta::check_attribute_name(n)) << n;
}

TEST(AttributeName, Rejected) {
  const std::vector<std::string> bad = {"",   "..", ".hidden", "a/b", "x y", "\xc3\xa9" /* é */, "-x", ".", "a\\b", "a:b",
                                        "a*", "zarr.json", "Zarr.JSON"};
  for (const auto& n : bad) {
    SCOPED_TRACE("name '" + n + "'");
    expect_error([&] { zvf::meta::check_attribute_name(n); }, Error::Code::InvalidArgument, {"'" + n + "'"});
  }
  // Control bytes are shown escaped (a NUL would cut the message short), and an
  // over-long name is refused for its length.
  expect_error([] { zvf::meta::check_attribute_name("tab\t"); }, Error::Code::InvalidArgument, {"'tab\\t'"});
  expect_error([] { zvf::meta::check_attribute_name(std::string("a\0b", 3)); }, Error::Code::InvalidArgument,
               {"'a\\x00b'", "not safe"});
  expect_error([] { zvf::meta::check_attribute_name(std::string(256, 'a')); }, Error::Code::InvalidArgument,
               {"256 bytes long", "at most 255"});
  expect_error([] { zvf::meta::check_attribute_name("zarr.json"); }, Error::Code::InvalidArgument, {"reserved"});
}
