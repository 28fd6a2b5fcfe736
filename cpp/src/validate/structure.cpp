// Level 1, structure: the root group and its zarr_vectors block, the level
// groups and their arrays; and what our partition protocol can leave behind
// under .zvf/ (pending partitions, an interrupted finalisation or pyramid
// build) plus temp files of killed writers.
#include <algorithm>
#include <cctype>

#include "engine/store_state.hpp"
#include "format/metadata.hpp"
#include "validate/checks.hpp"
#include "zvf/error.hpp"

namespace zvf::detail::validation {
namespace {

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char ch) { return std::isdigit(ch); });
}

std::string node_type(const json& doc) {
  return doc.is_object() && doc.contains("node_type") && doc["node_type"].is_string() ? doc["node_type"].get<std::string>()
                                                                                      : "";
}

// Partition state under .zvf/partitions/, read file by file so that one broken
// manifest is one finding, not the end of the scan.
struct PartitionFiles {
  std::string id;
  std::optional<std::string> started_run, manifest_run;
};

std::vector<PartitionFiles> scan(Checker& c) {
  std::vector<PartitionFiles> out;
  for (const auto& id : c.store.list_dir(kPartitions.substr(0, kPartitions.size() - 1))) {
    PartitionFiles p;
    p.id = id;
    const std::string dir = partition_dir(id) + "/";
    // A damaged file here only concerns finalisation (which will refuse it): a warning.
    auto run_of = [&](const std::string& file) -> std::optional<std::string> {
      std::optional<json> doc;
      try {
        doc = meta::read_json(c.store, dir + file);
      } catch (const Error& e) {
        if (e.code() != Error::Code::Corrupt) throw;
        c.warn(dir + file, e.what());
        return std::nullopt;
      }
      if (!doc) return std::nullopt;
      if (!doc->is_object() || !doc->contains("run_id") || !(*doc)["run_id"].is_string()) {
        c.warn(dir + file, "has no run_id");
        return std::nullopt;
      }
      return (*doc)["run_id"].get<std::string>();
    };
    p.started_run = run_of("started.json");
    p.manifest_run = run_of("manifest.json");
    out.push_back(std::move(p));
  }
  return out;
}

// Findings about .zvf/ and temp files. Returns the number of partitions found.
std::size_t check_staging(Checker& c, const std::optional<json>& root) {
  std::optional<Ledger> ledger;
  if (root && root->contains("attributes") && (*root)["attributes"].contains("zvf")) {
    try {
      ledger = Ledger::from_json((*root)["attributes"]["zvf"]);
    } catch (const Error& e) {
      c.warn("zarr.json", "the zvf partition ledger (attribute 'zvf') does not parse: " + std::string(e.what()));
    }
  }
  const auto parts = scan(c);
  for (const auto& p : parts) {
    const std::string key = partition_dir(p.id);
    const bool complete = p.manifest_run && p.started_run && *p.manifest_run == *p.started_run;
    if (!complete) {
      c.warn(key, "partition '" + p.id + "' is pending: " +
                      (p.started_run ? std::string("started but has no manifest for its run")
                                     : std::string("has no started.json")) +
                      " (its writer is still running or was killed; re-run it, then finalise)");
      continue;
    }
    const bool merged = ledger && ledger->partitions.count(p.id) && ledger->partitions.at(p.id).run_id == *p.manifest_run;
    if (merged)
      c.warn(key, "partition '" + p.id + "' is already merged but its staging files remain "
                      "(finalisation was interrupted after publishing; re-run finalise to clean up)");
    else if (root)
      c.warn(key, "partition '" + p.id + "' is complete but not merged yet: run finalise to publish it");
  }
  if (c.store.exists(kStaging + "/rekey.json"))
    c.warn(kStaging + "/rekey.json", "an interrupted finalisation left its re-keying journal: re-run finalise");
  if (!c.store.list(kStaging + "/pyramid").empty())
    c.warn(kStaging + "/pyramid", "a part-wise pyramid build is unfinished: run the remaining parts, then "
                                  "finalise_parts (zvf pyramid --finalise-parts)");
  if (const auto* posix = dynamic_cast<const PosixStore*>(&c.store)) {
    const auto temps = posix->list_temporaries("");
    constexpr std::size_t kShown = 10;
    for (std::size_t i = 0; i < temps.size() && i < kShown; ++i)
      c.warn(temps[i], "temporary file of an interrupted write (safe to delete when no writer is running)");
    if (temps.size() > kShown)
      c.warn("", std::to_string(temps.size() - kShown) + " more temporary files of interrupted writes");
  }
  return parts.size();
}

// The datasets of the root's NGFF multiscales: level number -> scale.
void read_published(Checker& c) {
  const json& attrs = (*c.root)["attributes"];
  if (!attrs.contains("multiscales") || !attrs["multiscales"].is_array() || attrs["multiscales"].empty()) return;
  const json& ms = attrs["multiscales"][0];
  if (!ms.is_object() || !ms.contains("datasets") || !ms["datasets"].is_array()) return;
  for (const auto& ds : ms["datasets"]) {
    if (!ds.is_object() || !ds.contains("path") || !ds["path"].is_string()) continue;
    const std::string path = ds["path"].get<std::string>();
    if (!all_digits(path) || path.size() > 6) continue;
    const int n = std::stoi(path);
    LevelState* l = c.level(n);
    if (!l) {
      c.levels.push_back({});
      l = &c.levels.back();
      l->level = n;
    }
    l->published = true;
    if (ds.contains("coordinateTransformations") && ds["coordinateTransformations"].is_array())
      for (const auto& t : ds["coordinateTransformations"])
        for (const char* kind : {"scale", "translation"})
          if (t.is_object() && t.contains("type") && t["type"] == kind && is_number_array(t.value(kind, json()), 0))
            (std::string(kind) == "scale" ? l->scale : l->translation) = t[kind].get<std::vector<double>>();
  }
}

void check_array_node(Checker& c, const std::string& key, bool required) {
  if (!c.store.exists(key + "/zarr.json")) {
    if (required) c.error(key, "missing (no zarr.json)");
    else c.warn(key, "missing (no zarr.json)");
    return;
  }
  auto doc = c.read_doc(key + "/zarr.json");
  if (!doc) return;
  if (node_type(*doc) != "array") c.error(key + "/zarr.json", "node_type is '" + node_type(*doc) + "', expected 'array'");
  else c.pass(key + "/ exists");
}

}  // namespace

void check_structure(Checker& c) {
  // The root group. Without it the store is either unfinalised partitions or not a store.
  std::optional<json> root;
  const bool has_root = c.store.exists("zarr.json");
  if (has_root) root = c.read_doc("zarr.json");
  const std::size_t partitions = check_staging(c, root);
  if (!has_root) {
    if (partitions)
      c.error("zarr.json", "the store is not finalised: it holds " + std::to_string(partitions) +
                               " partition(s) written by write_points_partition but no root metadata; run "
                               "finalise (zvf finalise) once every partition is complete");
    else
      c.error("zarr.json", "missing: this is not a Zarr group, so not a ZV store");
    return;
  }
  if (!root) return;  // the parse error is already reported
  if (node_type(*root) != "group" || !root->contains("attributes") || !(*root)["attributes"].is_object()) {
    c.error("zarr.json", "not a Zarr v3 group document (node_type 'group' with an attributes object)");
    return;
  }
  c.pass("Store root opened");
  const json& attrs = (*root)["attributes"];
  if (!attrs.contains("zarr_vectors")) {
    c.error("zarr.json", "no root metadata: expected a 'zarr_vectors' block in the root attributes");
    return;
  }
  c.pass("Root metadata found");
  c.root = root;
  // Additive since ZV 0.9.2: without it the store is valid but not resolvable in an OME collection.
  if (!attrs.contains("ome")) c.warn("zarr.json", "no RFC 8 'ome' node in the root attributes");

  // Level groups on disk: integer-named children whose zarr.json is a group.
  for (const auto& name : c.store.list_dir("")) {
    if (!all_digits(name) || name.size() > 6 || !c.store.exists(name + "/zarr.json")) continue;
    auto doc = c.read_doc(name + "/zarr.json");
    if (!doc || node_type(*doc) != "group") continue;
    LevelState l;
    l.level = std::stoi(name);
    l.on_disk = true;
    l.group = *doc;
    c.levels.push_back(std::move(l));
  }
  read_published(c);
  std::sort(c.levels.begin(), c.levels.end(), [](const auto& a, const auto& b) { return a.level < b.level; });

  std::size_t on_disk = 0;
  for (const auto& l : c.levels) on_disk += l.on_disk;
  if (on_disk == 0) {
    c.error("", "no resolution level groups found (expected 0/zarr.json)");
    return;
  }
  c.pass("Found " + std::to_string(on_disk) + " resolution level(s)");

  for (const auto& l : c.levels) {
    if (!l.on_disk) continue;  // a published level missing on disk is a pyramid finding (level 5)
    const std::string base = level_key(l.level);
    check_array_node(c, base + "/vertices", true);
    check_array_node(c, base + "/vertex_fragments", false);
    const json& la = l.group.contains("attributes") ? l.group["attributes"] : json();
    if (!la.is_object() || la.empty()) c.warn(base + "/zarr.json", "the level group has no metadata");
    for (const auto& name : c.store.list_dir(base + "/vertex_attributes")) {
      if (name == "zarr.json") continue;
      check_array_node(c, base + "/vertex_attributes/" + name, false);  // readers skip it
    }
    if (c.store.exists(base + "/links/zarr.json") && c.store.list_dir(base + "/links").size() <= 1)
      c.warn(base + "/links", "exists but has no <delta> groups");
  }
}

}  // namespace zvf::detail::validation
