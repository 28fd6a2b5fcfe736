// finalise(): turns complete partitions into a readable ZV store.
//
// Order of effects, chosen so that a crash at any point leaves a store that the
// next finalise() completes and that never looks final with data missing:
//  1. refuse incomplete, inconsistent or overlapping partitions (writes nothing);
//  2. if the chunk grid origin must move (negative coordinates), move in-place
//     cells under a journal (.zvf/rekey.json) in two phases;
//  3. merge staged pieces into boundary cells (each a pure function of the
//     previous cell minus the pending partitions' ranges, plus the pieces), then
//     delete level-0 cells that no complete partition claims (orphans);
//  4. write array and level metadata, then the root zarr.json with the ledger;
//  5. delete the staging area .zvf/.
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "engine/binning.hpp"
#include "engine/cells.hpp"
#include "engine/input.hpp"
#include "engine/level.hpp"
#include "engine/parallel.hpp"
#include "engine/store_state.hpp"
#include "zvf/error.hpp"
#include "zvf/points.hpp"

namespace zvf {
using namespace detail;

namespace {

const std::string kJournal = ".zvf/rekey.json";

std::vector<std::string> array_paths(const StoreLayout& l) {
  std::vector<std::string> p = {meta::vertices_path(), meta::fragments_path()};
  for (const auto& a : l.attrs) p.push_back(meta::attribute_path(a.name));
  return p;
}

// Moves every listed cell from `from` to `to` origin. Phase A parks cells under
// .zvf/rekey/ by absolute key, phase B places them; either phase can be re-run.
void rekey(Store& store, const StoreLayout& layout, const json& journal) {
  // Read back from the store: checked before use (operator[] of a missing key is undefined).
  auto bad = [&](const std::string& why) {
    fail(Error::Code::Corrupt,
         store.describe() + "/" + kJournal + " (the journal of an interrupted finalisation): " + why);
  };
  auto origin = [&](const char* k) {
    if (!journal.is_object() || !journal.contains(k) || !meta::is_integer_list(journal[k]) ||
        journal[k].size() != layout.ndim)
      bad(std::string("'") + k + "' must be " + std::to_string(layout.ndim) + " integers");
    return journal[k].get<ChunkCoord>();
  };
  const ChunkCoord from = origin("from"), to = origin("to");
  if (!journal.contains("keys") || !journal["keys"].is_array() ||
      !std::all_of(journal["keys"].begin(), journal["keys"].end(), [](const json& k) { return k.is_string(); }))
    bad("'keys' must be a list of chunk keys");
  if (!journal.contains("phase") || (journal["phase"] != "A" && journal["phase"] != "B"))
    bad("'phase' must be \"A\" or \"B\"");
  const auto keys = journal["keys"].get<std::vector<std::string>>();
  const auto paths = array_paths(layout);
  // Moves are independent within a phase: run them in parallel (on S3 each is a
  // copy and a delete).
  const int threads = detail::io_threads(resolve_threads(0), store.io_concurrency());
  if (journal["phase"] == "A") {
    parallel_for(keys.size(), threads, [&](std::size_t i) {
      ChunkCoord c = parse_dotted_key(keys[i], layout.ndim);
      for (const auto& p : paths) {
        std::string src = p + "/" + cell_key(c, from);
        if (store.exists(src)) store.rename(src, ".zvf/rekey/" + p + "/" + keys[i]);
      }
    });
    json next = journal;
    next["phase"] = "B";
    store.set(kJournal, next.dump());
  }
  parallel_for(keys.size(), threads, [&](std::size_t i) {
    ChunkCoord c = parse_dotted_key(keys[i], layout.ndim);
    for (const auto& p : paths) {
      std::string tmp = ".zvf/rekey/" + p + "/" + keys[i];
      if (store.exists(tmp)) store.rename(tmp, p + "/" + cell_key(c, to));
    }
  });
}

// Gaps between partitions that all constrain the same single axis.
std::vector<std::string> find_gaps(const std::map<std::string, PartitionRecord>& parts, std::size_t nd) {
  static const char* axes = "xyzw";
  int axis = -1;
  for (const auto& [id, r] : parts) {
    int constrained = -1, count = 0;
    for (std::size_t d = 0; d < nd; ++d)
      if (std::isfinite(r.range.lo[d]) || std::isfinite(r.range.hi[d])) {
        constrained = static_cast<int>(d);
        ++count;
      }
    if (count != 1 || (axis != -1 && constrained != axis)) return {};
    axis = constrained;
  }
  if (axis < 0) return {};
  std::vector<std::pair<double, double>> iv;
  for (const auto& [id, r] : parts) iv.emplace_back(r.range.lo[axis], r.range.hi[axis]);
  std::sort(iv.begin(), iv.end());
  std::vector<std::string> gaps;
  double reach = iv.front().second;
  for (std::size_t i = 1; i < iv.size(); ++i) {
    if (iv[i].first > reach)
      gaps.push_back(std::string(1, axes[axis]) + " in [" + number_text(reach) + ", " + number_text(iv[i].first) + ")");
    reach = std::max(reach, iv[i].second);
  }
  return gaps;
}

// Deletes the level-0 cells that no chunk of `keys` (dotted absolute keys, cells
// addressed against `origin`) claims, and returns them: e.g. the cells of a
// partition whose directory the user deleted after an overlap. Only called when
// every partition in `staged` (finalise's scan) is complete, so none of them is
// still writing. A task that started since that scan may own some of these
// cells: then refuse instead of deleting (every earlier step is safe to repeat).
std::vector<std::string> sweep_orphans(Store& store, const StoreLayout& layout, const std::set<std::string>& keys,
                                       const ChunkCoord& origin, const std::vector<StagedPartition>& staged,
                                       int threads) {
  std::set<std::string> claimed;
  for (const auto& k : keys) claimed.insert(cell_key(parse_dotted_key(k, layout.ndim), origin));
  std::vector<std::string> orphans = unclaimed_cells(store, layout, claimed);
  if (orphans.empty()) return orphans;
  if (!same_partitions(staged, scan_partitions(store)))
    fail(Error::Code::Conflict, "partitions of " + store.describe() +
                                    " changed while finalising (a task started or finished meanwhile); finalise "
                                    "again once every task has finished");
  parallel_for(orphans.size(), io_threads(threads, store.io_concurrency()),
               [&](std::size_t i) { store.erase(orphans[i]); });
  if (auto* posix = dynamic_cast<PosixStore*>(&store)) {  // temp files a killed writer left next to them
    std::set<std::string> dirs;
    for (const auto& key : orphans) dirs.insert(key.substr(0, key.rfind('/')));
    for (const auto& d : dirs) posix->remove_temporaries(d);
  }
  return orphans;
}

}  // namespace

FinaliseReport finalise(Store& store, const FinaliseOptions& options, const Exec& exec) {
  const int threads = resolve_threads(exec.threads);
  EarlyWriteBack write_back(store, exec.durable);
  FinaliseReport report;
  auto root = read_root(store);
  const bool root_is_zv = root && (*root).contains("attributes") && (*root)["attributes"].contains("zarr_vectors");
  std::optional<Ledger> ledger = read_ledger(store);
  auto staged = scan_partitions(store);
  const bool journal_pending = store.exists(kJournal);

  if (!root_is_zv && staged.empty()) {
    if (!store.root_exists()) fail(Error::Code::NotFound, "no store at " + store.describe());
    fail(Error::Code::NotFound, store.describe() + " is not a ZV store: it has no ZV zarr.json and no partitions");
  }

  // 1. Which partitions are new, which are incomplete.
  std::vector<std::string> incomplete, voided;
  std::vector<PartitionRecord> pending;
  for (auto& p : staged) {
    if (p.voided) {
      voided.push_back(p.id);
      continue;
    }
    if (!p.complete()) {
      incomplete.push_back(p.id);
      continue;
    }
    bool merged = ledger && ledger->partitions.count(p.id) && ledger->partitions.at(p.id).run_id == p.manifest->run_id;
    if (!merged) pending.push_back(*p.manifest);
  }
  if (!voided.empty()) {
    std::string ids;
    for (const auto& id : voided) ids += (ids.empty() ? "" : ", ") + id;
    fail(Error::Code::Conflict, "cannot finalise " + store.describe() + ": partition(s) " + ids +
                                    " were written by two runs at the same time (a duplicated or requeued task), "
                                    "so their cells are mixed; once no task of them is running, run each once more, "
                                    "then finalise again");
  }
  if (!incomplete.empty()) {
    std::string ids;
    for (const auto& id : incomplete) ids += (ids.empty() ? "" : ", ") + id;
    fail(Error::Code::Conflict, "cannot finalise " + store.describe() + ": partition(s) " + ids +
                                    " started but did not finish (no manifest): the task was killed or is still "
                                    "running; re-run it, then finalise again");
  }
  if (pending.empty() && !journal_pending) {
    if (root_is_zv) {  // already final: report what is there, write nothing (but orphans)
      if (ledger) {
        std::set<std::string> keys;
        for (const auto& [id, r] : ledger->partitions) {
          report.vertex_count += r.vertex_count;
          keys.insert(r.in_place.begin(), r.in_place.end());
          keys.insert(r.staged.begin(), r.staged.end());
        }
        report.chunk_count = keys.size();
        // A wrong partition deleted with nothing left to merge: its cells still go.
        report.orphans_removed = sweep_orphans(store, ledger->layout, keys, ledger->origin, staged, threads).size();
        report.changed = report.orphans_removed > 0;
      } else {  // written in one go: nothing to merge, report what it holds
        const LevelView lv = open_level(store, 0);
        report.vertex_count = lv.vertex_count;
        report.chunk_count = level_chunks(store, lv).size();
      }
      if (!staged.empty()) store.erase_prefix(kStaging);  // leftovers of a run that crashed after step 4
      return report;
    }
    if (!staged.empty()) store.erase_prefix(kStaging);
  }
  if (root_is_zv && !ledger)
    fail(Error::Code::Conflict, store.describe() + " was written in one go by write_points and cannot take partitions");

  // Agreement of layouts.
  StoreLayout layout = ledger ? ledger->layout : pending.front().layout;
  const std::string base_name = ledger ? std::string("the finalised store") : "partition " + pending.front().id;
  for (const auto& r : pending) {
    std::string diff = r.layout.difference(layout);
    if (!diff.empty())
      fail(Error::Code::Conflict, "partition " + r.id + " disagrees with " + base_name + " on " + diff +
                                      "; every partition of a store must use the same layout");
    layout.bin_given = layout.bin_given || r.layout.bin_given;
  }
  const std::size_t nd = layout.ndim;

  std::map<std::string, PartitionRecord> all = ledger ? ledger->partitions : std::map<std::string, PartitionRecord>{};
  std::set<std::string> rerun;
  // Points of the previous store that lie inside a pending partition's range
  // are replaced by that partition. Before this run that is only a re-run's old
  // points (ranges are disjoint), but after a finalisation that stopped between
  // steps 3 and 4 the rebuilt cells also hold new partitions' pieces: dropping
  // every pending range makes the rebuild a pure function, safe to repeat.
  std::vector<Box> pending_ranges;
  for (auto& r : pending) {
    if (all.count(r.id)) rerun.insert(r.id);
    pending_ranges.push_back(r.range);
    all[r.id] = r;
  }
  for (auto a = all.begin(); a != all.end(); ++a)
    for (auto b = std::next(a); b != all.end(); ++b)
      if (overlaps(a->second.range, b->second.range))
        fail(Error::Code::Conflict, "partitions " + a->first + " (" + box_text(a->second.range, true) + ") and " +
                                        b->first + " (" + box_text(b->second.range, true) +
                                        ") overlap; partition ranges must be disjoint");
  report.gaps = find_gaps(all, nd);
  if (!report.gaps.empty() && !options.allow_gaps) {
    std::string g;
    for (const auto& s : report.gaps) g += (g.empty() ? "" : "; ") + s;
    fail(Error::Code::Conflict, "partitions of " + store.describe() + " leave gap(s): " + g +
                                    ". No partition covers them: run the missing partition(s), or accept the gaps "
                                    "with allow_gaps=True (Python) / --allow-gaps (zvf finalise)");
  }

  // 2. Origin of the chunk grid: 0, or lower where data lies at negative chunks.
  const ChunkCoord current = ledger ? ledger->origin : ChunkCoord(nd, 0);
  ChunkCoord target = current;
  std::set<std::string> old_keys;  // cells of the previously finalised store
  if (ledger)
    for (const auto& [id, r] : ledger->partitions) {
      old_keys.insert(r.in_place.begin(), r.in_place.end());
      old_keys.insert(r.staged.begin(), r.staged.end());
    }
  std::set<std::string> new_keys;
  for (const auto& [id, r] : all)
    for (const auto* list : {&r.in_place, &r.staged})
      for (const auto& k : *list) {
        new_keys.insert(k);
        ChunkCoord c = parse_dotted_key(k, nd);
        for (std::size_t d = 0; d < nd; ++d) target[d] = std::min(target[d], c[d]);
      }
  for (const auto& r : pending)
    if (!r.in_place.empty() && r.origin != current)
      fail(Error::Code::Conflict, "partition " + r.id + " placed its cells for an older chunk grid of this store; "
                                                        "re-run it, then finalise again");
  ChunkCoord placed = current;  // origin the cells on disk are addressed against
  if (journal_pending) {  // a previous finalise stopped while moving cells: finish that first
    auto j = meta::read_json(store, kJournal);
    rekey(store, layout, *j);
    placed = (*j)["to"].get<ChunkCoord>();
  }
  for (std::size_t d = 0; d < nd; ++d) target[d] = std::min(target[d], placed[d]);
  if (target != placed) {
    std::set<std::string> on_disk = old_keys;
    for (const auto& r : pending) on_disk.insert(r.in_place.begin(), r.in_place.end());
    json journal = {{"from", placed}, {"to", target}, {"phase", "A"},
                    {"keys", std::vector<std::string>(on_disk.begin(), on_disk.end())}};
    store.set(kJournal, journal.dump());
    rekey(store, layout, journal);
  }

  // 3. Rebuild boundary cells from pieces.
  std::set<std::string> rebuild;
  for (const auto& r : pending) rebuild.insert(r.staged.begin(), r.staged.end());
  // A re-run's old cells are rebuilt too: without the points inside its range
  // (all of them, for a cell it had in place) plus its new pieces. A re-run into a
  // finalised store stages everything, so this is where its old cells change.
  if (ledger)
    for (const auto& id : rerun) {
      const auto& old = ledger->partitions.at(id);
      rebuild.insert(old.staged.begin(), old.staged.end());
      rebuild.insert(old.in_place.begin(), old.in_place.end());
    }
  // A cell a partition now writes in place lies wholly inside its range, so no
  // other partition contributes to it: it is final as written, never rebuilt.
  for (const auto& r : pending)
    for (const auto& k : r.in_place) rebuild.erase(k);
  const CellLayout cl = layout.cells();
  std::vector<std::string> rebuild_list;
  {
    const std::vector<std::string> keys(rebuild.begin(), rebuild.end());
    std::vector<ChunkCoord> coords;
    for (const auto& key : keys) coords.push_back(parse_dotted_key(key, nd));
    for (std::size_t i : directory_spread_order(coords)) rebuild_list.push_back(keys[i]);
  }
  std::vector<char> emptied(rebuild_list.size(), 0);
  parallel_for(
      rebuild_list.size(), io_threads(threads, store.io_concurrency()),
      [&](std::size_t i) {
        const std::string& key = rebuild_list[i];
        ChunkCoord c = parse_dotted_key(key, nd);
        // Sources: what the cell keeps from before, then each pending piece (read
        // once, merged straight from the bytes read).
        std::optional<ChunkData> kept;
        std::vector<Bytes> pieces;
        std::vector<std::vector<std::int64_t>> piece_counts;
        pieces.reserve(pending.size());
        piece_counts.reserve(pending.size());  // views point into these: no reallocation
        std::vector<ChunkView> sources;
        if (old_keys.count(key))
          if (auto existing = read_cells(store, cl, c, target)) {
            kept = drop_points_inside(*existing, cl, pending_ranges);
            sources.push_back(view_of(*kept));
          }
        for (const auto& r : pending)
          if (std::find(r.staged.begin(), r.staged.end(), key) != r.staged.end()) {
            std::string pk = partition_dir(r.id) + "/pieces/" + key;
            auto bytes = store.get(pk);
            if (!bytes)
              fail(Error::Code::Conflict, "partition " + r.id + " lists staged chunk " + key + " but " + pk +
                                              " is missing; re-run the partition");
            pieces.push_back(std::move(*bytes));
            piece_counts.emplace_back();
            sources.push_back(decode_piece(ByteSpan(pieces.back()), cl, store.describe() + "/" + pk,
                                           piece_counts.back()));
          }
        ChunkData merged = merge_chunks(sources, cl);
        if (merged.count == 0) {
          erase_cells(store, cl, c, target);
          emptied[i] = 1;
        } else {
          write_cells(store, cl, c, target, view_of(merged));
        }
      },
      [&](std::size_t done) {
        if (exec.progress) exec.progress(done, rebuild_list.size());
      });
  for (std::size_t i = 0; i < rebuild_list.size(); ++i)
    if (emptied[i]) new_keys.erase(rebuild_list[i]);
  for (const auto& k : old_keys)
    if (!new_keys.count(k)) erase_cells(store, cl, parse_dotted_key(k, nd), target);

  // Orphans: level-0 cells that no complete partition claims.
  const std::vector<std::string> orphans = sweep_orphans(store, layout, new_keys, target, staged, threads);
  report.orphans_removed = orphans.size();

  // Level 0 changed: coarse levels built from it are stale. Withdraw them from the
  // root first (so no reader sees them), then delete them; build_pyramid again.
  if (level_count(store) > 1) {
    if (root_is_zv) {
      json r = *root;
      json& at = r["attributes"];  // an object: root_is_zv
      // Keep level 0 only; a multiscales entry of any other shape goes whole (step 4 rewrites it).
      json* ms = at.contains("multiscales") && at["multiscales"].is_array() && !at["multiscales"].empty()
                     ? &at["multiscales"][0] : nullptr;
      if (ms && ms->is_object() && ms->contains("datasets") && (*ms)["datasets"].is_array() &&
          !(*ms)["datasets"].empty())
        (*ms)["datasets"] = json::array({(*ms)["datasets"][0]});
      else
        at.erase("multiscales");
      at.erase("zvf_pyramid");
      store.set("zarr.json", r.dump(1));
    }
    drop_level_dirs(store);
    report.pyramid_dropped = true;
  }

  // 4. Metadata, root last.
  meta::StoreMeta m;
  m.ndim = nd;
  m.dtype = layout.dtype;
  m.grid = layout.grid;
  m.bin_given = layout.bin_given;
  m.codec = layout.codec;
  m.attrs = layout.attrs;
  m.name = meta::store_name(store);
  m.origin = target;
  std::optional<Box> bounds;
  for (const auto& [id, r] : all) {
    m.vertex_count += r.vertex_count;
    if (!r.bounds) continue;
    if (!bounds) bounds = r.bounds;
    for (std::size_t d = 0; d < nd; ++d) {
      bounds->lo[d] = std::min(bounds->lo[d], r.bounds->lo[d]);
      bounds->hi[d] = std::max(bounds->hi[d], r.bounds->hi[d]);
    }
  }
  m.bounds = bounds ? *bounds : Box{std::vector<double>(nd, 0.0), std::vector<double>(nd, 0.0)};
  std::vector<ChunkCoord> coords;
  for (const auto& k : new_keys) coords.push_back(parse_dotted_key(k, nd));
  std::sort(coords.begin(), coords.end());
  ChunkCoord hi = chunk_of_point(m.bounds.hi.data(), layout.grid);
  for (const auto& c : coords) {
    m.nonempty.push_back(dotted_key(c));
    for (std::size_t d = 0; d < nd; ++d) hi[d] = std::max(hi[d], c[d]);
  }
  for (std::size_t d = 0; d < nd; ++d) m.shape.push_back(std::max<std::int64_t>(1, hi[d] - target[d] + 1));

  Ledger out;
  out.layout = layout;
  out.origin = target;
  out.partitions = all;
  if (exec.durable) store.sync();  // the merged cells, before the metadata that publishes them
  meta::write_all(store, m, {{"zvf", meta::ojson::parse(out.to_json().dump())}});

  // 5. The staging area is no longer needed, nor are temp files of writers that
  // were killed mid-write (all partitions are complete, so none is still writing).
  if (auto* posix = dynamic_cast<PosixStore*>(&store)) {
    std::set<std::string> dirs;
    for (const auto& c : coords)
      for (const auto& p : array_paths(layout)) {
        std::string key = p + "/" + cell_key(c, target);
        dirs.insert(key.substr(0, key.rfind('/')));
      }
    for (const auto& d : dirs) posix->remove_temporaries(d);
  }
  store.erase_prefix(kStaging);
  if (exec.durable) store.sync();

  report.changed = true;
  for (const auto& r : pending) report.merged.push_back(r.id);
  report.vertex_count = m.vertex_count;
  report.chunk_count = m.nonempty.size();
  report.bounds = bounds;
  return report;
}

}  // namespace zvf
