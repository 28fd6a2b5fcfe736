// Shared pieces of the zvf subcommands: option groups, input loading, progress.
#pragma once
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "zvf/input.hpp"
#include "zvf/points.hpp"

namespace zvf::cli {

// One subcommand: its CLI11 App and what to run once the command line parsed.
struct Command {
  CLI::App* app = nullptr;
  std::function<void()> run;
};

void register_write(CLI::App& app, std::vector<Command>& commands);
void register_write_partition(CLI::App& app, std::vector<Command>& commands);
void register_finalise(CLI::App& app, std::vector<Command>& commands);
void register_info(CLI::App& app, std::vector<Command>& commands);
void register_query(CLI::App& app, std::vector<Command>& commands);
void register_pyramid(CLI::App& app, std::vector<Command>& commands);
void register_validate(CLI::App& app, std::vector<Command>& commands);
void register_plan(CLI::App& app, std::vector<Command>& commands);
void register_stripe(CLI::App& app, std::vector<Command>& commands);

// Progress on stderr, only when stderr is a terminal; the line is cleared when
// the reporter goes out of scope.
class Progress {
 public:
  explicit Progress(std::string label);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  // Empty when stderr is not a TTY (Exec then reports nothing).
  std::function<void(std::uint64_t, std::uint64_t)> callback();

 private:
  void update(std::uint64_t done, std::uint64_t total);
  std::string label_;
  bool enabled_ = false;
  bool shown_ = false;
  std::chrono::steady_clock::time_point last_{};
};

// --input, --attr-input, --position-columns, --attr-columns, --positions-dtype.
struct InputArgs {
  std::string input;
  std::vector<std::string> attr_inputs;
  std::string position_columns;
  std::string attr_columns;
  CLI::Option* attr_columns_opt = nullptr;
  std::string positions_dtype;
  std::vector<std::string> attr_dtypes;
};
void add_input_options(CLI::App& sub, InputArgs& args);
// Reads --input and every --attr-input into one point cloud, then applies
// --positions-dtype and --attr-dtype.
PointCloud load_input(const InputArgs& args);

// --chunk-shape, --bin-shape, --compressor, --threads.
struct LayoutArgs {
  std::string chunk_shape;
  std::string bin_shape;
  std::string compressor = "none";
  int threads = 0;
  bool durable = false;
};
void add_layout_options(CLI::App& sub, LayoutArgs& args);
Layout make_layout(const LayoutArgs& args);

// CLI11 check: a compressor that CodecSpec::from_name takes (a preset or a JSON list of codecs).
CLI::Validator compressor_choice();

// CLI11 check: a whole number >= 0 ("--threads: expected a whole number >= 0, got '-1'").
CLI::Validator non_negative_int();

// Borrowed views of a cloud's attributes (valid while the cloud lives).
std::vector<NamedArray> attribute_views(const PointCloud& cloud);

}  // namespace zvf::cli
