#include "common.hpp"

#include <unistd.h>

#include <charconv>
#include <cstdio>

#include "args.hpp"
#include "zvf/error.hpp"

namespace zvf::cli {

// ------------------------------------------------------------------ progress

Progress::Progress(std::string label) : label_(std::move(label)), enabled_(::isatty(2) == 1) {}

Progress::~Progress() {
  if (shown_) {
    std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
  }
}

std::function<void(std::uint64_t, std::uint64_t)> Progress::callback() {
  if (!enabled_) return {};
  return [this](std::uint64_t done, std::uint64_t total) { update(done, total); };
}

void Progress::update(std::uint64_t done, std::uint64_t total) {
  auto now = std::chrono::steady_clock::now();
  if (shown_ && done < total && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  shown_ = true;
  int pct = total ? static_cast<int>(100.0 * static_cast<double>(done) / static_cast<double>(total)) : 100;
  std::fprintf(stderr, "\rzvf: %s %3d%% (%llu/%llu)\033[K", label_.c_str(), pct, static_cast<unsigned long long>(done),
               static_cast<unsigned long long>(total));
  std::fflush(stderr);
}

// ------------------------------------------------------------------ input

void add_input_options(CLI::App& sub, InputArgs& a) {
  sub.add_option("--input,-i", a.input,
                 "Point file: .npy positions (N, D), or .csv / .ply holding positions and attributes")
      ->required();
  sub.add_option("--attr-input", a.attr_inputs,
                 "Attribute array NAME=FILE.npy with one row per point; repeat for more attributes")
      ->allow_extra_args(false)
      ->type_name("NAME=FILE");
  sub.add_option("--position-columns", a.position_columns,
                 "CSV/PLY: position columns in axis order (default x,y and z if present)")
      ->type_name("X,Y[,Z[,T]]");
  a.attr_columns_opt = sub.add_option("--attr-columns", a.attr_columns,
                                      "CSV/PLY: attribute columns to keep (default: every non-position column; '' for none)")
                           ->type_name("A,B,..");
  sub.add_option("--positions-dtype", a.positions_dtype,
                 "Convert positions to float32 or float64 (default: as read; CSV gives float64)")
      ->check(CLI::IsMember({"float32", "float64"}));
  sub.add_option("--attr-dtype", a.attr_dtypes,
                 "Store attribute NAME as DTYPE (float32, int16, uint8, bool, float16, ...); NAME '*' means every attribute. "
                 "CSV guesses int64 or float64 per file: pin the dtype so that all partitions agree")
      ->allow_extra_args(false)
      ->type_name("NAME=DTYPE");
}

PointCloud load_input(const InputArgs& a) {
  TableOptions opt;
  opt.position_columns = split_list(a.position_columns);
  if (a.attr_columns_opt && a.attr_columns_opt->count() > 0) opt.attribute_columns = split_list(a.attr_columns);
  if (!a.positions_dtype.empty()) opt.positions_dtype = dtype_from_name(a.positions_dtype);
  FileFormat format = file_format(a.input);
  if (format == FileFormat::Npy && (!opt.position_columns.empty() || opt.attribute_columns))
    throw UsageError("--position-columns and --attr-columns apply to CSV and PLY input, not " + a.input);

  // Check every NAME=FILE before reading a possibly large input.
  std::vector<std::pair<std::string, std::string>> attr_files;
  for (const auto& spec : a.attr_inputs) {
    attr_files.push_back(parse_attr_input(spec));
    if (file_format(attr_files.back().second) != FileFormat::Npy)
      throw UsageError("--attr-input " + spec + ": expected a .npy file");
  }

  PointCloud cloud = read_point_file(a.input, opt);
  for (const auto& [name, file] : attr_files) {
    for (const auto& [existing, arr] : cloud.attributes)
      if (existing == name) throw UsageError("--attr-input: attribute '" + name + "' is given twice");
    cloud.attributes.emplace_back(name, read_npy(file));
  }

  for (const auto& spec : a.attr_dtypes) {
    auto [name, dtype_text] = parse_assignment("--attr-dtype", "NAME=DTYPE", spec);
    DType dtype;
    try {
      dtype = dtype_from_name(dtype_text);
    } catch (const Error& e) {
      throw UsageError(std::string("--attr-dtype: ") + e.what());
    }
    bool found = false;
    std::string names;
    for (auto& [attr, arr] : cloud.attributes) {
      names += (names.empty() ? "" : ", ") + attr;
      if (name != "*" && name != attr) continue;
      found = true;
      arr = convert_dtype(arr, dtype, "--attr-dtype " + spec + ": attribute '" + attr + "'");
    }
    if (!found && name != "*")
      throw UsageError("--attr-dtype: no attribute named '" + name + "' (attributes: " + (names.empty() ? "none" : names) + ")");
  }
  return cloud;
}

// ------------------------------------------------------------------ layout

void add_layout_options(CLI::App& sub, LayoutArgs& a) {
  sub.add_option("--chunk-shape", a.chunk_shape, "Physical extent of one chunk per axis, e.g. 500,500,500")
      ->required()
      ->type_name("A,B[,C[,D]]");
  sub.add_option("--bin-shape", a.bin_shape,
                 "Physical extent of one bin per axis; must divide the chunk shape (default: one bin per chunk)")
      ->type_name("A,B[,C[,D]]");
  sub.add_option("--compressor", a.compressor,
                 "Codecs of every cell: none, zstd (level 0), blosc (zstd inside, bit-shuffle), gzip (level 5), or a "
                 "JSON list of codecs as zarr-vectors' compressor= takes it, e.g. "
                 "'[{\"name\":\"zstd\",\"configuration\":{\"level\":3}},{\"name\":\"crc32c\"}]'")
      ->check(compressor_choice())
      ->type_name("CODECS")
      ->capture_default_str();
  sub.add_option("--threads", a.threads, "Worker threads (0: one per core)")
      ->check(non_negative_int())
      ->capture_default_str();
  sub.add_flag("--durable", a.durable,
               "Return only once the data is on stable storage, flushed before the metadata that publishes it (syncfs on a filesystem; S3 PUTs are durable already)");
}

Layout make_layout(const LayoutArgs& a) {
  Layout layout;
  layout.chunk_shape = parse_shape("--chunk-shape", a.chunk_shape);
  if (!a.bin_shape.empty()) layout.bin_shape = parse_shape("--bin-shape", a.bin_shape);
  layout.codec = CodecSpec::from_name(a.compressor);
  return layout;
}

CLI::Validator compressor_choice() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        try {
          CodecSpec::from_name(text);
        } catch (const Error& e) {
          return e.what();
        }
        return "";
      },
      "", "CODECS");
}

CLI::Validator non_negative_int() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        int v = 0;
        auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec != std::errc() || ptr != text.data() + text.size() || v < 0)
          return "expected a whole number >= 0, got '" + text + "'";
        return "";
      },
      "", "non-negative integer");
}

std::vector<NamedArray> attribute_views(const PointCloud& cloud) {
  std::vector<NamedArray> out;
  for (const auto& [name, arr] : cloud.attributes) out.push_back({name, view_of(arr)});
  return out;
}

}  // namespace zvf::cli
