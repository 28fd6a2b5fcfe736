// zvf stripe: print (and with --run, run) the Lustre 'lfs setstripe' commands
// that prepare an empty store directory before the array job writes it:
//   the store root gets a small layout (1 MiB stripes, one OST) for zarr.json,
//   fragment indexes and manifests, which every directory below inherits;
//   the cell directories of the big arrays (0/vertices/c, attributes) get a
//   layout sized to their chunk files.
// Directories are created first: 'lfs setstripe' on a missing path would
// create a file. 'lfs' is found on PATH and started with posix_spawn and an
// argv (no shell), so no path is ever re-parsed.
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "args.hpp"
#include "common.hpp"
#include "zvf/error.hpp"
#include "zvf/plan.hpp"

extern char** environ;

namespace zvf::cli {
namespace {

namespace fs = std::filesystem;

struct StripeArgs {
  std::string store;
  std::string plan;
  std::vector<std::string> attrs;
  std::string count = "1";
  std::string size;
  std::string root_size = "1m";
  bool run = false;
};

// Attribute names become directories: the writers' rule (letters, digits, '_',
// then also '.' or '-'), so no name can climb out of the store.
void check_attr_name(const std::string& what, const std::string& name) {
  bool ok = !name.empty() && name.size() <= 255;
  for (std::size_t i = 0; ok && i < name.size(); ++i) {
    const char c = name[i];
    ok = std::isalnum(static_cast<unsigned char>(c)) || c == '_' || (i > 0 && (c == '.' || c == '-'));
  }
  if (!ok)
    invalid(what + " '" + name + "' is not a valid attribute name: expected letters, digits and '_', then also '.' or '-'");
}

// One step: create directories, or run lfs with these arguments.
struct Step {
  std::vector<std::string> mkdirs;
  std::vector<std::string> lfs_args;  // after "lfs"
};

std::string command_text(const Step& s) {
  std::string out;
  if (!s.mkdirs.empty()) {
    out = "mkdir -p";
    for (const auto& d : s.mkdirs) out += " " + shell_quote(d);
    return out;
  }
  out = "lfs";
  for (const auto& a : s.lfs_args) out += " " + shell_quote(a);
  return out;
}

// lfs sizes: N[k|m|g] (binary units, as lfs reads them), a multiple of 64 KiB.
std::string parse_stripe_size(const std::string& flag, const std::string& text) {
  std::uint64_t scale = 1;
  std::string digits = text;
  if (!digits.empty()) {
    const char unit = digits.back();
    if (unit == 'k' || unit == 'K') scale = 1ull << 10;
    if (unit == 'm' || unit == 'M') scale = 1ull << 20;
    if (unit == 'g' || unit == 'G') scale = 1ull << 30;
    if (scale != 1) digits.pop_back();
  }
  std::uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (digits.empty() || ec != std::errc() || ptr != digits.data() + digits.size())
    throw UsageError(flag + ": expected a stripe size such as 1m, 4m or 512k, got '" + text + "'");
  const std::uint64_t bytes = v * scale;
  if (bytes == 0 || bytes % (64u << 10) != 0 || bytes > (4ull << 30))
    invalid(flag + " " + text + ": a Lustre stripe size must be a multiple of 64k between 64k and 4g");
  return bytes % (1u << 20) == 0 ? std::to_string(bytes >> 20) + "m" : std::to_string(bytes >> 10) + "k";
}

std::string parse_stripe_count(const std::string& text) {
  long long v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size())
    throw UsageError("--count: expected a whole number (1, 8, or -1 for every OST), got '" + text + "'");
  if (v != -1 && (v < 1 || v > 2000))
    invalid("--count " + text + ": a stripe count must be 1 to 2000, or -1 for every OST");
  return std::to_string(v);
}

// The cell directories to stripe and their stripe sizes.
std::vector<std::pair<std::string, std::string>> cell_dirs(const StripeArgs& a) {
  std::vector<std::pair<std::string, std::string>> out;
  const std::optional<std::string> size =
      a.size.empty() ? std::nullopt : std::optional<std::string>(parse_stripe_size("--size", a.size));
  if (a.plan.empty()) {
    out.push_back({"0/vertices/c", size.value_or("4m")});
    for (const auto& name : a.attrs) out.push_back({"0/vertex_attributes/" + name + "/c", size.value_or("4m")});
    return out;
  }
  if (!a.attrs.empty()) throw UsageError("--attr cannot be combined with --plan (the plan lists the attributes)");
  std::ifstream in(a.plan);
  if (!in) fail(Error::Code::NotFound, "cannot read plan file " + a.plan + ": " + std::strerror(errno));
  nlohmann::json plan;
  try {
    plan = nlohmann::json::parse(in);
    for (const auto& arr : plan.at("arrays")) {
      const std::string name = arr.at("name").get<std::string>();
      if (name == "vertex_fragments") continue;  // small index files: the root's layout suits them
      if (name != "vertices") check_attr_name("plan file " + a.plan + ": attribute", name);
      const std::string dir = arr.at("cell_dir").get<std::string>();
      const std::string expected =
          name == "vertices" ? std::string("0/vertices/c") : "0/vertex_attributes/" + name + "/c";
      if (dir != expected) invalid("plan file " + a.plan + " names cell directory '" + dir + "'; expected '" + expected + "'");
      const double full = arr.at("full_bytes").get<double>();
      out.push_back({dir, size.value_or(std::to_string(stripe_size_for(full) >> 20) + "m")});
    }
  } catch (const nlohmann::json::exception& e) {
    invalid("plan file " + a.plan + " is not the JSON of 'zvf plan --json': " + e.what());
  }
  if (out.empty() || out.front().first != "0/vertices/c")
    invalid("plan file " + a.plan + " lists no 0/vertices/c array; write it with 'zvf plan --json'");
  return out;
}

std::vector<Step> plan_steps(const StripeArgs& a, const std::string& root) {
  const std::string count = parse_stripe_count(a.count);
  const std::string root_size = parse_stripe_size("--root-size", a.root_size);
  for (const auto& name : a.attrs) check_attr_name("--attr", name);
  const auto dirs = cell_dirs(a);
  std::vector<Step> steps;
  steps.push_back({{root}, {}});
  steps.push_back({{}, {"setstripe", "-c", "1", "-S", root_size, root}});
  Step mk;
  for (const auto& [dir, size] : dirs) mk.mkdirs.push_back(root + "/" + dir);
  steps.push_back(mk);
  for (const auto& [dir, size] : dirs) steps.push_back({{}, {"setstripe", "-c", count, "-S", size, root + "/" + dir}});
  return steps;
}

// The first executable 'lfs' on PATH, or nullopt.
std::optional<std::string> find_lfs() {
  const char* path = std::getenv("PATH");
  if (!path) return std::nullopt;
  for (const auto& dir : split_list(path, ':')) {
    const std::string candidate = (dir.empty() ? std::string(".") : dir) + "/lfs";
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0)
      return candidate;
  }
  return std::nullopt;
}

void run_lfs(const std::string& lfs, const Step& step) {
  std::vector<std::string> args = {lfs};
  args.insert(args.end(), step.lfs_args.begin(), step.lfs_args.end());
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::cout.flush();  // keep our echo ahead of lfs's own output
  pid_t pid = 0;
  const int err = ::posix_spawn(&pid, lfs.c_str(), nullptr, nullptr, argv.data(), environ);
  if (err != 0) fail(Error::Code::IO, "cannot start " + lfs + ": " + std::strerror(err));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) fail(Error::Code::IO, "cannot wait for " + lfs + ": " + std::strerror(errno));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
  const std::string how = WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                            : "signal " + std::to_string(WTERMSIG(status));
  fail(Error::Code::IO, "'" + command_text(step) + "' failed (" + how +
                            "); is the store on a Lustre file system, and may you set its layout?");
}

void run_stripe(const StripeArgs& a) {
  std::string root = a.store;
  if (root.rfind("file://", 0) == 0) root = root.substr(7);
  if (root.find("://") != std::string::npos)
    invalid("store '" + a.store + "' is not a directory: striping applies to Lustre paths, not " +
            root.substr(0, root.find("://") + 3) + " URLs");
  if (root.empty()) invalid("store path is empty");
  while (root.size() > 1 && root.back() == '/') root.pop_back();

  const std::vector<Step> steps = plan_steps(a, root);
  std::optional<std::string> lfs = find_lfs();
  if (a.run && !lfs)
    fail(Error::Code::NotFound,
         "lfs not found on PATH: --run needs the Lustre client tools; run 'zvf stripe' on a Lustre client, or "
         "drop --run and run the printed commands there");
  if (fs::exists(root + "/zarr.json") || fs::exists(root + "/.zvf"))
    std::cerr << "zvf: warning: " << root << " already holds a store; a new layout applies only to files "
              << "created from now on\n";

  if (!a.run) {
    for (const auto& s : steps) std::cout << command_text(s) << "\n";
    if (!lfs) std::cerr << "zvf: note: lfs is not on PATH here; run these commands on a Lustre client\n";
    return;
  }
  for (const auto& s : steps) {
    std::cout << "+ " << command_text(s) << std::endl;
    for (const auto& dir : s.mkdirs) {
      std::error_code ec;
      fs::create_directories(dir, ec);
      if (ec && !fs::is_directory(dir)) fail(Error::Code::IO, "cannot create directory " + dir + ": " + ec.message());
    }
    if (!s.lfs_args.empty()) run_lfs(*lfs, s);
  }
}

}  // namespace

void register_stripe(CLI::App& app, std::vector<Command>& commands) {
  auto a = std::make_shared<StripeArgs>();
  CLI::App* sub = app.add_subcommand(
      "stripe", "Print (or --run) the 'lfs setstripe' commands that prepare a store directory on Lustre");
  sub->add_option("STORE", a->store, "Store directory to prepare (created if missing; empty before the job)")
      ->required();
  sub->add_option("--plan", a->plan, "JSON from 'zvf plan --json': stripe sizes from the planned chunk files")
      ->type_name("FILE");
  sub->add_option("--attr", a->attrs, "Also stripe this attribute's cell directory (repeatable; without --plan)")
      ->type_name("NAME");
  sub->add_option("--count", a->count, "Stripe count of the cell directories (-1: every OST)")
      ->capture_default_str()
      ->type_name("C");
  sub->add_option("--size", a->size, "Stripe size of the cell directories (default: from --plan, else 4m)")
      ->type_name("SIZE");
  sub->add_option("--root-size", a->root_size, "Stripe size of the store root (metadata, small files)")
      ->capture_default_str()
      ->type_name("SIZE");
  sub->add_flag("--run", a->run, "Create the directories and run the commands with 'lfs' from PATH");
  sub->footer(
      "\nStripe the empty output directory once, before the array job: every directory and\n"
      "file created below it inherits the layout. The root gets '-c 1 -S 1m' (the guide's\n"
      "metadata stripe); 0/vertices/c and each attribute's cell directory get '-c COUNT -S SIZE'.\n"
      "With --plan, SIZE is the smallest of 1m, 2m, 4m that holds a whole chunk file, so each\n"
      "chunk file is one stripe. The default count is 1: chunk files of 1-4 MB gain nothing\n"
      "from more OSTs (the parallelism comes from many tasks writing many files); the guide's\n"
      "'-c 8' is --count 8. Without --run the commands are only printed (no 'lfs' needed).\n"
      "\nExamples:\n"
      "  zvf stripe /scratch/scan.zarrvectors --attr intensity            # print\n"
      "  zvf stripe /scratch/scan.zarrvectors --attr intensity --run      # create and stripe\n"
      "  zvf plan --count 1e9 --bounds 0,0,0,10000,10000,10000 --attr intensity:float32 --json > plan.json\n"
      "  zvf stripe /scratch/scan.zarrvectors --plan plan.json --count 8 --run\n"
      "\nExit codes: see 'zvf --help' (4: --run without 'lfs' on PATH; 7: an lfs command failed).");
  commands.push_back({sub, [a] { run_stripe(*a); }});
}

}  // namespace zvf::cli
