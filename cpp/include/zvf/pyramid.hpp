// Multi-resolution pyramids of point clouds (ZV 0.9 levels 1, 2, ...).
//
// Level k replaces every non-empty bin of size bin_k = bin_{k-1} * coarsen_k by
// one metavertex at the mean position of the level-0 points in it. Every level is
// computed from level 0, so reductions are exact (means weighted by point counts,
// true modes), and a `count` attribute records how many level-0 points each
// metavertex stands for. Work goes coarse chunk by coarse chunk, in parallel;
// memory depends on the chunk size, not on the store size.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "zvf/points.hpp"

namespace zvf {

// How an attribute is carried down: floats default to Mean, integers to Mode.
// Mean of integers rounds to nearest; Mode takes the smallest most-frequent value;
// First is the first point in storage order.
enum class Reduction { Mean, Min, Max, First, Mode };
Reduction reduction_from_name(const std::string& name);  // Error(InvalidArgument) naming the choices
const char* reduction_name(Reduction r);

struct PyramidLevelSpec {
  double coarsen = 2.0;   // bin multiplier relative to the previous level (>= 1)
  double sparsity = 1.0;  // object sparsity; must be 1 for point clouds without objects
  std::vector<std::int64_t> chunk_scale;  // empty: automatic; else chunk = root chunk * scale (per axis)
};

struct PyramidOptions {
  std::vector<PyramidLevelSpec> levels;
  std::map<std::string, Reduction> reductions;
  bool overwrite = false;  // replace an existing pyramid built with other settings
  // Scale-out: build only share `part_index` of `part_count` of every level's coarse
  // chunks and record it; then one call with `finalise_parts` (and no part) writes
  // the metadata. -1 and 0 build everything; any other pair must have
  // part_count >= 1 and 0 <= part_index < part_count.
  int part_index = -1;
  int part_count = 0;
  bool finalise_parts = false;
};

struct PyramidLevelReport {
  int level = 0;
  std::uint64_t vertex_count = 0;
  std::vector<double> chunk_shape, bin_shape;
  std::uint64_t chunk_count = 0;
};

struct PyramidReport {
  bool changed = false;  // false: the same pyramid already exists, nothing written
  bool complete = true;  // false after a part build: finalise_parts still to run
  std::vector<PyramidLevelReport> levels;
};

PyramidReport build_pyramid(Store& store, const PyramidOptions& options, const Exec& exec = {});

// The coarsest level whose points inside bbox number at least min_points (the
// level-of-detail query of viewers); level 0 if none does.
int select_level(const Store& store, const Box& bbox, std::uint64_t min_points, const Exec& exec = {});

}  // namespace zvf
