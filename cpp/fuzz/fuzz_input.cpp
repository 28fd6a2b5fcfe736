// Fuzz target for the CLI's input readers (zvf/input.hpp): read_npy, read_csv,
// read_ply and read_point_file.
//
// Input layout: byte 0 picks the reader and, for read_point_file, the file name's
// extension; byte 1 picks TableOptions (positions dtype, position and attribute
// column names); one byte per requested column name indexes a small dictionary;
// the rest is the file's content. It is written to one file per process (under
// $TMPDIR, else /dev/shm), reused between runs, and read back.
//
// zvf::Error naming the file is the expected outcome of bad content. A defect
// abort()s, so libFuzzer saves the input and the replay driver fails:
//  - any other exception escaping (std::length_error, std::bad_alloc, ...);
//  - an Error whose message does not name the file, holds raw control bytes
//    (file text must go through zvf::printable) or is very long (file text must
//    be cut short);
//  - a successful read that returns inconsistent arrays (byte size vs shape,
//    attribute rows vs position rows, a dtype the options did not ask for).
// Sanitizer reports, hangs and huge allocations are caught by libFuzzer itself
// (and, for memory, by the replay driver).
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <optional>
#include <string>
#include <typeinfo>
#include <vector>

#include "zvf/error.hpp"
#include "zvf/input.hpp"

int zvf_fuzz_input_one(const std::uint8_t* data, std::size_t size);

namespace {

namespace fs = std::filesystem;

// ZVF_FUZZ_VERBOSE=1 prints the chosen reader, options and outcome, for triage.
bool verbose() {
  static const bool v = std::getenv("ZVF_FUZZ_VERBOSE") != nullptr;
  return v;
}

// An error message should stay readable even when the file is hostile: a few
// hundred bytes of quoted file text at most.
constexpr std::size_t kMaxMessageBytes = 1024;

// Column names the options may ask for: the seeds' names, case variants, names
// that need CSV quoting, and names no file has. Append only: corpus files index it.
const char* const kNames[] = {"x",     "y",    "z",     "X",   "Y",         "Z",  "t",     "red",
                              "green", "blue", "alpha", "nx",  "intensity", "id", "label", "vertex_indices",
                              "flags", "a b",  "q\"q",  "",    "x ",        "time", "s",  "u",
                              "f",     "l",    "w",     "confidence"};
constexpr std::size_t kNameCount = sizeof kNames / sizeof kNames[0];

// read_point_file's extensions, by bits 2-4 of the first byte (append only, too).
const char* const kExtensions[] = {".npy", ".csv", ".ply", ".NPY", ".Ply", ".txt", ".csv.gz", ""};

enum class Reader { Npy, Csv, Ply, PointFile };
const char* const kReaderNames[] = {"read_npy", "read_csv", "read_ply", "read_point_file"};

struct Input {
  const std::uint8_t* p;
  std::size_t n;
  std::uint8_t u8() {
    if (!n) return 0;
    --n;
    return *p++;
  }
};

// One directory per process, so parallel fuzzers (-jobs, -fork) do not share
// files; the input file is rewritten for every run. Never destroyed, so the
// atexit cleanup still has it.
const fs::path& work_dir() {
  static const fs::path* dir = [] {
    fs::path base;
    if (const char* t = std::getenv("TMPDIR"); t && *t) base = t;
    else if (fs::is_directory("/dev/shm")) base = "/dev/shm";
    else base = fs::temp_directory_path();
    auto* d = new fs::path(base / ("zvf_fuzz_input_" + std::to_string(::getpid())));
    fs::create_directories(*d);
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(work_dir(), ec);
    });
    return d;
  }();
  return *dir;
}

void write_input(const std::string& path, const std::uint8_t* data, std::size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || (size && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
    std::fprintf(stderr, "zvf_fuzz_input: cannot write %s\n", path.c_str());
    std::abort();  // the harness, not the reader, failed: stop rather than test nothing
  }
}

[[noreturn]] void defect(const char* call, const std::string& what) {
  std::fprintf(stderr, "ZVF FUZZ DEFECT: %s: %s\n", call, what.c_str());
  std::fflush(stderr);
  std::abort();
}

void check_array(const char* call, const std::string& name, const zvf::OwnedArray& a) {
  const std::size_t item = zvf::dtype_size(a.dtype);
  // rows * cols * item without overflow, as the readers must have checked it.
  std::size_t cells = 0, bytes = 0;
  if (__builtin_mul_overflow(a.rows, a.cols, &cells) || __builtin_mul_overflow(cells, item, &bytes) ||
      bytes != a.data.size())
    defect(call, name + ": " + std::to_string(a.rows) + " x " + std::to_string(a.cols) + " of " +
                     zvf::dtype_name(a.dtype) + " but " + std::to_string(a.data.size()) + " bytes");
  if (a.one_d && a.cols != 1) defect(call, name + ": one_d with " + std::to_string(a.cols) + " columns");
}

void check_cloud(const char* call, Reader reader, const zvf::PointCloud& c, const zvf::TableOptions& opt) {
  check_array(call, "positions", c.positions);
  if (reader != Reader::Npy && opt.positions_dtype && c.positions.dtype != *opt.positions_dtype)
    defect(call, std::string("positions are ") + zvf::dtype_name(c.positions.dtype) + ", asked for " +
                     zvf::dtype_name(*opt.positions_dtype));
  if (reader != Reader::Npy && !zvf::is_position_dtype(c.positions.dtype))
    defect(call, std::string("positions are ") + zvf::dtype_name(c.positions.dtype));
  for (const auto& [name, a] : c.attributes) {
    check_array(call, "attribute '" + name + "'", a);
    if (a.rows != c.positions.rows)
      defect(call, "attribute '" + name + "' has " + std::to_string(a.rows) + " rows, positions " +
                       std::to_string(c.positions.rows));
  }
}

void check_message(const char* call, const zvf::Error& e, const std::string& path, bool bad_options) {
  const std::string m = e.what();
  // Options that are wrong whatever the file holds may be reported without it.
  if (!bad_options && m.find(path) == std::string::npos) defect(call, "error does not name the file: " + m);
  for (unsigned char ch : m)
    if (ch < 0x20 || ch == 0x7f)
      defect(call, "error holds a raw control byte: " + zvf::printable(m).substr(0, kMaxMessageBytes));
  if (m.size() > kMaxMessageBytes + path.size())
    defect(call, "error of " + std::to_string(m.size()) + " bytes: " + m.substr(0, 200) + "...");
}

}  // namespace

int zvf_fuzz_input_one(const std::uint8_t* data, std::size_t size) {
  Input in{data, size};
  const std::uint8_t pick = in.u8(), flags = in.u8();
  const auto reader = static_cast<Reader>(pick & 3);
  // The other readers get their own extension (the first three, in reader order).
  const char* ext = kExtensions[reader == Reader::PointFile ? (pick >> 2) % 8 : pick & 3];

  zvf::TableOptions opt;
  static const std::optional<zvf::DType> kDtypes[] = {std::nullopt, zvf::DType::F32, zvf::DType::F64,
                                                      zvf::DType::I32};
  opt.positions_dtype = kDtypes[flags & 3];
  for (int k = (flags >> 2) & 3; k > 0; --k) opt.position_columns.push_back(kNames[in.u8() % kNameCount]);
  switch ((flags >> 4) & 3) {
    case 2: opt.attribute_columns.emplace(); break;
    case 3: {
      opt.attribute_columns.emplace();
      for (int k = 1 + (flags >> 6); k > 0; --k) opt.attribute_columns->push_back(kNames[in.u8() % kNameCount]);
      break;
    }
    default: break;  // nullopt: every other column
  }
  // An integer positions dtype is refused before the file matters.
  const bool bad_options = opt.positions_dtype == zvf::DType::I32;

  const std::string path = (work_dir() / (std::string("input") + ext)).string();
  write_input(path, in.p, in.n);
  const char* call = kReaderNames[pick & 3];
  if (verbose()) {
    std::fprintf(stderr, "  %s(%s), %zu bytes; dtype %s; positions [", call, path.c_str(), in.n,
                 opt.positions_dtype ? zvf::dtype_name(*opt.positions_dtype) : "default");
    for (const auto& c : opt.position_columns) std::fprintf(stderr, "'%s' ", c.c_str());
    std::fprintf(stderr, "]; attributes ");
    if (!opt.attribute_columns) std::fprintf(stderr, "all\n");
    else {
      std::fprintf(stderr, "[");
      for (const auto& c : *opt.attribute_columns) std::fprintf(stderr, "'%s' ", c.c_str());
      std::fprintf(stderr, "]\n");
    }
  }

  try {
    zvf::PointCloud cloud;
    switch (reader) {
      case Reader::Npy: cloud.positions = zvf::read_npy(path); break;
      case Reader::Csv: cloud = zvf::read_csv(path, opt); break;
      case Reader::Ply: cloud = zvf::read_ply(path, opt); break;
      case Reader::PointFile: cloud = zvf::read_point_file(path, opt); break;
    }
    check_cloud(call, reader, cloud, opt);
    if (verbose())
      std::fprintf(stderr, "  ok: positions %zu x %zu %s, %zu attributes\n", cloud.positions.rows,
                   cloud.positions.cols, zvf::dtype_name(cloud.positions.dtype), cloud.attributes.size());
  } catch (const zvf::Error& e) {
    if (verbose()) std::fprintf(stderr, "  zvf::Error %d: %s\n", static_cast<int>(e.code()), e.what());
    check_message(call, e, path, bad_options);
  } catch (const std::exception& e) {
    defect(call, std::string("a ") + typeid(e).name() + " escaped: " + e.what());
  } catch (...) {
    defect(call, "a non-std exception escaped");
  }
  return 0;
}

#ifdef ZVF_LIBFUZZER
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return zvf_fuzz_input_one(data, size);
}
#endif
