// Reads of ZV 0.9 point-cloud levels (ours or the reference's): chunks are
// pruned by bbox from nonempty_chunks, bins by the fragment index, and only the
// boundary bins are filtered point by point.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/parallel.hpp"
#include "engine/store_state.hpp"
#include "zvf/error.hpp"
#include "zvf/fragments.hpp"
#include "zvf/points.hpp"

namespace zvf {
using namespace detail;

namespace {

struct ArrayMeta {
  std::string path;
  DType dtype = DType::F32;
  std::size_t cols = 1;
  bool one_d = true;
  CodecSpec codec;
  ChunkCoord origin;
  std::vector<std::int64_t> shape;
  std::optional<std::vector<std::string>> nonempty;
};

struct LevelView {
  int level = 0;
  std::size_t ndim = 0;
  Grid grid;
  std::uint64_t vertex_count = 0;
  ArrayMeta vertices, fragments;
  std::vector<std::pair<std::string, ArrayMeta>> attrs;
};

[[noreturn]] void corrupt(const std::string& m) { fail(Error::Code::Corrupt, m); }

json require_json(const Store& store, const std::string& key, const std::string& why) {
  auto j = meta::read_json(store, key);
  if (!j) corrupt(store.describe() + "/" + key + " is missing (" + why + ")");
  return *j;
}

ArrayMeta read_array(const Store& store, const std::string& path, std::size_t ndim) {
  json j = require_json(store, path + "/zarr.json", "array metadata");
  ArrayMeta a;
  a.path = path;
  try {
    const json& at = j.at("attributes");
    a.codec = CodecSpec::from_json(j.at("codecs"));
    a.shape = j.at("shape").get<std::vector<std::int64_t>>();
    if (at.contains("dtype")) a.dtype = dtype_from_name(at["dtype"].get<std::string>());
    a.origin = at.contains("chunk_grid_origin") ? at["chunk_grid_origin"].get<ChunkCoord>() : ChunkCoord(ndim, 0);
    if (at.contains("row_shape") && !at["row_shape"].empty()) {
      a.one_d = false;
      a.cols = at["row_shape"][0].get<std::size_t>();
    }
    if (at.contains("nonempty_chunks")) a.nonempty = at["nonempty_chunks"].get<std::vector<std::string>>();
  } catch (const json::exception& e) {
    corrupt(store.describe() + "/" + path + "/zarr.json: " + e.what());
  }
  if (a.origin.size() != ndim) corrupt(path + ": chunk_grid_origin has the wrong length");
  return a;
}

std::string not_a_store_message(const Store& store) {
  if (!store.root_exists()) return "no store at " + store.describe();
  if (!store.list_dir(".zvf/partitions").empty())
    return store.describe() + " is not finalised: it holds partitions written by write_points_partition; "
                              "run finalise (zvf finalise, or write_multiscale_metadata) first";
  return store.describe() + " is not a ZV store (no zarr.json with a 'zarr_vectors' attribute)";
}

json read_zv_root(const Store& store) {
  auto root = meta::read_json(store, "zarr.json");
  if (!root || !root->contains("attributes") || !(*root)["attributes"].contains("zarr_vectors"))
    fail(Error::Code::NotFound, not_a_store_message(store));
  return *root;
}

LevelView open_level(const Store& store, int level) {
  json root = read_zv_root(store);
  const json& attrs = root["attributes"];
  const json& zv = attrs["zarr_vectors"];
  LevelView lv;
  lv.level = level;
  std::vector<double> chunk, bin;
  try {
    std::string ver = zv.at("zv_version").get<std::string>();
    int major = 0, minor = 0;
    std::sscanf(ver.c_str(), "%d.%d", &major, &minor);
    if (major == 0 && minor < 9)
      fail(Error::Code::InvalidArgument, store.describe() + " is ZV format " + ver + "; this reader needs 0.9 or later");
    chunk = zv.at("chunk_shape").get<std::vector<double>>();
    lv.ndim = chunk.size();
    if (zv.contains("base_bin_shape")) bin = zv["base_bin_shape"].get<std::vector<double>>();
  } catch (const json::exception& e) {
    corrupt(store.describe() + "/zarr.json: bad zarr_vectors block: " + e.what());
  }
  if (level < 0) invalid("level must be >= 0, got " + std::to_string(level));
  auto lj = meta::read_json(store, std::to_string(level) + "/zarr.json");
  if (!lj) {
    std::string have;
    for (const auto& name : store.list_dir(""))
      if (!name.empty() && std::all_of(name.begin(), name.end(), ::isdigit) && store.exists(name + "/zarr.json"))
        have += (have.empty() ? "" : ", ") + name;
    fail(Error::Code::NotFound, "level " + std::to_string(level) + " does not exist in " + store.describe() +
                                    " (levels present: " + (have.empty() ? "none" : have) + ")");
  }
  try {
    const json& l = (*lj).at("attributes").at("zarr_vectors_level");
    lv.vertex_count = l.value("vertex_count", std::uint64_t{0});
    if (l.contains("chunk_shape") && !l["chunk_shape"].is_null()) chunk = l["chunk_shape"].get<std::vector<double>>();
    if (level > 0) {
      bin.clear();
      // Coarse levels record their bin only in the NGFF transform (translation = bin / 2).
      for (const auto& ds : attrs.at("multiscales").at(0).at("datasets"))
        if (ds.at("path") == std::to_string(level))
          for (const auto& t : ds.at("coordinateTransformations"))
            if (t.at("type") == "translation")
              for (const auto& x : t.at("translation")) bin.push_back(2 * x.get<double>());
    }
  } catch (const json::exception& e) {
    corrupt(store.describe() + "/" + std::to_string(level) + "/zarr.json: " + e.what());
  }
  if (bin.size() != chunk.size()) bin = chunk;
  lv.grid = Grid::make(chunk, bin, lv.ndim);
  const std::string base = std::to_string(level);
  lv.vertices = read_array(store, base + "/vertices", lv.ndim);
  lv.fragments = read_array(store, base + "/vertex_fragments", lv.ndim);
  for (const auto& name : store.list_dir(base + "/vertex_attributes")) {
    if (name == "zarr.json" || !store.exists(base + "/vertex_attributes/" + name + "/zarr.json")) continue;
    lv.attrs.emplace_back(name, read_array(store, base + "/vertex_attributes/" + name, lv.ndim));
  }
  return lv;
}

std::vector<ChunkCoord> level_chunks(const Store& store, const LevelView& lv) {
  std::vector<ChunkCoord> out;
  if (lv.vertices.nonempty) {
    for (const auto& k : *lv.vertices.nonempty) out.push_back(parse_dotted_key(k, lv.ndim));
  } else {  // no presence attribute: derive it from the cells on disk
    const std::string prefix = lv.vertices.path + "/c/";
    for (const auto& key : store.list(lv.vertices.path + "/c")) {
      std::string rest = key.substr(prefix.size());
      for (auto& ch : rest)
        if (ch == '/') ch = '.';
      ChunkCoord c = parse_dotted_key(rest, lv.ndim);
      for (std::size_t d = 0; d < lv.ndim; ++d) c[d] += lv.vertices.origin[d];
      out.push_back(c);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<Bytes> get_cell(const Store& store, const ArrayMeta& a, const ChunkCoord& c) {
  std::string key = a.path + "/" + cell_key(c, a.origin);
  auto raw = store.get(key);
  if (!raw) return std::nullopt;
  return decode_cell(ByteSpan(*raw), a.codec, store.describe() + "/" + key);
}

struct Run {
  std::uint64_t start, count;
};

struct ChunkResult {
  Bytes positions;
  std::vector<Bytes> attrs;
  std::uint64_t rows = 0;
};

template <class T>
double coord_at(const std::uint8_t* base, std::size_t row, std::size_t nd, std::size_t d) {
  T v;
  std::memcpy(&v, base + (row * nd + d) * sizeof(T), sizeof(T));
  return static_cast<double>(v);
}

// Rows of one chunk that fall inside the bbox, as runs.
std::vector<Run> select_rows(const Store& store, const LevelView& lv, const ChunkCoord& c, const Bytes& verts,
                             std::uint64_t n, const Box& box) {
  const std::size_t nd = lv.ndim;
  const Grid& g = lv.grid;
  bool chunk_inside = true;
  for (std::size_t d = 0; d < nd; ++d)
    chunk_inside = chunk_inside && g.chunk_lo(c[d], d) > box.lo[d] && g.chunk_hi(c[d], d) < box.hi[d];
  if (chunk_inside) return {{0, n}};
  auto inside = [&](std::uint64_t r) {
    for (std::size_t d = 0; d < nd; ++d) {
      double x = lv.vertices.dtype == DType::F32 ? coord_at<float>(verts.data(), r, nd, d)
                                                 : coord_at<double>(verts.data(), r, nd, d);
      if (!(x >= box.lo[d] && x <= box.hi[d])) return false;
    }
    return true;
  };
  std::vector<Run> runs;
  auto add = [&](std::uint64_t r, std::uint64_t k) {
    if (k == 0) return;
    if (!runs.empty() && runs.back().start + runs.back().count == r) runs.back().count += k;
    else runs.push_back({r, k});
  };
  auto filter = [&](std::uint64_t from, std::uint64_t to) {
    for (std::uint64_t r = from; r < to; ++r)
      if (inside(r)) add(r, 1);
  };
  // Bin pruning applies when the fragments are the chunk's bins as contiguous ranges.
  std::vector<Fragment> frags;
  if (auto fb = get_cell(store, lv.fragments, c))
    frags = decode_fragments(ByteSpan(*fb), lv.fragments.path + "/" + cell_key(c, lv.fragments.origin));
  bool bins = static_cast<std::int64_t>(frags.size()) == g.bins_per_chunk_total();
  std::uint64_t next = 0;
  for (const auto& f : frags) {
    bins = bins && f.is_range && static_cast<std::uint64_t>(f.start) == next;
    next += static_cast<std::uint64_t>(f.count);
  }
  if (!bins || next != n) {
    filter(0, n);
    return runs;
  }
  std::int64_t stride[kMaxDims];
  stride[nd - 1] = 1;
  for (std::size_t d = nd - 1; d > 0; --d) stride[d - 1] = stride[d] * g.bins_per_chunk[d];
  for (std::size_t f = 0; f < frags.size(); ++f) {
    if (frags[f].count == 0) continue;
    bool disjoint = false, whole = true;
    std::int64_t rem = static_cast<std::int64_t>(f);
    for (std::size_t d = 0; d < nd; ++d) {
      std::int64_t b = c[d] * g.bins_per_chunk[d] + rem / stride[d];
      rem %= stride[d];
      const double lo = static_cast<double>(b) * g.bin_shape[d], hi = static_cast<double>(b + 1) * g.bin_shape[d];
      const double eps = 1e-6 * g.bin_shape[d];  // writers may round a point across a bin edge
      if (hi + eps < box.lo[d] || lo - eps > box.hi[d]) disjoint = true;
      if (!(lo - eps > box.lo[d] && hi + eps < box.hi[d])) whole = false;
    }
    const auto s = static_cast<std::uint64_t>(frags[f].start), k = static_cast<std::uint64_t>(frags[f].count);
    if (disjoint) continue;
    if (whole) add(s, k);
    else filter(s, s + k);
  }
  return runs;
}

}  // namespace

PointCloud read_points(const Store& store, const ReadOptions& opt, const Exec& exec) {
  const int threads = resolve_threads(exec.threads);
  LevelView lv = open_level(store, opt.level);
  const std::size_t nd = lv.ndim;
  if (opt.bbox) {
    if (opt.bbox->lo.size() != nd || opt.bbox->hi.size() != nd)
      invalid("bbox has " + std::to_string(opt.bbox->lo.size()) + " dimensions; the store has " + std::to_string(nd));
    for (std::size_t d = 0; d < nd; ++d)
      if (std::isnan(opt.bbox->lo[d]) || std::isnan(opt.bbox->hi[d]) || opt.bbox->lo[d] > opt.bbox->hi[d])
        invalid("bbox " + box_text(*opt.bbox, false) + " is empty or not a number on axis " + std::to_string(d));
  }
  // Which attributes, in which order.
  std::vector<const std::pair<std::string, ArrayMeta>*> want;
  if (opt.attributes) {
    for (const auto& name : *opt.attributes) {
      auto it = std::find_if(lv.attrs.begin(), lv.attrs.end(), [&](const auto& a) { return a.first == name; });
      if (it == lv.attrs.end()) {
        std::string have;
        for (const auto& a : lv.attrs) have += (have.empty() ? "" : ", ") + a.first;
        invalid("attribute '" + name + "' is not in level " + std::to_string(opt.level) + " of " + store.describe() +
                " (attributes: " + (have.empty() ? "none" : have) + ")");
      }
      want.push_back(&*it);
    }
  } else {
    for (const auto& a : lv.attrs) want.push_back(&a);
  }

  std::vector<ChunkCoord> chunks = level_chunks(store, lv);
  if (opt.bbox) {
    std::erase_if(chunks, [&](const ChunkCoord& c) {
      for (std::size_t d = 0; d < nd; ++d)
        if (lv.grid.chunk_hi(c[d], d) < opt.bbox->lo[d] || lv.grid.chunk_lo(c[d], d) > opt.bbox->hi[d]) return true;
      return false;
    });
  }
  const std::size_t vrow = nd * dtype_size(lv.vertices.dtype);
  std::vector<ChunkResult> parts(chunks.size());
  parallel_for(
      chunks.size(), io_threads(threads, store.io_concurrency()),
      [&](std::size_t i) {
        const ChunkCoord& c = chunks[i];
        auto verts = get_cell(store, lv.vertices, c);
        if (!verts)
          corrupt(store.describe() + "/" + lv.vertices.path + "/" + cell_key(c, lv.vertices.origin) +
                  " is missing although chunk " + dotted_key(c) + " is listed as non-empty");
        if (verts->size() % vrow != 0)
          corrupt(store.describe() + "/" + lv.vertices.path + "/" + cell_key(c, lv.vertices.origin) + ": " +
                  std::to_string(verts->size()) + " bytes is not a whole number of " + std::to_string(vrow) +
                  "-byte rows");
        const std::uint64_t n = verts->size() / vrow;
        std::vector<Run> runs = opt.bbox ? select_rows(store, lv, c, *verts, n, *opt.bbox) : std::vector<Run>{{0, n}};
        ChunkResult& out = parts[i];
        for (const auto& r : runs) out.rows += r.count;
        auto copy_runs = [&](const Bytes& src, std::size_t row_bytes, Bytes& dst) {
          if (runs.size() == 1 && runs[0].start == 0 && runs[0].count * row_bytes == src.size()) {
            dst = src;
            return;
          }
          dst.resize(out.rows * row_bytes);
          std::size_t at = 0;
          for (const auto& r : runs) {
            std::memcpy(dst.data() + at, src.data() + r.start * row_bytes, r.count * row_bytes);
            at += r.count * row_bytes;
          }
        };
        copy_runs(*verts, vrow, out.positions);
        out.attrs.resize(want.size());
        for (std::size_t k = 0; k < want.size(); ++k) {
          const ArrayMeta& a = want[k]->second;
          const std::size_t arow = a.cols * dtype_size(a.dtype);
          auto cell = get_cell(store, a, c);
          std::string key = store.describe() + "/" + a.path + "/" + cell_key(c, a.origin);
          if (!cell) corrupt(key + " is missing: attribute cells must exist for every non-empty chunk");
          if (cell->size() != n * arow)
            corrupt(key + " holds " + std::to_string(cell->size()) + " bytes, expected " + std::to_string(n * arow) +
                    " (" + std::to_string(n) + " rows)");
          copy_runs(*cell, arow, out.attrs[k]);
        }
      },
      [&](std::size_t done) {
        if (exec.progress) exec.progress(done, chunks.size());
      });

  std::uint64_t total = 0;
  std::vector<std::uint64_t> offset(parts.size());
  for (std::size_t i = 0; i < parts.size(); ++i) {
    offset[i] = total;
    total += parts[i].rows;
  }
  PointCloud pc;
  pc.positions = {lv.vertices.dtype, total, nd, false, Bytes(total * vrow)};
  for (const auto* w : want)
    pc.attributes.emplace_back(
        w->first, OwnedArray{w->second.dtype, total, w->second.cols, w->second.one_d,
                             Bytes(total * w->second.cols * dtype_size(w->second.dtype))});
  parallel_for(parts.size(), threads, [&](std::size_t i) {
    auto& p = parts[i];
    if (p.rows == 0) return;
    std::memcpy(pc.positions.data.data() + offset[i] * vrow, p.positions.data(), p.positions.size());
    for (std::size_t k = 0; k < want.size(); ++k) {
      auto& dst = pc.attributes[k].second;
      std::size_t arow = dst.cols * dtype_size(dst.dtype);
      std::memcpy(dst.data.data() + offset[i] * arow, p.attrs[k].data(), p.attrs[k].size());
    }
    p = ChunkResult{};
  });
  return pc;
}

StoreInfo store_info(const Store& store) {
  json root = read_zv_root(store);
  StoreInfo info;
  const json& zv = root["attributes"]["zarr_vectors"];
  info.zv_version = zv.value("zv_version", std::string());
  for (int level = 0;; ++level) {
    if (!store.exists(std::to_string(level) + "/zarr.json")) break;
    LevelView lv = open_level(store, level);
    if (level == 0) {
      info.ndim = lv.ndim;
      info.dtype = lv.vertices.dtype;
      info.codec = lv.vertices.codec.name();
      for (const auto& [name, a] : lv.attrs) {
        std::vector<std::int64_t> row;
        if (!a.one_d) row.push_back(static_cast<std::int64_t>(a.cols));
        info.attributes.push_back({name, a.dtype, row});
      }
      try {
        info.bounds = {zv.at("bounds").at(0).get<std::vector<double>>(), zv.at("bounds").at(1).get<std::vector<double>>()};
      } catch (const json::exception& e) {
        corrupt(store.describe() + "/zarr.json: bad bounds: " + e.what());
      }
    }
    LevelInfo li;
    li.level = level;
    li.vertex_count = lv.vertex_count;
    li.chunk_shape = lv.grid.chunk_shape;
    li.bin_shape = lv.grid.bin_shape;
    li.grid_shape = lv.vertices.shape;
    li.grid_origin = lv.vertices.origin;
    li.nonempty_chunks = level_chunks(store, lv).size();
    info.levels.push_back(std::move(li));
  }
  return info;
}

}  // namespace zvf
