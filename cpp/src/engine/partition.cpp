// write_points_partition: one independent writer of a shared store.
//
// Protocol (no locks, no coordinator, no shared metadata modified):
//  1. validate input and range; refuse if another partition's range overlaps
//     ours or its layout differs (visible from its started.json / manifest);
//  2. delete our old manifest (from now on we are incomplete), write started.json
//     with a fresh run id, clear our old staged pieces;
//  3. write chunks wholly inside the range in place, stage the others as pieces;
//     in a store already finalised, stage every chunk: readers keep seeing the
//     published cells until finalisation merges the pieces (a run killed here
//     leaves the published store as it was);
//  4. delete in-place cells a previous run of ours wrote that this run did not
//     (in a finalised store, finalisation does that when it merges);
//  5. write manifest.json last, atomically and synced: we are complete. Unless
//     started.json no longer holds our run id: another run of this partition (a
//     duplicated or requeued task) started while we wrote, and the two runs' cells
//     are mixed. Then we write void.json instead, which keeps the partition
//     unfinished until a run starts after both (it clears void.json).
#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

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

namespace {

std::string id_number(double v) {
  if (std::isinf(v)) return v < 0 ? "minf" : "inf";
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest round-trip form
  std::string s(buf, r.ptr);
  for (auto& c : s) {
    if (c == '-') c = 'm';
    else if (c == '+') c = 'p';
  }
  return s;
}

bool chunk_inside(const Grid& g, const ChunkCoord& c, const Box& range, const ChunkCoord& origin) {
  for (std::size_t d = 0; d < g.ndim(); ++d) {
    if (c[d] < origin[d]) return false;  // cannot be addressed in the current grid yet
    if (!(g.chunk_lo(c[d], d) >= range.lo[d] && g.chunk_hi(c[d], d) <= range.hi[d])) return false;
  }
  return true;
}

void sync_if_posix(Store& store, const std::string& key) {
  if (auto* p = dynamic_cast<PosixStore*>(&store)) p->sync_key(key);
}

}  // namespace

std::string partition_id(const Box& range) {
  static const char* axes = "xyzw";
  std::string id;
  for (std::size_t d = 0; d < range.ndim(); ++d) {
    if (std::isinf(range.lo[d]) && std::isinf(range.hi[d])) continue;
    if (!id.empty()) id += "__";
    id += std::string(1, axes[d]) + "_" + id_number(range.lo[d]) + "_" + id_number(range.hi[d]);
  }
  return id.empty() ? "all" : id;
}

PartitionSummary write_points_partition(Store& store, const ArrayView& positions,
                                        const std::vector<NamedArray>& attributes, const Layout& layout,
                                        const Box& range, const Exec& exec) {
  const int threads = resolve_threads(exec.threads);
  PhaseClock clock("write_points_partition");
  EarlyWriteBack write_back(store, exec.durable);
  CheckedInput in = check_input(positions, attributes, layout, threads);
  const std::size_t nd = positions.cols;
  check_inside(in, range, /*half_open=*/true, "partition range", threads);

  PartitionRecord rec;
  rec.id = partition_id(range);
  rec.run_id = new_run_id();
  rec.range = range;
  rec.layout = {nd, positions.dtype, in.grid, !layout.bin_shape.empty(), layout.codec, in.attr_specs};
  rec.vertex_count = positions.rows;
  if (positions.rows) rec.bounds = Box{in.pos_min, in.pos_max};
  const std::string dir = partition_dir(rec.id);

  // Agreement with what the store already holds.
  auto root = read_root(store);
  std::optional<Ledger> ledger = read_ledger(store);
  const bool root_is_zv = root && root->contains("attributes") && (*root)["attributes"].contains("zarr_vectors");
  if (root_is_zv && !ledger)
    fail(Error::Code::Conflict, store.describe() + " was written in one go by write_points; partitions can only "
                                                   "be added to stores built from partitions");
  auto conflict_with = [&](const std::string& other, const StoreLayout& l) {
    std::string diff = rec.layout.difference(l);
    if (!diff.empty())
      fail(Error::Code::Conflict, "partition " + rec.id + " disagrees with " + other + " on " + diff +
                                      " (ours first); every partition of a store must use the same layout");
  };
  if (ledger) {
    conflict_with("the finalised store", ledger->layout);
    for (const auto& [id, r] : ledger->partitions)
      if (id != rec.id && overlaps(r.range, range))
        fail(Error::Code::Conflict, "partition " + rec.id + " (" + box_text(range, true) +
                                        ") overlaps finalised partition " + id + " (" + box_text(r.range, true) + ")");
  }
  std::optional<PartitionRecord> previous;
  for (const auto& p : scan_partitions(store)) {
    if (p.id == rec.id) {
      previous = p.manifest;
      continue;
    }
    auto started = meta::read_json(store, partition_dir(p.id) + "/started.json");
    if (started && started->contains("range")) {
      Box other = box_from_json((*started)["range"], nd, p.id);
      if (overlaps(other, range))
        fail(Error::Code::Conflict, "partition " + rec.id + " (" + box_text(range, true) + ") overlaps partition " +
                                        p.id + " (" + box_text(other, true) + "); partition ranges must be disjoint");
    }
    if (p.manifest) conflict_with("partition " + p.id, p.manifest->layout);
  }

  clock.mark("validate");
  // From here on we write. Mark the partition incomplete first.
  store.erase(dir + "/manifest.json");
  store.erase(dir + "/void.json");
  store.erase_prefix(dir + "/pieces");
  json started = {{"id", rec.id}, {"run_id", rec.run_id}, {"range", box_to_json(range)}};
  store.set(dir + "/started.json", started.dump());

  rec.origin = ledger ? ledger->origin : ChunkCoord(nd, 0);
  CellLayout cl = rec.layout.cells();
  SortedPoints groups = sort_points(in, cl, threads);
  clock.mark("sort");
  const bool published = root_is_zv;
  std::vector<char> in_place(groups.chunks.size());
  for (std::size_t k = 0; k < groups.chunks.size(); ++k) {
    in_place[k] = !published && chunk_inside(in.grid, groups.chunks[k], range, rec.origin);
    (in_place[k] ? rec.in_place : rec.staged).push_back(dotted_key(groups.chunks[k]));
  }
  const std::vector<std::size_t> order = directory_spread_order(groups.chunks);
  parallel_for(
      groups.chunks.size(), io_threads(threads, store.io_concurrency()),
      [&](std::size_t i) {
        const std::size_t k = order[i];
        thread_local ChunkScratch scratch;
        ChunkView data = groups.chunk_view(k, cl, scratch);
        if (in_place[k]) {
          write_cells(store, cl, groups.chunks[k], rec.origin, data);
        } else {
          // Published by the manifest, written after every piece.
          Bytes header;
          const std::vector<ByteSpan> parts = encode_piece(data, header);
          store.set_unpublished(dir + "/pieces/" + dotted_key(groups.chunks[k]), parts);
        }
      },
      [&](std::size_t done) {
        if (exec.progress) exec.progress(done, groups.chunks.size());
      });
  clock.mark("cells");

  // Cells an earlier run of this partition placed that this run did not rewrite.
  std::set<std::string> now(rec.in_place.begin(), rec.in_place.end());
  std::vector<std::string> stale_keys;
  if (previous) stale_keys = previous->in_place;
  if (ledger && ledger->partitions.count(rec.id)) {
    const auto& old = ledger->partitions.at(rec.id).in_place;
    stale_keys.insert(stale_keys.end(), old.begin(), old.end());
  }
  if (!published)
    for (const auto& key : stale_keys)
      if (!now.count(key)) erase_cells(store, cl, parse_dotted_key(key, nd), rec.origin);

  const std::string manifest = dir + "/manifest.json";
  auto refuse_if_not_ours = [&] {
    auto st = meta::read_json(store, dir + "/started.json");
    const std::string current =
        st && st->contains("run_id") && (*st)["run_id"].is_string() ? (*st)["run_id"].get<std::string>() : "";
    const bool voided = store.exists(dir + "/void.json");
    if (current == rec.run_id && !voided) return;
    if (!voided) store.set(dir + "/void.json", json{{"runs", json::array({rec.run_id, current})}}.dump());
    store.erase(manifest);
    fail(Error::Code::Conflict,
         "partition " + rec.id + " was written by two runs at the same time (this one, " + rec.run_id + ", and " +
             (current.empty() || current == rec.run_id ? std::string("another") : current) +
             "), so their cells are mixed: it stays unfinished. Once no task of it is running, run it once "
             "more, then finalise");
  };
  refuse_if_not_ours();
  // The manifest says "complete", so what it lists must be durable first.
  if (exec.durable) store.sync();
  store.set(manifest, rec.to_json(true).dump(1));
  sync_if_posix(store, manifest);
  refuse_if_not_ours();  // the other run may have found us out while we wrote the manifest
  clock.mark("manifest");
  return {rec.id, rec.vertex_count, rec.in_place.size(), rec.staged.size()};
}

std::vector<PartitionState> list_partitions(const Store& store) {
  std::vector<PartitionState> out;
  for (const auto& p : scan_partitions(store)) {
    PartitionState s;
    s.id = p.id;
    s.complete = p.complete();
    if (p.manifest) {
      s.range = p.manifest->range;
      s.vertex_count = p.manifest->vertex_count;
    } else if (auto st = meta::read_json(store, partition_dir(p.id) + "/started.json");
               st && st->contains("range") && (*st)["range"].is_array()) {
      s.range = box_from_json((*st)["range"], (*st)["range"][0].size(), p.id);
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace zvf
