// zvf finalise (alias finalize): merge pending partitions into a final store.
#include <iostream>

#include "args.hpp"
#include "common.hpp"
#include "zvf/store.hpp"

namespace zvf::cli {
namespace {

struct FinaliseArgs {
  std::string store;
  bool allow_gaps = false;
  int threads = 0;
  bool durable = false;
};

void run_finalise(const FinaliseArgs& a) {
  auto store = open_store_url(a.store);
  FinaliseOptions options;
  options.allow_gaps = a.allow_gaps;
  FinaliseReport r;
  {
    Progress progress("finalising");  // cleared before the summary is printed
    Exec exec;
    exec.threads = a.threads;
    exec.durable = a.durable;
    exec.progress = progress.callback();
    r = finalise(*store, options, exec);
  }
  for (const auto& gap : r.gaps) std::cerr << "zvf: warning: gap between partitions: " << gap << "\n";
  if (!r.changed) {
    std::cout << store->describe() << ": already final, nothing to do\n";
    return;
  }
  std::cout << "finalised " << store->describe() << ": merged " << r.merged.size() << " partition"
            << (r.merged.size() == 1 ? "" : "s") << ", " << r.vertex_count << " vertices, " << r.chunk_count
            << " chunks";
  if (r.bounds) std::cout << ", bounds " << format_box(*r.bounds);
  std::cout << "\n";
  if (r.orphans_removed)
    std::cout << "removed " << r.orphans_removed << " orphan cell file" << (r.orphans_removed == 1 ? "" : "s")
              << " that no partition claims (left by a deleted partition)\n";
}

}  // namespace

void register_finalise(CLI::App& app, std::vector<Command>& commands) {
  auto a = std::make_shared<FinaliseArgs>();
  CLI::App* sub = app.add_subcommand("finalise", "Merge the pending partitions of a store and write its metadata");
  sub->alias("finalize");
  sub->add_option("STORE", a->store, "Store written by 'zvf write-partition' jobs")->required();
  sub->add_flag("--allow-gaps", a->allow_gaps,
                "Finalise even if the partitions leave gaps along their axis (gaps are reported on stderr)");
  sub->add_option("--threads", a->threads, "Worker threads (0: one per core)")
      ->check(non_negative_int())
      ->capture_default_str();
  sub->add_flag("--durable", a->durable,
                "Return only once the merged data and the metadata are on stable storage (syncfs on a filesystem)");
  sub->footer(
      "\nRefuses (exit 6) while a partition is incomplete, or when partitions overlap or\n"
      "disagree on layout, naming them. Running it again on a final store does nothing.\n"
      "\nExample (after a Slurm job array):\n"
      "  sbatch --dependency=afterok:${ARRAY_JOB_ID} --wrap 'zvf finalise /scratch/scan.zarrvectors'\n"
      "\nExit codes: see 'zvf --help'.");
  commands.push_back({sub, [a] { run_finalise(*a); }});
}

}  // namespace zvf::cli
