// Public engine API for point clouds: one-shot writes, partitioned writes,
// finalisation and reads of ZV 0.9 stores (as zarr-vectors 0.9.2 writes them).
//
// Every entry point validates its input before writing anything and throws
// zvf::Error naming the bad value and what was expected.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "zvf/codec.hpp"
#include "zvf/store.hpp"
#include "zvf/types.hpp"

namespace zvf {

inline constexpr const char* kZvVersion = "0.9.2";

struct Layout {
  std::vector<double> chunk_shape;  // physical extent of one chunk (one file per array)
  std::vector<double> bin_shape;    // empty: one bin per chunk; must divide chunk_shape
  CodecSpec codec;                  // none by default, as the reference
};

struct Exec {
  int threads = 0;  // 0: the CPUs this process may run on (its affinity mask)
  // Called from the calling thread with (done, total) units of work; may be empty.
  std::function<void(std::uint64_t, std::uint64_t)> progress;
  // Writers only: wait until what the call wrote is on stable storage
  // (Store::sync) before publishing it (zarr.json, a partition's manifest), and
  // again before returning. Without it, data reaches the disk when the OS
  // flushes it (ext4: within about 30 s), and a node that crashes first loses it.
  bool durable = false;
};

struct WriteSummary {
  std::uint64_t vertex_count = 0;
  std::uint64_t chunk_count = 0;
  std::vector<std::int64_t> bins_per_chunk;
};

// Writes a new store in one go. `bounds` (inclusive) defaults to the data's
// min/max; points outside given bounds are an error. The store must not exist yet
// (Error(Conflict) if it holds a zarr.json or partitions).
WriteSummary write_points(Store& store, const ArrayView& positions,
                          const std::vector<NamedArray>& attributes, const Layout& layout,
                          const std::optional<Box>& bounds, const Exec& exec = {});

struct PartitionSummary {
  std::string partition_id;      // derived from the range: re-running replaces it
  std::uint64_t vertex_count = 0;
  std::uint64_t chunks_in_place = 0;
  std::uint64_t chunks_staged = 0;
};

// Writes one partition of a store shared by independent writers (no locks, no
// coordinator). `range` is half-open per axis, +-inf for unbounded axes; every
// position must lie inside it. Chunks wholly inside the range are written in
// place; chunks straddling its boundary are staged under .zvf/partitions/<id>/
// and merged by finalise(). The manifest (.zvf/partitions/<id>/manifest.json) is
// written last and atomically: its presence means the partition is complete.
PartitionSummary write_points_partition(Store& store, const ArrayView& positions,
                                        const std::vector<NamedArray>& attributes,
                                        const Layout& layout, const Box& range,
                                        const Exec& exec = {});

// Canonical partition id of a range, e.g. "z_2500_3000" or "x_m100.5_0__y_0_inf".
std::string partition_id(const Box& range);

struct FinaliseOptions {
  bool allow_gaps = false;  // complete even if partitions leave gaps along their axis
};

struct FinaliseReport {
  bool changed = false;                 // false: store already final, nothing written
  std::vector<std::string> merged;      // partition ids merged by this run
  std::uint64_t vertex_count = 0;
  std::uint64_t chunk_count = 0;
  std::optional<Box> bounds;
  std::vector<std::string> gaps;        // human-readable gaps found (allowed or not)
  bool pyramid_dropped = false;         // coarse levels were stale and removed: rebuild them
  std::uint64_t orphans_removed = 0;    // level-0 cell files no complete partition claimed, deleted
};

// Finalises pending partitions: checks manifests agree and do not overlap,
// refuses incomplete partitions (naming them), merges staged pieces, computes
// bounds and presence, writes array, level and root metadata (root last,
// including the NGFF multiscales block), then removes the staging area.
// Idempotent: on a final store with nothing pending it writes nothing.
FinaliseReport finalise(Store& store, const FinaliseOptions& options = {}, const Exec& exec = {});

// Pending-partition state, for `zvf info` and the Python API.
struct PartitionState {
  std::string id;
  bool complete = false;
  Box range;
  std::uint64_t vertex_count = 0;
};
std::vector<PartitionState> list_partitions(const Store& store);

struct ReadOptions {
  int level = 0;
  std::optional<Box> bbox;                              // inclusive on both ends
  std::optional<std::vector<std::string>> attributes;   // nullopt: all attributes
};

struct PointCloud {
  OwnedArray positions;
  std::vector<std::pair<std::string, OwnedArray>> attributes;
  // Dictionary-encoded attributes (the reference's string attributes): their
  // values are codes into these categories.
  std::map<std::string, std::vector<std::string>> categories;
  // Attributes of the level left out of an all-attributes read because zvf cannot
  // decode them (a dtype such as bool or float16, an unknown encoding): name, why.
  std::vector<std::pair<std::string, std::string>> skipped;
};

// Reads a level, pruning chunks and bins by bbox. Throws Error(NotFound) for a
// missing store or level, Error(Corrupt) for cells that do not decode.
PointCloud read_points(const Store& store, const ReadOptions& options = {}, const Exec& exec = {});

struct AttributeInfo {
  std::string name;
  DType dtype;
  std::vector<std::int64_t> row_shape;  // [] for (N,), [C] for (N, C)
  std::string note;      // "dictionary: 3 categories", or why zvf cannot read it
  bool readable = true;  // false: reads leave it out (dtype is then meaningless)
};

struct LevelInfo {
  int level = 0;
  std::uint64_t vertex_count = 0;
  std::vector<double> chunk_shape;
  std::vector<double> bin_shape;
  std::vector<std::int64_t> grid_shape;
  std::vector<std::int64_t> grid_origin;
  std::uint64_t nonempty_chunks = 0;
};

struct StoreInfo {
  std::string zv_version;
  std::size_t ndim = 0;
  DType dtype = DType::F32;
  Box bounds;
  std::string codec;
  std::vector<AttributeInfo> attributes;
  std::vector<LevelInfo> levels;
};

// Reads root and level metadata. Throws Error(NotFound) if the store is missing or
// not finalised (the message says whether partitions are pending).
StoreInfo store_info(const Store& store);

}  // namespace zvf
