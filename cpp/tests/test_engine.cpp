// End-to-end engine tests through the public API (zvf/points.hpp) on
// MemoryStore and PosixStore: one-shot writes and reads, bbox reads against a
// brute-force filter, store_info, input validation that leaves no trace,
// partitioned writes and finalisation (aligned, non-aligned, re-runs, overlaps,
// incomplete partitions, gaps, negative coordinates that move the chunk grid
// origin, disagreeing layouts) and damaged or missing stores on read.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "test_support.hpp"
#include "zvf/codec.hpp"
#include "zvf/error.hpp"
#include "zvf/grid.hpp"
#include "zvf/points.hpp"
#include "zvf/pyramid.hpp"
#include "zvf/store.hpp"
#include "zvf/types.hpp"

namespace fs = std::filesystem;
using zvf::ArrayView;
using zvf::Box;
using zvf::Bytes;
using zvf::CodecSpec;
using zvf::DType;
using zvf::Error;
using zvf::Layout;
using zvf::NamedArray;
using zvf::PointCloud;
using zvf::ReadOptions;
using zvf::Store;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
const zvf::Exec kExec{2, {}};

using zvf::testing::expect_error;

// ---- point clouds held as raw bytes -------------------------------------------

struct ColSpec {
  std::string name;
  DType dtype;
  std::size_t cols;
  bool one_d;
};

struct Column {
  ColSpec spec;
  Bytes data;
  std::size_t row_bytes() const { return spec.cols * zvf::dtype_size(spec.dtype); }
};

struct Cloud {
  DType dtype = DType::F32;
  std::size_t nd = 3;
  std::size_t n = 0;
  Bytes pos;
  std::vector<Column> attrs;

  std::size_t pos_row() const { return nd * zvf::dtype_size(dtype); }
  double coord(std::size_t i, std::size_t d) const {
    if (dtype == DType::F32) {
      float v;
      std::memcpy(&v, pos.data() + (i * nd + d) * 4, 4);
      return v;
    }
    double v;
    std::memcpy(&v, pos.data() + (i * nd + d) * 8, 8);
    return v;
  }
  void set_coord(std::size_t i, std::size_t d, double x) {
    if (dtype == DType::F32) {
      float v = static_cast<float>(x);
      std::memcpy(pos.data() + (i * nd + d) * 4, &v, 4);
    } else {
      std::memcpy(pos.data() + (i * nd + d) * 8, &x, 8);
    }
  }
  ArrayView view() const { return ArrayView{n ? pos.data() : nullptr, dtype, n, nd, false}; }
  std::vector<NamedArray> named() const {
    std::vector<NamedArray> out;
    for (const auto& c : attrs)
      out.push_back({c.spec.name, ArrayView{n ? c.data.data() : nullptr, c.spec.dtype, n, c.spec.cols, c.spec.one_d}});
    return out;
  }
  template <class Pred>
  Cloud filter(Pred keep) const {
    Cloud out;
    out.dtype = dtype;
    out.nd = nd;
    for (const auto& c : attrs) out.attrs.push_back({c.spec, {}});
    for (std::size_t i = 0; i < n; ++i) {
      if (!keep(i)) continue;
      out.pos.insert(out.pos.end(), pos.begin() + i * pos_row(), pos.begin() + (i + 1) * pos_row());
      for (std::size_t k = 0; k < attrs.size(); ++k) {
        const std::size_t rb = attrs[k].row_bytes();
        out.attrs[k].data.insert(out.attrs[k].data.end(), attrs[k].data.begin() + i * rb,
                                 attrs[k].data.begin() + (i + 1) * rb);
      }
      ++out.n;
    }
    return out;
  }
  Cloud inside(const Box& b) const {  // inclusive on both ends
    return filter([&](std::size_t i) {
      for (std::size_t d = 0; d < nd; ++d)
        if (!(coord(i, d) >= b.lo[d] && coord(i, d) <= b.hi[d])) return false;
      return true;
    });
  }
  Cloud slab(double lo, double hi, std::size_t axis = 0) const {  // half-open
    return filter([&](std::size_t i) { return coord(i, axis) >= lo && coord(i, axis) < hi; });
  }
  Cloud concat(const Cloud& o) const {
    Cloud out = *this;
    out.n += o.n;
    out.pos.insert(out.pos.end(), o.pos.begin(), o.pos.end());
    for (std::size_t k = 0; k < attrs.size(); ++k)
      out.attrs[k].data.insert(out.attrs[k].data.end(), o.attrs[k].data.begin(), o.attrs[k].data.end());
    return out;
  }
  // One byte string per row: position then every attribute, in this cloud's order.
  std::vector<std::string> row_keys() const {
    std::vector<std::string> out(n);
    for (std::size_t i = 0; i < n; ++i) {
      std::string& s = out[i];
      s.append(reinterpret_cast<const char*>(pos.data()) + i * pos_row(), pos_row());
      for (const auto& c : attrs)
        s.append(reinterpret_cast<const char*>(c.data.data()) + i * c.row_bytes(), c.row_bytes());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  Box data_bounds() const {
    Box b{std::vector<double>(nd, kInf), std::vector<double>(nd, -kInf)};
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t d = 0; d < nd; ++d) {
        b.lo[d] = std::min(b.lo[d], coord(i, d));
        b.hi[d] = std::max(b.hi[d], coord(i, d));
      }
    return b;
  }
};

const std::vector<ColSpec> kAllAttrs = {
    {"intensity", DType::F32, 1, true}, {"rgb", DType::U8, 3, false},   {"label", DType::I64, 1, true},
    {"normal", DType::F64, 3, false},   {"id16", DType::U16, 1, true}, {"w1", DType::I8, 1, false},
};
const std::vector<ColSpec> kPartAttrs = {{"intensity", DType::F32, 1, true}, {"rgb", DType::U8, 3, false}};

// Uniform points in [lo, hi) per axis; about a sixth of the coordinates are
// snapped down to a multiple of `snap` so that points sit exactly on bin and
// chunk edges. Attribute bytes are random.
Cloud make_cloud(DType dt, std::size_t nd, std::size_t n, const std::vector<double>& lo,
                 const std::vector<double>& hi, unsigned seed, const std::vector<ColSpec>& specs, double snap = 25) {
  Cloud c;
  c.dtype = dt;
  c.nd = nd;
  c.n = n;
  c.pos.resize(n * c.pos_row());
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> six(0, 5);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t d = 0; d < nd; ++d) {
      std::uniform_real_distribution<double> u(lo[d], hi[d]);
      double x = u(rng);
      if (six(rng) == 0 && std::floor(x / snap) * snap >= lo[d]) x = std::floor(x / snap) * snap;
      c.set_coord(i, d, x);
      if (c.coord(i, d) >= hi[d]) c.set_coord(i, d, lo[d]);  // float rounding up to hi
    }
  for (const auto& s : specs) {
    Column col{s, Bytes(n * s.cols * zvf::dtype_size(s.dtype))};
    for (auto& b : col.data) b = static_cast<std::uint8_t>(rng());
    c.attrs.push_back(std::move(col));
  }
  return c;
}

// Converts a read result into a Cloud with `like`'s attribute order, checking
// dtypes and shapes on the way.
Cloud from_read(const PointCloud& pc, const Cloud& like) {
  Cloud out;
  out.dtype = pc.positions.dtype;
  out.nd = pc.positions.cols;
  out.n = pc.positions.rows;
  out.pos.assign(pc.positions.data.begin(), pc.positions.data.end());
  EXPECT_EQ(pc.positions.dtype, like.dtype);
  EXPECT_EQ(pc.positions.cols, like.nd);
  EXPECT_FALSE(pc.positions.one_d);
  EXPECT_EQ(pc.positions.data.size(), out.n * out.pos_row());
  EXPECT_EQ(pc.attributes.size(), like.attrs.size());
  for (const auto& want : like.attrs) {
    auto it = std::find_if(pc.attributes.begin(), pc.attributes.end(),
                           [&](const auto& a) { return a.first == want.spec.name; });
    if (it == pc.attributes.end()) {
      ADD_FAILURE() << "attribute '" << want.spec.name << "' missing from the read";
      out.attrs.push_back({want.spec, Bytes(out.n * want.row_bytes())});
      continue;
    }
    const auto& a = it->second;
    EXPECT_EQ(a.dtype, want.spec.dtype) << want.spec.name;
    EXPECT_EQ(a.cols, want.spec.cols) << want.spec.name;
    EXPECT_EQ(a.one_d, want.spec.one_d) << want.spec.name;
    EXPECT_EQ(a.rows, out.n) << want.spec.name;
    EXPECT_EQ(a.data.size(), out.n * want.row_bytes()) << want.spec.name;
    Column col{want.spec, Bytes(a.data.begin(), a.data.end())};
    col.data.resize(out.n * want.row_bytes());
    out.attrs.push_back(std::move(col));
  }
  return out;
}

::testing::AssertionResult same_rows(const Cloud& got, const Cloud& want) {
  const auto a = got.row_keys(), b = want.row_keys();
  if (a == b) return ::testing::AssertionSuccess();
  std::vector<std::string> extra, missing;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(extra));
  std::set_difference(b.begin(), b.end(), a.begin(), a.end(), std::back_inserter(missing));
  auto show = [&](const std::string& row) {
    std::string s = "(";
    for (std::size_t d = 0; d < want.nd; ++d) {
      double x;
      if (want.dtype == DType::F32) {
        float f;
        std::memcpy(&f, row.data() + d * 4, 4);
        x = f;
      } else {
        std::memcpy(&x, row.data() + d * 8, 8);
      }
      s += (d ? ", " : "") + std::to_string(x);
    }
    return s + ")";
  };
  auto r = ::testing::AssertionFailure();
  r << "read " << a.size() << " rows, expected " << b.size() << "; " << extra.size() << " unexpected, "
    << missing.size() << " missing";
  if (!extra.empty()) r << "; first unexpected at " << show(extra.front());
  if (!missing.empty()) r << "; first missing at " << show(missing.front());
  return r;
}

Cloud read_all(const Store& s, const Cloud& like, std::optional<Box> bbox = std::nullopt) {
  ReadOptions opt;
  opt.bbox = std::move(bbox);
  return from_read(zvf::read_points(s, opt, kExec), like);
}

// Chunk of a coordinate under the documented rule (bin = floor(p/bin), exact
// in double arithmetic; chunk = floor(bin / bins_per_chunk)).
std::int64_t chunk_axis(double p, const Layout& l, std::size_t d) {
  const double bin = l.bin_shape.empty() ? l.chunk_shape[d] : l.bin_shape[d];
  const auto bpc = static_cast<std::int64_t>(std::llround(l.chunk_shape[d] / bin));
  auto b = static_cast<std::int64_t>(std::floor(p / bin));
  while (static_cast<double>(b) * bin > p) --b;
  while (static_cast<double>(b + 1) * bin <= p) ++b;
  return b >= 0 ? b / bpc : -((-b + bpc - 1) / bpc);
}

zvf::ChunkCoord chunk_of(const Cloud& c, std::size_t i, const Layout& l) {
  zvf::ChunkCoord out(c.nd);
  for (std::size_t d = 0; d < c.nd; ++d) out[d] = chunk_axis(c.coord(i, d), l, d);
  return out;
}

std::set<zvf::ChunkCoord> chunks_of(const Cloud& c, const Layout& l) {
  std::set<zvf::ChunkCoord> s;
  for (std::size_t i = 0; i < c.n; ++i) s.insert(chunk_of(c, i, l));
  return s;
}

// ---- stores ------------------------------------------------------------------

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "zvf_engine_XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

enum class Backend { Memory, Posix };

std::string backend_name(Backend b) { return b == Backend::Memory ? "memory" : "posix"; }

struct TestStore {
  Backend backend;
  std::unique_ptr<TempDir> dir;
  std::string path;  // posix: <tmp>/scan.zarrvectors, not created up front
  std::unique_ptr<Store> store;

  explicit TestStore(Backend b) : backend(b) {
    if (b == Backend::Posix) {
      dir = std::make_unique<TempDir>();
      path = dir->path() + "/scan.zarrvectors";
      store = std::make_unique<zvf::PosixStore>(path);
    } else {
      store = std::make_unique<zvf::MemoryStore>();
    }
  }
  Store& operator*() { return *store; }
  Store* operator->() { return store.get(); }
  bool untouched() const {
    if (backend == Backend::Memory) return store->list("").empty();
    return !fs::exists(path) || fs::is_empty(path);
  }
};

std::map<std::string, Bytes> snapshot(const Store& s) {
  std::map<std::string, Bytes> out;
  for (const auto& k : s.list("")) out[k] = s.get(k).value_or(Bytes{});
  return out;
}

::testing::AssertionResult same_snapshot(const std::map<std::string, Bytes>& a, const std::map<std::string, Bytes>& b) {
  if (a == b) return ::testing::AssertionSuccess();
  auto r = ::testing::AssertionFailure();
  for (const auto& [k, v] : a)
    if (!b.count(k)) r << "removed " << k << "; ";
    else if (b.at(k) != v) r << "changed " << k << "; ";
  for (const auto& [k, v] : b)
    if (!a.count(k)) r << "added " << k << "; ";
  return r;
}

// Every array of level 0 holds exactly one cell per chunk listed in
// nonempty_chunks: no orphan cells left behind, none missing.
::testing::AssertionResult cells_match_presence(const Store& s) {
  auto raw = s.get("0/vertices/zarr.json");
  if (!raw) return ::testing::AssertionFailure() << "0/vertices/zarr.json missing";
  const auto meta = nlohmann::json::parse(raw->begin(), raw->end());
  const auto& at = meta.at("attributes");
  const auto keys = at.at("nonempty_chunks").get<std::vector<std::string>>();
  const std::size_t nd = meta.at("shape").size();
  const zvf::ChunkCoord origin =
      at.contains("chunk_grid_origin") ? at["chunk_grid_origin"].get<zvf::ChunkCoord>() : zvf::ChunkCoord(nd, 0);
  std::set<std::string> want;
  for (const auto& k : keys) want.insert(zvf::cell_key(zvf::parse_dotted_key(k, nd), origin));
  std::vector<std::string> arrays = {"0/vertices", "0/vertex_fragments"};
  for (const auto& k : s.list("0/vertex_attributes"))
    if (k.size() > 10 && k.compare(k.size() - 10, 10, "/zarr.json") == 0 && k != "0/vertex_attributes/zarr.json")
      arrays.push_back(k.substr(0, k.size() - 10));
  for (const auto& a : arrays) {
    std::set<std::string> have;
    for (const auto& k : s.list(a + "/c")) have.insert(k.substr(a.size() + 1));
    if (have != want) {
      auto r = ::testing::AssertionFailure() << a << ": " << have.size() << " cells on disk, " << want.size()
                                             << " chunks listed;";
      for (const auto& k : have)
        if (!want.count(k)) r << " orphan " << a << "/" << k;
      for (const auto& k : want)
        if (!have.count(k)) r << " missing " << a << "/" << k;
      return r;
    }
  }
  return ::testing::AssertionSuccess();
}

Box x_range(double lo, double hi, std::size_t nd = 3) {
  Box b = Box::unbounded(nd);
  b.lo[0] = lo;
  b.hi[0] = hi;
  return b;
}

zvf::PartitionSummary write_part(Store& s, const Cloud& c, const Layout& l, const Box& range) {
  return zvf::write_points_partition(s, c.view(), c.named(), l, range, kExec);
}

bool has_staging(const Store& s) { return !s.list(".zvf").empty(); }

// Random boxes, some cutting through bins, some on bin edges, plus edge cases.
std::vector<Box> query_boxes(const Cloud& c, unsigned seed, double bin) {
  const Box all = c.data_bounds();
  std::vector<Box> boxes;
  std::mt19937_64 rng(seed);
  for (int k = 0; k < 6; ++k) {
    Box b{std::vector<double>(c.nd), std::vector<double>(c.nd)};
    for (std::size_t d = 0; d < c.nd; ++d) {
      std::uniform_real_distribution<double> u(all.lo[d] - bin, all.hi[d] + bin);
      double x = u(rng), y = u(rng);
      b.lo[d] = std::min(x, y);
      b.hi[d] = std::max(x, y);
    }
    boxes.push_back(b);
  }
  for (int k = 0; k < 3; ++k) {  // exactly on bin edges: inclusive hi must keep points on it
    Box b{std::vector<double>(c.nd), std::vector<double>(c.nd)};
    for (std::size_t d = 0; d < c.nd; ++d) {
      std::uniform_int_distribution<long> e(static_cast<long>(std::floor(all.lo[d] / bin)),
                                            static_cast<long>(std::floor(all.hi[d] / bin)));
      long x = e(rng), y = e(rng);
      b.lo[d] = static_cast<double>(std::min(x, y)) * bin;
      b.hi[d] = static_cast<double>(std::max(x, y) + (k == 0 ? 0 : 1)) * bin;
    }
    boxes.push_back(b);
  }
  boxes.push_back(all);                                                        // tight around everything
  boxes.push_back(Box{std::vector<double>(c.nd, -1e9), std::vector<double>(c.nd, 1e9)});  // beyond everything
  boxes.push_back(Box{std::vector<double>(c.nd, 1e6), std::vector<double>(c.nd, 2e6)});   // nothing
  if (c.n) {  // a single point (degenerate box)
    Box p{std::vector<double>(c.nd), std::vector<double>(c.nd)};
    for (std::size_t d = 0; d < c.nd; ++d) p.lo[d] = p.hi[d] = c.coord(c.n / 2, d);
    boxes.push_back(p);
  }
  return boxes;
}

void check_bbox_reads(const Store& s, const Cloud& c, unsigned seed, double bin) {
  for (const Box& b : query_boxes(c, seed, bin)) {
    std::ostringstream text;
    text << "bbox";
    for (std::size_t d = 0; d < c.nd; ++d) text << " [" << b.lo[d] << ", " << b.hi[d] << "]";
    SCOPED_TRACE(text.str());
    EXPECT_TRUE(same_rows(read_all(s, c, b), c.inside(b)));
  }
}

// ---- one-shot write and read ---------------------------------------------------

using RoundTripParam = std::tuple<DType, std::size_t, std::string, Backend>;

class RoundTrip : public ::testing::TestWithParam<RoundTripParam> {};

TEST_P(RoundTrip, WriteThenReadSameMultiset) {
  const auto [dt, nd, codec, backend] = GetParam();
  TestStore ts(backend);
  // Files are slow to create on some disks: fewer, larger chunks on POSIX.
  const double chunk = backend == Backend::Memory ? 200 : 1000, bin = chunk / 4;
  const std::vector<double> lo(nd, -300.0), hi(nd, 700.0);
  const Cloud c = make_cloud(dt, nd, 3000, lo, hi, 11 + static_cast<unsigned>(nd), kAllAttrs, bin);
  Layout layout{std::vector<double>(nd, chunk), std::vector<double>(nd, bin), CodecSpec::from_name(codec)};

  const auto summary = zvf::write_points(*ts, c.view(), c.named(), layout, std::nullopt, kExec);
  const auto chunks = chunks_of(c, layout);
  EXPECT_EQ(summary.vertex_count, c.n);
  EXPECT_EQ(summary.chunk_count, chunks.size());
  EXPECT_EQ(summary.bins_per_chunk, std::vector<std::int64_t>(nd, 4));

  EXPECT_TRUE(same_rows(read_all(*ts, c), c));
  EXPECT_TRUE(cells_match_presence(*ts));

  const zvf::StoreInfo info = zvf::store_info(*ts);
  EXPECT_EQ(info.zv_version, "0.9.2");
  EXPECT_EQ(info.ndim, nd);
  EXPECT_EQ(info.dtype, dt);
  EXPECT_EQ(info.codec, codec);
  const Box bounds = c.data_bounds();
  EXPECT_EQ(info.bounds.lo, bounds.lo);
  EXPECT_EQ(info.bounds.hi, bounds.hi);
  ASSERT_EQ(info.attributes.size(), kAllAttrs.size());
  for (const auto& spec : kAllAttrs) {
    auto it = std::find_if(info.attributes.begin(), info.attributes.end(),
                           [&](const auto& a) { return a.name == spec.name; });
    ASSERT_NE(it, info.attributes.end()) << spec.name;
    EXPECT_EQ(it->dtype, spec.dtype) << spec.name;
    EXPECT_EQ(it->row_shape, spec.one_d ? std::vector<std::int64_t>{}
                                        : std::vector<std::int64_t>{static_cast<std::int64_t>(spec.cols)})
        << spec.name;
  }
  ASSERT_EQ(info.levels.size(), 1u);
  const auto& lv = info.levels[0];
  EXPECT_EQ(lv.level, 0);
  EXPECT_EQ(lv.vertex_count, c.n);
  EXPECT_EQ(lv.chunk_shape, layout.chunk_shape);
  EXPECT_EQ(lv.bin_shape, layout.bin_shape);
  EXPECT_EQ(lv.nonempty_chunks, chunks.size());
  zvf::ChunkCoord lo_chunk(nd), hi_chunk(nd);
  for (std::size_t d = 0; d < nd; ++d) {
    lo_chunk[d] = chunk_axis(bounds.lo[d], layout, d);
    hi_chunk[d] = chunk_axis(bounds.hi[d], layout, d);
  }
  EXPECT_EQ(lv.grid_origin, lo_chunk);
  for (std::size_t d = 0; d < nd; ++d) EXPECT_EQ(lv.grid_shape[d], hi_chunk[d] - lo_chunk[d] + 1) << "axis " << d;

  check_bbox_reads(*ts, c, 100 + static_cast<unsigned>(nd), bin);
}

INSTANTIATE_TEST_SUITE_P(
    Engine, RoundTrip,
    ::testing::Combine(::testing::Values(DType::F32, DType::F64), ::testing::Values(std::size_t{2}, std::size_t{3}),
                       ::testing::Values("none", "zstd", "blosc"), ::testing::Values(Backend::Memory, Backend::Posix)),
    [](const auto& info) {
      return std::string(zvf::dtype_name(std::get<0>(info.param))) + "_" + std::to_string(std::get<1>(info.param)) +
             "d_" + std::get<2>(info.param) + "_" + backend_name(std::get<3>(info.param));
    });

TEST(Engine, FourDimensionsNoBinsNoAttributes) {
  TestStore ts(Backend::Memory);
  const Cloud c = make_cloud(DType::F64, 4, 2000, {-10, -10, -10, -10}, {10, 10, 10, 10}, 5, {}, 2.5);
  Layout layout{{5, 5, 5, 5}, {}, {}};
  zvf::write_points(*ts, c.view(), {}, layout, std::nullopt, kExec);
  EXPECT_TRUE(same_rows(read_all(*ts, c), c));
  check_bbox_reads(*ts, c, 6, 5);
  const auto info = zvf::store_info(*ts);
  EXPECT_TRUE(info.attributes.empty());
  EXPECT_EQ(info.levels.at(0).bin_shape, layout.chunk_shape);
}

TEST(Engine, GivenBoundsDefineTheGrid) {
  TestStore ts(Backend::Memory);
  const Cloud c = make_cloud(DType::F32, 3, 2000, {0, 0, 0}, {100, 100, 100}, 7, kPartAttrs);
  const Box bounds{{-250, -1, 0}, {399, 100, 100}};
  Layout layout{{50, 50, 50}, {25, 25, 25}, {}};
  zvf::write_points(*ts, c.view(), c.named(), layout, bounds, kExec);
  const auto info = zvf::store_info(*ts);
  EXPECT_EQ(info.bounds.lo, bounds.lo);
  EXPECT_EQ(info.bounds.hi, bounds.hi);
  EXPECT_EQ(info.levels.at(0).grid_origin, (zvf::ChunkCoord{-5, -1, 0}));
  EXPECT_EQ(info.levels.at(0).grid_shape, (std::vector<std::int64_t>{13, 4, 3}));
  EXPECT_TRUE(same_rows(read_all(*ts, c), c));
  check_bbox_reads(*ts, c, 8, 25);
}

TEST(Engine, ReadSelectedAttributes) {
  TestStore ts(Backend::Memory);
  const Cloud c = make_cloud(DType::F32, 3, 2000, {0, 0, 0}, {100, 100, 100}, 9, kAllAttrs);
  zvf::write_points(*ts, c.view(), c.named(), Layout{{50, 50, 50}, {}, {}}, std::nullopt, kExec);
  ReadOptions opt;
  opt.attributes = std::vector<std::string>{"rgb", "label"};
  const PointCloud pc = zvf::read_points(*ts, opt, kExec);
  ASSERT_EQ(pc.attributes.size(), 2u);
  EXPECT_EQ(pc.attributes[0].first, "rgb");
  EXPECT_EQ(pc.attributes[1].first, "label");
  Cloud want = c;
  want.attrs = {c.attrs[1], c.attrs[2]};
  EXPECT_TRUE(same_rows(from_read(pc, want), want));
  opt.attributes = std::vector<std::string>{"nope"};
  expect_error([&] { zvf::read_points(*ts, opt, kExec); }, Error::Code::InvalidArgument, {"nope"});
}

class EngineBackend : public ::testing::TestWithParam<Backend> {};

TEST_P(EngineBackend, WriteOnExistingStoreIsConflict) {
  TestStore ts(GetParam());
  const Cloud c = make_cloud(DType::F32, 3, 2000, {0, 0, 0}, {100, 100, 100}, 12, kPartAttrs);
  Layout layout{{50, 50, 50}, {25, 25, 25}, {}};
  zvf::write_points(*ts, c.view(), c.named(), layout, std::nullopt, kExec);
  const auto before = snapshot(*ts);
  expect_error([&] { zvf::write_points(*ts, c.view(), c.named(), layout, std::nullopt, kExec); },
               Error::Code::Conflict);
  EXPECT_TRUE(same_snapshot(before, snapshot(*ts)));
  // A partitioned write on a one-shot store is refused as well.
  expect_error([&] { write_part(*ts, c, layout, x_range(-kInf, kInf)); }, Error::Code::Conflict);
  EXPECT_TRUE(same_snapshot(before, snapshot(*ts)));
  EXPECT_TRUE(same_rows(read_all(*ts, c), c));
}

TEST_P(EngineBackend, BadInputThrowsAndLeavesStoreEmpty) {
  const Cloud c = make_cloud(DType::F32, 3, 2000, {0, 0, 0}, {100, 100, 100}, 13, kPartAttrs);
  const Layout good{{50, 50, 50}, {25, 25, 25}, {}};
  struct Case {
    std::string name;
    std::function<void(Store&)> run;
    std::vector<std::string> needles;
  };
  auto with_coord = [&](std::size_t row, std::size_t d, double v) {
    Cloud bad = c;
    bad.set_coord(row, d, v);
    return bad;
  };
  const Cloud nan_cloud = with_coord(1234, 1, std::nan(""));
  const Cloud inf_cloud = with_coord(7, 2, -kInf);
  Cloud short_attr = c;
  short_attr.attrs[1].data.resize((c.n - 1) * 3);
  const std::vector<NamedArray> short_named = [&] {
    auto v = short_attr.named();
    v[1].view.rows = c.n - 1;
    return v;
  }();
  std::vector<NamedArray> dup = c.named();
  dup[1].name = dup[0].name;
  std::vector<NamedArray> badname = c.named();
  badname[0].name = "a/b";
  std::vector<double> ints(c.n * 3, 1.0);
  const std::vector<Case> cases = {
      {"nan position", [&](Store& s) { zvf::write_points(s, nan_cloud.view(), nan_cloud.named(), good, std::nullopt, kExec); },
       {"positions[1234]", "nan"}},
      {"inf position", [&](Store& s) { zvf::write_points(s, inf_cloud.view(), inf_cloud.named(), good, std::nullopt, kExec); },
       {"positions[7]", "inf"}},
      {"nan with bounds", [&](Store& s) { zvf::write_points(s, nan_cloud.view(), nan_cloud.named(), good, Box{{-1e9, -1e9, -1e9}, {1e9, 1e9, 1e9}}, kExec); },
       {"positions[1234]"}},
      {"outside bounds", [&](Store& s) { zvf::write_points(s, c.view(), c.named(), good, Box{{0, 0, 0}, {100, 50, 100}}, kExec); },
       {"bounds"}},
      {"bounds wrong ndim", [&](Store& s) { zvf::write_points(s, c.view(), c.named(), good, Box{{0, 0}, {100, 100}}, kExec); },
       {"bounds"}},
      {"attribute rows", [&](Store& s) { zvf::write_points(s, c.view(), short_named, good, std::nullopt, kExec); },
       {"rgb", std::to_string(c.n - 1), std::to_string(c.n)}},
      {"duplicate attribute", [&](Store& s) { zvf::write_points(s, c.view(), dup, good, std::nullopt, kExec); },
       {"intensity"}},
      {"bad attribute name", [&](Store& s) { zvf::write_points(s, c.view(), badname, good, std::nullopt, kExec); },
       {"a/b"}},
      {"zero chunk", [&](Store& s) { zvf::write_points(s, c.view(), c.named(), Layout{{50, 0, 50}, {}, {}}, std::nullopt, kExec); },
       {"chunk_shape"}},
      {"chunk wrong length", [&](Store& s) { zvf::write_points(s, c.view(), c.named(), Layout{{50, 50}, {}, {}}, std::nullopt, kExec); },
       {"chunk_shape"}},
      {"bin not dividing", [&](Store& s) { zvf::write_points(s, c.view(), c.named(), Layout{{250, 250, 250}, {100, 100, 100}, {}}, std::nullopt, kExec); },
       {"bin_shape"}},
      {"integer positions", [&](Store& s) {
         zvf::write_points(s, ArrayView{ints.data(), DType::I64, c.n, 3, false}, {}, good, std::nullopt, kExec);
       }, {"int64"}},
      // float16 and bool are attribute dtypes only: read as float32/64 they would be garbage.
      {"float16 positions", [&](Store& s) {
         zvf::write_points(s, ArrayView{ints.data(), DType::F16, c.n, 3, false}, {}, good, std::nullopt, kExec);
       }, {"float16", "float32 or float64"}},
      {"bool positions", [&](Store& s) {
         zvf::write_points(s, ArrayView{ints.data(), DType::Bool, c.n, 3, false}, {}, good, std::nullopt, kExec);
       }, {"bool", "float32 or float64"}},
      {"one-d positions", [&](Store& s) {
         zvf::write_points(s, ArrayView{ints.data(), DType::F64, c.n, 1, true}, {}, good, std::nullopt, kExec);
       }, {"1-D"}},
      {"five columns", [&](Store& s) {
         zvf::write_points(s, ArrayView{ints.data(), DType::F64, c.n * 3 / 5, 5, false}, {}, Layout{{1, 1, 1, 1, 1}, {}, {}}, std::nullopt, kExec);
       }, {"5"}},
      {"empty without bounds", [&](Store& s) {
         zvf::write_points(s, ArrayView{nullptr, DType::F32, 0, 3, false}, {}, good, std::nullopt, kExec);
       }, {"bounds"}},
      {"partition point outside range", [&](Store& s) { write_part(s, c, good, x_range(0, 50)); }, {"partition range"}},
      {"partition nan", [&](Store& s) { write_part(s, nan_cloud, good, x_range(-kInf, kInf)); }, {"positions[1234]"}},
      {"partition empty range", [&](Store& s) { write_part(s, c, good, x_range(50, 50)); }, {"partition range"}},
      {"partition bad chunk", [&](Store& s) { write_part(s, c, Layout{{-50, 50, 50}, {}, {}}, x_range(-kInf, kInf)); }, {"-50"}},
  };
  for (const auto& k : cases) {
    SCOPED_TRACE(k.name);
    TestStore ts(GetParam());
    expect_error([&] { k.run(*ts); }, Error::Code::InvalidArgument, k.needles);
    EXPECT_TRUE(ts.untouched()) << "the failed call left keys behind";
  }
}

INSTANTIATE_TEST_SUITE_P(Engine, EngineBackend, ::testing::Values(Backend::Memory, Backend::Posix),
                         [](const auto& info) { return backend_name(info.param); });

// ---- partitioned writes ------------------------------------------------------

// Slabs cut along x only, so one chunk across y and z keeps the file count low.
const Layout kPartLayout{{100, 150, 150}, {25, 50, 75}, {}};

Cloud part_cloud(unsigned seed, std::size_t n = 8000) {
  Cloud c = make_cloud(DType::F32, 3, n, {0, 0, 0}, {400, 150, 150}, seed, kPartAttrs);
  // Rows exactly on the non-aligned slab edges used below.
  const double edges[] = {73.25, 222.125, 251.5, 333.375, 100, 200, 300};
  for (std::size_t k = 0; k < 7; ++k)
    for (std::size_t j = 0; j < 5; ++j) c.set_coord(k * 5 + j, 0, edges[k]);
  return c;
}

const std::vector<double> kAligned = {0, 100, 200, 300, 400};
// [73.25, 222.125) holds the chunk x in [100, 200) wholly (written in place);
// every other chunk straddles a slab edge and is staged.
const std::vector<double> kUnaligned = {-kInf, 73.25, 222.125, 251.5, 333.375, kInf};

std::vector<zvf::PartitionSummary> write_slabs(Store& s, const Cloud& c, const std::vector<double>& edges,
                                               const Layout& l = kPartLayout) {
  std::vector<zvf::PartitionSummary> out;
  for (std::size_t k = 0; k + 1 < edges.size(); ++k)
    out.push_back(write_part(s, c.slab(edges[k], edges[k + 1]), l, x_range(edges[k], edges[k + 1])));
  return out;
}

class Partitions : public ::testing::TestWithParam<Backend> {};

TEST_P(Partitions, FourAlignedSlabs) {
  TestStore ts(GetParam());
  const Cloud c = part_cloud(21);
  const auto sums = write_slabs(*ts, c, kAligned);
  std::uint64_t total = 0;
  for (const auto& s : sums) {
    EXPECT_EQ(s.chunks_staged, 0u) << s.partition_id << ": chunk-aligned slabs stage nothing";
    total += s.vertex_count;
  }
  EXPECT_EQ(total, c.n);
  EXPECT_EQ(sums[0].partition_id, "x_0_100");
  expect_error([&] { zvf::read_points(*ts, {}, kExec); }, Error::Code::NotFound, {"finalise"});

  const auto rep = zvf::finalise(*ts, {}, kExec);
  EXPECT_TRUE(rep.changed);
  EXPECT_EQ(std::set<std::string>(rep.merged.begin(), rep.merged.end()),
            (std::set<std::string>{"x_0_100", "x_100_200", "x_200_300", "x_300_400"}));
  EXPECT_EQ(rep.vertex_count, c.n);
  EXPECT_EQ(rep.chunk_count, chunks_of(c, kPartLayout).size());
  ASSERT_TRUE(rep.bounds);
  EXPECT_EQ(rep.bounds->lo, c.data_bounds().lo);
  EXPECT_EQ(rep.bounds->hi, c.data_bounds().hi);
  EXPECT_TRUE(rep.gaps.empty());
  EXPECT_FALSE(has_staging(*ts));

  EXPECT_TRUE(same_rows(read_all(*ts, c), c));
  EXPECT_TRUE(cells_match_presence(*ts));
  const auto info = zvf::store_info(*ts);
  EXPECT_EQ(info.levels.at(0).vertex_count, c.n);
  EXPECT_EQ(info.levels.at(0).nonempty_chunks, chunks_of(c, kPartLayout).size());
  EXPECT_EQ(info.levels.at(0).grid_origin, (zvf::ChunkCoord{0, 0, 0}));
}

TEST_P(Partitions, FiveUnalignedSlabs) {
  TestStore ts(GetParam());
  const Cloud c = part_cloud(22);
  const auto sums = write_slabs(*ts, c, kUnaligned);
  std::uint64_t staged = 0;
  for (const auto& s : sums) staged += s.chunks_staged;
  EXPECT_GT(staged, 0u);
  EXPECT_EQ(sums[0].partition_id, "x_minf_73.25");
  EXPECT_EQ(sums[1].chunks_in_place, 1u);  // x in [100, 200)
  EXPECT_EQ(sums[2].chunks_in_place, 0u);
  const auto rep = zvf::finalise(*ts, {}, kExec);
  EXPECT_TRUE(rep.changed);
  EXPECT_EQ(rep.merged.size(), 5u);
  EXPECT_EQ(rep.vertex_count, c.n);
  EXPECT_EQ(rep.chunk_count, chunks_of(c, kPartLayout).size());
  EXPECT_FALSE(has_staging(*ts));
  EXPECT_TRUE(same_rows(read_all(*ts, c), c));
  EXPECT_TRUE(cells_match_presence(*ts));
  check_bbox_reads(*ts, c, 23, 25);
}

TEST_P(Partitions, FinaliseTwiceChangesNothing) {
  TestStore ts(GetParam());
  const Cloud c = part_cloud(24);
  write_slabs(*ts, c, kUnaligned);
  ASSERT_TRUE(zvf::finalise(*ts, {}, kExec).changed);
  const auto before = snapshot(*ts);
  const auto again = zvf::finalise(*ts, {}, kExec);
  EXPECT_FALSE(again.changed);
  EXPECT_TRUE(again.merged.empty());
  EXPECT_EQ(again.vertex_count, c.n);
  EXPECT_EQ(again.chunk_count, chunks_of(c, kPartLayout).size());
  EXPECT_TRUE(same_snapshot(before, snapshot(*ts)));
}

TEST_P(Partitions, RerunBeforeFinaliseHasNoDuplicates) {
  TestStore ts(GetParam());
  const Cloud c = part_cloud(25);
  write_slabs(*ts, c, kUnaligned);
  // Same data again for two slabs (one re-run twice).
  write_part(*ts, c.slab(73.25, 222.125), kPartLayout, x_range(73.25, 222.125));
  write_part(*ts, c.slab(251.5, 333.375), kPartLayout, x_range(251.5, 333.375));
  write_part(*ts, c.slab(251.5, 333.375), kPartLayout, x_range(251.5, 333.375));
  EXPECT_EQ(zvf::list_partitions(*ts).size(), 5u);
  const auto rep = zvf::finalise(*ts, {}, kExec);
  EXPECT_EQ(rep.vertex_count, c.n);
  EXPECT_TRUE(same_rows(read_all(*ts, c), c));
  EXPECT_TRUE(cells_match_presence(*ts));
}

TEST_P(Partitions, RerunBeforeFinaliseWithFewerPointsReplacesTheOldRun) {
  TestStore ts(GetParam());
  const Cloud c = part_cloud(26);
  write_slabs(*ts, c, kUnaligned);
  // The re-run of [73.25, 222.125) drops every point of its in-place chunk
  // x in [100, 200) and the points with y >= 40 elsewhere: the old in-place cell
  // and the old staged rows must disappear.
  const Cloud old_slab = c.slab(73.25, 222.125);
  const Cloud fewer = old_slab.filter([&](std::size_t i) {
    return (old_slab.coord(i, 0) < 100 || old_slab.coord(i, 0) >= 200) && old_slab.coord(i, 1) < 40;
  });
  write_part(*ts, fewer, kPartLayout, x_range(73.25, 222.125));
  const Cloud want = c.slab(-kInf, 73.25).concat(fewer).concat(c.slab(222.125, kInf));
  const auto rep = zvf::finalise(*ts, {}, kExec);
  EXPECT_EQ(rep.vertex_count, want.n);
  EXPECT_TRUE(same_rows(read_all(*ts, c), want));
  EXPECT_TRUE(cells_match_presence(*ts));
}

TEST_P(Partitions, RerunAfterFinaliseHasNoDuplicates) {
  TestStore ts(GetParam());
  const Cloud c = part_cloud(27);
  write_slabs(*ts, c, kUnaligned);
  zvf::finalise(*ts, {}, kExec);
  // Same data: the store must come out identical in content.
  write_part(*ts, c.slab(222.125, 251.5), kPartLayout, x_range(222.125, 251.5));
  auto rep = zvf::finalise(*ts, {}, kExec);
  EXPECT_TRUE(rep.changed);
  EXPECT_EQ(rep.merged, (std::vector<std::string>{"x_222.125_251.5"}));
  EXPECT_EQ(rep.vertex_count, c.n);
  EXPECT_TRUE(same_rows(read_all(*ts, c), c));
  EXPECT_TRUE(cells_match_presence(*ts));
  // Fewer points in [73.25, 222.125): nothing left in its in-place chunk
  // x in [100, 200), only y >= 75 in its boundary chunks. The old rows must be gone.
  const Cloud old_slab = c.slab(73.25, 222.125);
  const Cloud fewer = old_slab.filter([&](std::size_t i) {
    return (old_slab.coord(i, 0) < 100 || old_slab.coord(i, 0) >= 200) && old_slab.coord(i, 1) >= 75;
  });
  write_part(*ts, fewer, kPartLayout, x_range(73.25, 222.125));
  rep = zvf::finalise(*ts, {}, kExec);
  const Cloud want = c.slab(-kInf, 73.25).concat(fewer).concat(c.slab(222.125, kInf));
  EXPECT_EQ(rep.vertex_count, want.n);
  EXPECT_TRUE(same_rows(read_all(*ts, c), want));
  EXPECT_TRUE(cells_match_presence(*ts));
  EXPECT_EQ(zvf::store_info(*ts).levels.at(0).vertex_count, want.n);
  // And the first slab (open below) re-run after finalisation too.
  write_part(*ts, c.slab(-kInf, 73.25), kPartLayout, x_range(-kInf, 73.25));
  zvf::finalise(*ts, {}, kExec);
  EXPECT_TRUE(same_rows(read_all(*ts, c), want));
  EXPECT_TRUE(cells_match_presence(*ts));
  EXPECT_FALSE(zvf::finalise(*ts, {}, kExec).changed);
}

TEST_P(Partitions, OverlappingRangesConflictAtWriteTime) {
  TestStore ts(GetParam());
  const Cloud c = part_cloud(28, 3000);
  write_part(*ts, c.slab(0, 100), kPartLayout, x_range(0, 100));
  const auto before = snapshot(*ts);
  expect_error([&] { write_part(*ts, c.slab(50, 150), kPartLayout, x_range(50, 150)); }, Error::Code::Conflict,
               {"x_50_150", "x_0_100"});
  EXPECT_TRUE(same_snapshot(before, snapshot(*ts))) << "a refused partition must write nothing";
  // Against a finalised partition as well.
  write_part(*ts, c.slab(100, 400), kPartLayout, x_range(100, 400));
  zvf::finalise(*ts, {}, kExec);
  const auto final_state = snapshot(*ts);
  expect_error([&] { write_part(*ts, c.slab(350, 400), kPartLayout, x_range(350, kInf)); }, Error::Code::Conflict,
               {"x_350_inf", "x_100_400"});
  EXPECT_TRUE(same_snapshot(final_state, snapshot(*ts)));
  EXPECT_TRUE(same_rows(read_all(*ts, c), c));
  EXPECT_TRUE(cells_match_presence(*ts));
}

TEST_P(Partitions, MissingManifestIsConflictNamingThePartition) {
  TestStore ts(GetParam());
  const Cloud c = part_cloud(29, 3000);
  write_slabs(*ts, c, kUnaligned);
  ts->erase(".zvf/partitions/x_222.125_251.5/manifest.json");
  const auto before = snapshot(*ts);
  expect_error([&] { zvf::finalise(*ts, {}, kExec); }, Error::Code::Conflict, {"x_222.125_251.5"});
  EXPECT_TRUE(same_snapshot(before, snapshot(*ts)));
  const auto parts = zvf::list_partitions(*ts);
  ASSERT_EQ(parts.size(), 5u);
  for (const auto& p : parts) EXPECT_EQ(p.complete, p.id != "x_222.125_251.5") << p.id;
  // Re-running the partition completes it.
  write_part(*ts, c.slab(222.125, 251.5), kPartLayout, x_range(222.125, 251.5));
  zvf::finalise(*ts, {}, kExec);
  EXPECT_TRUE(same_rows(read_all(*ts, c), c));
  EXPECT_TRUE(cells_match_presence(*ts));
}

TEST_P(Partitions, GapIsConflictUnlessAllowed) {
  TestStore ts(GetParam());
  const Cloud c = part_cloud(30, 4000);
  write_part(*ts, c.slab(0, 100), kPartLayout, x_range(0, 100));
  write_part(*ts, c.slab(222.125, 400), kPartLayout, x_range(222.125, 400));
  const auto before = snapshot(*ts);
  expect_error([&] { zvf::finalise(*ts, {}, kExec); }, Error::Code::Conflict, {"gap", "100", "222.125"});
  EXPECT_TRUE(same_snapshot(before, snapshot(*ts)));
  zvf::FinaliseOptions allow;
  allow.allow_gaps = true;
  const auto rep = zvf::finalise(*ts, allow, kExec);
  EXPECT_TRUE(rep.changed);
  ASSERT_EQ(rep.gaps.size(), 1u);
  EXPECT_NE(rep.gaps[0].find("100"), std::string::npos) << rep.gaps[0];
  const Cloud want = c.slab(0, 100).concat(c.slab(222.125, 400));
  EXPECT_EQ(rep.vertex_count, want.n);
  EXPECT_TRUE(same_rows(read_all(*ts, c), want));
  EXPECT_TRUE(cells_match_presence(*ts));
}

TEST_P(Partitions, EmptyPartitionClosesAGap) {
  TestStore ts(GetParam());
  const Cloud c = part_cloud(31, 4000);
  const Cloud outside = c.filter([&](std::size_t i) { return c.coord(i, 0) < 100 || c.coord(i, 0) >= 200; });
  write_part(*ts, outside.slab(0, 100), kPartLayout, x_range(0, 100));
  write_part(*ts, outside.slab(200, 400), kPartLayout, x_range(200, 400));
  const auto empty = write_part(*ts, outside.slab(100, 200), kPartLayout, x_range(100, 200));
  EXPECT_EQ(empty.vertex_count, 0u);
  const auto rep = zvf::finalise(*ts, {}, kExec);
  EXPECT_TRUE(rep.gaps.empty());
  EXPECT_EQ(rep.vertex_count, outside.n);
  EXPECT_TRUE(same_rows(read_all(*ts, c), outside));
  EXPECT_TRUE(cells_match_presence(*ts));
}

TEST_P(Partitions, NegativeSlabsFinalisedLaterMoveTheOrigin) {
  TestStore ts(GetParam());
  Cloud c = make_cloud(DType::F32, 3, 6000, {-200, -60, 0}, {200, 60, 50}, 32, kPartAttrs);
  for (std::size_t k = 0; k < 5; ++k) c.set_coord(k, 0, -100.0 * static_cast<double>(k % 3));  // on slab edges
  const Layout l{{100, 60, 50}, {25, 30, 50}, {}};
  // Non-negative slabs first.
  write_part(*ts, c.slab(0, 100), l, x_range(0, 100));
  write_part(*ts, c.slab(100, 200), l, x_range(100, 200));
  zvf::finalise(*ts, {}, kExec);
  const Cloud pos = c.slab(0, 200);
  EXPECT_TRUE(same_rows(read_all(*ts, c), pos));
  EXPECT_TRUE(cells_match_presence(*ts));
  EXPECT_EQ(zvf::store_info(*ts).levels.at(0).grid_origin, (zvf::ChunkCoord{0, -1, 0}));
  // Then the negative ones: the chunk grid origin moves to x chunk -2.
  write_part(*ts, c.slab(-200, -100), l, x_range(-200, -100));
  write_part(*ts, c.slab(-100, 0), l, x_range(-100, 0));
  const auto rep = zvf::finalise(*ts, {}, kExec);
  EXPECT_TRUE(rep.changed);
  EXPECT_EQ(rep.vertex_count, c.n);
  EXPECT_TRUE(same_rows(read_all(*ts, c), c));
  EXPECT_TRUE(cells_match_presence(*ts));
  const auto info = zvf::store_info(*ts);
  EXPECT_EQ(info.levels.at(0).grid_origin, (zvf::ChunkCoord{-2, -1, 0}));
  EXPECT_EQ(info.levels.at(0).grid_shape, (std::vector<std::int64_t>{4, 2, 1}));
  EXPECT_EQ(info.levels.at(0).nonempty_chunks, chunks_of(c, l).size());
  check_bbox_reads(*ts, c, 33, 25);
  // A non-negative slab re-run against the moved origin stays exact.
  write_part(*ts, c.slab(0, 100), l, x_range(0, 100));
  zvf::finalise(*ts, {}, kExec);
  EXPECT_TRUE(same_rows(read_all(*ts, c), c));
  EXPECT_TRUE(cells_match_presence(*ts));
  EXPECT_FALSE(has_staging(*ts));
}

TEST_P(Partitions, DisagreeingLayoutsConflictAtWriteTime) {
  TestStore ts(GetParam());
  const Cloud c = part_cloud(34, 3000);
  write_part(*ts, c.slab(0, 100), kPartLayout, x_range(0, 100));
  const auto before = snapshot(*ts);
  expect_error([&] { write_part(*ts, c.slab(100, 200), Layout{{50, 150, 150}, {25, 50, 75}, {}}, x_range(100, 200)); },
               Error::Code::Conflict, {"chunk_shape", "x_100_200", "x_0_100"});
  expect_error([&] { write_part(*ts, c.slab(100, 200), Layout{{100, 150, 150}, {50, 50, 75}, {}}, x_range(100, 200)); },
               Error::Code::Conflict, {"bin_shape"});
  expect_error(
      [&] { write_part(*ts, c.slab(100, 200), Layout{{100, 150, 150}, {25, 50, 75}, CodecSpec::from_name("zstd")}, x_range(100, 200)); },
      Error::Code::Conflict, {"zstd"});
  Cloud f64 = c.slab(100, 200);
  f64.attrs[0].spec.dtype = DType::F64;
  f64.attrs[0].data.resize(f64.n * 8);
  expect_error([&] { write_part(*ts, f64, kPartLayout, x_range(100, 200)); }, Error::Code::Conflict,
               {"intensity", "dtype", "float64"});
  EXPECT_TRUE(same_snapshot(before, snapshot(*ts)));
}

TEST(PartitionsFinalise, DisagreeingLayoutsConflictAtFinalise) {
  // Two writers that could not see each other: their manifests meet only at finalise.
  const Cloud c = part_cloud(35, 3000);
  auto cross = [&](const Layout& second, const Cloud& second_cloud, const std::vector<std::string>& needles) {
    zvf::MemoryStore a, b;
    write_part(a, c.slab(0, 100), kPartLayout, x_range(0, 100));
    write_part(b, second_cloud, second, x_range(100, 200));
    for (const auto& k : b.list(".zvf")) a.set(k, zvf::ByteSpan(*b.get(k)));
    const auto before = snapshot(a);
    expect_error([&] { zvf::finalise(a, {}, kExec); }, Error::Code::Conflict, needles);
    EXPECT_TRUE(same_snapshot(before, snapshot(a)));
  };
  cross(Layout{{50, 150, 150}, {25, 50, 75}, {}}, c.slab(100, 200), {"chunk_shape", "x_100_200"});
  Cloud f64 = c.slab(100, 200);
  f64.attrs[0].spec.dtype = DType::F64;
  f64.attrs[0].data.resize(f64.n * 8);
  cross(kPartLayout, f64, {"intensity", "dtype"});
}

// ---- orphan cells after overlap recovery ------------------------------------

// A wrong partition written elsewhere (another node's local store), then merged
// into `s` with every file, as rsync does: its in-place cells land beside ours.
// It claims x in [350, 600), overlapping x_300_400, with points only in
// [400, 600): in-place cells at x chunks 4 and 5, where nothing else writes.
void merge_wrong_partition(Store& s) {
  const Cloud wrong = make_cloud(DType::F32, 3, 1500, {400, 0, 0}, {600, 150, 150}, 36, kPartAttrs);
  zvf::MemoryStore elsewhere;
  const auto sum = write_part(elsewhere, wrong, kPartLayout, x_range(350, 600));
  ASSERT_EQ(sum.partition_id, "x_350_600");
  ASSERT_EQ(sum.chunks_in_place, 2u);
  for (const auto& k : elsewhere.list("")) s.set(k, zvf::ByteSpan(*elsewhere.get(k)));
}

std::map<std::string, Bytes> without_root(std::map<std::string, Bytes> snap) {
  snap.erase("zarr.json");  // its ledger holds run ids, which differ from run to run
  return snap;
}

std::map<std::string, Bytes> clean_run(const Cloud& c) {
  zvf::MemoryStore clean;
  write_slabs(clean, c, kAligned);
  zvf::finalise(clean, {}, kExec);
  return without_root(snapshot(clean));
}

TEST_P(Partitions, OverlapRecoverySweepsTheDeletedPartitionsCells) {
  TestStore ts(GetParam());
  const Cloud c = part_cloud(37, 4000);
  write_slabs(*ts, c, kAligned);
  merge_wrong_partition(*ts);
  expect_error([&] { zvf::finalise(*ts, {}, kExec); }, Error::Code::Conflict, {"x_300_400", "x_350_600"});
  // Recovery: delete the wrong partition's record, re-run the slab it covered.
  ts->erase_prefix(".zvf/partitions/x_350_600");
  write_part(*ts, c.slab(300, 400), kPartLayout, x_range(300, 400));
  const auto rep = zvf::finalise(*ts, {}, kExec);
  EXPECT_TRUE(rep.changed);
  // 2 chunks x (vertices, fragments, intensity, rgb).
  EXPECT_EQ(rep.orphans_removed, 8u);
  EXPECT_TRUE(same_rows(read_all(*ts, c), c));
  EXPECT_TRUE(cells_match_presence(*ts));
  EXPECT_TRUE(same_snapshot(clean_run(c), without_root(snapshot(*ts))));
  EXPECT_FALSE(has_staging(*ts));
  const auto again = zvf::finalise(*ts, {}, kExec);
  EXPECT_FALSE(again.changed);
  EXPECT_EQ(again.orphans_removed, 0u);
}

TEST_P(Partitions, OrphansSweptWhenNothingIsLeftToMerge) {
  // The wrong partition arrives after the store was finalised; once its record
  // is deleted nothing is pending, and finalising again still removes its cells.
  TestStore ts(GetParam());
  const Cloud c = part_cloud(38, 4000);
  write_slabs(*ts, c, kAligned);
  zvf::finalise(*ts, {}, kExec);
  const auto final_state = snapshot(*ts);
  merge_wrong_partition(*ts);
  // On POSIX, a writer killed inside a cell write leaves a temporary file beside it.
  const std::string tmp = ts.path + "/0/vertices/c/4/0/0.4242-0123456789abcdef.zvftmp";
  if (GetParam() == Backend::Posix) std::ofstream(tmp) << "x";
  expect_error([&] { zvf::finalise(*ts, {}, kExec); }, Error::Code::Conflict, {"x_300_400", "x_350_600"});
  ts->erase_prefix(".zvf/partitions/x_350_600");
  const auto rep = zvf::finalise(*ts, {}, kExec);
  EXPECT_TRUE(rep.changed);
  EXPECT_EQ(rep.orphans_removed, 8u);
  EXPECT_TRUE(rep.merged.empty());
  if (GetParam() == Backend::Posix) {
    EXPECT_FALSE(fs::exists(tmp)) << "the killed writer's temporary file survived";
  }
  EXPECT_TRUE(same_snapshot(final_state, snapshot(*ts))) << "only the orphan cells may change";
  EXPECT_FALSE(has_staging(*ts));
}

TEST_P(Partitions, OrphanSweepNeverTouchesAnIncompletePartitionsCells) {
  TestStore ts(GetParam());
  const Cloud c = part_cloud(39, 4000);
  write_slabs(*ts, c, kAligned);
  merge_wrong_partition(*ts);
  // The wrong partition looks killed mid-write: it started, its manifest is gone.
  ts->erase(".zvf/partitions/x_350_600/manifest.json");
  const auto before = snapshot(*ts);
  expect_error([&] { zvf::finalise(*ts, {}, kExec); }, Error::Code::Conflict, {"x_350_600", "did not finish"});
  EXPECT_TRUE(same_snapshot(before, snapshot(*ts)));
}

// A store that runs a hook before selected operations of the store it wraps:
// lets a test act at a precise point inside finalise() (a task starting, a crash).
class HookedStore final : public Store {
 public:
  using Hook = std::function<void(const std::string& op, const std::string& key)>;
  HookedStore(Store& inner, Hook hook) : inner_(inner), hook_(std::move(hook)) {}
  std::optional<Bytes> get(const std::string& k) const override { return inner_.get(k); }
  void set(const std::string& k, zvf::ByteSpan v) override {
    hook_("set", k);
    inner_.set(k, v);
  }
  using Store::set;
  bool exists(const std::string& k) const override { return inner_.exists(k); }
  void erase(const std::string& k) override {
    hook_("erase", k);
    inner_.erase(k);
  }
  void erase_prefix(const std::string& p) override { inner_.erase_prefix(p); }
  std::vector<std::string> list(const std::string& p) const override {
    hook_("list", p);
    return inner_.list(p);
  }
  std::string describe() const override { return inner_.describe(); }
  bool root_exists() const override { return inner_.root_exists(); }
  void sync() override {
    hook_("sync", "");
    inner_.sync();
  }
  void write_back_early(bool on) override { hook_(on ? "write_back_early" : "write_back_late", ""); }

 private:
  Store& inner_;
  Hook hook_;
};

// ---- durable writes: what publishes data is written only after a sync --------

// The store operations of one call, in order: "set <key>" and "sync".
// The engine writes cells from several threads at once, hence the lock.
struct OpLog {
  std::vector<std::string> ops;
  std::mutex lock;
  HookedStore::Hook hook() {
    return [this](const std::string& op, const std::string& key) {
      const std::lock_guard<std::mutex> hold(lock);
      if (op == "set") ops.push_back("set " + key);
      else if (op == "sync" || op.starts_with("write_back")) ops.push_back(op);
    };
  }
  // Index of the first op equal to `what` (or starting with it, when prefix), or -1.
  long find(const std::string& what, bool prefix = false) const {
    for (std::size_t i = 0; i < ops.size(); ++i)
      if (prefix ? ops[i].starts_with(what) : ops[i] == what) return static_cast<long>(i);
    return -1;
  }
  long last(const std::string& prefix) const {
    for (std::size_t i = ops.size(); i-- > 0;)
      if (ops[i].starts_with(prefix)) return static_cast<long>(i);
    return -1;
  }
};

const zvf::Exec kDurable{2, {}, true};

TEST(Durable, WritePointsSyncsTheCellsBeforeTheMetadataAndTheMetadataLast) {
  const Cloud c = make_cloud(DType::F32, 3, 3000, {0, 0, 0}, {100, 100, 100}, 61, kPartAttrs);
  const Layout layout{{50, 50, 50}, {25, 25, 25}, {}};
  zvf::MemoryStore plain_store, durable_store;
  OpLog plain, durable;
  HookedStore p(plain_store, plain.hook()), d(durable_store, durable.hook());
  zvf::write_points(p, c.view(), c.named(), layout, std::nullopt, kExec);
  zvf::write_points(d, c.view(), c.named(), layout, std::nullopt, kDurable);
  EXPECT_EQ(plain.find("sync"), -1) << "a write without durable must not sync";
  const long first_sync = durable.find("sync"), last_cell = durable.last("set 0/vertices/c/");
  ASSERT_GE(first_sync, 0);
  ASSERT_GE(last_cell, 0);
  EXPECT_LT(last_cell, first_sync) << "a cell was written after the sync";
  EXPECT_GT(durable.find("set zarr.json"), first_sync) << "the root metadata went out before the cells were durable";
  ASSERT_GE(durable.ops.size(), 3u);
  EXPECT_EQ(durable.ops.front(), "write_back_early") << "the store was not asked to write back early";
  EXPECT_EQ(durable.ops.back(), "write_back_late") << "the early write-back was not turned off again";
  EXPECT_EQ(durable.ops[durable.ops.size() - 2], "sync") << "the metadata is not synced before the call returns";
  EXPECT_EQ(plain.find("write_back_early"), -1);
  // Same bytes either way.
  for (const auto& key : plain_store.list("")) EXPECT_EQ(plain_store.get(key), durable_store.get(key)) << key;
}

TEST(Durable, PyramidSyncsItsLevelsBeforeThePartRecordAndTheRoot) {
  const Cloud c = make_cloud(DType::F32, 3, 4000, {0, 0, 0}, {100, 100, 100}, 63, kPartAttrs);
  zvf::MemoryStore s;
  zvf::write_points(s, c.view(), c.named(), Layout{{50, 50, 50}, {12.5, 12.5, 12.5}, {}}, std::nullopt, kExec);
  OpLog log;
  HookedStore hooked(s, log.hook());
  zvf::PyramidOptions opt;
  opt.levels = {{2.0, 1.0, {}}};
  // One process: the level's cells, a sync, then the root that publishes the level.
  zvf::build_pyramid(hooked, opt, kDurable);
  const long sync = log.find("sync"), root = log.last("set zarr.json");
  ASSERT_GE(sync, 0);
  EXPECT_LT(log.last("set 1/vertices/c/"), sync) << "a level-1 cell written after the sync";
  EXPECT_LT(sync, root);
  EXPECT_EQ(log.ops[log.ops.size() - 2], "sync");
  EXPECT_EQ(log.ops.back(), "write_back_late");
  // In parts (on a store without levels): the part's record, which says the part
  // is done, only after a sync.
  zvf::MemoryStore s2;
  zvf::write_points(s2, c.view(), c.named(), Layout{{50, 50, 50}, {12.5, 12.5, 12.5}, {}}, std::nullopt, kExec);
  HookedStore hooked2(s2, log.hook());
  opt.part_index = 0;
  opt.part_count = 1;
  log.ops.clear();
  zvf::build_pyramid(hooked2, opt, kDurable);
  const long record = log.last("set .zvf/pyramid/part-0-of-1.json");
  ASSERT_GE(record, 0);
  EXPECT_LT(log.last("set 1/vertices/c/"), log.find("sync"));
  EXPECT_LT(log.find("sync"), record);
}

TEST(Durable, PartitionSyncsItsCellsBeforeItsManifestAndFinaliseBeforeItsMetadata) {
  zvf::MemoryStore s;
  const Cloud c = part_cloud(62, 3000);
  OpLog log;
  HookedStore hooked(s, log.hook());
  // Unaligned: this slab has cells in place and staged pieces.
  zvf::write_points_partition(hooked, c.slab(-kInf, 222.125).view(), c.slab(-kInf, 222.125).named(), kPartLayout,
                              x_range(-kInf, 222.125), kDurable);
  const long manifest = log.last("set .zvf/partitions/x_minf_222.125/manifest.json");
  ASSERT_GE(manifest, 0) << "no manifest written";
  const long sync = log.find("sync");
  ASSERT_GE(sync, 0);
  EXPECT_LT(sync, manifest);
  EXPECT_LT(log.last("set 0/vertices/c/"), sync) << "a cell written in place after the sync";
  EXPECT_LT(log.last("set .zvf/partitions/x_minf_222.125/pieces/"), sync) << "a piece written after the sync";

  write_part(s, c.slab(222.125, kInf), kPartLayout, x_range(222.125, kInf));
  log.ops.clear();
  const auto rep = zvf::finalise(hooked, {}, kDurable);
  EXPECT_EQ(rep.vertex_count, c.n);
  const long meta_sync = log.find("sync"), root = log.find("set zarr.json");
  ASSERT_GE(meta_sync, 0);
  ASSERT_GE(root, 0);
  EXPECT_LT(log.last("set 0/vertices/c/"), meta_sync) << "a merged cell written after the sync";
  EXPECT_LT(meta_sync, root);
  EXPECT_EQ(log.ops[log.ops.size() - 2], "sync");
  EXPECT_EQ(log.ops.back(), "write_back_late");
  EXPECT_TRUE(same_rows(read_all(s, c), c));
}

TEST(PartitionsFinalise, TaskStartingDuringTheSweepIsRefusedAndFinaliseRepeatsSafely) {
  zvf::MemoryStore s;
  const Cloud c = part_cloud(40, 4000);
  // Finalised without the last slab, which then runs: its pieces go into the
  // boundary chunk x in [300, 400) that the store already holds.
  write_slabs(s, c, {-kInf, 73.25, 222.125, 333.375});
  zvf::finalise(s, {}, kExec);
  write_part(s, c.slab(333.375, kInf), kPartLayout, x_range(333.375, kInf));
  merge_wrong_partition(s);
  s.erase_prefix(".zvf/partitions/x_350_600");  // its cells stay: orphans
  // While finalise lists cells for the sweep, a new task starts (after the scan).
  std::atomic<bool> started{false};  // hooks run on the engine's threads
  HookedStore hooked(s, [&](const std::string& op, const std::string& key) {
    if (op == "list" && key == "0/vertices/c" && !started.exchange(true)) {
      s.set(".zvf/partitions/y_0_10/started.json", std::string(R"({"id": "y_0_10", "run_id": "r1", "range": null})"));
    }
    EXPECT_FALSE(op == "erase" && key.starts_with("0/")) << "a cell was erased: " << key;
  });
  expect_error([&] { zvf::finalise(hooked, {}, kExec); }, Error::Code::Conflict, {"changed while finalising"});
  ASSERT_TRUE(started);
  EXPECT_TRUE(s.exists("0/vertices/c/4/0/0")) << "the refused sweep removed a cell";
  // The task goes away (here: its record is removed); finalising again must give
  // the right rows, although the boundary cell was already rebuilt once.
  s.erase_prefix(".zvf/partitions/y_0_10");
  const auto rep = zvf::finalise(s, {}, kExec);
  EXPECT_EQ(rep.orphans_removed, 8u);
  EXPECT_EQ(rep.vertex_count, c.n);
  EXPECT_TRUE(same_rows(read_all(s, c), c));
  EXPECT_TRUE(cells_match_presence(s));
}

TEST(PartitionsFinalise, CrashBeforeTheMetadataThenFinaliseAgainHasNoDuplicates) {
  // A finalisation that dies after rebuilding boundary cells (step 3) but before
  // writing metadata must be repeatable: new pieces are not merged twice.
  zvf::MemoryStore s;
  const Cloud c = part_cloud(41, 4000);
  write_slabs(s, c, {-kInf, 73.25, 222.125, 333.375});
  zvf::finalise(s, {}, kExec);
  write_part(s, c.slab(333.375, kInf), kPartLayout, x_range(333.375, kInf));
  std::atomic<bool> crashed{false};
  HookedStore hooked(s, [&](const std::string& op, const std::string& key) {
    if (op == "set" && key == "0/vertices/zarr.json" && !crashed.exchange(true)) {
      throw zvf::Error(Error::Code::IO, "injected crash before the metadata");
    }
  });
  expect_error([&] { zvf::finalise(hooked, {}, kExec); }, Error::Code::IO, {"injected"});
  ASSERT_TRUE(crashed);
  const auto rep = zvf::finalise(s, {}, kExec);
  EXPECT_EQ(rep.vertex_count, c.n);
  EXPECT_TRUE(same_rows(read_all(s, c), c));
  EXPECT_TRUE(cells_match_presence(s));
}

INSTANTIATE_TEST_SUITE_P(Engine, Partitions, ::testing::Values(Backend::Memory, Backend::Posix),
                         [](const auto& info) { return backend_name(info.param); });

// ---- reading damaged or missing stores -----------------------------------------

TEST(ReadErrors, EmptyMemoryStoreIsNotFound) {
  zvf::MemoryStore s;
  expect_error([&] { zvf::read_points(s, {}, kExec); }, Error::Code::NotFound);
  expect_error([&] { zvf::store_info(s); }, Error::Code::NotFound);
  expect_error([&] { zvf::finalise(s, {}, kExec); }, Error::Code::NotFound);
}

TEST(ReadErrors, MissingDirectoryIsNotFound) {
  TempDir dir;
  zvf::PosixStore s(dir.path() + "/absent.zarrvectors");
  expect_error([&] { zvf::read_points(s, {}, kExec); }, Error::Code::NotFound, {"absent.zarrvectors"});
  EXPECT_FALSE(fs::exists(dir.path() + "/absent.zarrvectors"));
}

class ReadErrorsCodec : public ::testing::TestWithParam<std::string> {};

TEST_P(ReadErrorsCodec, TruncatedVerticesCellIsCorruptNamingTheKey) {
  zvf::MemoryStore s;
  const Cloud c = make_cloud(DType::F32, 3, 2000, {0, 0, 0}, {100, 100, 100}, 40, kPartAttrs);
  zvf::write_points(s, c.view(), c.named(), Layout{{50, 50, 50}, {25, 25, 25}, CodecSpec::from_name(GetParam())},
                    std::nullopt, kExec);
  auto keys = s.list("0/vertices/c");
  ASSERT_FALSE(keys.empty());
  std::sort(keys.begin(), keys.end());
  const std::string victim = keys.back();
  s.set(victim, std::string("abc"));
  expect_error([&] { zvf::read_points(s, {}, kExec); }, Error::Code::Corrupt, {victim});
  ReadOptions box;
  box.bbox = Box{{-1, -1, -1}, {101, 101, 101}};
  expect_error([&] { zvf::read_points(s, box, kExec); }, Error::Code::Corrupt, {victim});
}

TEST_P(ReadErrorsCodec, TruncatedAttributeCellIsCorruptNamingTheKey) {
  zvf::MemoryStore s;
  const Cloud c = make_cloud(DType::F64, 3, 2000, {0, 0, 0}, {100, 100, 100}, 41, kPartAttrs);
  zvf::write_points(s, c.view(), c.named(), Layout{{50, 50, 50}, {25, 25, 25}, CodecSpec::from_name(GetParam())},
                    std::nullopt, kExec);
  auto keys = s.list("0/vertex_attributes/rgb/c");
  ASSERT_FALSE(keys.empty());
  const std::string victim = keys.front();
  const auto good = *s.get(victim);
  s.set(victim, zvf::ByteSpan(good.data(), good.size() / 2));
  expect_error([&] { zvf::read_points(s, {}, kExec); }, Error::Code::Corrupt, {victim});
}

TEST_P(ReadErrorsCodec, DamagedFragmentCellIsCorruptOnBboxRead) {
  zvf::MemoryStore s;
  const Cloud c = make_cloud(DType::F32, 3, 2000, {0, 0, 0}, {100, 100, 100}, 42, kPartAttrs);
  const CodecSpec codec = CodecSpec::from_name(GetParam());
  zvf::write_points(s, c.view(), c.named(), Layout{{50, 50, 50}, {25, 25, 25}, codec}, std::nullopt, kExec);
  const std::string victim = "0/vertex_fragments/c/0/0/0";
  ASSERT_TRUE(s.exists(victim));
  const Bytes junk = zvf::encode_cell(zvf::ByteSpan(Bytes(20, 0x7F)), codec);  // decodes, but no 'ZVFG' magic
  s.set(victim, zvf::ByteSpan(junk));
  ReadOptions box;
  box.bbox = Box{{10, 10, 10}, {40, 40, 40}};  // cuts through bins of chunk (0,0,0)
  expect_error([&] { zvf::read_points(s, box, kExec); }, Error::Code::Corrupt, {victim});
}

INSTANTIATE_TEST_SUITE_P(Engine, ReadErrorsCodec, ::testing::Values("none", "zstd", "blosc"));

// Uncompressed reads of everything go straight into the result (sizes first, then
// each cell into place); they must return what the staged bbox path returns and
// refuse the same damage.
class ReadInPlace : public ::testing::TestWithParam<Backend> {
 protected:
  std::unique_ptr<TempDir> dir_;
  std::shared_ptr<zvf::Store> make() {
    if (GetParam() == Backend::Memory) return std::make_shared<zvf::MemoryStore>();
    dir_ = std::make_unique<TempDir>();
    return std::make_shared<zvf::PosixStore>(dir_->path() + "/s.zarrvectors");
  }
  // Writes a small uncompressed cloud; returns the sorted cell keys of one array.
  std::vector<std::string> write_and_list(zvf::Store& s, std::uint64_t seed, const std::string& cells) {
    const Cloud c = make_cloud(DType::F32, 3, 2000, {0, 0, 0}, {100, 100, 100}, seed, kPartAttrs);
    zvf::write_points(s, c.view(), c.named(), Layout{{50, 50, 50}, {25, 25, 25}, {}}, std::nullopt, kExec);
    auto keys = s.list(cells);
    std::sort(keys.begin(), keys.end());
    return keys;
  }
  // Stores `bytes` as the cell `victim`; a read of everything must then fail naming it and `why`.
  static void expect_corrupt_with(zvf::Store& s, const std::string& victim, const Bytes& bytes, const std::string& why) {
    s.set(victim, zvf::ByteSpan(bytes));
    expect_error([&] { zvf::read_points(s, {}, kExec); }, Error::Code::Corrupt, {victim, why});
  }
};

TEST_P(ReadInPlace, EqualsTheStagedReadByteForByte) {
  auto s = make();
  const Cloud c = make_cloud(DType::F64, 3, 5000, {-50, 0, 0}, {100, 100, 100}, 44, kPartAttrs);
  zvf::write_points(*s, c.view(), c.named(), Layout{{50, 50, 50}, {25, 25, 25}, {}}, std::nullopt, kExec);
  ASSERT_TRUE(s->sizes_are_cheap());
  const auto all = zvf::read_points(*s, {}, kExec);
  ReadOptions box;
  box.bbox = Box{{-1000, -1000, -1000}, {1000, 1000, 1000}};
  const auto staged = zvf::read_points(*s, box, kExec);
  ASSERT_EQ(all.positions.rows, c.n);
  EXPECT_EQ(all.positions.data, staged.positions.data);
  ASSERT_EQ(all.attributes.size(), staged.attributes.size());
  for (std::size_t k = 0; k < all.attributes.size(); ++k) {
    EXPECT_EQ(all.attributes[k].first, staged.attributes[k].first);
    EXPECT_EQ(all.attributes[k].second.data, staged.attributes[k].second.data);
  }
  EXPECT_TRUE(same_rows(from_read(all, c), c));
}

TEST_P(ReadInPlace, HeaderThatLiesAboutTheLengthIsCorrupt) {
  auto s = make();
  const auto keys = write_and_list(*s, 45, "0/vertices/c");
  ASSERT_FALSE(keys.empty());
  const std::string victim = keys.front();
  const Bytes good = *s->get(victim);
  ASSERT_GT(good.size(), 8u);
  Bytes longer = good, two = good;
  longer[4] ^= 0x01;  // the length field, same file size
  two[0] = 2;         // two elements
  expect_corrupt_with(*s, victim, longer, "length field");
  expect_corrupt_with(*s, victim, two, "2 elements");
}

TEST_P(ReadInPlace, MissingOrResizedAttributeCellIsCorrupt) {
  auto s = make();
  const auto keys = write_and_list(*s, 46, "0/vertex_attributes/rgb/c");
  ASSERT_FALSE(keys.empty());
  const std::string victim = keys.back();
  Bytes cell = *s->get(victim);
  cell.push_back(0);  // one byte too many
  expect_corrupt_with(*s, victim, cell, "expected");
  s->erase(victim);
  expect_error([&] { zvf::read_points(*s, {}, kExec); }, Error::Code::Corrupt, {victim, "missing"});
}

INSTANTIATE_TEST_SUITE_P(Engine, ReadInPlace, ::testing::Values(Backend::Memory, Backend::Posix),
                         [](const auto& info) { return backend_name(info.param); });

TEST(ReadErrors, MissingLevelIsNotFoundNamingTheLevel) {
  zvf::MemoryStore s;
  const Cloud c = make_cloud(DType::F32, 3, 2000, {0, 0, 0}, {100, 100, 100}, 43, {});
  zvf::write_points(s, c.view(), {}, Layout{{50, 50, 50}, {}, {}}, std::nullopt, kExec);
  ReadOptions opt;
  opt.level = 1;
  expect_error([&] { zvf::read_points(s, opt, kExec); }, Error::Code::NotFound, {"level 1"});
  opt.level = 7;
  expect_error([&] { zvf::read_points(s, opt, kExec); }, Error::Code::NotFound, {"level 7"});
  EXPECT_EQ(zvf::store_info(s).levels.size(), 1u);
}

// ---- damage found by fuzzing (cpp/fuzz, docs/fuzzing.md) -----------------------
// Each must surface as zvf::Error naming the key, never as another exception
// (nlohmann::json's), a sanitizer report or a read past a buffer.

nlohmann::json get_doc(const Store& s, const std::string& key) {
  const auto b = s.get(key);
  EXPECT_TRUE(b.has_value()) << key;
  return nlohmann::json::parse(b->begin(), b->end());
}

void put_doc(Store& s, const std::string& key, const nlohmann::json& doc) { s.set(key, doc.dump()); }

// `edit` applied to a copy of a fresh store's document `key`.
template <class F>
void with_doc(zvf::MemoryStore& s, const std::string& key, F&& edit) {
  const Cloud c = make_cloud(DType::F32, 3, 500, {0, 0, 0}, {100, 100, 100}, 44, kPartAttrs);
  zvf::write_points(s, c.view(), c.named(), Layout{{50, 50, 50}, {25, 25, 25}, {}}, std::nullopt, kExec);
  nlohmann::json doc = get_doc(s, key);
  edit(doc);
  put_doc(s, key, doc);
}

TEST(ReadErrors, ZvVersionOfTheWrongTypeIsCorrupt) {
  zvf::MemoryStore s;
  with_doc(s, "zarr.json", [](auto& d) { d["attributes"]["zarr_vectors"]["zv_version"] = nullptr; });
  expect_error([&] { zvf::store_info(s); }, Error::Code::Corrupt, {"zarr.json"});
  expect_error([&] { zvf::read_points(s, {}, kExec); }, Error::Code::Corrupt, {"zarr.json"});
}

TEST(ReadErrors, ArrayShapeOfTheWrongLengthIsCorrupt) {
  zvf::MemoryStore s;
  with_doc(s, "0/vertices/zarr.json", [](auto& d) { d["shape"] = {2}; });
  expect_error([&] { zvf::store_info(s); }, Error::Code::Corrupt,
               {"0/vertices/zarr.json", "shape has 1 values, expected 3"});
  zvf::PyramidOptions opt;
  opt.levels = {{2.0, 1.0, {}}};
  expect_error([&] { zvf::build_pyramid(s, opt, kExec); }, Error::Code::Corrupt, {"shape"});
}

TEST(ReadErrors, FloatsWhereIntegersBelongAreCorrupt) {
  // nlohmann's get<int64_t>() of 1e300 is undefined behaviour: refused before it.
  const std::vector<std::pair<std::string, std::function<void(nlohmann::json&)>>> cases = {
      {"chunk_grid_origin", [](auto& d) { d["attributes"]["chunk_grid_origin"] = {1e300, 0, 0}; }},
      {"shape", [](auto& d) { d["shape"] = {2.5, 2, 2}; }},
      {"row_shape", [](auto& d) { d["attributes"]["row_shape"] = {1e300}; }},
  };
  for (const auto& [needle, edit] : cases) {
    SCOPED_TRACE(needle);
    zvf::MemoryStore s;
    with_doc(s, "0/vertex_attributes/rgb/zarr.json", edit);
    expect_error([&] { zvf::read_points(s, {}, kExec); }, Error::Code::Corrupt, {"rgb/zarr.json", needle});
  }
  zvf::MemoryStore s;
  with_doc(s, "0/zarr.json", [](auto& d) { d["attributes"]["zarr_vectors_level"]["vertex_count"] = -1e300; });
  expect_error([&] { zvf::store_info(s); }, Error::Code::Corrupt, {"0/zarr.json", "vertex_count"});
}

// Store::list(prefix) includes the prefix itself when a value has that name; callers
// cut "<prefix>/" off every key and read past the end of this one.
TEST(ReadErrors, ValueNamedLikeADirectoryIsCorruptNotOutOfRange) {
  zvf::MemoryStore s;
  with_doc(s, "0/vertices/zarr.json", [](auto& d) { d["attributes"].erase("nonempty_chunks"); });  // list the cells
  s.set("0/vertices/c", std::string("x"));
  expect_error([&] { zvf::read_points(s, {}, kExec); }, Error::Code::Corrupt, {"0/vertices/c is a value"});
  s.erase("0/vertices/c");
  s.set(".zvf/partitions", std::string("x"));
  EXPECT_TRUE(zvf::list_partitions(s).empty());
}

// Two partitions sharing the chunk x in [100, 200): both stage a piece of it.
void two_staged_partitions(Store& s) {
  const Cloud c = part_cloud(45, 2000);
  write_slabs(s, c, {-kInf, 150, kInf});
}

TEST(PartitionsFinalise, ManifestWithWrongTypesIsCorruptNotAJsonError) {
  const std::vector<std::pair<std::string, std::function<void(nlohmann::json&)>>> cases = {
      {"malformed box", [](auto& m) { m["range"][0][1] = {1}; }},
      {"missing field 'bounds'", [](auto& m) { m.erase("bounds"); }},
      {"on axis 0, expected finite positions", [](auto& m) { m["bounds"][1][0] = 1e300; }},
      {"field 'origin' must hold whole numbers", [](auto& m) { m["origin"] = {0.5, 0, 0}; }},
      {"origin has 2 values, expected 3", [](auto& m) { m["origin"] = {0, 0}; }},
  };
  for (const auto& [needle, edit] : cases) {
    SCOPED_TRACE(needle);
    zvf::MemoryStore s;
    two_staged_partitions(s);
    const auto ids = zvf::list_partitions(s);
    ASSERT_EQ(ids.size(), 2u);
    const std::string manifest = ".zvf/partitions/" + ids[0].id + "/manifest.json";
    nlohmann::json m = get_doc(s, manifest);
    edit(m);
    put_doc(s, manifest, m);
    expect_error([&] { zvf::list_partitions(s); }, Error::Code::Corrupt, {manifest, needle});
    expect_error([&] { zvf::finalise(s, {}, kExec); }, Error::Code::Corrupt, {manifest, needle});
  }
}

TEST(PartitionsFinalise, LedgerOriginOfTheWrongLengthIsCorrupt) {
  zvf::MemoryStore s;
  two_staged_partitions(s);
  zvf::finalise(s, {}, kExec);
  nlohmann::json root = get_doc(s, "zarr.json");
  root["attributes"]["zvf"]["origin"] = {0, 0};  // cell keys were built from it axis by axis, past its end
  put_doc(s, "zarr.json", root);
  expect_error([&] { zvf::finalise(s, {}, kExec); }, Error::Code::Corrupt, {"'zvf'", "origin has 2 values, expected 3"});
}

TEST(PartitionsFinalise, DamagedRekeyJournalIsCorrupt) {
  // The journal finalisation leaves when killed while moving cells to a new origin.
  const std::vector<std::pair<std::string, nlohmann::json>> cases = {
      {"'from' must be 3 integers", nlohmann::json::object()},  // was operator[] of a missing key
      {"'to' must be 3 integers", {{"from", {0, 0, 0}}, {"to", {0, 0}}, {"phase", "B"}, {"keys", {"0.0.0"}}}},
      {"'keys' must be a list", {{"from", {0, 0, 0}}, {"to", {-1, 0, 0}}, {"phase", "B"}, {"keys", 5}}},
      {"'phase' must be", {{"from", {0, 0, 0}}, {"to", {-1, 0, 0}}, {"phase", 1}, {"keys", nlohmann::json::array()}}},
  };
  for (const auto& [needle, journal] : cases) {
    SCOPED_TRACE(needle);
    zvf::MemoryStore s;
    two_staged_partitions(s);
    zvf::finalise(s, {}, kExec);
    put_doc(s, ".zvf/rekey.json", journal);
    expect_error([&] { zvf::finalise(s, {}, kExec); }, Error::Code::Corrupt, {".zvf/rekey.json", needle});
  }
}

TEST(PartitionsFinalise, PieceWhoseBinCountsDisagreeWithItsRowsIsCorrupt) {
  zvf::MemoryStore s;
  two_staged_partitions(s);
  const auto pieces = s.list(".zvf/partitions/" + zvf::list_partitions(s)[0].id + "/pieces");
  ASSERT_FALSE(pieces.empty());
  Bytes piece = *s.get(pieces[0]);
  // Header: "ZVFP", u32 version, u64 rows, u32 bins, then i64 count per bin.
  const std::int64_t huge = std::int64_t{1} << 40;
  std::memcpy(piece.data() + 20, &huge, 8);
  s.set(pieces[0], zvf::ByteSpan(piece));
  expect_error([&] { zvf::finalise(s, {}, kExec); }, Error::Code::Corrupt, {pieces[0], "bin counts"});
}

}  // namespace
