#include "engine/level.hpp"

#include <algorithm>
#include <cstdio>

#include "zvf/error.hpp"

namespace zvf::detail {

namespace {
[[noreturn]] void corrupt(const std::string& m) { fail(Error::Code::Corrupt, m); }

json require_json(const Store& store, const std::string& key, const std::string& why) {
  auto j = meta::read_json(store, key);
  if (!j) corrupt(store.describe() + "/" + key + " is missing (" + why + ")");
  return *j;
}

ArrayMeta read_array(const Store& store, const std::string& path, std::size_t ndim, bool attribute = false) {
  json j = require_json(store, path + "/zarr.json", "array metadata");
  if (j.contains("codecs") && j["codecs"].is_array() && !j["codecs"].empty() && j["codecs"][0].is_object() &&
      j["codecs"][0].contains("name") && j["codecs"][0]["name"] == "sharding_indexed")
    fail(Error::Code::Unsupported, store.describe() + "/" + path +
                                       " is sharded (codec 'sharding_indexed', the reference's shard_shape), "
                                       "which zvf does not read");
  ArrayMeta a;
  a.path = path;
  // get<>() would cast a float to an integer unchecked (undefined for 1e300).
  auto integers = [&](const json& v, const char* field) {
    if (!meta::is_integer_list(v))
      corrupt(store.describe() + "/" + path + "/zarr.json: " + field + " must be a list of integers, got " + v.dump());
    return v.get<std::vector<std::int64_t>>();
  };
  try {
    const json& at = j.at("attributes");
    a.codec = CodecSpec::from_json(j.at("codecs"));
    a.shape = integers(j.at("shape"), "shape");
    if (at.contains("dtype")) {
      const std::string name = at["dtype"].get<std::string>();
      if (!attribute) {
        a.dtype = dtype_from_name(name);
      } else {
        // An attribute zvf cannot decode is left out of reads, not fatal for the store.
        try {
          a.dtype = dtype_from_name(name);
        } catch (const Error&) {
          a.dtype = DType::U8;
          a.unsupported = "dtype '" + name + "'";
        }
        const std::string enc = at.contains("encoding") && at["encoding"].is_string() ? at["encoding"].get<std::string>() : "raw";
        if (enc == "dictionary" && at.contains("categories") && at["categories"].is_array()) {
          for (const auto& c : at["categories"]) a.categories.push_back(c.is_string() ? c.get<std::string>() : c.dump());
          a.ordered = at.contains("ordered") && at["ordered"].is_boolean() && at["ordered"].get<bool>();
        } else if (enc != "raw" && a.unsupported.empty()) {
          a.unsupported = "encoding '" + enc + "'";
        }
      }
    }
    a.origin = at.contains("chunk_grid_origin") ? integers(at["chunk_grid_origin"], "chunk_grid_origin")
                                                : ChunkCoord(ndim, 0);
    if (at.contains("row_shape") && !at["row_shape"].empty()) {
      a.one_d = false;
      if (!at["row_shape"][0].is_number_unsigned())
        corrupt(store.describe() + "/" + path + "/zarr.json: row_shape must be [] or [columns], got " +
                at["row_shape"].dump());
      a.cols = at["row_shape"][0].get<std::size_t>();
    }
    if (at.contains("nonempty_chunks")) a.nonempty = at["nonempty_chunks"].get<std::vector<std::string>>();
  } catch (const json::exception& e) {
    corrupt(store.describe() + "/" + path + "/zarr.json: " + e.what());
  }
  if (a.origin.size() != ndim) corrupt(path + ": chunk_grid_origin has the wrong length");
  if (a.shape.size() != ndim)
    corrupt(store.describe() + "/" + path + "/zarr.json: shape has " + std::to_string(a.shape.size()) +
            " values, expected " + std::to_string(ndim) + " (the chunk grid, one per axis)");
  return a;
}

std::string not_a_store_message(const Store& store) {
  if (!store.root_exists()) return "no store at " + store.describe();
  if (!store.list_dir(".zvf/partitions").empty())
    return store.describe() + " is not finalised: it holds partitions written by write_points_partition; "
                              "run finalise (zvf finalise, or write_multiscale_metadata) first";
  return store.describe() + " is not a ZV store (no zarr.json with a 'zarr_vectors' attribute)";
}

}  // namespace

json read_zv_root(const Store& store) {
  auto root = meta::read_json(store, "zarr.json");
  if (!root || !root->contains("attributes") || !(*root)["attributes"].contains("zarr_vectors"))
    fail(Error::Code::NotFound, not_a_store_message(store));
  return *root;
}

LevelView open_level(const Store& store, int level) {
  json root = read_zv_root(store);
  const json& attrs = root["attributes"];
  const json& zv = attrs["zarr_vectors"];
  LevelView lv;
  lv.level = level;
  std::vector<double> chunk, bin;
  try {
    std::string ver = zv.at("zv_version").get<std::string>();
    int major = 0, minor = 0;
    std::sscanf(ver.c_str(), "%d.%d", &major, &minor);
    if (major == 0 && minor < 9)
      fail(Error::Code::InvalidArgument, store.describe() + " is ZV format " + ver + "; this reader needs 0.9 or later");
    chunk = zv.at("chunk_shape").get<std::vector<double>>();
    lv.ndim = chunk.size();
    if (zv.contains("base_bin_shape")) bin = zv["base_bin_shape"].get<std::vector<double>>();
  } catch (const json::exception& e) {
    corrupt(store.describe() + "/zarr.json: bad zarr_vectors block: " + e.what());
  }
  if (level < 0) invalid("level must be >= 0, got " + std::to_string(level));
  auto lj = meta::read_json(store, std::to_string(level) + "/zarr.json");
  const auto listed = published_levels(root);
  if (lj && level > 0 && std::find(listed.begin(), listed.end(), level) == listed.end()) lj.reset();
  if (!lj) {
    std::string have;
    for (int l : listed)
      if (store.exists(std::to_string(l) + "/zarr.json")) have += (have.empty() ? "" : ", ") + std::to_string(l);
    fail(Error::Code::NotFound, "level " + std::to_string(level) + " does not exist in " + store.describe() +
                                    " (levels present: " + (have.empty() ? "none" : have) + ")");
  }
  try {
    const json& l = (*lj).at("attributes").at("zarr_vectors_level");
    if (l.contains("vertex_count") && !l["vertex_count"].is_number_unsigned())
      corrupt(store.describe() + "/" + std::to_string(level) + "/zarr.json: vertex_count = " +
              l["vertex_count"].dump() + ", expected a whole number >= 0");
    lv.vertex_count = l.value("vertex_count", std::uint64_t{0});
    const std::string method = l.contains("coarsening_method") && l["coarsening_method"].is_string()
                                   ? l["coarsening_method"].get<std::string>()
                                   : "none";
    const bool shared = l.contains("shared_fragments") && l["shared_fragments"].is_boolean() &&
                        l["shared_fragments"].get<bool>();
    if (l.contains("chunk_attribute_name") && !l["chunk_attribute_name"].is_null())
      fail(Error::Code::Unsupported,
           store.describe() + " level " + std::to_string(level) + " is chunked by attribute " +
               l["chunk_attribute_name"].dump() +
               " (the reference's chunk_by_attribute): its chunk keys lead with an attribute bin, which zvf "
               "does not read");
    lv.bin_fragments = (method == "none" || method == "bin_mean") && !shared;
    if (l.contains("chunk_shape") && !l["chunk_shape"].is_null()) chunk = l["chunk_shape"].get<std::vector<double>>();
    if (level > 0) {
      bin.clear();
      // Coarse levels record their bin only in the NGFF transform (translation = bin / 2).
      for (const auto& ds : attrs.at("multiscales").at(0).at("datasets"))
        if (ds.at("path") == std::to_string(level))
          for (const auto& t : ds.at("coordinateTransformations"))
            if (t.at("type") == "translation")
              for (const auto& x : t.at("translation")) bin.push_back(2 * x.get<double>());
    }
  } catch (const json::exception& e) {
    corrupt(store.describe() + "/" + std::to_string(level) + "/zarr.json: " + e.what());
  }
  if (bin.size() != chunk.size()) bin = chunk;
  lv.bin_shape = bin;
  for (std::size_t d = 0; d < bin.size(); ++d) lv.bin_fragments = lv.bin_fragments && whole_ratio(chunk[d], bin[d]) > 0;
  // A level whose bins do not tile its chunks (the reference's coarse levels keep the
  // chunk while the bin grows) is read chunk by chunk, without bin pruning.
  lv.grid = Grid::make(chunk, lv.bin_fragments ? bin : chunk, lv.ndim);
  const std::string base = std::to_string(level);
  lv.vertices = read_array(store, base + "/vertices", lv.ndim);
  lv.fragments = read_array(store, base + "/vertex_fragments", lv.ndim);
  for (const auto& name : store.list_dir(base + "/vertex_attributes")) {
    if (name == "zarr.json" || !store.exists(base + "/vertex_attributes/" + name + "/zarr.json")) continue;
    lv.attrs.emplace_back(name, read_array(store, base + "/vertex_attributes/" + name, lv.ndim, /*attribute=*/true));
  }
  return lv;
}

std::vector<ChunkCoord> level_chunks(const Store& store, const LevelView& lv) {
  std::vector<ChunkCoord> out;
  if (lv.vertices.nonempty) {
    for (const auto& k : *lv.vertices.nonempty) out.push_back(parse_dotted_key(k, lv.ndim));
  } else {  // no presence attribute: derive it from the cells on disk
    const std::string prefix = lv.vertices.path + "/c/";
    for (const auto& key : store.list(lv.vertices.path + "/c")) {
      if (key.size() <= prefix.size())  // list() includes "<path>/c" itself if that is a key
        corrupt(store.describe() + "/" + key + " is a value where the array's chunk directory should be");
      std::string rest = key.substr(prefix.size());
      for (auto& ch : rest)
        if (ch == '/') ch = '.';
      ChunkCoord c = parse_dotted_key(rest, lv.ndim);
      for (std::size_t d = 0; d < lv.ndim; ++d) c[d] += lv.vertices.origin[d];
      out.push_back(c);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<DecodedCell> get_cell(const Store& store, const ArrayMeta& a, const ChunkCoord& c) {
  std::string key = a.path + "/" + cell_key(c, a.origin);
  auto raw = store.get(key);
  if (!raw) return std::nullopt;
  return decode_cell_view(std::move(*raw), a.codec, store.describe() + "/" + key);
}


std::vector<int> published_levels(const json& root) {
  std::vector<int> out{0};
  try {
    for (const auto& ds : root.at("attributes").at("multiscales").at(0).at("datasets")) {
      const std::string path = ds.at("path").get<std::string>();
      if (path != "0" && !path.empty() && std::all_of(path.begin(), path.end(), ::isdigit)) out.push_back(std::stoi(path));
    }
  } catch (const json::exception&) {
  }
  std::sort(out.begin(), out.end());
  return out;
}

void drop_level_dirs(Store& store) {
  for (const auto& name : store.list_dir(""))
    if (!name.empty() && name != "0" && std::all_of(name.begin(), name.end(), ::isdigit)) store.erase_prefix(name);
}

int level_count(const Store& store) {
  int n = 0;
  while (store.exists(std::to_string(n) + "/zarr.json")) ++n;
  return n;
}

}  // namespace zvf::detail
