// Builders and parsers for the zarr.json documents of a ZV 0.9 point-cloud store,
// matching what zarr-vectors 0.9.2 writes (key order included, via ordered_json).
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "zvf/codec.hpp"
#include "zvf/grid.hpp"
#include "zvf/points.hpp"
#include "zvf/store.hpp"
#include "zvf/types.hpp"

namespace zvf::meta {

using ojson = nlohmann::ordered_json;

// Description of one per-vertex attribute column.
struct AttrSpec {
  std::string name;
  DType dtype = DType::F32;
  std::size_t cols = 1;
  bool one_d = true;
  // Dictionary encoding (the reference's string attributes): values are codes
  // into `categories`. Only pyramids write it, carrying a level-0 dictionary down.
  std::vector<std::string> categories{};
  bool ordered = false;
  bool operator==(const AttrSpec&) const = default;
};

// Everything needed to write the metadata of a level-0 point cloud.
struct StoreMeta {
  std::size_t ndim = 3;
  DType dtype = DType::F32;
  Grid grid;
  bool bin_given = false;  // base_bin_shape is written only when the caller gave one
  CodecSpec codec;
  std::vector<AttrSpec> attrs;
  Box bounds;
  std::uint64_t vertex_count = 0;
  ChunkCoord origin;                 // chunk_grid_origin
  std::vector<std::int64_t> shape;   // chunk grid shape
  std::vector<std::string> nonempty; // dotted absolute keys, sorted by coordinate
  std::string name = "store";        // ome collection name
};

// Key prefixes of the level-0 arrays.
inline std::string vertices_path(int level = 0) { return std::to_string(level) + "/vertices"; }
inline std::string fragments_path(int level = 0) { return std::to_string(level) + "/vertex_fragments"; }
inline std::string attribute_path(const std::string& name, int level = 0) {
  return std::to_string(level) + "/vertex_attributes/" + name;
}

ojson root_doc(const StoreMeta& m, const ojson& extra_attrs = ojson::object());
ojson array_doc(const StoreMeta& m, ojson zv_attrs);
ojson codecs_json(const CodecSpec& codec);
ojson level_doc(const StoreMeta& m);
ojson group_doc();
ojson vertices_doc(const StoreMeta& m);
ojson fragments_doc(const StoreMeta& m);
ojson attribute_doc(const StoreMeta& m, const AttrSpec& a);

// Writes every metadata document of level 0, the root last.
void write_all(Store& store, const StoreMeta& m, const ojson& extra_root_attrs = ojson::object());

// True if j is an array of JSON integers. nlohmann's get<std::int64_t>() of a
// float such as 1e300 is undefined behaviour, so integer lists read from a store
// are checked with this first.
bool is_integer_list(const nlohmann::json& j);

// Reads and parses a JSON document; nullopt if the key is missing; Error(Corrupt)
// naming the key if it is not valid JSON.
std::optional<nlohmann::json> read_json(const Store& store, const std::string& key);
void write_json(Store& store, const std::string& key, const ojson& doc);

// Attribute names become key components: they must match [A-Za-z0-9_][A-Za-z0-9_.-]*
// and not be "..". Throws Error(InvalidArgument) naming the name.
void check_attribute_name(const std::string& name);

// If the root document carries zarr-python's consolidated metadata, rebuilds it
// from the node documents now in the store (so it never goes stale).
void refresh_consolidated(const Store& store, ojson& root);

// Store name for the ome node: the last path component without its extension.
std::string store_name(const Store& store);

}  // namespace zvf::meta
