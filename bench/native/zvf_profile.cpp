// A C++ driver for profiling the engine without Python in the way, e.g. under
//   valgrind --tool=callgrind build/cpp-bench/bench/native/zvf_profile write 1000000
//   perf record -e cpu-clock build/cpp-bench/bench/native/zvf_profile pyramid 1000000
//   build/cpp-bench/bench/native/zvf_profile read 10000000 5     (times read_points of all)
//   build/cpp-bench/bench/native/zvf_profile partitions 10000000   (4 z slabs of 250 + finalise)
//   build/cpp-bench/bench/native/zvf_profile zstd 10000000         (write_points with zstd, default level)
//   build/cpp-bench/bench/native/zvf_profile write 10000000 5 /tmp keep   (stores left, truncated)
//   ZVF_PROFILE_CHUNK=50 build/cpp-bench/bench/native/zvf_profile write 1000000 5 /dev/shm
//     (chunk side 50, 4^3 bins per chunk: 8,000 chunks, the per-chunk cost of bench_chunks.py)
// Workload A of issue 6: N uniform float32 xyz points in [0, 1000)^3, chunk 200^3,
// bin 50^3, one float32 attribute, no compression. Prints wall and CPU seconds per
// repeat; the figures in docs/benchmarks.md come from bench/run_all.py, not from here.
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "zvf/points.hpp"
#include "zvf/pyramid.hpp"

namespace {

double wall() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
double cpu() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return r.ru_utime.tv_sec + r.ru_utime.tv_usec * 1e-6 + r.ru_stime.tv_sec + r.ru_stime.tv_usec * 1e-6;
}

int usage() {
  std::fprintf(stderr,
               "usage: zvf_profile write|zstd|pyramid|read|partitions [N=1000000] [repeats=3] [dir=$TMPDIR] [keep]\n"
               "  keep: leave the (truncated) stores in dir, so that later runs do not pay for their deletion\n"
               "  ZVF_PROFILE_CHUNK=S: cubic chunks of side S with 4^3 bins each (default: chunk 200, bin 50)\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  const std::string what = argv[1];
  if (what != "write" && what != "zstd" && what != "pyramid" && what != "read" && what != "partitions") return usage();
  const long n_arg = argc > 2 ? std::atol(argv[2]) : 1000000;
  const int repeats = argc > 3 ? std::atoi(argv[3]) : 3;
  if (n_arg <= 0 || repeats <= 0) return usage();
  const std::size_t n = static_cast<std::size_t>(n_arg);
  const std::filesystem::path dir = argc > 4 ? std::filesystem::path(argv[4]) : std::filesystem::temp_directory_path();
  const bool keep = argc > 5 && std::string(argv[5]) == "keep";

  std::vector<float> pos(n * 3), intensity(n);
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<float> u(0.0f, 1000.0f);
  for (auto& x : pos) x = u(rng);
  for (auto& x : intensity) x = u(rng);
  const zvf::ArrayView pv{pos.data(), zvf::DType::F32, n, 3, false};
  const std::vector<zvf::NamedArray> attrs{{"intensity", {intensity.data(), zvf::DType::F32, n, 1, true}}};
  zvf::Layout layout;
  layout.chunk_shape = {200, 200, 200};
  layout.bin_shape = {50, 50, 50};
  if (const char* side = std::getenv("ZVF_PROFILE_CHUNK")) {
    const double c = std::atof(side);
    if (!(c > 0 && c <= 1000)) {
      std::fprintf(stderr, "zvf_profile: ZVF_PROFILE_CHUNK='%s': expected a chunk side in (0, 1000]\n", side);
      return usage();
    }
    layout.chunk_shape = {c, c, c};
    layout.bin_shape = {c / 4, c / 4, c / 4};
  }
  if (what == "zstd") layout.codec.kind = zvf::CodecSpec::Kind::Zstd;

  // The partitions mode's input: the points split into 4 z slabs of 250 (not on
  // chunk boundaries, so 3 of 5 chunk layers are staged and merged by finalise).
  struct Slab {
    zvf::ArrayView view;
    std::vector<zvf::NamedArray> attrs;
    zvf::Box range;
  };
  std::vector<std::vector<float>> slab_pos(4), slab_val(4);
  std::vector<Slab> slabs;
  if (what == "partitions") {
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t s = std::min<std::size_t>(3, static_cast<std::size_t>(pos[i * 3 + 2] / 250.0f));
      slab_pos[s].insert(slab_pos[s].end(), &pos[i * 3], &pos[i * 3 + 3]);
      slab_val[s].push_back(intensity[i]);
    }
    const double inf = std::numeric_limits<double>::infinity();
    for (std::size_t s = 0; s < 4; ++s) {
      const std::size_t m = slab_val[s].size();
      slabs.push_back({{slab_pos[s].data(), zvf::DType::F32, m, 3, false},
                       {{"intensity", {slab_val[s].data(), zvf::DType::F32, m, 1, true}}},
                       {{-inf, -inf, 250.0 * s}, {inf, inf, 250.0 * (s + 1)}}});
    }
  }

  // Stores are removed after the last repeat, not between repeats: on an ext4
  // without a journal, creating files within a few minutes of deleting others
  // scans the deleted inodes (recently_deleted()), which would be timed as ours.
  // Between repeats their files are truncated instead, as bench/_fs.py does, so
  // that each repeat's page cache comes from pages the last one freed.
  auto truncate_files = [](const std::filesystem::path& root) {
    for (const auto& e : std::filesystem::recursive_directory_iterator(root))
      if (e.is_regular_file()) std::filesystem::resize_file(e.path(), 0);
  };
  std::vector<std::filesystem::path> written;
  try {
    for (int r = 0; r < repeats; ++r) {
      const auto store_path = dir / ("zvf_profile_" + std::to_string(::getpid()) + "_" + std::to_string(r));
      std::filesystem::remove_all(store_path);
      double t0 = wall(), c0 = cpu();
      zvf::PosixStore store(store_path.string());
      if (what == "partitions") {
        for (const auto& [view, attr, range] : slabs) zvf::write_points_partition(store, view, attr, layout, range);
        const double t_parts = wall() - t0;
        zvf::finalise(store);
        std::printf("  partitions %.3f s, finalise %.3f s\n", t_parts, wall() - t0 - t_parts);
      } else {
        zvf::write_points(store, pv, attrs, layout, std::nullopt);
      }
      if (what == "pyramid") {
        t0 = wall();
        c0 = cpu();
        zvf::PyramidOptions opt;
        opt.levels = {zvf::PyramidLevelSpec{2.0, 1.0, {}}, zvf::PyramidLevelSpec{2.0, 1.0, {}}};
        zvf::build_pyramid(store, opt);
      } else if (what == "read") {
        t0 = wall();
        c0 = cpu();
        const zvf::PointCloud pc = zvf::read_points(store);
        if (pc.positions.rows != n) throw std::runtime_error("read back " + std::to_string(pc.positions.rows) + " rows");
      }
      std::printf("%s N=%zu: %.3f s wall, %.3f s cpu\n", what.c_str(), n, wall() - t0, cpu() - c0);
      written.push_back(store_path);
      truncate_files(store_path);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zvf_profile: %s\n", e.what());
    for (const auto& p : written) std::filesystem::remove_all(p);
    return 1;
  }
  if (!keep)
    for (const auto& p : written) std::filesystem::remove_all(p);
  return 0;
}
