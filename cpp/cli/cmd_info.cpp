// zvf info: store metadata and pending partitions, as text or JSON.
#include <cmath>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "args.hpp"
#include "common.hpp"
#include "zvf/error.hpp"
#include "zvf/store.hpp"

namespace zvf::cli {
namespace {

using ojson = nlohmann::ordered_json;

struct InfoArgs {
  std::string store;
  bool json = false;
};

// JSON has no infinity: unbounded ends are the strings "inf" / "-inf".
ojson number_json(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

ojson box_json(const Box& b) {
  ojson lo = ojson::array(), hi = ojson::array();
  for (double v : b.lo) lo.push_back(number_json(v));
  for (double v : b.hi) hi.push_back(number_json(v));
  return {{"lo", lo}, {"hi", hi}};
}

std::string shape_text(const std::vector<double>& v) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? " x " : "") + format_number(v[i]);
  return out;
}

std::string shape_text(const std::vector<std::int64_t>& v) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? " x " : "") + std::to_string(v[i]);
  return out;
}

std::string row_shape_text(const std::vector<std::int64_t>& row_shape) {
  std::string out = "(N";
  for (auto c : row_shape) out += ", " + std::to_string(c);
  return out + (row_shape.empty() ? ",)" : ")");
}

void print_json(const Store& store, const std::optional<StoreInfo>& info, const std::vector<PartitionState>& parts) {
  ojson j;
  j["store"] = store.describe();
  j["finalised"] = info.has_value();
  if (info) {
    j["zv_version"] = info->zv_version;
    j["ndim"] = info->ndim;
    j["dtype"] = dtype_name(info->dtype);
    j["bounds"] = box_json(info->bounds);
    j["codec"] = info->codec;
    ojson attrs = ojson::array();
    for (const auto& at : info->attributes)
    {
      ojson e = {{"name", at.name}, {"dtype", at.readable ? ojson(dtype_name(at.dtype)) : ojson(nullptr)},
                 {"row_shape", at.row_shape}};
      if (!at.note.empty()) e["note"] = at.note;
      attrs.push_back(e);
    }
    j["attributes"] = attrs;
    ojson levels = ojson::array();
    for (const auto& l : info->levels)
      levels.push_back({{"level", l.level},
                        {"vertex_count", l.vertex_count},
                        {"chunk_shape", l.chunk_shape},
                        {"bin_shape", l.bin_shape},
                        {"grid_shape", l.grid_shape},
                        {"grid_origin", l.grid_origin},
                        {"nonempty_chunks", l.nonempty_chunks}});
    j["levels"] = levels;
  }
  ojson ps = ojson::array();
  for (const auto& p : parts)
    ps.push_back({{"id", p.id}, {"complete", p.complete}, {"vertex_count", p.vertex_count}, {"range", box_json(p.range)}});
  j["pending_partitions"] = ps;
  std::cout << j.dump(2) << "\n";
}

void print_partitions(const std::vector<PartitionState>& parts) {
  std::size_t complete = 0, width = 0;
  for (const auto& p : parts) {
    complete += p.complete;
    width = std::max(width, p.id.size());
  }
  std::cout << "pending partitions: " << parts.size() << " (" << complete << " complete, " << parts.size() - complete
            << " incomplete)\n";
  for (const auto& p : parts) {
    std::cout << "  " << std::left << std::setw(static_cast<int>(width)) << p.id << "  " << std::setw(10)
              << (p.complete ? "complete" : "incomplete") << std::right;
    if (p.complete) std::cout << "  " << std::setw(12) << p.vertex_count << " vertices";
    std::cout << "  " << format_range(p.range) << "\n";
  }
}

void print_text(const Store& store, const std::optional<StoreInfo>& info, const std::vector<PartitionState>& parts) {
  if (!info) {
    std::cout << "store:       " << store.describe() << " (not finalised)\n";
    print_partitions(parts);
    bool all_complete = true;
    for (const auto& p : parts) all_complete = all_complete && p.complete;
    std::cout << (all_complete ? "all partitions complete: run 'zvf finalise " + store.describe() + "'\n"
                               : "wait for (or re-run) the incomplete partitions' jobs, then run 'zvf finalise " +
                                     store.describe() + "'\n");
    return;
  }
  std::cout << "store:       " << store.describe() << "\n"
            << "zv version:  " << info->zv_version << "\n"
            << "positions:   " << info->ndim << "-D " << dtype_name(info->dtype) << "\n"
            << "bounds:      " << format_box(info->bounds, info->dtype == DType::F32) << "\n"
            << "codec:       " << info->codec << "\n";
  if (info->attributes.empty()) std::cout << "attributes:  none\n";
  for (std::size_t i = 0; i < info->attributes.size(); ++i) {
    const auto& at = info->attributes[i];
    std::cout << (i ? "             " : "attributes:  ") << at.name << "  ";
    if (at.readable) std::cout << dtype_name(at.dtype) << " " << row_shape_text(at.row_shape);
    if (!at.note.empty()) std::cout << (at.readable ? "  " : "") << "(" << at.note << ")";
    std::cout << "\n";
  }
  for (const auto& l : info->levels) {
    std::cout << "level " << l.level << ":     " << l.vertex_count << " vertices in " << l.nonempty_chunks
              << " non-empty chunks\n"
              << "             chunk shape " << shape_text(l.chunk_shape) << ", bin shape " << shape_text(l.bin_shape)
              << "\n"
              << "             chunk grid " << shape_text(l.grid_shape) << " from origin [";
    for (std::size_t d = 0; d < l.grid_origin.size(); ++d) std::cout << (d ? ", " : "") << l.grid_origin[d];
    std::cout << "]\n";
  }
  if (parts.empty()) std::cout << "pending partitions: none\n";
  else print_partitions(parts);
}

void run_info(const InfoArgs& a) {
  auto store = open_store_url(a.store);
  std::optional<StoreInfo> info;
  std::optional<Error> info_error;
  try {
    info = store_info(*store);
  } catch (const Error& e) {
    if (e.code() != Error::Code::NotFound) throw;
    info_error = e;
  }
  std::vector<PartitionState> parts;
  try {
    parts = list_partitions(*store);
  } catch (const Error& e) {
    // A missing store: report store_info's message, which says what is missing.
    if (info_error && e.code() == Error::Code::NotFound) throw *info_error;
    throw;
  }
  if (!info && parts.empty()) throw *info_error;
  if (a.json) print_json(*store, info, parts);
  else print_text(*store, info, parts);
}

}  // namespace

void register_info(CLI::App& app, std::vector<Command>& commands) {
  auto a = std::make_shared<InfoArgs>();
  CLI::App* sub = app.add_subcommand("info", "Show a store's levels, counts, bounds, layout and pending partitions");
  sub->add_option("STORE", a->store, "Store (a directory, file:// or s3://bucket/prefix URL)")->required();
  sub->add_flag("--json", a->json, "Print JSON (unbounded range ends are the strings \"inf\" and \"-inf\")");
  sub->footer(
      "\nA store that is not finalised yet but has partitions lists them (complete or not)\n"
      "and exits 0; a store with neither metadata nor partitions exits 4.\n"
      "\nExamples:\n"
      "  zvf info /scratch/scan.zarrvectors\n"
      "  zvf info /scratch/scan.zarrvectors --json | jq '.levels[0].vertex_count'\n"
      "\nExit codes: see 'zvf --help'.");
  commands.push_back({sub, [a] { run_info(*a); }});
}

}  // namespace zvf::cli
