// Spatial binning and the sort into storage order (engine/sorting.hpp, as the
// writers use it: sort_points then chunk_view) checked against a brute-force
// std::map grouping, on float32 and float64 points with negative coordinates
// and points on chunk and bin edges, through all paths: direct (the full key
// computed once; narrow 16-bit keys with their bin counts, or wide 32-bit keys
// whose bins chunk_view counts), two-level (by chunk, then bins computed per
// chunk) and sparse (huge chunk bounding box, grouped through a hash map).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "engine/binning.hpp"
#include "engine/cells.hpp"
#include "engine/input.hpp"
#include "engine/parallel.hpp"
#include "engine/sorting.hpp"
#include "zvf/grid.hpp"
#include "zvf/types.hpp"

using zvf::ArrayView;
using zvf::ChunkCoord;
using zvf::DType;
using zvf::Grid;
using zvf::detail::ChunkedPoints;

namespace {

// Positions held as either float or double rows.
struct Points {
  DType dtype = DType::F64;
  std::size_t nd = 3;
  std::vector<float> f;
  std::vector<double> d;
  std::size_t rows() const { return (dtype == DType::F32 ? f.size() : d.size()) / nd; }
  double at(std::size_t i, std::size_t k) const {
    return dtype == DType::F32 ? static_cast<double>(f[i * nd + k]) : d[i * nd + k];
  }
  void push(const std::vector<double>& p) {
    for (double x : p) {
      if (dtype == DType::F32) f.push_back(static_cast<float>(x));
      else d.push_back(x);
    }
  }
  ArrayView view() const {
    ArrayView v;
    v.data = dtype == DType::F32 ? static_cast<const void*>(f.data()) : static_cast<const void*>(d.data());
    v.dtype = dtype;
    v.rows = rows();
    v.cols = nd;
    return v;
  }
};

// Reference bin index: the unique b with b*bin <= p < (b+1)*bin in double
// arithmetic, found by search from a long double estimate.
std::int64_t ref_bin(double p, double bin) {
  auto b = static_cast<std::int64_t>(std::floor(static_cast<long double>(p) / static_cast<long double>(bin)));
  while (static_cast<double>(b) * bin > p) --b;
  while (static_cast<double>(b + 1) * bin <= p) ++b;
  return b;
}

std::int64_t ref_floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if (q * b > a) --q;
  return q;
}

struct RefPoint {
  ChunkCoord chunk;
  std::int64_t frag = 0;
};

RefPoint ref_locate(const Points& pts, std::size_t i, const Grid& g) {
  RefPoint r;
  r.chunk.resize(pts.nd);
  std::int64_t stride = 1;
  std::vector<std::int64_t> local(pts.nd);
  for (std::size_t k = 0; k < pts.nd; ++k) {
    const std::int64_t b = ref_bin(pts.at(i, k), g.bin_shape[k]);
    r.chunk[k] = ref_floor_div(b, g.bins_per_chunk[k]);
    local[k] = b - r.chunk[k] * g.bins_per_chunk[k];
  }
  for (std::size_t k = pts.nd; k-- > 0;) {
    r.frag += local[k] * stride;
    stride *= g.bins_per_chunk[k];
  }
  return r;
}

enum class Path { Direct, Wide, TwoLevel, Any };

Path path_taken(const zvf::detail::SortedPoints& s) {
  if (!s.bin_counts.empty()) return Path::Direct;
  return s.bins.size != 0 ? Path::Wide : Path::TwoLevel;
}

// Sorts with the library (sort_points + chunk_view, as the writers do) and
// checks everything against the brute-force reference. A uint64 attribute
// carries each row's input index through the sort; with `two_attrs`, a second
// (uint32, 3 columns) must travel with it.
void check_binning(const Points& pts, const Grid& g, int threads, Path path = Path::Any, bool two_attrs = false) {
  const ArrayView v = pts.view();
  const std::size_t n = v.rows;
  std::vector<std::uint64_t> row_ids(n);
  for (std::size_t i = 0; i < n; ++i) row_ids[i] = i;
  std::vector<std::uint32_t> triples(n * 3);
  for (std::size_t i = 0; i < n * 3; ++i) triples[i] = static_cast<std::uint32_t>(i * 7 + 1);
  std::vector<zvf::NamedArray> attrs{{"row", ArrayView{row_ids.data(), DType::U64, n, 1, true}}};
  if (two_attrs) attrs.push_back({"triple", ArrayView{triples.data(), DType::U32, n, 3, false}});
  zvf::Layout layout;
  layout.chunk_shape = g.chunk_shape;
  layout.bin_shape = g.bin_shape;
  const auto in = zvf::detail::check_input(v, attrs, layout, threads);
  const zvf::detail::CellLayout cl{pts.nd, pts.dtype, in.attr_specs, {}, g.bins_per_chunk_total()};
  const auto sorted = zvf::detail::sort_points(in, cl, threads);
  if (path != Path::Any) {
    EXPECT_EQ(static_cast<int>(path_taken(sorted)), static_cast<int>(path)) << "unexpected sort path";
  }

  // Brute force: chunk -> (fragment -> rows in input order).
  std::map<ChunkCoord, std::map<std::int64_t, std::vector<std::uint64_t>>> ref;
  for (std::size_t i = 0; i < n; ++i) {
    const RefPoint where = ref_locate(pts, i, g);
    ref[where.chunk][where.frag].push_back(i);
  }
  ASSERT_EQ(sorted.offsets.size(), sorted.chunks.size() + 1);
  EXPECT_EQ(sorted.offsets.front(), 0u);
  EXPECT_EQ(sorted.offsets.back(), n);
  ASSERT_EQ(sorted.chunks.size(), ref.size());

  zvf::detail::ChunkScratch scratch;
  const std::size_t prow = cl.vertex_row_bytes();
  std::size_t k = 0;
  for (const auto& [chunk, frags] : ref) {
    SCOPED_TRACE("chunk " + zvf::dotted_key(chunk));
    ASSERT_EQ(sorted.chunks[k], chunk);
    const auto view = sorted.chunk_view(k, cl, scratch);
    ASSERT_EQ(view.count, sorted.offsets[k + 1] - sorted.offsets[k]);
    ASSERT_EQ(view.attrs.size(), two_attrs ? 2u : 1u);
    ASSERT_EQ(view.attrs[0].size(), view.count * 8);
    ASSERT_EQ(view.vertices.size(), view.count * prow);
    std::vector<std::uint64_t> got(view.count);
    std::memcpy(got.data(), view.attrs[0].data(), view.count * 8);
    // Expected order: fragment by fragment, input order inside each fragment.
    std::vector<std::uint64_t> expect;
    std::vector<std::int64_t> expect_counts(static_cast<std::size_t>(g.bins_per_chunk_total()), 0);
    for (const auto& [f, rows] : frags) {
      expect.insert(expect.end(), rows.begin(), rows.end());
      expect_counts[static_cast<std::size_t>(f)] = static_cast<std::int64_t>(rows.size());
    }
    EXPECT_EQ(*view.frag_counts, expect_counts);
    ASSERT_EQ(got, expect);
    // The position rows moved with their ids.
    const auto* src = static_cast<const std::uint8_t*>(v.data);
    for (std::size_t j = 0; j < got.size(); ++j) {
      ASSERT_EQ(std::memcmp(view.vertices.data() + j * prow, src + got[j] * prow, prow), 0) << "row " << got[j];
      if (two_attrs) {
        ASSERT_EQ(std::memcmp(view.attrs[1].data() + j * 12, &triples[got[j] * 3], 12), 0) << "row " << got[j];
      }
    }
    ++k;
  }
}

// Random points in [lo, hi) per axis plus points exactly on and one ulp around
// chunk and bin edges, interleaved so edge rows are spread through the input.
Points make_points(DType dt, std::size_t nd, std::size_t n, double lo, double hi, const Grid& g, unsigned seed) {
  Points pts;
  pts.dtype = dt;
  pts.nd = nd;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  std::uniform_int_distribution<int> pick(0, 5);
  for (std::size_t i = 0; i < n; ++i) {
    std::vector<double> p(nd);
    for (std::size_t k = 0; k < nd; ++k) {
      double x = u(rng);
      const int mode = pick(rng);
      if (mode >= 3) {  // snap to a bin edge (mode 3), a chunk edge (4), or next to one (5)
        const double step = mode == 4 ? g.chunk_shape[k] : g.bin_shape[k];
        const double e = static_cast<double>(static_cast<std::int64_t>(std::floor(x / step))) * step;
        if (dt == DType::F32) {
          const float ef = static_cast<float>(e);
          x = mode == 5 ? std::nextafter(ef, (i & 1) ? 1e30f : -1e30f) : ef;
        } else {
          x = mode == 5 ? std::nextafter(e, (i & 1) ? 1e300 : -1e300) : e;
        }
      }
      p[k] = x;
    }
    pts.push(p);
  }
  return pts;
}

}  // namespace

TEST(Binning, Float32DenseWithNegativesAndEdges) {
  Grid g = Grid::make({100, 100, 100}, {25, 50, 100}, 3);
  Points pts = make_points(DType::F32, 3, 20000, -500, 500, g, 1);
  check_binning(pts, g, 1, Path::Direct);   // 1000 chunks x 8 bins
  check_binning(pts, g, 2, Path::Direct);
}

TEST(Binning, Float64DenseWithAwkwardBinSizes) {
  // bin 0.1 into chunk 0.3 is "whole" only up to rounding: edges are inexact.
  Grid g = Grid::make({0.3, 0.7, 1.1}, {0.1, 0.35, 1.1}, 3);
  Points pts = make_points(DType::F64, 3, 20000, -3, 3, g, 2);
  check_binning(pts, g, 2);
}

TEST(Binning, Float32AwkwardBinSizes) {
  Grid g = Grid::make({0.3, 0.7}, {0.1, 0.07}, 2);
  Points pts = make_points(DType::F32, 2, 20000, -2, 2, g, 3);
  check_binning(pts, g, 1);
}

TEST(Binning, TwoAndFourDimensions) {
  Grid g2 = Grid::make({10, 20}, {5, 5}, 2);
  check_binning(make_points(DType::F64, 2, 5000, -55, 55, g2, 4), g2, 1);
  Grid g4 = Grid::make({4, 4, 4, 4}, {2, 1, 4, 2}, 4);
  check_binning(make_points(DType::F32, 4, 5000, -9, 9, g4, 5), g4, 1);
}

TEST(Binning, SingleBinPerChunk) {
  Grid g = Grid::make({10, 10, 10}, {}, 3);
  check_binning(make_points(DType::F64, 3, 3000, -30, 30, g, 6), g, 1);
}

TEST(Binning, OnePointAndOneChunk) {
  Grid g = Grid::make({10, 10}, {5, 5}, 2);
  Points one;
  one.dtype = DType::F64;
  one.nd = 2;
  one.push({-0.0, 10.0});
  check_binning(one, g, 1);
  Points same;
  same.dtype = DType::F32;
  same.nd = 2;
  for (int i = 0; i < 100; ++i) same.push({1.0 + (i % 7), 2.0 + (i % 3)});
  check_binning(same, g, 1);
}

TEST(Binning, WideKeysWhenTheKeySpaceIsLarge) {
  // 1000 chunks x 64 bins: too many keys to count each, so they are counted by
  // chunk and chunk_view counts the bins.
  Grid g = Grid::make({100, 100, 100}, {25, 25, 25}, 3);
  Points pts = make_points(DType::F32, 3, 30000, -500, 500, g, 12);
  check_binning(pts, g, 1, Path::Wide);
  check_binning(pts, g, 3, Path::Wide);
  Points pts64 = make_points(DType::F64, 3, 30000, -500, 500, g, 13);
  check_binning(pts64, g, 2, Path::Wide);
  // Up to 2^16 bins per chunk, the most a uint16 bin can name (and every key's
  // chunk through the 64-bit reciprocal): 16 x 16 x 256 bins, 8 chunks.
  Grid many = Grid::make({16, 16, 16}, {1, 1, 0.0625}, 3);
  check_binning(make_points(DType::F32, 3, 30000, -16, 16, many, 24), many, 2, Path::Wide);
  Grid many2d = Grid::make({7, 9}, {0.5, 0.25}, 2);  // 14 x 36 bins, not a power of two
  check_binning(make_points(DType::F64, 2, 30000, -300, 300, many2d, 25), many2d, 2, Path::Wide);
}

TEST(Binning, WideKeysWithOneBinPerChunk) {
  // 40^3 chunks of one bin: the key is the chunk.
  Grid g = Grid::make({1, 1, 1}, {1, 1, 1}, 3);
  Points pts = make_points(DType::F32, 3, 30000, -20, 20, g, 26);
  check_binning(pts, g, 2, Path::Wide);
  check_binning(pts, g, 1, Path::Wide);
}

TEST(Binning, TwoLevelPathWhenBinsDoNotFitSixteenBits) {
  // 64^3 bins per chunk: more than a uint16 bin can name.
  Grid g = Grid::make({64, 64, 64}, {1, 1, 1}, 3);
  Points pts = make_points(DType::F32, 3, 20000, -128, 128, g, 27);
  check_binning(pts, g, 2, Path::TwoLevel);
  Points pts64 = make_points(DType::F64, 3, 20000, -128, 128, g, 28);
  check_binning(pts64, g, 1, Path::TwoLevel);
}

TEST(Binning, DirectPathAllDimensionsAndDtypes) {
  Grid g2 = Grid::make({10, 20}, {5, 5}, 2);
  check_binning(make_points(DType::F32, 2, 20000, -55, 55, g2, 14), g2, 2, Path::Direct);
  Grid g4 = Grid::make({4, 4, 4, 4}, {2, 2, 4, 2}, 4);
  check_binning(make_points(DType::F64, 4, 20000, -6, 6, g4, 15), g4, 2, Path::Direct);
}

TEST(Binning, Float32FarFromTheOrigin) {
  // Quotients near 5e5 take the float32 key kernel (edge rows fall back to
  // double); near 3e6 and 1e7 they exceed its 2^20 limit and take the double
  // kernel. float32 spacing there is 1/32 to 1, so many rows sit on or next to an edge.
  Grid g = Grid::make({4, 4}, {1, 1}, 2);
  check_binning(make_points(DType::F32, 2, 20000, 5.0e5, 5.0e5 + 40, g, 16), g, 2, Path::Direct);
  check_binning(make_points(DType::F32, 2, 20000, -5.0e5 - 40, -5.0e5, g, 17), g, 2, Path::Direct);
  check_binning(make_points(DType::F32, 2, 20000, 3.0e6, 3.0e6 + 40, g, 19), g, 2, Path::Direct);
  check_binning(make_points(DType::F32, 2, 20000, 1.0e7, 1.0e7 + 40, g, 18), g, 2, Path::Direct);
  // An inexact bin (0.3) far out: float32 products miss the edges there.
  Grid g3 = Grid::make({1.2, 1.2}, {0.3, 0.3}, 2);
  check_binning(make_points(DType::F32, 2, 20000, 5.0e4, 5.0e4 + 12, g3, 20), g3, 2, Path::Direct);
}

TEST(Binning, Float32WithinUlpsOfEveryEdge) {
  // Every float32 within 6 ulps of each bin edge, per axis, for inexact and
  // exact bin sizes: where a single-precision product can round across an edge.
  std::vector<double> bins{0.1, 0.3, 1.0 / 3.0, 0.7, 7.3, 50.0};
  for (int i = 1; i <= 40; ++i) bins.push_back(0.013 * i * i + 0.011);  // more roundings of 1 / bin
  for (double bin : bins) {
    SCOPED_TRACE("bin " + std::to_string(bin));
    Grid g = Grid::make({bin * 4, bin * 2}, {bin, bin}, 2);
    Points pts;
    pts.dtype = DType::F32;
    pts.nd = 2;
    for (int e = -40; e <= 40; ++e) {
      float x = static_cast<float>(e * bin);
      for (int s = 0; s < 6; ++s) x = std::nextafter(x, -1e30f);
      for (int s = 0; s <= 12; ++s, x = std::nextafter(x, 1e30f))
        pts.push({x, static_cast<double>(std::nextafter(static_cast<float>((40 - e) * bin), s & 1 ? 1e30f : -1e30f))});
    }
    check_binning(pts, g, 2, Path::Direct);
  }
}

TEST(Binning, SeveralAttributesOnEveryPath) {
  Grid g = Grid::make({100, 100, 100}, {25, 50, 100}, 3);
  check_binning(make_points(DType::F32, 3, 20000, -500, 500, g, 21), g, 2, Path::Direct, true);
  Grid big = Grid::make({100, 100, 100}, {25, 25, 25}, 3);
  check_binning(make_points(DType::F64, 3, 20000, -500, 500, big, 22), big, 2, Path::Wide, true);
  Grid huge = Grid::make({64, 64, 64}, {1, 1, 1}, 3);
  check_binning(make_points(DType::F32, 3, 20000, -128, 128, huge, 29), huge, 2, Path::TwoLevel, true);
  Grid one = Grid::make({10, 10, 10}, {}, 3);
  check_binning(make_points(DType::F32, 3, 5000, -30, 30, one, 23), one, 2, Path::Any, true);
}

TEST(Binning, ManyThreadsKeepInputOrder) {
  // Enough rows for several counting blocks in the dense path.
  Grid g = Grid::make({50, 50, 50}, {25, 25, 50}, 3);
  Points pts = make_points(DType::F32, 3, 200000, -200, 200, g, 7);
  check_binning(pts, g, 4, Path::Direct);
}

TEST(Binning, SparsePathTwoClustersFarApartFloat64) {
  // Chunk bounding box ~1e9 chunk widths along x: far too big to count densely.
  Grid g = Grid::make({10, 10, 10}, {5, 5, 10}, 3);
  Points a = make_points(DType::F64, 3, 6000, -50, 50, g, 8);
  Points b = make_points(DType::F64, 3, 6000, -50, 50, g, 9);
  Points pts;
  pts.dtype = DType::F64;
  pts.nd = 3;
  for (std::size_t i = 0; i < a.rows(); ++i) {  // interleave the clusters
    pts.push({a.at(i, 0), a.at(i, 1), a.at(i, 2)});
    pts.push({b.at(i, 0) + 1e10, b.at(i, 1), b.at(i, 2) - 1e9});
  }
  check_binning(pts, g, 1);
  check_binning(pts, g, 3);
}

TEST(Binning, SparsePathTwoClustersFarApartFloat32) {
  Grid g = Grid::make({10, 10, 10}, {5, 10, 2}, 3);
  Points pts;
  pts.dtype = DType::F32;
  pts.nd = 3;
  std::mt19937_64 rng(10);
  std::uniform_real_distribution<double> u(-60, 60);
  for (int i = 0; i < 8000; ++i) {
    const double off = (i % 2) ? -1e10 : 0.0;  // float32 spacing near 1e10 is 1024: many rows share values
    pts.push({u(rng) + off, u(rng), std::round(u(rng) / 2) * 2});
  }
  check_binning(pts, g, 1);
}

TEST(Binning, SparseAndDenseAgreeOnTheSameCluster) {
  // The same near cluster sorted alone (direct path) and next to a far one
  // (sparse path) must come out identically for its own rows.
  Grid g = Grid::make({8, 8}, {2, 4}, 2);
  Points near = make_points(DType::F64, 2, 4000, -40, 40, g, 11);
  Points both = near;
  both.push({8e9, 8e9});
  zvf::Layout layout;
  layout.chunk_shape = g.chunk_shape;
  layout.bin_shape = g.bin_shape;
  const std::vector<zvf::NamedArray> none;
  const ArrayView vn = near.view(), vb = both.view();
  const auto in_near = zvf::detail::check_input(vn, none, layout, 1);
  const auto in_both = zvf::detail::check_input(vb, none, layout, 1);
  const zvf::detail::CellLayout cl{2, DType::F64, {}, {}, g.bins_per_chunk_total()};
  const auto dense = zvf::detail::sort_points(in_near, cl, 1);
  const auto sparse = zvf::detail::sort_points(in_both, cl, 1);
  EXPECT_FALSE(dense.bin_counts.empty());
  EXPECT_TRUE(sparse.bin_counts.empty());
  ASSERT_EQ(sparse.chunks.size(), dense.chunks.size() + 1);
  EXPECT_EQ(sparse.chunks.back(), (ChunkCoord{1000000000, 1000000000}));
  zvf::detail::ChunkScratch sa, sb;
  for (std::size_t k = 0; k < dense.chunks.size(); ++k) {
    EXPECT_EQ(sparse.chunks[k], dense.chunks[k]);
    const auto a = dense.chunk_view(k, cl, sa);
    const auto b = sparse.chunk_view(k, cl, sb);
    EXPECT_EQ(*a.frag_counts, *b.frag_counts);
    ASSERT_EQ(a.vertices.size(), b.vertices.size());
    EXPECT_EQ(std::memcmp(a.vertices.data(), b.vertices.data(), a.vertices.size()), 0);
  }
}

TEST(Binning, EmptyInput) {
  Grid g = Grid::make({10, 10}, {}, 2);
  Points none;
  none.nd = 2;
  ChunkedPoints got = zvf::detail::group_by_chunk(none.view(), g);
  EXPECT_TRUE(got.chunks.empty());
  EXPECT_TRUE(got.perm.empty());
  EXPECT_EQ(got.offsets, (std::vector<std::uint64_t>{0}));
}

TEST(Binning, ChunkOfPoint) {
  Grid g = Grid::make({100, 0.3}, {25, 0.1}, 2);
  const double p1[] = {-0.0, 0.3};
  EXPECT_EQ(zvf::detail::chunk_of_point(p1, g), (ChunkCoord{0, 0}));  // 0.3 < 3*0.1 in double
  const double p2[] = {-100.0, 3 * 0.1};
  EXPECT_EQ(zvf::detail::chunk_of_point(p2, g), (ChunkCoord{-1, 1}));
  const double p3[] = {std::nextafter(-100.0, 0.0), -1e-300};
  EXPECT_EQ(zvf::detail::chunk_of_point(p3, g), (ChunkCoord{-1, -1}));
  const double p4[] = {std::nextafter(-100.0, -1e9), 99.99999};
  EXPECT_EQ(zvf::detail::chunk_of_point(p4, g)[0], -2);
}

TEST(Parallel, DefaultThreadsFollowTheAffinityMask) {
  // As under Slurm cpusets or mpirun's rank binding: pinned to one CPU, the
  // engine must default to one thread, not to every CPU of the node.
  EXPECT_EQ(zvf::detail::resolve_threads(5), 5);
  int pinned = -1;
  std::thread t([&] {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    if (sched_setaffinity(0, sizeof one, &one) == 0) pinned = zvf::detail::resolve_threads(0);
  });
  t.join();
  EXPECT_EQ(pinned, 1);
}

// ---- the order chunks are written in ----

TEST(DirectorySpreadOrder, PermutationWithNeighboursInDifferentDirectories) {
  std::vector<zvf::ChunkCoord> chunks;  // C order, as the sort produces them
  for (std::int64_t x = 0; x < 3; ++x)
    for (std::int64_t y = -1; y < 3; ++y)
      for (std::int64_t z = 0; z < 5; ++z) chunks.push_back({x, y, z});
  const std::vector<std::size_t> order = zvf::detail::directory_spread_order(chunks);
  ASSERT_EQ(order.size(), chunks.size());
  std::vector<std::size_t> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < sorted.size(); ++i) EXPECT_EQ(sorted[i], i);
  // A cell's directory is every coordinate but the last: consecutive chunks differ in it.
  for (std::size_t i = 1; i < order.size(); ++i) {
    const auto &a = chunks[order[i - 1]], &b = chunks[order[i]];
    EXPECT_FALSE(a[0] == b[0] && a[1] == b[1]) << "items " << i - 1 << " and " << i;
  }
  // Last axis first, then the others in order.
  EXPECT_EQ(chunks[order[0]], (zvf::ChunkCoord{0, -1, 0}));
  EXPECT_EQ(chunks[order[1]], (zvf::ChunkCoord{0, 0, 0}));
  EXPECT_EQ(chunks[order.back()], (zvf::ChunkCoord{2, 2, 4}));
}

TEST(DirectorySpreadOrder, EmptyAndOneDimensional) {
  EXPECT_TRUE(zvf::detail::directory_spread_order({}).empty());
  const std::vector<zvf::ChunkCoord> line{{3}, {1}, {2}};
  EXPECT_EQ(zvf::detail::directory_spread_order(line), (std::vector<std::size_t>{1, 2, 0}));
}
