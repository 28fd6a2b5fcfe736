// Internals of validate_store: one Checker carries the store, the report and
// what earlier levels learned (parsed root, level groups, decoded counts); each
// check level is a function over it, in its own file.
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/level.hpp"
#include "zvf/validate.hpp"

namespace zvf::detail::validation {

using json = nlohmann::json;

// Chunk/bin layout of one level as its metadata states it. Unlike Grid it
// accepts any dimensionality and never throws: the checks report instead.
struct LevelGrid {
  std::vector<double> chunk_shape, bin_shape;
  std::vector<std::int64_t> bins_per_chunk;  // all 1 when bins do not tile chunks
  std::int64_t bins_total() const;
};

struct LevelState {
  int level = 0;
  bool on_disk = false;     // <level>/zarr.json is a group document
  bool published = false;   // listed in the root's multiscales datasets
  json group;               // the level group document (when on_disk)
  bool metadata_ok = false; // level 2 found nothing wrong with its group metadata
  LevelGrid grid;
  bool fragments_tile = false;
  bool unsupported = false;  // chunked by attribute: valid ZV, but its cells go unchecked
  std::optional<std::uint64_t> vertex_count;  // as the level metadata states it
  // Filled by level 3:
  std::optional<std::uint64_t> rows;          // vertices counted in the cells
  std::optional<std::uint64_t> count_total;   // sum of the 'count' attribute (our pyramids)
  std::vector<double> scale, translation;     // NGFF transform of the level, if published
};

// Used from the calling thread only: level 3's workers collect their findings
// per chunk and the caller adds them in chunk order.
class Checker {
 public:
  Checker(const Store& store, ValidationReport& report, const Exec& exec)
      : store(store), report(report), exec(exec) {}

  const Store& store;
  ValidationReport& report;
  const Exec& exec;
  int current_level = 1;  // the check level findings are filed under

  std::optional<json> root;       // root zarr.json, once level 1 parsed it
  std::size_t ndim = 0;           // from the NGFF axes (the reference's sid_ndim)
  std::vector<double> root_chunk, base_bin;  // base_bin empty: one bin per chunk
  std::vector<LevelState> levels; // on disk or published, by level number

  void add(Severity s, const std::string& key, const std::string& message);
  void error(const std::string& key, const std::string& message) { add(Severity::Error, key, message); }
  void warn(const std::string& key, const std::string& message) { add(Severity::Warning, key, message); }
  void pass(const std::string& message);
  std::size_t errors_since(std::size_t mark) const;  // errors among findings[mark..]

  // Reads and parses a JSON document: nullopt if absent; an error finding (and
  // nullopt) if it does not parse.
  std::optional<json> read_doc(const std::string& key);
  LevelState* level(int n);
};

// The checks of each level (structure.cpp, metadata.cpp, consistency.cpp, multiscale.cpp).
void check_structure(Checker& c);
void check_metadata(Checker& c);
void check_consistency(Checker& c);
void check_conformance(Checker& c);
void check_multiscale(Checker& c);
// links/<delta>/ families of one level (links.cpp), against the chunks that hold vertices.
void check_links(Checker& c, int level, const std::set<ChunkCoord>& chunks);

// Small shared helpers.
std::string level_key(int level, const std::string& rest = "");
bool is_number_array(const json& j, std::size_t size);  // size 0: any length
std::string numbers_text(const std::vector<double>& v);
std::string numbers_text(const std::vector<std::int64_t>& v);

}  // namespace zvf::detail::validation
