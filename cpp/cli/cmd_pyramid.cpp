// zvf pyramid: build coarse levels (level-of-detail) of a finalised store.
#include <cstdint>
#include <iostream>
#include <limits>

#include "args.hpp"
#include "common.hpp"
#include "zvf/error.hpp"
#include "zvf/pyramid.hpp"
#include "zvf/store.hpp"

namespace zvf::cli {
namespace {

struct PyramidArgs {
  std::string store;
  std::vector<std::string> factors;
  std::vector<std::string> chunk_scale;
  std::vector<std::string> reduce;
  std::string part;
  bool finalise_parts = false;
  bool overwrite = false;
  int threads = 0;
  bool durable = false;
};

double number(const std::string& text, const std::string& what) {
  try {
    std::size_t used = 0;
    double v = std::stod(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  throw UsageError(what + ": expected a number, got '" + text + "'");
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    auto at = s.find(sep, start);
    out.push_back(s.substr(start, at - start));
    if (at == std::string::npos) return out;
    start = at + 1;
  }
}

void run_pyramid(const PyramidArgs& a) {
  PyramidOptions opt;
  for (const auto& f : a.factors) {
    auto parts = split(f, ',');
    if (parts.empty() || parts.size() > 2)
      throw UsageError("--factors: expected COARSEN[,SPARSITY], got '" + f + "'");
    PyramidLevelSpec spec;
    spec.coarsen = number(parts[0], "--factors");
    if (parts.size() == 2) spec.sparsity = number(parts[1], "--factors");
    opt.levels.push_back(spec);
  }
  if (!a.chunk_scale.empty() && a.chunk_scale.size() != opt.levels.size())
    throw UsageError("--chunk-scale given " + std::to_string(a.chunk_scale.size()) +
                                                  " times; expected once per --factors (" +
                                                  std::to_string(opt.levels.size()) + ")");
  for (std::size_t i = 0; i < a.chunk_scale.size(); ++i)
    for (const auto& x : split(a.chunk_scale[i], ','))
      opt.levels[i].chunk_scale.push_back(parse_integer("--chunk-scale", x, 1, std::int64_t(1) << 40));
  for (const auto& r : a.reduce) {
    auto eq = r.find('=');
    if (eq == std::string::npos)
      throw UsageError("--reduce: expected NAME=mean|min|max|first|mode, got '" + r + "'");
    opt.reductions[r.substr(0, eq)] = reduction_from_name(r.substr(eq + 1));
  }
  if (!a.part.empty()) {
    auto p = split(a.part, '/');
    if (p.size() != 2) throw UsageError("--part: expected I/N, got '" + a.part + "'");
    constexpr std::int64_t kMaxParts = std::numeric_limits<int>::max();
    opt.part_count = static_cast<int>(parse_integer("--part count", p[1], 1, kMaxParts));
    opt.part_index = static_cast<int>(parse_integer("--part index", p[0], 0, opt.part_count - 1));
  }
  opt.finalise_parts = a.finalise_parts;
  opt.overwrite = a.overwrite;
  auto store = open_store_url(a.store);
  PyramidReport r;
  {
    Progress progress("building pyramid");
    Exec exec;
    exec.threads = a.threads;
    exec.durable = a.durable;
    exec.progress = progress.callback();
    r = build_pyramid(*store, opt, exec);
  }
  if (!r.changed) std::cout << store->describe() << ": pyramid already built with these settings, nothing to do\n";
  for (const auto& l : r.levels)
    std::cout << "level " << l.level << ": " << l.vertex_count << " vertices in " << l.chunk_count << " chunks, bin "
              << format_point(l.bin_shape) << ", chunk " << format_point(l.chunk_shape) << "\n";
  if (!r.complete) std::cout << "part " << a.part << " done; run 'zvf pyramid ... --finalise-parts' after all parts\n";
}

}  // namespace

void register_pyramid(CLI::App& app, std::vector<Command>& commands) {
  auto a = std::make_shared<PyramidArgs>();
  CLI::App* sub = app.add_subcommand("pyramid", "Build coarse levels (level of detail) of a finalised store");
  sub->add_option("STORE", a->store, "Finalised store")->required();
  sub->add_option("--factors", a->factors,
                  "COARSEN[,SPARSITY] for the next level, relative to the previous one; repeat per level")
      ->required();
  sub->add_option("--chunk-scale", a->chunk_scale,
                  "Chunk of that level as a multiple of the root chunk (N or N,N,N); default: automatic");
  sub->add_option("--reduce", a->reduce,
                  "NAME=mean|min|max|first|mode: how an attribute is carried down (default: mean for floats, mode for integers and bool)");
  sub->add_option("--part", a->part, "I/N: build only share I of N of the coarse chunks (scale-out)");
  sub->add_flag("--finalise-parts", a->finalise_parts, "Publish a pyramid built by --part runs");
  sub->add_flag("--overwrite", a->overwrite, "Replace a pyramid built with other settings");
  sub->add_option("--threads", a->threads, "Worker threads (0: one per core)")->check(non_negative_int());
  sub->add_flag("--durable", a->durable,
                "Return only once the levels are on stable storage, flushed before the metadata that publishes them");
  sub->footer(
      "\nEach level replaces every non-empty bin by one point at the mean of its level-0\n"
      "points, with a 'count' attribute. Re-running with the same settings does nothing.\n"
      "\nExamples:\n"
      "  zvf pyramid /scratch/scan.zarrvectors --factors 2,1 --factors 2,1\n"
      "  # scale-out over a Slurm array of 8 tasks, then one publishing job:\n"
      "  zvf pyramid STORE --factors 2 --factors 2 --part ${SLURM_ARRAY_TASK_ID}/8\n"
      "  zvf pyramid STORE --factors 2 --factors 2 --finalise-parts\n"
      "\nExit codes: see 'zvf --help'.");
  commands.push_back({sub, [a] { run_pyramid(*a); }});
}

}  // namespace zvf::cli
