// Internal view of one level of a finalised store (ours or the reference's):
// its grid, arrays and presence, shared by reads, store_info and pyramids.
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/store_state.hpp"

namespace zvf::detail {

struct ArrayMeta {
  std::string path;
  DType dtype = DType::F32;
  std::size_t cols = 1;
  bool one_d = true;
  CodecSpec codec;
  ChunkCoord origin;
  std::vector<std::int64_t> shape;
  std::optional<std::vector<std::string>> nonempty;
  // Attributes only: why zvf cannot decode it (empty if it can), and the
  // categories of a dictionary-encoded one.
  std::string unsupported;
  std::vector<std::string> categories;
  bool ordered = false;
  std::size_t row_bytes(std::size_t ndim_if_vertices = 0) const {
    return (ndim_if_vertices ? ndim_if_vertices : cols) * dtype_size(dtype);
  }
};

struct LevelView {
  int level = 0;
  std::size_t ndim = 0;
  // The level's chunks. Its bins too when bin_fragments; otherwise one bin per
  // chunk, so that chunk arithmetic holds whatever the declared bin.
  Grid grid;
  std::vector<double> bin_shape;  // as the level declares it
  // Fragment f of a cell holds the rows of the cell's bin f (C order), so a bbox
  // read may skip or take bins whole. True for level 0 and for our coarse levels
  // (bin means). The reference's coarse levels have one fragment per metavertex,
  // and their bins may be larger than the chunk.
  bool bin_fragments = true;
  std::uint64_t vertex_count = 0;
  ArrayMeta vertices, fragments;
  std::vector<std::pair<std::string, ArrayMeta>> attrs;
};

// The root zarr.json of a finalised store; Error(NotFound) explaining what the
// path holds instead (nothing, pending partitions, not a ZV store).
json read_zv_root(const Store& store);
LevelView open_level(const Store& store, int level);
std::vector<ChunkCoord> level_chunks(const Store& store, const LevelView& lv);
// Decoded payload of one cell (borrowing the stored bytes when uncompressed);
// nullopt if the cell does not exist.
std::optional<DecodedCell> get_cell(const Store& store, const ArrayMeta& a, const ChunkCoord& c);
// Levels the root publishes (its multiscales datasets): 0, 1, ... Readers trust
// only these; a level group on disk that the root does not list is unfinished.
std::vector<int> published_levels(const json& root);
// Number of levels whose group exists (0, 1, ... contiguous).
int level_count(const Store& store);
// Deletes every level directory above 0 (coarse levels, finished or not).
void drop_level_dirs(Store& store);

}  // namespace zvf::detail
