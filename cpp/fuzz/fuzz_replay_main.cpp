// Runs a fuzz target's function over files and directories of fuzz inputs
// without libFuzzer, so the regression corpora run in any build (ctest
// FuzzCorpusReplay, FuzzInputCorpusReplay). The build names the function with
// ZVF_FUZZ_ENTRY (zvf_fuzz_read_one, zvf_fuzz_input_one): one replay executable
// per target. A defect aborts inside it; the input's path is printed first.
// Without libFuzzer's -rss_limit_mb, memory is checked here: a corrupt header
// that makes the library touch gigabytes fails the replay too.
#include <sys/resource.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#ifndef ZVF_FUZZ_ENTRY
#error "define ZVF_FUZZ_ENTRY as the fuzz target's function (see cpp/fuzz/CMakeLists.txt)"
#endif
int ZVF_FUZZ_ENTRY(const std::uint8_t* data, std::size_t size);

namespace fs = std::filesystem;

namespace {
constexpr long kMaxRssMb = 1024;  // the inputs are tiny: far above any honest read of them

long peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE_OR_DIR...\n", argv[0]);
    return 2;
  }
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    const fs::path p(argv[i]);
    if (fs::is_directory(p)) {
      for (const auto& e : fs::recursive_directory_iterator(p))
        if (e.is_regular_file()) files.push_back(e.path());
    } else if (fs::is_regular_file(p)) {
      files.push_back(p);
    } else {
      std::fprintf(stderr, "%s: no such file or directory\n", argv[i]);
      return 2;
    }
  }
  std::sort(files.begin(), files.end());  // a stable order, for reproducible logs
  for (const auto& f : files) {
    std::ifstream is(f, std::ios::binary);
    const std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(is)), std::istreambuf_iterator<char>());
    std::fprintf(stderr, "replay %s (%zu bytes)\n", f.string().c_str(), bytes.size());
    ZVF_FUZZ_ENTRY(bytes.data(), bytes.size());
    if (peak_rss_mb() > kMaxRssMb) {
      std::fprintf(stderr, "ZVF FUZZ DEFECT: %s: peak RSS %ld MB, more than %ld MB\n", f.string().c_str(),
                   peak_rss_mb(), kMaxRssMb);
      return 1;
    }
  }
  std::printf("replayed %zu inputs: %zu passed, 0 failed\n", files.size(), files.size());
  return files.empty() ? 1 : 0;
}
