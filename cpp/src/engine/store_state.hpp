// What a store holds besides its chunk cells: the layout every writer must agree
// on, the partition staging area (.zvf/partitions/<id>/), and the finaliser's
// ledger (root attribute "zvf") that records which partition runs were merged.
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/cells.hpp"
#include "format/metadata.hpp"
#include "zvf/points.hpp"

namespace zvf::detail {

using json = nlohmann::json;

// For the duration of a write with Exec::durable: the store starts writing each
// value back as soon as it is written (Store::write_back_early).
class EarlyWriteBack {
 public:
  EarlyWriteBack(Store& store, bool durable) : store_(durable ? &store : nullptr) {
    if (store_) store_->write_back_early(true);
  }
  ~EarlyWriteBack() {
    if (store_) store_->write_back_early(false);
  }
  EarlyWriteBack(const EarlyWriteBack&) = delete;
  EarlyWriteBack& operator=(const EarlyWriteBack&) = delete;

 private:
  Store* store_;
};

inline const std::string kStaging = ".zvf";
inline const std::string kPartitions = ".zvf/partitions/";

struct StoreLayout {
  std::size_t ndim = 3;
  DType dtype = DType::F32;
  Grid grid;
  bool bin_given = false;
  CodecSpec codec;
  std::vector<meta::AttrSpec> attrs;

  json to_json() const;
  static StoreLayout from_json(const json& j, const std::string& what);
  CellLayout cells() const { return {ndim, dtype, attrs, codec, grid.bins_per_chunk_total()}; }
  // Empty if equal; else the name of the first field that differs and both values.
  std::string difference(const StoreLayout& other) const;
};

// One partition run, as its manifest (and later the ledger) records it.
struct PartitionRecord {
  std::string id, run_id;
  Box range;  // half-open, +-inf for unbounded
  StoreLayout layout;
  ChunkCoord origin;  // origin its in-place cells were written against
  std::uint64_t vertex_count = 0;
  std::optional<Box> bounds;
  std::vector<std::string> in_place, staged;  // dotted absolute chunk keys

  json to_json(bool with_layout) const;
  static PartitionRecord from_json(const json& j, const std::string& what,
                                   const std::optional<StoreLayout>& layout = std::nullopt);
};

struct Ledger {
  StoreLayout layout;
  ChunkCoord origin;
  std::map<std::string, PartitionRecord> partitions;
  json to_json() const;
  static Ledger from_json(const json& j);
};

struct StagedPartition {
  std::string id;
  std::optional<std::string> started_run;     // run id in started.json
  std::optional<PartitionRecord> manifest;    // present when complete
  bool voided = false;                        // void.json: two runs wrote it at once
  bool complete() const { return manifest && started_run && manifest->run_id == *started_run && !voided; }
};

std::string partition_dir(const std::string& id);
std::vector<StagedPartition> scan_partitions(const Store& store);
// True if two scans found the same partitions in the same state (same ids,
// started runs and manifest runs): nothing started or finished in between.
bool same_partitions(const std::vector<StagedPartition>& a, const std::vector<StagedPartition>& b);

// Level-0 cell files ("0/vertices/c/1/2/3", ...) whose cell key ("c/1/2/3")
// is not in `claimed`. Looked at: the layout's arrays, plus attribute
// directories that hold cells but no zarr.json (cells of a partition with
// another layout). Used by finalisation to sweep cells that no complete
// partition claims, e.g. those of a partition whose record was deleted.
std::vector<std::string> unclaimed_cells(const Store& store, const StoreLayout& layout,
                                         const std::set<std::string>& claimed);

// Root zarr.json parsed; nullopt if absent.
std::optional<json> read_root(const Store& store);
// The ledger of a partitioned store; nullopt if the root has none.
std::optional<Ledger> read_ledger(const Store& store);

void refuse_existing_store(const Store& store);
bool overlaps(const Box& a, const Box& b);  // half-open boxes
std::string new_run_id();

json box_to_json(const Box& b);  // infinities as null
Box box_from_json(const json& j, std::size_t ndim, const std::string& what);

}  // namespace zvf::detail
