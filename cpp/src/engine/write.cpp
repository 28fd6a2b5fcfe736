// One-shot write of a new store: validate, bin, write every chunk's cells in
// parallel, then the metadata with the root zarr.json last.
#include <algorithm>
#include <cmath>

#include "engine/binning.hpp"
#include "engine/sorting.hpp"
#include "engine/cells.hpp"
#include "engine/input.hpp"
#include "engine/parallel.hpp"
#include "engine/store_state.hpp"
#include "engine/trace.hpp"
#include "zvf/error.hpp"
#include "zvf/points.hpp"

namespace zvf {
using namespace detail;

WriteSummary write_points(Store& store, const ArrayView& positions, const std::vector<NamedArray>& attributes,
                          const Layout& layout, const std::optional<Box>& bounds, const Exec& exec) {
  const int threads = resolve_threads(exec.threads);
  const bool root_was_there = store.root_exists();
  PhaseClock clock("write_points");
  EarlyWriteBack write_back(store, exec.durable);
  CheckedInput in = check_input(positions, attributes, layout, threads);
  const std::size_t nd = positions.cols;
  Box box;
  if (bounds) {
    check_inside(in, *bounds, /*half_open=*/false, "bounds", threads);
    check_finite_bounds(*bounds, in.grid);
    box = *bounds;
  } else if (positions.rows == 0) {
    invalid("cannot write an empty point cloud without bounds: declare its extent (bounds=(lo, hi) in Python, --bounds in zvf)");
  } else {
    box = {in.pos_min, in.pos_max};
  }
  refuse_existing_store(store);
  clock.mark("validate");

  CellLayout cl{nd, positions.dtype, in.attr_specs, layout.codec, in.grid.bins_per_chunk_total()};
  SortedPoints groups = sort_points(in, cl, threads);
  clock.mark("sort");

  meta::StoreMeta m;
  m.ndim = nd;
  m.dtype = positions.dtype;
  m.grid = in.grid;
  m.bin_given = !layout.bin_shape.empty();
  m.codec = layout.codec;
  m.attrs = in.attr_specs;
  m.bounds = box;
  m.vertex_count = positions.rows;
  m.name = meta::store_name(store);
  // The grid spans the bounds (as the reference computes it) and every chunk used.
  ChunkCoord lo = chunk_of_point(box.lo.data(), in.grid), hi = chunk_of_point(box.hi.data(), in.grid);
  for (const auto& c : groups.chunks)
    for (std::size_t d = 0; d < nd; ++d) {
      lo[d] = std::min(lo[d], c[d]);
      hi[d] = std::max(hi[d], c[d]);
    }
  m.origin = lo;
  for (std::size_t d = 0; d < nd; ++d) m.shape.push_back(hi[d] - lo[d] + 1);
  for (const auto& c : groups.chunks) m.nonempty.push_back(dotted_key(c));

  auto progress = [&](std::size_t done) {
    if (exec.progress) exec.progress(done, groups.chunks.size());
  };
  const std::vector<std::size_t> order = directory_spread_order(groups.chunks);
  try {
    parallel_for(
        groups.chunks.size(), io_threads(threads, store.io_concurrency()),
        [&](std::size_t i) {
          const std::size_t k = order[i];
          thread_local ChunkScratch scratch;
          ChunkView data = groups.chunk_view(k, cl, scratch);
          write_cells(store, cl, groups.chunks[k], m.origin, data);
        },
        progress);
    clock.mark("cells");
    if (exec.durable) store.sync();  // the cells, before the metadata that publishes them
    meta::write_all(store, m);
    if (exec.durable) store.sync();
    clock.mark("metadata");
  } catch (...) {
    // Nothing half-written: remove what this call created before rethrowing.
    try {
      store.erase("zarr.json");
      store.erase_prefix("0");
      if (!root_was_there) store.remove_root_if_empty();
    } catch (...) {
    }
    throw;
  }
  return {positions.rows, groups.chunks.size(), in.grid.bins_per_chunk};
}

}  // namespace zvf
