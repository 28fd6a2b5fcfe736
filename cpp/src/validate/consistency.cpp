// Level 3, consistency: each level's array documents, then every listed chunk's
// cells (vertices, fragment index, attributes) decoded and checked against one
// another and against the level metadata; plus cells no presence list names.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <set>

#include "engine/parallel.hpp"
#include "validate/checks.hpp"
#include "zvf/error.hpp"
#include "zvf/fragments.hpp"

namespace zvf::detail::validation {
namespace {

constexpr std::size_t kOrphansShown = 10;

std::string chunk_text(const ChunkCoord& c) { return "chunk (" + dotted_key(c) + ")"; }

// An array's zarr.json, checked and parsed into the reader's ArrayMeta; nullopt
// (with findings) if it cannot be used to decode cells.
std::optional<ArrayMeta> parse_array(Checker& c, const std::string& path, bool has_dtype) {
  auto doc = c.read_doc(path + "/zarr.json");
  if (!doc) return std::nullopt;
  const std::string key = path + "/zarr.json";
  const std::size_t mark = c.report.findings.size();
  ArrayMeta a;
  a.path = path;
  const json& codecs = doc->contains("codecs") ? (*doc)["codecs"] : json();
  if (codecs.is_array() && !codecs.empty() && codecs[0].is_object() && codecs[0].contains("name") &&
      codecs[0]["name"] == "sharding_indexed") {
    c.warn(key, "sharded (codec 'sharding_indexed', the reference's shard_shape), which zvf does not read: its cells "
                "were not checked");
    return std::nullopt;
  }
  try {
    a.codec = CodecSpec::from_json(doc->at("codecs"));
  } catch (const Error& e) {
    if (e.code() == Error::Code::Unsupported) {
      // A well-formed chain zvf does not implement (the reference writes any codec zarr-python has).
      c.warn(key, std::string(e.what()) + ": its cells were not checked");
      return std::nullopt;
    }
    c.error(key, std::string("codecs cannot be decoded: ") + e.what());
  } catch (const std::exception& e) {
    c.error(key, std::string("codecs cannot be decoded: ") + e.what());
  }
  const json& shape = doc->contains("shape") ? (*doc)["shape"] : json();
  if (!shape.is_array() || shape.size() != c.ndim ||
      !std::all_of(shape.begin(), shape.end(), [](const json& x) { return x.is_number_unsigned(); }))
    c.error(key, "shape must be " + std::to_string(c.ndim) + " whole numbers >= 0 (the chunk grid), got " + shape.dump());
  else
    a.shape = shape.get<std::vector<std::int64_t>>();
  const json& at = doc->contains("attributes") && (*doc)["attributes"].is_object() ? (*doc)["attributes"] : json::object();
  if (has_dtype && at.contains("dtype")) {
    const std::string name = at["dtype"].is_string() ? at["dtype"].get<std::string>() : at["dtype"].dump();
    try {
      a.dtype = dtype_from_name(name);
    } catch (const Error& e) {
      c.error(key, std::string("attribute 'dtype': ") + e.what());
    }
  }
  a.origin = ChunkCoord(c.ndim, 0);
  if (at.contains("chunk_grid_origin")) {
    const json& o = at["chunk_grid_origin"];
    if (!o.is_array() || o.size() != c.ndim || !std::all_of(o.begin(), o.end(), [](const json& x) { return x.is_number_integer(); }))
      c.error(key, "chunk_grid_origin must be " + std::to_string(c.ndim) + " integers, got " + o.dump());
    else
      a.origin = o.get<ChunkCoord>();
  }
  if (at.contains("row_shape")) {
    const json& rs = at["row_shape"];
    if (!rs.is_array() || rs.size() > 1 || (rs.size() == 1 && (!rs[0].is_number_unsigned() || rs[0].get<std::size_t>() == 0)))
      c.error(key, "row_shape must be [] or [columns], got " + rs.dump());
    else if (rs.size() == 1) {
      a.one_d = false;
      a.cols = rs[0].get<std::size_t>();
    }
  }
  if (at.contains("nonempty_chunks")) {
    const json& ne = at["nonempty_chunks"];
    std::vector<std::string> keys;
    bool ok = ne.is_array();
    for (std::size_t i = 0; ok && i < ne.size(); ++i) {
      if (!ne[i].is_string()) {
        ok = false;
        break;
      }
      const std::string k = ne[i].get<std::string>();
      try {
        ChunkCoord cc = parse_dotted_key(k, c.ndim);
        for (std::size_t d = 0; d < c.ndim && d < a.shape.size(); ++d)
          if (cc[d] - a.origin[d] < 0 || cc[d] - a.origin[d] >= a.shape[d]) {
            c.error(key, "nonempty_chunks lists " + chunk_text(cc) + ", outside the array's chunk grid " +
                             numbers_text(a.shape) + " from origin " + numbers_text(a.origin));
            break;
          }
      } catch (const Error& e) {
        c.error(key, std::string("nonempty_chunks: ") + e.what());
        continue;
      }
      keys.push_back(k);
    }
    if (!ok) c.error(key, "nonempty_chunks must be a list of dotted chunk keys");
    else a.nonempty = keys;
  }
  if (c.errors_since(mark) > 0) return std::nullopt;
  return a;
}

// The absolute chunk of a cell key "<path>/c/i/j/k"; nullopt if it is not one.
std::optional<ChunkCoord> cell_chunk(const std::string& key, const ArrayMeta& a, std::size_t ndim) {
  const std::string prefix = a.path + "/c/";
  if (key.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  std::string rest = key.substr(prefix.size());
  std::replace(rest.begin(), rest.end(), '/', '.');
  try {
    ChunkCoord c = parse_dotted_key(rest, ndim);
    for (std::size_t d = 0; d < ndim; ++d) c[d] += a.origin[d];
    return c;
  } catch (const Error&) {
    return std::nullopt;
  }
}

double element(const std::uint8_t* p, DType t) {
  switch (t) {
    case DType::F32: { float v; std::memcpy(&v, p, 4); return v; }
    case DType::F64: { double v; std::memcpy(&v, p, 8); return v; }
    case DType::I8: return static_cast<std::int8_t>(*p);
    case DType::U8: return *p;
    case DType::I16: { std::int16_t v; std::memcpy(&v, p, 2); return v; }
    case DType::U16: { std::uint16_t v; std::memcpy(&v, p, 2); return v; }
    case DType::I32: { std::int32_t v; std::memcpy(&v, p, 4); return v; }
    case DType::U32: { std::uint32_t v; std::memcpy(&v, p, 4); return v; }
    case DType::I64: { std::int64_t v; std::memcpy(&v, p, 8); return static_cast<double>(v); }
    case DType::U64: { std::uint64_t v; std::memcpy(&v, p, 8); return static_cast<double>(v); }
    case DType::Bool: return *p != 0;
    case DType::F16: { std::uint16_t v; std::memcpy(&v, p, 2); return half_to_float(v); }
  }
  return 0;
}

struct LevelArrays {
  ArrayMeta vertices, fragments;
  std::vector<std::pair<std::string, ArrayMeta>> attrs;
};

struct LevelPlan {
  LevelState* state = nullptr;
  LevelArrays arrays;
  std::vector<ChunkCoord> chunks;
  bool check_bins = false;    // fragments are bins of the level grid: points must lie in their bin
  std::optional<Box> bounds;  // level 0: the root bounds every point must lie in
  std::atomic<std::uint64_t> rows{0}, count_total{0};
  std::atomic<std::uint64_t> nonfinite_chunks{0}, out_of_bin_chunks{0};
};

// Findings of one chunk, kept apart so that the report lists chunks in order
// whatever order the threads finish in.
struct ChunkFindings {
  std::vector<std::pair<Severity, std::pair<std::string, std::string>>> items;
  std::optional<std::pair<std::string, std::string>> tile;  // fragments_tile broken here
  void error(const std::string& key, const std::string& m) { items.push_back({Severity::Error, {key, m}}); }
  void warn(const std::string& key, const std::string& m) { items.push_back({Severity::Warning, {key, m}}); }
};

// Checks one chunk's cells.
void check_chunk(Checker& c, LevelPlan& p, const ChunkCoord& chunk, ChunkFindings& out) {
  const LevelArrays& A = p.arrays;
  const std::string lname = "level " + std::to_string(p.state->level) + " ";
  const std::string vkey = A.vertices.path + "/" + cell_key(chunk, A.vertices.origin);
  auto raw = c.store.get(vkey);
  if (!raw) {
    out.error(vkey, lname + chunk_text(chunk) + " is listed as non-empty but its vertices cell is missing");
    return;
  }
  Bytes payload;
  try {
    payload = decode_cell(ByteSpan(*raw), A.vertices.codec, vkey);
  } catch (const Error& e) {
    out.error(vkey, lname + chunk_text(chunk) + " does not decode: " + e.what());
    return;
  }
  const std::size_t row_bytes = c.ndim * dtype_size(A.vertices.dtype);
  if (payload.size() % row_bytes != 0) {
    out.error(vkey, lname + chunk_text(chunk) + ": " + std::to_string(payload.size()) + " bytes is not a whole number of " +
                      std::to_string(c.ndim) + " x " + dtype_name(A.vertices.dtype) + " rows");
    return;
  }
  const std::int64_t rows = static_cast<std::int64_t>(payload.size() / row_bytes);

  const std::string fkey = A.fragments.path + "/" + cell_key(chunk, A.fragments.origin);
  auto fraw = c.store.get(fkey);
  if (!fraw) {
    out.error(fkey, lname + chunk_text(chunk) + " has vertices but its fragment index cell is missing");
    return;
  }
  std::vector<Fragment> frags;
  try {
    frags = decode_fragments(ByteSpan(decode_cell(ByteSpan(*fraw), A.fragments.codec, fkey)), fkey);
  } catch (const Error& e) {
    out.error(fkey, lname + chunk_text(chunk) + ": " + e.what());
    return;
  }

  const LevelGrid& g = p.state->grid;
  if (p.check_bins && g.bins_total() > 1 && static_cast<std::int64_t>(frags.size()) > g.bins_total())
    out.error(fkey, lname + chunk_text(chunk) + " has " + std::to_string(frags.size()) + " fragments, more than its " +
                      std::to_string(g.bins_total()) + " bins");

  // Every fragment must address rows the cell has; fragments_tile claims more:
  // contiguous ranges covering every row exactly once, in order.
  std::uint64_t referenced = 0;
  std::int64_t next = 0;
  bool tiles = true;
  for (std::size_t f = 0; f < frags.size(); ++f) {
    const Fragment& fr = frags[f];
    if (fr.is_range) {
      if (fr.start > rows || fr.count > rows - fr.start) {  // start + count could overflow (both >= 0)
        out.error(fkey, lname + chunk_text(chunk) + ": fragment " + std::to_string(f) + " covers rows [" +
                          std::to_string(fr.start) + ", " +
                          std::to_string(static_cast<std::uint64_t>(fr.start) + static_cast<std::uint64_t>(fr.count)) +
                          ") but the cell has " +
                          std::to_string(rows) + " rows");
        return;
      }
      tiles = tiles && fr.start == next;
      next = fr.start + fr.count;
      referenced += static_cast<std::uint64_t>(fr.count);
    } else {
      tiles = false;
      for (auto i : fr.indices)
        if (i < 0 || i >= rows) {
          out.error(fkey, lname + chunk_text(chunk) + ": fragment " + std::to_string(f) + " refers to row " +
                            std::to_string(i) + " but the cell has " + std::to_string(rows) + " rows");
          return;
        }
      referenced += fr.indices.size();
    }
  }
  tiles = tiles && next == rows;
  if (p.state->fragments_tile && !tiles)
    out.tile = {fkey, lname + "claims fragments_tile but " + chunk_text(chunk) +
                          "'s fragments do not tile its vertex rows (one report per level)"};
  p.rows += referenced;

  // Positions: finite, inside the root bounds (level 0) and inside their bin.
  const std::size_t esize = dtype_size(A.vertices.dtype);
  auto pos = [&](std::int64_t row, std::size_t d) { return element(payload.data() + (row * c.ndim + d) * esize, A.vertices.dtype); };
  std::int64_t nonfinite = 0, outside_bounds = 0, outside_bin = 0;
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::size_t d = 0; d < c.ndim; ++d) {
      const double v = pos(r, d);
      if (!std::isfinite(v)) {
        ++nonfinite;
        break;
      }
      if (p.bounds && (v < p.bounds->lo[d] || v > p.bounds->hi[d])) {
        ++outside_bounds;
        break;
      }
    }
  if (nonfinite) out.warn(vkey, lname + chunk_text(chunk) + ": " + std::to_string(nonfinite) + " positions are NaN or infinite");
  if (outside_bounds)
    out.warn(vkey, lname + chunk_text(chunk) + ": " + std::to_string(outside_bounds) + " points lie outside the root bounds");
  if (p.check_bins && g.bins_total() > 1) {
    for (std::size_t f = 0; f < frags.size() && static_cast<std::int64_t>(f) < g.bins_total(); ++f) {
      // Fragment f is bin f of the chunk in C order; bins are absolute (origin 0).
      std::vector<double> lo(c.ndim), hi(c.ndim);
      std::size_t rest = f;
      for (std::size_t d = c.ndim; d-- > 0;) {
        const std::int64_t local = static_cast<std::int64_t>(rest % g.bins_per_chunk[d]);
        rest /= g.bins_per_chunk[d];
        const double b = static_cast<double>(chunk[d] * g.bins_per_chunk[d] + local);
        lo[d] = b * g.bin_shape[d];
        hi[d] = (b + 1) * g.bin_shape[d];
      }
      auto check_row = [&](std::int64_t r) {
        for (std::size_t d = 0; d < c.ndim; ++d) {
          const double v = pos(r, d), tol = 1e-4 + 1e-9 * std::abs(hi[d]);
          if (v < lo[d] - tol || v >= hi[d] + tol) return false;
        }
        return true;
      };
      const Fragment& fr = frags[f];
      if (fr.is_range) {
        for (std::int64_t r = fr.start; r < fr.start + fr.count; ++r) outside_bin += !check_row(r);
      } else {
        for (auto r : fr.indices) outside_bin += !check_row(r);
      }
    }
    if (outside_bin)
      out.warn(vkey, lname + chunk_text(chunk) + ": " + std::to_string(outside_bin) +
                       " points lie outside the bin their fragment stands for");
  }

  // Attributes: one row per vertex row, in the same order.
  for (const auto& [name, a] : A.attrs) {
    const std::string akey = a.path + "/" + cell_key(chunk, a.origin);
    auto araw = c.store.get(akey);
    if (!araw) {
      out.error(akey, lname + chunk_text(chunk) + " has vertices but its '" + name + "' attribute cell is missing");
      continue;
    }
    Bytes ap;
    try {
      ap = decode_cell(ByteSpan(*araw), a.codec, akey);
    } catch (const Error& e) {
      out.error(akey, lname + chunk_text(chunk) + ": attribute '" + name + "' does not decode: " + e.what());
      continue;
    }
    const std::size_t want = static_cast<std::size_t>(rows) * a.cols * dtype_size(a.dtype);
    if (ap.size() != want) {
      out.error(akey, lname + chunk_text(chunk) + ": attribute '" + name + "' holds " + std::to_string(ap.size()) +
                        " bytes, expected " + std::to_string(want) + " (" + std::to_string(rows) + " rows x " +
                        std::to_string(a.cols) + " x " + dtype_name(a.dtype) + ")");
      continue;
    }
    if (name == "count" && a.dtype == DType::U64 && a.one_d) {
      std::uint64_t sum = 0;
      for (std::int64_t r = 0; r < rows; ++r) {
        std::uint64_t v;
        std::memcpy(&v, ap.data() + r * 8, 8);
        sum += v;
      }
      p.count_total += sum;
    }
  }
}

// Cells under an array that its presence list does not name.
void report_orphans(Checker& c, const ArrayMeta& a, const std::set<ChunkCoord>& listed) {
  std::vector<std::string> orphans;
  for (const auto& key : c.store.list(a.path + "/c")) {
    auto cc = cell_chunk(key, a, c.ndim);
    if (!cc || !listed.count(*cc)) orphans.push_back(key);
  }
  std::sort(orphans.begin(), orphans.end());
  for (std::size_t i = 0; i < orphans.size() && i < kOrphansShown; ++i)
    c.warn(orphans[i], "orphan cell: no chunk listed in the level's nonempty_chunks (readers ignore it)");
  if (orphans.size() > kOrphansShown)
    c.warn(a.path, std::to_string(orphans.size() - kOrphansShown) + " more orphan cells");
}

bool point_cloud_only(const Checker& c) {
  const json& g = (*c.root)["attributes"]["zarr_vectors"]["geometry_types"];
  bool pc = false, other = false;
  for (const auto& t : g) {
    if (!t.is_string()) continue;
    const std::string s = t.get<std::string>();
    if (s == "point_cloud") pc = true;
    else if (s == "polyline" || s == "streamline" || s == "line" || s == "graph" || s == "skeleton" || s == "mesh")
      other = true;
  }
  return pc && !other;
}

// Reads the array documents and the chunk list of one level; false if its cells cannot be checked.
bool plan_level(Checker& c, LevelPlan& p) {
  const int n = p.state->level;
  auto v = parse_array(c, level_key(n, "vertices"), true);
  if (!c.store.exists(level_key(n, "vertex_fragments/zarr.json"))) {
    c.error(level_key(n, "vertex_fragments"), "level " + std::to_string(n) +
                                                  ": the vertex_fragments array is missing, so no cell can be split "
                                                  "into fragments");
    return false;
  }
  auto f = parse_array(c, level_key(n, "vertex_fragments"), false);
  bool ok = v && f;
  for (const auto& name : c.store.list_dir(level_key(n, "vertex_attributes"))) {
    const std::string path = level_key(n, "vertex_attributes/" + name);
    if (name == "zarr.json" || !c.store.exists(path + "/zarr.json")) continue;
    auto a = parse_array(c, path, true);
    if (a) p.arrays.attrs.emplace_back(name, *a);
    else ok = false;
  }
  if (!ok) return false;
  p.arrays.vertices = *v;
  p.arrays.fragments = *f;
  if (!is_position_dtype(v->dtype))
    c.warn(v->path + "/zarr.json", std::string("positions are ") + dtype_name(v->dtype) + "; ZV writers use float32 or float64");

  std::set<ChunkCoord> listed;
  if (v->nonempty) {
    for (const auto& k : *v->nonempty) listed.insert(parse_dotted_key(k, c.ndim));
  } else {  // no presence list: the cells on disk are the chunks
    for (const auto& key : c.store.list(v->path + "/c"))
      if (auto cc = cell_chunk(key, *v, c.ndim)) listed.insert(*cc);
  }
  p.chunks.assign(listed.begin(), listed.end());
  report_orphans(c, p.arrays.vertices, listed);
  report_orphans(c, p.arrays.fragments, listed);
  for (const auto& [name, a] : p.arrays.attrs) report_orphans(c, a, listed);

  check_links(c, n, listed);
  if (c.store.exists(level_key(n, "object_index/zarr.json")))
    c.warn(level_key(n, "object_index"), "zvf validate does not check object_index arrays (point clouds only)");

  // Bin layout: level 0 of a plain point cloud (as the reference); coarse
  // levels only in our pyramids, which keep one fragment per bin.
  const json& attrs = (*c.root)["attributes"];
  const bool ours = n > 0 && attrs.contains("zvf_pyramid");
  p.check_bins = point_cloud_only(c) && !c.store.exists(level_key(n, "object_index/zarr.json")) && (n == 0 || ours);
  if (n == 0) {
    const json& b = attrs["zarr_vectors"]["bounds"];
    p.bounds = Box{b[0].get<std::vector<double>>(), b[1].get<std::vector<double>>()};
  }
  return true;
}

}  // namespace

void check_consistency(Checker& c) {
  std::vector<std::unique_ptr<LevelPlan>> plans;
  std::uint64_t total = 0;
  for (auto& l : c.levels) {
    if (!l.on_disk || !l.metadata_ok || l.unsupported) continue;
    auto p = std::make_unique<LevelPlan>();
    p->state = &l;
    if (!plan_level(c, *p)) continue;
    if (p->chunks.empty()) c.warn(level_key(l.level), "level " + std::to_string(l.level) + ": no chunk data");
    total += p->chunks.size();
    plans.push_back(std::move(p));
  }

  const int threads = io_threads(resolve_threads(c.exec.threads), c.store.io_concurrency());
  std::uint64_t done = 0;
  for (auto& p : plans) {
    LevelState& l = *p->state;
    const std::size_t mark = c.report.findings.size();
    std::vector<ChunkFindings> found(p->chunks.size());
    parallel_for(
        p->chunks.size(), threads, [&](std::size_t i) { check_chunk(c, *p, p->chunks[i], found[i]); },
        [&](std::size_t d) {
          if (c.exec.progress) c.exec.progress(done + d, total);
        });
    done += p->chunks.size();
    bool tile_reported = false;
    for (const auto& f : found) {
      for (const auto& [severity, what] : f.items) c.add(severity, what.first, what.second);
      if (f.tile && !tile_reported) {
        c.error(f.tile->first, f.tile->second);
        tile_reported = true;
      }
    }
    l.rows = p->rows.load();
    if (l.level > 0 && !p->arrays.attrs.empty())
      for (const auto& [name, a] : p->arrays.attrs)
        if (name == "count") l.count_total = p->count_total.load();
    c.pass("level " + std::to_string(l.level) + ": " + std::to_string(p->chunks.size()) + " chunks decoded, " +
           std::to_string(*l.rows) + " vertices");
    // Only when every cell decoded: otherwise the count is short for a reason already reported.
    if (c.errors_since(mark) == 0 && l.vertex_count && *l.vertex_count != *l.rows)
      c.error(level_key(l.level, "zarr.json"), "level " + std::to_string(l.level) + ": metadata vertex_count = " +
                                                   std::to_string(*l.vertex_count) + " but the cells hold " +
                                                   std::to_string(*l.rows) + " vertices");
    if (c.errors_since(mark) == 0) c.pass("level " + std::to_string(l.level) + ": cells consistent");
  }
}

}  // namespace zvf::detail::validation
