// zvf: command-line front end of libzvf for job scripts (Slurm, no Python).
// Parsing and formatting only; every subcommand calls one engine function.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <new>
#include <string>
#include <vector>

#include "args.hpp"
#include "common.hpp"
#include "zvf/error.hpp"
#include "zvf/points.hpp"

#ifndef ZVF_VERSION
#define ZVF_VERSION "unknown"
#endif

namespace {

constexpr int kExitOk = 0;
constexpr int kExitOther = 1;
constexpr int kExitUsage = 2;

int exit_code(zvf::Error::Code code) {
  using C = zvf::Error::Code;
  switch (code) {
    case C::InvalidArgument: return 3;
    case C::NotFound: return 4;
    case C::Corrupt: return 5;
    case C::Conflict: return 6;
    case C::IO: return 7;
    case C::Unsupported: return 8;
  }
  return kExitOther;
}

const char* kFooter =
    "\nTypical Slurm use: one 'zvf write-partition' per array task, then 'zvf finalise'\n"
    "in a job that depends on the array (see 'zvf write-partition --help').\n"
    "\nExit codes:\n"
    "  0  success\n"
    "  1  any other failure\n"
    "  2  usage error: bad or missing options or values\n"
    "  3  invalid input: bad values in the input files or arguments (shape, dtype, NaN, range)\n"
    "  4  not found: the store, a level or an input file does not exist\n"
    "  5  corrupt store: bytes or metadata on disk do not decode\n"
    "  6  conflict: partitions disagree, overlap or are incomplete; the store already exists\n"
    "  7  I/O error: the filesystem or object store failed (after retries)\n"
    "  8  unsupported: the store uses a ZV feature zvf does not read (sharding, attribute chunks)\n"
    "Errors are printed to stderr as 'zvf: error: <message>'. Progress is shown on stderr\n"
    "only when it is a terminal.\n\n"
    "Environment:\n"
    "  ZVF_TRACE=1           print the wall time of each phase of a write to stderr\n"
    "  ZVF_BUFFER_CACHE_MB   bytes of freed large buffers kept for reuse (default 1024, 0: none)\n"
    "  ZVF_S3_*              S3 settings (concurrency, timeouts, retries): see docs/s3.md";

void print_error(const std::string& message) { std::cerr << "zvf: error: " << message << std::endl; }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"zvf " ZVF_VERSION ": write and read Zarr Vectors (ZV 0.9) point-cloud stores", "zvf"};
  app.set_version_flag("--version", std::string("zvf ") + ZVF_VERSION + " (ZV " + zvf::kZvVersion + ")");
  app.require_subcommand(1);

  std::vector<zvf::cli::Command> commands;
  zvf::cli::register_write(app, commands);
  zvf::cli::register_write_partition(app, commands);
  zvf::cli::register_finalise(app, commands);
  zvf::cli::register_info(app, commands);
  zvf::cli::register_query(app, commands);
  zvf::cli::register_pyramid(app, commands);
  zvf::cli::register_validate(app, commands);
  zvf::cli::register_plan(app, commands);
  zvf::cli::register_stripe(app, commands);
  app.footer(kFooter);

  // An unknown first word would otherwise be reported as "A subcommand is required".
  if (argc > 1 && argv[1][0] != '-') {
    bool known = false;
    std::string names;
    for (const auto& command : commands) {
      known = known || command.app->check_name(argv[1]);
      names += (names.empty() ? "" : ", ") + command.app->get_name();
    }
    if (!known) {
      print_error(std::string("unknown command '") + argv[1] + "' (commands: " + names + ")");
      std::cerr << "Run 'zvf --help' for usage." << std::endl;
      return kExitUsage;
    }
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);  // --help, --version
    print_error(e.what());
    auto parsed = app.get_subcommands();
    std::cerr << "Run 'zvf " << (parsed.empty() ? std::string() : parsed.front()->get_name() + " ")
              << "--help' for usage." << std::endl;
    return kExitUsage;
  }

  for (const auto& command : commands) {
    if (!command.app->parsed()) continue;
    try {
      command.run();
      std::cout.flush();
      if (!std::cout) {
        print_error("cannot write to standard output");
        return exit_code(zvf::Error::Code::IO);
      }
      return kExitOk;
    } catch (const zvf::cli::UsageError& e) {
      print_error(e.what());
      std::cerr << "Run 'zvf " << command.app->get_name() << " --help' for usage." << std::endl;
      return kExitUsage;
    } catch (const zvf::Error& e) {
      print_error(e.what());
      return exit_code(e.code());
    } catch (const std::bad_alloc&) {
      print_error("out of memory");
      return kExitOther;
    } catch (const std::exception& e) {
      print_error(e.what());
      return kExitOther;
    }
  }
  print_error("no command given");
  return kExitUsage;
}
