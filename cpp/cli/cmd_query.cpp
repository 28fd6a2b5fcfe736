// zvf query: read the points of a level inside a box and write them to CSV or NPY.
#include <iostream>

#include "args.hpp"
#include "common.hpp"
#include "zvf/error.hpp"
#include "zvf/store.hpp"

namespace zvf::cli {
namespace {

struct QueryArgs {
  std::string store;
  std::string bbox;
  int level = 0;
  std::string attrs;
  CLI::Option* attrs_opt = nullptr;
  std::string output;
  int threads = 0;
};

void run_query(const QueryArgs& a) {
  FileFormat out_format;
  try {
    out_format = file_format(a.output);
  } catch (const Error&) {
    throw UsageError("--output: expected a path ending in .csv or .npy, got '" + a.output + "'");
  }
  if (out_format == FileFormat::Ply)
    throw UsageError("--output: expected a path ending in .csv or .npy, got '" + a.output + "'");

  ReadOptions options;
  options.level = a.level;
  if (!a.bbox.empty()) options.bbox = parse_box("--bbox", a.bbox, /*allow_inf=*/true, /*strict=*/false);
  if (a.attrs_opt->count() > 0) options.attributes = split_list(a.attrs);

  auto store = open_store_url(a.store);
  PointCloud cloud;
  {
    Progress progress("reading");
    Exec exec;
    exec.threads = a.threads;
    exec.progress = progress.callback();
    cloud = read_points(*store, options, exec);
  }
  for (const auto& [name, why] : cloud.skipped)
    std::cerr << "zvf: note: attribute '" << name << "' left out: it has " << why << ", which zvf cannot read\n";
  if (out_format == FileFormat::Csv) {
    write_csv(a.output, cloud);  // dictionary-encoded attributes as their categories
    std::cout << "wrote " << cloud.positions.rows << " points to " << a.output << "\n";
  } else {
    auto files = write_npy_set(a.output, cloud);
    std::cout << "wrote " << cloud.positions.rows << " points to";
    for (std::size_t i = 0; i < files.size(); ++i) std::cout << (i ? ", " : " ") << files[i];
    std::cout << "\n";
    const std::string base = a.output.substr(0, a.output.size() - 4);
    for (const auto& [name, cats] : cloud.categories)
      std::cerr << "zvf: note: attribute '" << name << "' is dictionary-encoded: " << base << "." << name
                << ".npy holds codes into the " << cats.size() << " categories listed in " << base << "." << name
                << ".categories.json\n";
  }
}

}  // namespace

void register_query(CLI::App& app, std::vector<Command>& commands) {
  auto a = std::make_shared<QueryArgs>();
  CLI::App* sub = app.add_subcommand("query", "Read the points of a finalised store inside a box into CSV or NPY");
  sub->add_option("STORE", a->store, "Store (a directory, file:// or s3://bucket/prefix URL)")->required();
  sub->add_option("--bbox", a->bbox, "Inclusive box LO,..:HI,.. (inf/-inf allowed; default: the whole level)")
      ->type_name("LO,..:HI,..");
  sub->add_option("--level", a->level, "Resolution level")->check(non_negative_int())->capture_default_str();
  a->attrs_opt = sub->add_option("--attrs", a->attrs, "Attributes to read (default: all; '' for none)")
                     ->type_name("A,B,..");
  sub->add_option("--output,-o", a->output,
                  "OUT.csv (one file: x,y,z then attributes) or OUT.npy (positions; each attribute to OUT.<name>.npy)")
      ->required();
  sub->add_option("--threads", a->threads, "Worker threads (0: one per core)")
      ->check(non_negative_int())
      ->capture_default_str();
  sub->footer(
      "\nAn (N, C) attribute becomes CSV columns NAME_0 .. NAME_<C-1>. Dictionary-encoded\n"
      "attributes (the reference's strings) are written as their categories in CSV, and as\n"
      "codes with OUT.<name>.categories.json beside them in NPY. bool is written as 0/1.\n"
      "Output files are written next to the target and renamed into place.\n"
      "\nExamples:\n"
      "  zvf query scan.zarrvectors --bbox 0,0,0:1000,1000,500 --attrs intensity --output roi.csv\n"
      "  zvf query scan.zarrvectors --bbox=-inf,-inf,0:inf,inf,10 --output slab.npy\n"
      "      # writes slab.npy (positions) and slab.<attribute>.npy\n"
      "\nExit codes: see 'zvf --help'.");
  commands.push_back({sub, [a] { run_query(*a); }});
}

}  // namespace zvf::cli
