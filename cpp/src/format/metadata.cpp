#include "format/metadata.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>

#include "zvf/error.hpp"

namespace zvf::meta {
namespace {

ojson axes_json(std::size_t ndim) {
  static const char* names[] = {"x", "y", "z", "w"};
  ojson axes = ojson::array();
  for (std::size_t d = 0; d < ndim; ++d) axes.push_back({{"name", names[d]}, {"type", "space"}});
  return axes;
}

ojson doubles(const std::vector<double>& v) {
  ojson a = ojson::array();
  for (double x : v) a.push_back(x);
  return a;
}

}  // namespace

// The codecs list with keys in the order zarr-python writes them ("name" first).
ojson codecs_json(const CodecSpec& codec) {
  static const std::vector<std::string> order = {"level", "checksum", "typesize", "cname", "clevel", "shuffle", "blocksize"};
  ojson out = ojson::array();
  for (const auto& c : codec.to_json()) {
    if (!c.contains("configuration")) {  // crc32c: zarr-python writes the name alone
      out.push_back({{"name", c.at("name")}});
      continue;
    }
    ojson conf = ojson::object();
    const auto& cj = c.at("configuration");
    for (const auto& k : order)
      if (cj.contains(k)) conf[k] = ojson::parse(cj[k].dump());
    for (auto it = cj.begin(); it != cj.end(); ++it)
      if (!conf.contains(it.key())) conf[it.key()] = ojson::parse(it.value().dump());
    out.push_back({{"name", c.at("name")}, {"configuration", conf}});
  }
  return out;
}

ojson array_doc(const StoreMeta& m, ojson zv_attrs) {
  ojson shape = ojson::array(), ones = ojson::array();
  for (auto s : m.shape) {
    shape.push_back(s);
    ones.push_back(1);
  }
  ojson attrs = ojson::object();
  attrs["nonempty_chunks"] = m.nonempty;
  if (std::any_of(m.origin.begin(), m.origin.end(), [](auto o) { return o != 0; }))
    attrs["chunk_grid_origin"] = m.origin;
  for (auto& [k, v] : zv_attrs.items()) attrs[k] = v;
  ojson doc = ojson::object();
  doc["shape"] = shape;
  doc["data_type"] = "variable_length_bytes";
  doc["chunk_grid"] = {{"name", "regular"}, {"configuration", {{"chunk_shape", ones}}}};
  doc["chunk_key_encoding"] = {{"name", "default"}, {"configuration", {{"separator", "/"}}}};
  doc["fill_value"] = "";
  doc["codecs"] = codecs_json(m.codec);
  doc["attributes"] = attrs;
  doc["zarr_format"] = 3;
  doc["node_type"] = "array";
  doc["storage_transformers"] = ojson::array();
  return doc;
}


ojson root_doc(const StoreMeta& m, const ojson& extra_attrs) {
  ojson zv = ojson::object();
  zv["zv_version"] = kZvVersion;
  zv["format_capabilities"] = ojson::array();
  zv["chunk_shape"] = doubles(m.grid.chunk_shape);
  zv["bounds"] = ojson::array({doubles(m.bounds.lo), doubles(m.bounds.hi)});
  zv["geometry_types"] = ojson::array({"point_cloud"});
  if (m.bin_given) zv["base_bin_shape"] = doubles(m.grid.bin_shape);
  zv["links_convention"] = "implicit_sequential";
  zv["object_index_convention"] = "standard";
  zv["cross_chunk_strategy"] = "explicit_links";

  // NGFF v0.4 multiscales: level 0 has scale 1 and a half-bin translation.
  std::vector<double> ones(m.ndim, 1.0), half;
  for (double b : m.grid.bin_shape) half.push_back(b / 2);
  ojson dataset = {{"path", "0"},
                   {"coordinateTransformations",
                    ojson::array({{{"type", "scale"}, {"scale", doubles(ones)}},
                                  {{"type", "translation"}, {"translation", doubles(half)}}})}};
  ojson ms = {{"version", "0.4"},
              {"name", "default"},
              {"axes", axes_json(m.ndim)},
              {"datasets", ojson::array({dataset})},
              {"metadata", {{"format", "zarr_vectors"}}}};
  ojson ome = {{"version", "0.6"},
               {"type", "collection"},
               {"name", m.name},
               {"attributes",
                {{"scene",
                  {{"coordinateSystems", ojson::array({{{"name", "world"}, {"axes", axes_json(m.ndim)}}})},
                   {"coordinateTransformations", ojson::array()}}}}},
               {"nodes", ojson::array({{{"type", "zv:level"}, {"name", "0"}}})}};
  ojson attrs = {{"zarr_vectors", zv}, {"multiscales", ojson::array({ms})}, {"ome", ome}};
  for (auto& [k, v] : extra_attrs.items()) attrs[k] = v;
  return {{"attributes", attrs}, {"zarr_format", 3}, {"node_type", "group"}};
}

ojson level_doc(const StoreMeta& m) {
  ojson present = ojson::array({"vertices"});
  if (!m.attrs.empty()) present.push_back("vertex_attributes");
  ojson lv = {{"level", 0},
              {"object_sparsity", 1.0},
              {"vertex_count", m.vertex_count},
              {"coarsening_method", "none"},
              {"parent_level", nullptr},
              {"arrays_present", present},
              {"fragments_tile", true}};
  return {{"attributes", {{"zarr_vectors_level", lv}}}, {"zarr_format", 3}, {"node_type", "group"}};
}

ojson group_doc() {
  return {{"attributes", ojson::object()}, {"zarr_format", 3}, {"node_type", "group"}};
}

ojson vertices_doc(const StoreMeta& m) {
  return array_doc(m, {{"zv_array", "vertices"}, {"dtype", dtype_name(m.dtype)}, {"encoding", "raw"}});
}

ojson fragments_doc(const StoreMeta& m) {
  return array_doc(m, {{"zv_array", "vertex_fragments"}, {"encoding", "fragment_index_v1"}});
}

ojson attribute_doc(const StoreMeta& m, const AttrSpec& a) {
  ojson zv = {{"zv_array", "attribute"}, {"name", a.name}, {"dtype", dtype_name(a.dtype)}};
  if (a.one_d) {
    zv["row_shape"] = ojson::array();
  } else {
    ojson ch = ojson::array();
    for (std::size_t c = 0; c < a.cols; ++c) ch.push_back("ch" + std::to_string(c));
    zv["channel_names"] = ch;
    zv["row_shape"] = ojson::array({a.cols});
  }
  if (!a.categories.empty()) {
    zv["encoding"] = "dictionary";
    zv["categories"] = a.categories;
    zv["ordered"] = a.ordered;
  }
  return array_doc(m, zv);
}

void write_json(Store& store, const std::string& key, const ojson& doc) {
  store.set(key, doc.dump(1));
}

void write_all(Store& store, const StoreMeta& m, const ojson& extra_root_attrs) {
  write_json(store, vertices_path() + "/zarr.json", vertices_doc(m));
  write_json(store, fragments_path() + "/zarr.json", fragments_doc(m));
  if (!m.attrs.empty()) {
    for (const auto& a : m.attrs) write_json(store, attribute_path(a.name) + "/zarr.json", attribute_doc(m, a));
    write_json(store, "0/vertex_attributes/zarr.json", group_doc());
  }
  write_json(store, "0/zarr.json", level_doc(m));
  ojson root = root_doc(m, extra_root_attrs);
  if (auto old = read_json(store, "zarr.json"); old && old->contains("consolidated_metadata")) {
    root["consolidated_metadata"] = nullptr;  // marks it for a rebuild from the nodes now on disk
    refresh_consolidated(store, root);
  }
  write_json(store, "zarr.json", root);
}

bool is_integer_list(const nlohmann::json& j) {
  return j.is_array() && std::all_of(j.begin(), j.end(), [](const nlohmann::json& x) { return x.is_number_integer(); });
}

std::optional<nlohmann::json> read_json(const Store& store, const std::string& key) {
  auto bytes = store.get(key);
  if (!bytes) return std::nullopt;
  try {
    return nlohmann::json::parse(bytes->begin(), bytes->end());
  } catch (const nlohmann::json::exception& e) {
    fail(Error::Code::Corrupt, store.describe() + "/" + key + " is not valid JSON: " + e.what());
  }
}

void check_attribute_name(const std::string& name) {
  const std::string what = "attribute name '" + printable(name) + "'";
  if (name.empty()) invalid("attribute name '' is empty: expected letters, digits and '_', then also '.' or '-'");
  if (name.size() > 255) invalid(what + " is " + std::to_string(name.size()) + " bytes long; at most 255 (a file name)");
  std::string lower;
  for (unsigned char c : name) lower += static_cast<char>(std::tolower(c));
  if (lower == "zarr.json")
    invalid(what + " is reserved: it is the name of every Zarr node's metadata document");
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool word = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    if (!word && !(i > 0 && (c == '.' || c == '-')))
      invalid(what + " is not safe as a key component: expected letters, digits and '_', then also '.' or '-'");
  }
}

namespace {
// Node documents under prefix: a directory with a zarr.json is a node; arrays'
// chunk directories are not walked.
void collect_nodes(const Store& store, const std::string& prefix, ojson& out) {
  for (const auto& name : store.list_dir(prefix)) {
    if (name == "zarr.json" || name.empty() || name[0] == '.') continue;
    const std::string path = prefix.empty() ? name : prefix + "/" + name;
    auto doc = read_json(store, path + "/zarr.json");
    if (!doc) continue;
    out[path] = ojson::parse(doc->dump());
    if (doc->value("node_type", "") == "group") collect_nodes(store, path, out);
  }
}
}  // namespace

void refresh_consolidated(const Store& store, ojson& root) {
  if (!root.contains("consolidated_metadata")) return;
  ojson nodes = ojson::object();
  collect_nodes(store, "", nodes);
  root["consolidated_metadata"] = {{"kind", "inline"}, {"must_understand", false}, {"metadata", nodes}};
}

std::string store_name(const Store& store) {
  std::string d = store.describe();
  if (auto scheme = d.find("://"); scheme != std::string::npos) d = d.substr(scheme + 3);
  while (!d.empty() && d.back() == '/') d.pop_back();
  std::string stem = std::filesystem::path(d).stem().string();
  return stem.empty() ? "store" : stem;
}

}  // namespace zvf::meta
