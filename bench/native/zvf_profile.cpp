// A C++ driver for profiling the engine without Python in the way, e.g. under
//   valgrind --tool=callgrind build/cpp-bench/bench/native/zvf_profile write 1000000
//   perf record -e cpu-clock build/cpp-bench/bench/native/zvf_profile pyramid 1000000
//   build/cpp-bench/bench/native/zvf_profile read 10000000 5     (times read_points of all)
// Workload A of issue 6: N uniform float32 xyz points in [0, 1000)^3, chunk 200^3,
// bin 50^3, one float32 attribute, no compression. Prints wall and CPU seconds per
// repeat; the figures in docs/benchmarks.md come from bench/run_all.py, not from here.
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
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
  std::fprintf(stderr, "usage: zvf_profile write|pyramid|read [N=1000000] [repeats=3] [dir=$TMPDIR]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  const std::string what = argv[1];
  if (what != "write" && what != "pyramid" && what != "read") return usage();
  const long n_arg = argc > 2 ? std::atol(argv[2]) : 1000000;
  const int repeats = argc > 3 ? std::atoi(argv[3]) : 3;
  if (n_arg <= 0 || repeats <= 0) return usage();
  const std::size_t n = static_cast<std::size_t>(n_arg);
  const std::filesystem::path dir = argc > 4 ? std::filesystem::path(argv[4]) : std::filesystem::temp_directory_path();

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

  // Stores are removed after the last repeat, not between repeats: on an ext4
  // without a journal, creating files within a minute of deleting others scans
  // the deleted inodes (recently_deleted()), which would be timed as ours.
  std::vector<std::filesystem::path> written;
  try {
    for (int r = 0; r < repeats; ++r) {
      const auto store_path = dir / ("zvf_profile_" + std::to_string(::getpid()) + "_" + std::to_string(r));
      std::filesystem::remove_all(store_path);
      double t0 = wall(), c0 = cpu();
      zvf::PosixStore store(store_path.string());
      zvf::write_points(store, pv, attrs, layout, std::nullopt);
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
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zvf_profile: %s\n", e.what());
    for (const auto& p : written) std::filesystem::remove_all(p);
    return 1;
  }
  for (const auto& p : written) std::filesystem::remove_all(p);
  return 0;
}
