// Chunk-shape planner: from a point count, bounds and attribute dtypes, suggest
// a chunk_shape / bin_shape whose chunk files land in a target size band
// (1-4 MB by default, the band the HPC guide recommends for Lustre and GPFS),
// plus partition ranges for K tasks that start and end on chunk boundaries.
//
// No I/O: the plan is arithmetic on the same grid the writers use (absolute
// chunks, origin 0; zvf/grid.hpp), so a planned partition edge is exactly a
// chunk edge of the written store.
//
// The model and its rules (docs/hpc.md explains them to users):
//  - Chunks are cubes (one edge for every axis) with a "nice" edge m * 10^e,
//    m in {1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8}: neighbouring choices differ by at
//    most 4/3 per axis (about 2.4x in volume in 3-D), so the 4x band always holds
//    one. bin_shape is the chunk divided by bins_per_axis (4: 64 bins in 3-D, the
//    guide's 500 / 125).
//  - Points are spread uniformly over `occupancy` of the bounding box (1: the
//    whole box). A chunk's expected count is proportional to its overlap with
//    the box; partly covered edge chunks are counted as such, and chunks that
//    are likely empty (sparse data) are not counted as files.
//  - The size that must land in the band is the largest cell file of a chunk
//    (usually the positions: 12 bytes per float32 xyz point), averaged over the
//    non-empty chunks, i.e. the mean file size a user will see on disk. With a
//    compressor the compressed size is unknown: sizes are raw sizes divided by
//    `compression_ratio` (1 by default, the upper bound).
//  - Among the candidate edges the planner prefers, in order: a size in the
//    band; at least one chunk layer per partition along the partition axis;
//    then the smallest |log(size / target)| plus the load imbalance of the
//    partitions (log of the largest share of layers over the mean share).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "zvf/codec.hpp"
#include "zvf/types.hpp"

namespace zvf {

struct AttributeSpec {
  std::string name;
  DType dtype = DType::F32;
  std::int64_t components = 1;  // row shape (N,) for 1, (N, C) for C > 1
};

struct PlanRequest {
  std::uint64_t point_count = 0;  // > 0
  Box bounds;                     // inclusive extent, 2..4 axes, finite, lo <= hi
  DType positions_dtype = DType::F32;
  std::vector<AttributeSpec> attributes;
  // Density hint: fraction (0, 1] of the bounding box's volume that holds the
  // points; 1 = uniform over the box. A terrain scan 100 m tall whose points lie
  // within ~5 m of the ground has occupancy ~0.05.
  double occupancy = 1.0;
  // Band for the largest cell file of a chunk, in bytes (MB = 10^6 bytes, as the
  // guide's "200 000 float32 vertices = 2.4 MB").
  double min_bytes = 1e6;
  double max_bytes = 4e6;
  std::optional<double> target_bytes;  // default: geometric mean of the band (2 MB)
  CodecSpec codec;                     // none by default, as the writers
  double compression_ratio = 1.0;      // assumed raw / compressed size, >= 1
  std::int64_t partitions = 1;         // tasks that will write slabs along partition_axis
  std::optional<std::size_t> partition_axis;  // default: z (axis 2), or y for 2-D
  std::int64_t bins_per_axis = 4;      // bins per chunk along each axis, 1..64
};

// One array's cell files ("0/vertices/c", "0/vertex_attributes/<name>/c", ...).
struct ArrayPlan {
  std::string name;      // "vertices", "vertex_fragments" or the attribute name
  std::string cell_dir;  // store-relative directory holding the cell files
  double row_bytes = 0;  // raw bytes per point (0 for vertex_fragments)
  double mean_bytes = 0; // expected file size, mean over non-empty chunks
  double full_bytes = 0; // expected file size of a chunk wholly inside the data
};

// A half-open slab [lo, hi) along the partition axis, for one task.
struct PartitionRange {
  double lo = 0, hi = 0;
  std::int64_t first_layer = 0;  // absolute chunk coordinate of its first layer
  std::int64_t layer_count = 0;  // chunk layers it owns (0 if not aligned)
};

struct ChunkPlan {
  std::vector<double> chunk_shape, bin_shape;
  std::vector<std::int64_t> bins_per_chunk;
  std::vector<std::int64_t> grid_origin;  // absolute chunk coordinate of the first chunk per axis
  std::vector<std::int64_t> grid_shape;   // chunks intersecting the bounds per axis
  std::uint64_t chunk_count = 0;          // product of grid_shape
  double nonempty_chunks = 0;             // expected chunks that hold points
  double points_per_chunk = 0;            // mean over non-empty chunks
  double full_chunk_points = 0;           // a chunk wholly inside the data
  double bytes_per_chunk = 0;             // largest cell file, mean over non-empty chunks
  double full_chunk_bytes = 0;            // largest cell file of a full chunk
  double min_bytes = 0, max_bytes = 0, target_bytes = 0;
  bool in_band = false;
  std::string codec;                      // "none" | "zstd" | "blosc"
  double compression_ratio = 1.0;
  std::vector<ArrayPlan> arrays;
  double files = 0;                       // expected cell files of level 0, all arrays
  std::int64_t max_dir_entries = 0;       // largest directory: cells nest c/i/j/k
  std::size_t partition_axis = 0;
  bool partitions_aligned = true;
  std::vector<PartitionRange> partitions;
  std::vector<std::string> warnings;      // things the user should act on
  std::vector<std::string> notes;         // assumptions the numbers rest on
};

// Thresholds behind the warnings (documented in docs/hpc.md).
inline constexpr std::int64_t kPlanMaxDirEntries = 10000;  // entries in one directory
inline constexpr double kPlanMaxFiles = 1e6;               // inode quotas of scratch file systems

// Validates the request (Error(InvalidArgument) naming the bad value) and plans.
ChunkPlan plan_chunks(const PlanRequest& request);

// Lustre stripe size for cell files of `file_bytes`: the smallest power-of-two
// number of MiB that holds a whole file, between 1 MiB and 4 MiB, so a chunk
// file is a single stripe (the guide's "-S 4m" for ~2.4 MB chunks).
std::uint64_t stripe_size_for(double file_bytes);

// "x", "y", "z" or "t" for axes 0..3 (as the CLI names them).
const char* axis_name(std::size_t axis);

}  // namespace zvf
