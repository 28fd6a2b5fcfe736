// zvf write / zvf write-partition: load a point file, call the engine, print a summary.
#include <cmath>
#include <iostream>
#include <limits>

#include "args.hpp"
#include "common.hpp"
#include "zvf/error.hpp"
#include "zvf/store.hpp"

namespace zvf::cli {
namespace {

struct WriteArgs {
  std::string store;
  InputArgs input;
  LayoutArgs layout;
  std::string bounds;
};

struct PartitionArgs {
  std::string store;
  InputArgs input;
  LayoutArgs layout;
  std::string x_range, y_range, z_range, bbox;
};

std::string join_ints(const std::vector<std::int64_t>& v) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? "x" : "") + std::to_string(v[i]);
  return out;
}

void run_write(const WriteArgs& a) {
  Layout layout = make_layout(a.layout);
  std::optional<Box> bounds;
  if (!a.bounds.empty()) bounds = parse_box("--bounds", a.bounds, /*allow_inf=*/false, /*strict=*/false);
  PointCloud cloud = load_input(a.input);
  auto store = open_store_url(a.store);

  WriteSummary s;
  {
    Progress progress("writing");  // cleared before the summary is printed
    Exec exec;
    exec.threads = a.layout.threads;
    exec.durable = a.layout.durable;
    exec.progress = progress.callback();
    s = write_points(*store, view_of(cloud.positions), attribute_views(cloud), layout, bounds, exec);
  }
  std::cout << "wrote " << s.vertex_count << " vertices in " << s.chunk_count << " chunks";
  if (!s.bins_per_chunk.empty()) std::cout << " (" << join_ints(s.bins_per_chunk) << " bins per chunk)";
  std::cout << " to " << store->describe() << "\n";
}

// The partition's half-open range from --bbox or the per-axis ranges.
Box partition_range(const PartitionArgs& a, std::size_t ndim) {
  const bool any_axis = !a.x_range.empty() || !a.y_range.empty() || !a.z_range.empty();
  if (!a.bbox.empty()) {
    if (any_axis) throw UsageError("--bbox cannot be combined with --x-range, --y-range or --z-range");
    Box box = parse_box("--bbox", a.bbox, /*allow_inf=*/true, /*strict=*/true);
    if (box.ndim() != ndim)
      throw UsageError("--bbox has " + std::to_string(box.ndim()) + " axes but the positions have " + std::to_string(ndim));
    return box;
  }
  if (!any_axis) throw UsageError("give the partition's range: --x-range, --y-range, --z-range or --bbox");
  Box box = Box::unbounded(ndim);
  const std::pair<const char*, const std::string*> axes[] = {
      {"--x-range", &a.x_range}, {"--y-range", &a.y_range}, {"--z-range", &a.z_range}};
  for (std::size_t d = 0; d < 3; ++d) {
    const auto& [flag, text] = axes[d];
    if (text->empty()) continue;
    if (d >= ndim)
      throw UsageError(std::string(flag) + " given but the positions have only " + std::to_string(ndim) + " axes");
    auto [lo, hi] = parse_range(flag, *text);
    box.lo[d] = lo;
    box.hi[d] = hi;
  }
  return box;
}

void run_write_partition(const PartitionArgs& a) {
  Layout layout = make_layout(a.layout);
  // Check the range syntax before reading a possibly large input.
  for (const auto& [flag, text] : {std::pair<const char*, const std::string*>{"--x-range", &a.x_range},
                                   {"--y-range", &a.y_range}, {"--z-range", &a.z_range}})
    if (!text->empty()) parse_range(flag, *text);
  if (!a.bbox.empty()) parse_box("--bbox", a.bbox, true, true);

  PointCloud cloud = load_input(a.input);
  if (cloud.positions.one_d)
    invalid(a.input.input + ": positions must be a 2-D (N, D) array, got shape (" +
            std::to_string(cloud.positions.rows) + ",)");
  Box range = partition_range(a, cloud.positions.cols);
  auto store = open_store_url(a.store);

  PartitionSummary s;
  {
    Progress progress("writing partition");
    Exec exec;
    exec.threads = a.layout.threads;
    exec.durable = a.layout.durable;
    exec.progress = progress.callback();
    s = write_points_partition(*store, view_of(cloud.positions), attribute_views(cloud), layout, range, exec);
  }
  std::cout << "partition " << s.partition_id << " (" << format_range(range) << "): " << s.vertex_count
            << " vertices, " << s.chunks_in_place << " chunks written in place, " << s.chunks_staged
            << " staged for finalise\n";
}

const char* kLayoutHelp =
    "\nInput: with a .npy --input, the file holds positions (N, D) and each --attr-input\n"
    "NAME=FILE.npy one attribute (N,) or (N, C). With a .csv or .ply --input, positions are\n"
    "the x,y[,z] columns/properties and every other column is an attribute (choose with\n"
    "--position-columns / --attr-columns); --attr-input may add more .npy attributes.\n"
    "CSV attributes are int64 if a file's values are all whole numbers, else float64;\n"
    "--attr-dtype NAME=DTYPE (or '*=DTYPE') fixes the dtype, e.g. --attr-dtype intensity=float32.\n";

}  // namespace

void register_write(CLI::App& app, std::vector<Command>& commands) {
  auto a = std::make_shared<WriteArgs>();
  CLI::App* sub = app.add_subcommand("write", "Write a new store in one go from a point file");
  sub->add_option("STORE", a->store, "Store to create (a directory, file:// or s3://bucket/prefix URL)")->required();
  add_input_options(*sub, a->input);
  add_layout_options(*sub, a->layout);
  sub->add_option("--bounds", a->bounds,
                  "Inclusive bounds LO,..:HI,.. (default: the data's min/max); points outside are an error")
      ->type_name("LO,..:HI,..");
  sub->footer(std::string(kLayoutHelp) +
              "\nExamples:\n"
              "  zvf write scan.zarrvectors --input pos.npy --attr-input intensity=int.npy \\\n"
              "      --chunk-shape 500,500,500 --bin-shape 125,125,125 --compressor zstd\n"
              "  zvf write scan.zarrvectors --input points.csv --chunk-shape 100,100 --threads 8\n"
              "\nExit codes: see 'zvf --help'.");
  commands.push_back({sub, [a] { run_write(*a); }});
}

void register_write_partition(CLI::App& app, std::vector<Command>& commands) {
  auto a = std::make_shared<PartitionArgs>();
  CLI::App* sub = app.add_subcommand(
      "write-partition", "Write one spatial partition of a store shared by independent jobs (finalise afterwards)");
  sub->add_option("STORE", a->store, "Shared store (a directory, file:// or s3://bucket/prefix URL)")->required();
  add_input_options(*sub, a->input);
  add_layout_options(*sub, a->layout);
  sub->add_option("--x-range", a->x_range, "Half-open x range [LO, HI) of this partition; inf/-inf allowed")
      ->type_name("LO,HI");
  sub->add_option("--y-range", a->y_range, "Half-open y range [LO, HI)")->type_name("LO,HI");
  sub->add_option("--z-range", a->z_range, "Half-open z range [LO, HI)")->type_name("LO,HI");
  sub->add_option("--bbox", a->bbox, "Half-open box LO,..:HI,.. instead of per-axis ranges")->type_name("LO,..:HI,..");
  sub->footer(std::string(kLayoutHelp) +
              "\nEvery point must lie in the partition's range. Ranges of the jobs must not overlap;\n"
              "re-running a job replaces its partition. Axes without a range are unbounded.\n"
              "Write a negative lower end as --z-range=-inf,0 or --z-range -500,0.\n"
              "\nExample (Slurm job array, 20 z-slabs of 500):\n"
              "  #SBATCH --array=0-19\n"
              "  i=${SLURM_ARRAY_TASK_ID}\n"
              "  zvf write-partition /scratch/scan.zarrvectors --input slab_${i}.npy \\\n"
              "      --attr-input intensity=slab_${i}_intensity.npy \\\n"
              "      --chunk-shape 500,500,500 --bin-shape 125,125,125 \\\n"
              "      --z-range $((i*500)),$(((i+1)*500)) --threads ${SLURM_CPUS_PER_TASK:-0}\n"
              "  # then, in a job with --dependency=afterok:<array job id>:\n"
              "  zvf finalise /scratch/scan.zarrvectors\n"
              "\nExit codes: see 'zvf --help'.");
  commands.push_back({sub, [a] { run_write_partition(*a); }});
}

}  // namespace zvf::cli
