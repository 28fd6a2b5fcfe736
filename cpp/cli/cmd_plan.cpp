// zvf plan: suggest chunk_shape / bin_shape (and slab ranges for K tasks) from a
// point count, bounds and attribute dtypes; prints the write-partition options.
#include <charconv>
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>

#include "args.hpp"
#include "common.hpp"
#include "zvf/error.hpp"
#include "zvf/plan.hpp"

namespace zvf::cli {
namespace {

using ojson = nlohmann::ordered_json;

struct PlanArgs {
  std::string count;
  std::string bounds;
  std::vector<std::string> attrs;
  std::string positions_dtype = "float32";
  double occupancy = 1.0;
  std::string band = "1MB,4MB";
  std::string target;
  std::string compressor = "none";
  double compression_ratio = 1.0;
  std::int64_t partitions = 1;
  std::string axis;
  std::int64_t bins_per_axis = 4;
  bool json = false;
};

// Reads a whole double; "nan" and "inf" pass through so the planner reports them.
bool read_double(const std::string& text, double& out) {
  const char* b = text.data();
  const char* e = b + text.size();
  if (b != e && *b == '+') ++b;
  auto [ptr, ec] = std::from_chars(b, e, out);
  return ec == std::errc() && ptr == e && b != e;
}

// "1000000", "1e9", "2_000_000": a whole number of points.
std::uint64_t parse_count(const std::string& text) {
  std::string digits;
  for (char c : text)
    if (c != '_') digits += c;
  double v = 0;
  if (!read_double(digits, v) || !std::isfinite(v) || v != std::floor(v) || v > 1.8e19)
    throw UsageError("--count: expected a whole number of points (e.g. 1000000 or 1e9), got '" + text + "'");
  if (v < 0) invalid("point count must be > 0, got " + text);
  return static_cast<std::uint64_t>(v);
}

// "x0,y0,z0,x1,y1,z1" or "x0,y0,z0:x1,y1,z1".
Box parse_bounds(const std::string& text) {
  std::vector<std::string> items;
  const bool corners = text.find(':') != std::string::npos;
  if (corners) {
    auto sides = split_list(text, ':');
    if (sides.size() != 2) items.clear();
    else {
      auto lo = split_list(sides[0]), hi = split_list(sides[1]);
      if (lo.size() == hi.size()) {
        items = lo;
        items.insert(items.end(), hi.begin(), hi.end());
      }
    }
  } else {
    items = split_list(text);
  }
  std::vector<double> v;
  for (const auto& item : items) {
    double x;
    if (!read_double(item, x)) {
      v.clear();
      break;
    }
    v.push_back(x);
  }
  if (v.size() < 4 || v.size() > 8 || v.size() % 2 != 0)
    throw UsageError("--bounds: expected LO then HI per axis, 2 to 4 axes, as x0,y0,z0,x1,y1,z1 or "
                     "x0,y0,z0:x1,y1,z1, got '" + text + "'");
  const std::size_t nd = v.size() / 2;
  return {std::vector<double>(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(nd)),
          std::vector<double>(v.begin() + static_cast<std::ptrdiff_t>(nd), v.end())};
}

// "1MB", "2.5MB", "1MiB", "512k", "1000000": bytes (k/M/G decimal, KiB/MiB/GiB binary).
double parse_bytes(const std::string& flag, const std::string& text) {
  static const std::pair<const char*, double> kUnits[] = {
      {"KiB", 1024.0}, {"MiB", 1024.0 * 1024}, {"GiB", 1024.0 * 1024 * 1024}, {"kB", 1e3}, {"KB", 1e3},
      {"MB", 1e6},     {"GB", 1e9},           {"k", 1e3},                   {"K", 1e3},  {"M", 1e6},
      {"G", 1e9},      {"B", 1}};
  double scale = 1;
  std::string number = text;
  for (const auto& [unit, factor] : kUnits) {
    const std::string u = unit;
    if (number.size() > u.size() && number.compare(number.size() - u.size(), u.size(), u) == 0) {
      number.resize(number.size() - u.size());
      scale = factor;
      break;
    }
  }
  double v = 0;
  if (!read_double(number, v) || !std::isfinite(v))
    throw UsageError(flag + ": expected a size such as 1MB, 2.5MB, 1MiB or 1000000 (bytes), got '" + text + "'");
  return v * scale;
}

std::size_t parse_axis(const std::string& text) {
  if (text == "x" || text == "0") return 0;
  if (text == "y" || text == "1") return 1;
  if (text == "z" || text == "2") return 2;
  if (text == "t" || text == "3") return 3;
  throw UsageError("--axis: expected x, y, z or t (or 0..3), got '" + text + "'");
}

// "intensity:float32", "rgb:uint8:3" or "intensity=float32".
AttributeSpec parse_attr(const std::string& text) {
  std::vector<std::string> parts = split_list(text, text.find(':') != std::string::npos ? ':' : '=');
  if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty())
    throw UsageError("--attr: expected NAME:DTYPE or NAME:DTYPE:COMPONENTS (e.g. intensity:float32, rgb:uint8:3), "
                     "got '" + text + "'");
  AttributeSpec a{parts[0], dtype_from_name(parts[1]), 1};
  if (parts.size() == 3) {
    double c = 0;
    if (!read_double(parts[2], c) || c != std::floor(c) || c < 1 || c > 65536)
      throw UsageError("--attr: COMPONENTS must be a whole number 1 to 65536, got '" + parts[2] + "' in '" + text + "'");
    a.components = static_cast<std::int64_t>(c);
  }
  return a;
}

std::string mb(double bytes) {
  char buf[32];
  if (bytes < 1e5) std::snprintf(buf, sizeof buf, "%.3g kB", bytes / 1e3);
  else std::snprintf(buf, sizeof buf, "%.2f MB", bytes / 1e6);
  return buf;
}

std::string joined(const std::vector<double>& v, const char* sep = ",") {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + format_number(v[i]);
  return out;
}

std::string python_tuple(const std::vector<double>& v) {
  std::string out = "(";
  for (std::size_t i = 0; i < v.size(); ++i) {
    std::string n = format_number(v[i]);
    if (n.find_first_of(".en") == std::string::npos) n += ".0";  // as Python prints a float
    out += (i ? ", " : "") + n;
  }
  return out + ")";
}

std::string stripe_size_text(std::uint64_t bytes) { return std::to_string(bytes >> 20) + "m"; }

// The write-partition option for one task's slab: --z-range=LO,HI (the '='
// keeps a negative LO from reading as an option), or --bbox for the 4th axis.
std::string range_option(const ChunkPlan& p, const PartitionRange& r) {
  const std::size_t nd = p.chunk_shape.size();
  if (p.partition_axis < 3)
    return std::string("--") + axis_name(p.partition_axis) + "-range=" + format_number(r.lo) + "," + format_number(r.hi);
  std::vector<double> lo(nd, -INFINITY), hi(nd, INFINITY);
  lo[p.partition_axis] = r.lo;
  hi[p.partition_axis] = r.hi;
  return "--bbox=" + joined(lo) + ":" + joined(hi);
}

std::string layout_options(const ChunkPlan& p) {
  std::string out = "--chunk-shape " + joined(p.chunk_shape) + " --bin-shape " + joined(p.bin_shape);
  if (p.codec != "none") out += " --compressor " + shell_quote(p.codec);
  return out;
}

std::string stripe_command(const ChunkPlan& p, const PlanRequest& r) {
  std::string cmd = "zvf stripe STORE --size " + stripe_size_text(stripe_size_for(p.full_chunk_bytes));
  for (const auto& a : r.attributes) cmd += " --attr " + a.name;
  return cmd;
}

void print_json(const ChunkPlan& p, const PlanRequest& r) {
  ojson j;
  j["point_count"] = r.point_count;
  j["bounds"] = {{"lo", r.bounds.lo}, {"hi", r.bounds.hi}};
  j["chunk_shape"] = p.chunk_shape;
  j["bin_shape"] = p.bin_shape;
  j["bins_per_chunk"] = p.bins_per_chunk;
  j["grid_origin"] = p.grid_origin;
  j["grid_shape"] = p.grid_shape;
  j["chunk_count"] = p.chunk_count;
  j["nonempty_chunks"] = p.nonempty_chunks;
  j["points_per_chunk"] = p.points_per_chunk;
  j["full_chunk_points"] = p.full_chunk_points;
  j["bytes_per_chunk"] = p.bytes_per_chunk;
  j["full_chunk_bytes"] = p.full_chunk_bytes;
  j["band"] = {{"min_bytes", p.min_bytes}, {"max_bytes", p.max_bytes}, {"target_bytes", p.target_bytes}};
  j["in_band"] = p.in_band;
  j["codec"] = p.codec;
  j["compression_ratio"] = p.compression_ratio;
  ojson arrays = ojson::array();
  for (const auto& a : p.arrays)
    arrays.push_back({{"name", a.name},
                      {"cell_dir", a.cell_dir},
                      {"row_bytes", a.row_bytes},
                      {"mean_bytes", a.mean_bytes},
                      {"full_bytes", a.full_bytes},
                      {"stripe_size", stripe_size_for(a.full_bytes)}});
  j["arrays"] = arrays;
  j["files"] = p.files;
  j["max_dir_entries"] = p.max_dir_entries;
  ojson parts = ojson::array();
  for (std::size_t t = 0; t < p.partitions.size(); ++t) {
    const auto& pr = p.partitions[t];
    parts.push_back({{"task", t},
                     {"lo", pr.lo},
                     {"hi", pr.hi},
                     {"first_layer", pr.first_layer},
                     {"layers", pr.layer_count},
                     {"option", range_option(p, pr)}});
  }
  j["partition_axis"] = axis_name(p.partition_axis);
  j["partitions_aligned"] = p.partitions_aligned;
  j["partitions"] = parts;
  ojson args = ojson::array({"--chunk-shape", joined(p.chunk_shape), "--bin-shape", joined(p.bin_shape)});
  if (p.codec != "none") args.insert(args.end(), {"--compressor", p.codec});
  j["write_partition_args"] = args;
  j["warnings"] = p.warnings;
  j["notes"] = p.notes;
  std::cout << j.dump(2) << "\n";
}

void print_text(const ChunkPlan& p, const PlanRequest& r) {
  const std::size_t nd = p.chunk_shape.size();
  std::cout << "points:       " << r.point_count << " in " << format_box(r.bounds) << "\n";
  std::cout << "chunk shape:  " << joined(p.chunk_shape, " x ") << "  (bins " << joined(p.bin_shape, " x ") << ", "
            << p.bins_per_chunk[0];
  for (std::size_t d = 1; d < nd; ++d) std::cout << "x" << p.bins_per_chunk[d];
  std::cout << " per chunk)\n";
  std::cout << "chunk grid:   ";
  for (std::size_t d = 0; d < nd; ++d) std::cout << (d ? " x " : "") << p.grid_shape[d];
  std::cout << " = " << p.chunk_count << " chunks, about " << std::llround(p.nonempty_chunks) << " with points\n";
  std::cout << "per chunk:    " << std::llround(p.points_per_chunk) << " points, largest file " << mb(p.bytes_per_chunk)
            << " on average (" << mb(p.full_chunk_bytes) << " when full); band " << mb(p.min_bytes) << " .. "
            << mb(p.max_bytes) << (p.in_band ? "" : "  ** outside the band **") << "\n";
  std::cout << "files:        about " << std::llround(p.files) << " cell files (" << p.arrays.size()
            << " arrays); at most " << p.max_dir_entries << " entries per directory\n";
  for (const auto& a : p.arrays)
    std::cout << "  " << a.cell_dir << "/...  " << mb(a.mean_bytes) << "\n";
  for (const auto& w : p.warnings) std::cout << "warning: " << w << "\n";
  for (const auto& n : p.notes) std::cout << "note: " << n << "\n";

  std::cout << "\nwrite-partition options:\n  " << layout_options(p) << "\n";
  std::cout << "Python:\n  chunk_shape=" << python_tuple(p.chunk_shape) << ", bin_shape=" << python_tuple(p.bin_shape);
  if (p.codec != "none") std::cout << ", compressor=" << (p.codec.front() == '[' ? "'" + p.codec + "'" : "\"" + p.codec + "\"");
  std::cout << "\n";
  if (p.partitions.size() > 1) {
    std::cout << "\n" << p.partitions.size() << " partitions along " << axis_name(p.partition_axis)
              << (p.partitions_aligned ? ", on chunk boundaries" : ", NOT on chunk boundaries (see the warning)")
              << ":\n";
    for (std::size_t t = 0; t < p.partitions.size(); ++t) {
      std::cout << "  task " << t << ": " << range_option(p, p.partitions[t]);
      if (p.partitions_aligned)
        std::cout << "   (" << p.partitions[t].layer_count << " layer" << (p.partitions[t].layer_count == 1 ? "" : "s")
                  << ")";
      std::cout << "\n";
    }
  }
  std::cout << "\nLustre, before the first task writes:\n  " << stripe_command(p, r) << "\n";
}

void run_plan(const PlanArgs& a) {
  PlanRequest r;
  r.point_count = parse_count(a.count);
  r.bounds = parse_bounds(a.bounds);
  r.positions_dtype = dtype_from_name(a.positions_dtype);
  for (const auto& text : a.attrs) r.attributes.push_back(parse_attr(text));
  r.occupancy = a.occupancy;
  auto band = split_list(a.band);
  if (band.size() != 2) throw UsageError("--band: expected MIN,MAX (e.g. 1MB,4MB), got '" + a.band + "'");
  r.min_bytes = parse_bytes("--band", band[0]);
  r.max_bytes = parse_bytes("--band", band[1]);
  if (!a.target.empty()) r.target_bytes = parse_bytes("--target", a.target);
  r.codec = CodecSpec::from_name(a.compressor);
  r.compression_ratio = a.compression_ratio;
  r.partitions = a.partitions;
  if (!a.axis.empty()) r.partition_axis = parse_axis(a.axis);
  r.bins_per_axis = a.bins_per_axis;
  const ChunkPlan p = plan_chunks(r);
  if (a.json) print_json(p, r);
  else print_text(p, r);
}

}  // namespace

void register_plan(CLI::App& app, std::vector<Command>& commands) {
  auto a = std::make_shared<PlanArgs>();
  CLI::App* sub = app.add_subcommand(
      "plan", "Suggest --chunk-shape/--bin-shape (and slab ranges) so chunk files land in the 1-4 MB band");
  sub->add_option("--count", a->count, "Number of points in the whole store (e.g. 1000000000 or 1e9)")
      ->required()
      ->type_name("N");
  sub->add_option("--bounds", a->bounds, "Extent of the points, inclusive: x0,y0,z0,x1,y1,z1 (or x0,y0,z0:x1,y1,z1)")
      ->required()
      ->type_name("LO..,HI..");
  sub->add_option("--attr", a->attrs, "An attribute NAME:DTYPE or NAME:DTYPE:COMPONENTS (repeatable)")
      ->type_name("NAME:DTYPE");
  sub->add_option("--positions-dtype", a->positions_dtype, "float32 (12 bytes per xyz point) or float64")
      ->capture_default_str();
  sub->add_option("--occupancy", a->occupancy,
                  "Fraction (0, 1] of the box that holds points; 1 = spread uniformly over the bounds")
      ->capture_default_str();
  sub->add_option("--band", a->band, "Target band for the largest file of a chunk (MB = 10^6 bytes; MiB also accepted)")
      ->capture_default_str()
      ->type_name("MIN,MAX");
  sub->add_option("--target", a->target, "Preferred file size inside the band (default: geometric mean, 2MB)")
      ->type_name("SIZE");
  sub->add_option("--compressor", a->compressor, "none, zstd, blosc, gzip or a JSON list of codecs, as for write-partition")
      ->check(compressor_choice())
      ->type_name("CODECS")
      ->capture_default_str();
  sub->add_option("--compression-ratio", a->compression_ratio,
                  "Assumed raw/compressed size with a compressor (default 1: plan on raw sizes, an upper bound)");
  sub->add_option("--partitions", a->partitions, "Number of tasks writing slabs (Slurm array size, MPI ranks)")
      ->capture_default_str()
      ->type_name("K");
  sub->add_option("--axis", a->axis, "Slab axis of the partitions: x, y, z or t (default z; y in 2-D)");
  sub->add_option("--bins-per-axis", a->bins_per_axis, "Bins per chunk along each axis (bin = chunk / this)")
      ->capture_default_str();
  sub->add_flag("--json", a->json, "Print the plan as JSON (input for 'zvf stripe --plan')");
  sub->footer(
      "\nChunks are cubes with a 'nice' edge m x 10^e (m in 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8),\n"
      "chosen so the largest cell file of a chunk (12 bytes per float32 xyz point) averages\n"
      "inside the band; bin_shape divides it into --bins-per-axis per axis. With --partitions,\n"
      "the slab ranges start and end on chunk boundaries, so no chunk is shared between tasks.\n"
      "With a compressor the compressed size is unknown: sizes are raw sizes divided by\n"
      "--compression-ratio (1 by default, so files on disk will be smaller than planned).\n"
      "\nExamples:\n"
      "  zvf plan --count 1e9 --bounds 0,0,0,10000,10000,10000 --attr intensity:float32\n"
      "  zvf plan --count 2e9 --bounds 0,0,0,5000,5000,800 --attr intensity:uint16 --attr rgb:uint8:3 \\\n"
      "      --partitions 20 --axis z\n"
      "  zvf plan --count 1e9 --bounds 0,0,0,10000,10000,10000 --json > plan.json\n"
      "  zvf stripe /scratch/scan.zarrvectors --plan plan.json --run\n"
      "\nExit codes: see 'zvf --help' (3: a bad count, bounds, dtype or band).");
  commands.push_back({sub, [a] { run_plan(*a); }});
}

}  // namespace zvf::cli
