// zvf validate: check a store at the reference validator's levels 1-5 and report
// the findings, as text or JSON. Exit 0 when valid, 5 when errors were found.
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common.hpp"
#include "zvf/error.hpp"
#include "zvf/store.hpp"
#include "zvf/validate.hpp"

namespace zvf::cli {
namespace {

using ojson = nlohmann::ordered_json;

struct ValidateArgs {
  std::string store;
  int level = 3;
  bool json = false;
  int threads = 0;
};

void print_json(const Store& store, const ValidationReport& r) {
  ojson findings = ojson::array();
  for (const auto& f : r.findings)
    findings.push_back({{"level", f.level}, {"severity", severity_name(f.severity)}, {"key", f.key}, {"message", f.message}});
  ojson j = {{"store", store.describe()},
             {"level", r.level},
             {"valid", r.ok()},
             {"errors", r.error_count()},
             {"warnings", r.warning_count()},
             {"findings", findings},
             {"passed", r.passed}};
  std::cout << j.dump(2) << "\n";
}

void print_text(const Store& store, const ValidationReport& r) {
  std::cout << "store: " << store.describe() << " (validated to level " << r.level << ")\n";
  for (const auto& f : r.findings) {
    std::cout << std::left << std::setw(8) << (f.severity == Severity::Error ? "ERROR" : "WARNING") << std::right
              << "L" << f.level << "  ";
    if (!f.key.empty()) std::cout << f.key << ": ";
    std::cout << f.message << "\n";
  }
  std::cout << (r.ok() ? "valid" : "INVALID") << ": " << r.error_count() << " error(s), " << r.warning_count()
            << " warning(s), " << r.passed.size() << " check(s) passed\n";
}

void run_validate(const ValidateArgs& a) {
  auto store = open_store_url(a.store);
  Progress progress("validating cells");
  Exec exec;
  exec.threads = a.threads;
  exec.progress = progress.callback();
  ValidationReport report = validate_store(*store, {a.level}, exec);
  if (a.json) print_json(*store, report);
  else print_text(*store, report);
  if (!report.ok())
    fail(Error::Code::Corrupt, store->describe() + " is not a valid ZV store: " + std::to_string(report.error_count()) +
                                   " error(s) at validation level " + std::to_string(a.level));
}

}  // namespace

void register_validate(CLI::App& app, std::vector<Command>& commands) {
  auto a = std::make_shared<ValidateArgs>();
  CLI::App* sub = app.add_subcommand("validate", "Check a store's structure, metadata and cells; list what is wrong");
  sub->add_option("STORE", a->store, "Store (a directory, file:// or s3://bucket/prefix URL)")->required();
  sub->add_option("--level", a->level,
                  "Checks to run, cumulative: 1 structure, 2 metadata, 3 cells and counts, 4 geometry "
                  "conformance, 5 pyramid")
      ->check(CLI::Range(1, kMaxValidationLevel))
      ->capture_default_str();
  sub->add_flag("--json", a->json, "Print the report as JSON (findings with level, severity, key, message)");
  sub->add_option("--threads", a->threads, "Worker threads for the cell checks (0: one per core)")
      ->check(non_negative_int())
      ->capture_default_str();
  sub->footer(
      "\nLevels follow the reference validator (zarr-vectors 0.9.2). Warnings do not make a store\n"
      "invalid: pending or unmerged partitions, temp files of killed writers, orphan cells, an\n"
      "unpublished pyramid level. A store that is still only partitions is an error.\n"
      "\nExamples:\n"
      "  zvf validate /scratch/scan.zarrvectors\n"
      "  zvf validate /scratch/scan.zarrvectors --level 5\n"
      "  zvf validate s3://bucket/scan.zarrvectors --json | jq '.findings[] | select(.severity == \"error\")'\n"
      "  zvf finalise /scratch/scan.zarrvectors && zvf validate /scratch/scan.zarrvectors || exit 1\n"
      "\nExit codes: 0 valid, 5 errors found (report on stdout), 4 no store there, 2 usage;\n"
      "see 'zvf --help'.");
  commands.push_back({sub, [a] { run_validate(*a); }});
}

}  // namespace zvf::cli
