// Structure-aware fuzz target for the read side of libzvf.
//
// On first use it writes a few small VALID stores into MemoryStores (variants:
// uncompressed, zstd, blosc, with a pyramid, partitioned and finalised,
// partitioned and pending, 2-D float64, a pyramid built in parts and not yet
// finalised, gzip + crc32c with a pyramid, crc32c alone, gzip alone). Each input then picks a variant with its first byte (modulo the
// number of variants), applies a short list of mutations to copies of that store's
// keys (overwrite, truncate, append, replace, delete, insert, flip, integer,
// JSON-node edits, copies, new keys) and runs every public read entry point on
// the result. zvf::Error is the expected outcome of bad data; any other
// exception escaping, a sanitizer report, a hang or a huge allocation is a
// defect. Defects abort(), so libFuzzer saves the input and the replay driver
// (fuzz_replay_main.cpp) fails.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <map>
#include <new>
#include <string>
#include <typeinfo>
#include <vector>

#include <nlohmann/json.hpp>
#include <sys/resource.h>

#include "zvf/error.hpp"
#include "zvf/points.hpp"
#include "zvf/pyramid.hpp"
#include "zvf/store.hpp"
#include "zvf/validate.hpp"

int zvf_fuzz_read_one(const std::uint8_t* data, std::size_t size);

namespace {

using json = nlohmann::json;
using Kv = std::map<std::string, zvf::Bytes>;

// ------------------------------------------------------------------ the stores

struct Variant {
  const char* name;
  Kv kv;
  bool pending = false;        // partitions written, not finalised
  bool pyramid_parts = false;  // pyramid parts built, not finalised
};

zvf::ArrayView f32_view(const std::vector<float>& v, std::size_t rows, std::size_t cols, bool one_d) {
  return {v.data(), zvf::DType::F32, rows, cols, one_d};
}

Kv snapshot(const zvf::Store& s) {
  Kv kv;
  for (const auto& k : s.list("")) kv[k] = *s.get(k);
  return kv;
}

// 300 points over 3 chunks along x (chunk 500, bin 125: 64 bins per chunk).
struct Cloud {
  std::size_t n = 300;
  std::vector<float> pos, intensity;
  Cloud() {
    std::uint32_t x = 12345;
    auto next = [&] {  // small LCG: the stores must be the same on every run
      x = x * 1664525u + 1013904223u;
      return static_cast<float>(x >> 8) / static_cast<float>(1u << 24);
    };
    for (std::size_t i = 0; i < n; ++i) {
      pos.push_back(next() * 1450.0f);
      pos.push_back(next() * 450.0f);
      pos.push_back(next() * 450.0f);
      intensity.push_back(static_cast<float>(i % 17) * 0.25f);
    }
  }
  // Rows with lo <= x < hi.
  Cloud slab(double lo, double hi) const {
    Cloud c;
    c.n = 0;
    c.pos.clear();
    c.intensity.clear();
    for (std::size_t i = 0; i < n; ++i) {
      if (pos[i * 3] < lo || pos[i * 3] >= hi) continue;
      c.pos.insert(c.pos.end(), pos.begin() + static_cast<std::ptrdiff_t>(i * 3),
                   pos.begin() + static_cast<std::ptrdiff_t>(i * 3 + 3));
      c.intensity.push_back(intensity[i]);
      ++c.n;
    }
    return c;
  }
  std::vector<zvf::NamedArray> attrs() const { return {{"intensity", f32_view(intensity, n, 1, true)}}; }
};

zvf::Layout layout3(const char* codec) {
  return {{500.0, 500.0, 500.0}, {125.0, 125.0, 125.0}, zvf::CodecSpec::from_name(codec)};
}

const zvf::Exec kExec{1, {}};

zvf::Bytes framed(const std::vector<std::int64_t>& values) {
  zvf::Bytes out(8 + values.size() * 8);
  const std::uint32_t head[2] = {1u, static_cast<std::uint32_t>(values.size() * 8)};
  std::memcpy(out.data(), head, 8);
  if (!values.empty()) std::memcpy(out.data() + 8, values.data(), values.size() * 8);
  return out;
}

// zvf writes no links (point clouds have none), but validate checks the ones the
// reference writes for other geometries: one intra-chunk family (delta 0) with a
// flat segment and a blob segment, built from the vertices array document.
void add_links(Kv& kv) {
  const json group = {{"zarr_format", 3},
                      {"node_type", "group"},
                      {"attributes",
                       {{"link_width", 2}, {"sid_ndim", 3}, {"directed", false}, {"store", "canonical"},
                        {"num_physical_records", 3}}}};
  const std::string g = group.dump();
  kv["0/links/0/zarr.json"] = zvf::Bytes(g.begin(), g.end());
  json array = json::parse(kv.at("0/vertices/zarr.json"));
  array["attributes"] = {{"dtype", "int64"}};
  const std::string a = array.dump();
  for (const char* seg : {"0.0.0", "+1.0.0"})
    kv["0/links/0/" + std::string(seg) + "/zarr.json"] = zvf::Bytes(a.begin(), a.end());
  kv["0/links/0/0.0.0/c/0/0/0"] = framed({0, 1, 2, 3});       // two records (i, j)
  kv["0/links/0/+1.0.0/c/0/0/0"] = framed({1, 0, 5, 7});      // k = 1 group offset, then one record
}

Kv one_shot(const char* codec, int pyramid_levels) {
  const Cloud c;
  zvf::MemoryStore s;
  zvf::write_points(s, f32_view(c.pos, c.n, 3, false), c.attrs(), layout3(codec), std::nullopt, kExec);
  if (pyramid_levels > 0) {
    zvf::PyramidOptions opt;
    for (int k = 0; k < pyramid_levels; ++k) opt.levels.push_back({2.0, 1.0, {}});
    zvf::build_pyramid(s, opt, kExec);
  }
  Kv kv = snapshot(s);
  if (pyramid_levels > 0) add_links(kv);
  return kv;
}

// Two partitions split at x = 700, inside chunk 1, so both stage pieces.
Kv partitioned(bool finalised) {
  const Cloud c;
  zvf::MemoryStore s;
  for (auto [lo, hi] : {std::pair{-std::numeric_limits<double>::infinity(), 700.0},
                        std::pair{700.0, std::numeric_limits<double>::infinity()}}) {
    const Cloud part = c.slab(lo, hi);
    zvf::Box range = zvf::Box::unbounded(3);
    range.lo[0] = lo;
    range.hi[0] = hi;
    zvf::write_points_partition(s, f32_view(part.pos, part.n, 3, false), part.attrs(), layout3("none"), range, kExec);
  }
  if (finalised) zvf::finalise(s, {}, kExec);
  return snapshot(s);
}

// A one-level pyramid built as parts 0 and 1 of 2: cells and the parts' records
// (.zvf/pyramid/part-<i>-of-2.json), which only finalise_parts reads.
Kv pyramid_in_parts() {
  const Cloud c;
  zvf::MemoryStore s;
  zvf::write_points(s, f32_view(c.pos, c.n, 3, false), c.attrs(), layout3("none"), std::nullopt, kExec);
  for (int i = 0; i < 2; ++i) {
    zvf::PyramidOptions opt;
    opt.levels.push_back({2.0, 1.0, {}});
    opt.part_index = i;
    opt.part_count = 2;
    zvf::build_pyramid(s, opt, kExec);
  }
  return snapshot(s);
}

// 2-D float64 positions, a (N, 2) float32 attribute, zstd, one coarse level.
Kv two_d() {
  const Cloud c;
  std::vector<double> pos;
  std::vector<float> rg;
  for (std::size_t i = 0; i < c.n; ++i) {
    pos.push_back(c.pos[i * 3]);
    pos.push_back(c.pos[i * 3 + 1]);
    rg.push_back(c.intensity[i]);
    rg.push_back(-c.intensity[i]);
  }
  zvf::MemoryStore s;
  zvf::Layout l{{500.0, 500.0}, {250.0, 125.0}, zvf::CodecSpec::from_name("zstd")};
  zvf::write_points(s, {pos.data(), zvf::DType::F64, c.n, 2, false}, {{"rg", f32_view(rg, c.n, 2, false)}}, l,
                    std::nullopt, kExec);
  zvf::PyramidOptions opt;
  opt.levels.push_back({2.0, 1.0, {}});
  zvf::build_pyramid(s, opt, kExec);
  return snapshot(s);
}

const std::vector<Variant>& variants() {
  static const std::vector<Variant> v = [] {
    std::vector<Variant> out;
    out.push_back({"none", one_shot("none", 0)});
    out.push_back({"zstd", one_shot("zstd", 0)});
    out.push_back({"pyramid", one_shot("none", 1)});
    out.push_back({"finalised-partitions", partitioned(true)});
    out.push_back({"pending-partitions", partitioned(false), true});
    out.push_back({"blosc-pyramid2", one_shot("blosc", 2)});
    out.push_back({"2d-f64", two_d()});
    out.push_back({"pyramid-parts", pyramid_in_parts(), false, true});
    // The Zarr v3 core codecs beyond zstd and blosc, as the reference writes them for a codec list.
    out.push_back({"gzip-crc32c-pyramid",
                   one_shot(R"([{"name":"gzip","configuration":{"level":1}},{"name":"crc32c"}])", 1)});
    out.push_back({"crc32c", one_shot(R"([{"name":"crc32c"}])", 0)});
    out.push_back({"gzip", one_shot("gzip", 0)});  // no checksum in front: mutations reach the inflater
    return out;
  }();
  return v;
}

// ------------------------------------------------------------------ fuzz input

// ZVF_FUZZ_VERBOSE=1 prints each mutation and each call's outcome, for triage.
bool verbose() {
  static const bool v = std::getenv("ZVF_FUZZ_VERBOSE") != nullptr;
  return v;
}

struct Input {
  const std::uint8_t* p;
  std::size_t n;
  bool empty() const { return n == 0; }
  std::uint8_t u8() {
    if (!n) return 0;
    --n;
    return *p++;
  }
  std::uint16_t u16() { return static_cast<std::uint16_t>(u8() | (u8() << 8)); }
  std::uint64_t u64() {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(u8()) << (8 * i);
    return v;
  }
  zvf::Bytes take(std::size_t k) {
    k = std::min(k, n);
    zvf::Bytes out(p, p + k);
    p += k;
    n -= k;
    return out;
  }
};

const char* const kWords[] = {
    "zarr_vectors", "chunk_shape", "base_bin_shape", "bounds", "zv_version", "multiscales", "datasets",
    "path", "coordinateTransformations", "translation", "scale", "attributes", "codecs", "shape",
    "chunk_grid_origin", "nonempty_chunks", "row_shape", "dtype", "encoding", "categories", "ordered",
    "zarr_vectors_level", "vertex_count", "coarsening_method", "shared_fragments", "chunk_attribute_name",
    "zvf", "zvf_pyramid", "consolidated_metadata", "node_type", "zarr_format", "configuration", "name",
    "level", "checksum", "typesize", "cname", "clevel", "shuffle", "blocksize", "layout", "origin",
    "partitions", "in_place", "staged", "range", "run_id", "id", "ndim", "cols", "one_d", "bin_shape",
    "bin_given", "float32", "float64", "uint8", "int64", "bool", "float16", "vlen-bytes", "zstd", "blosc",
    "sharding_indexed", "dictionary", "raw", "bin_mean", "none", "0", "1", "2", "3", "-1", "0.0.0",
    "-1.0.0", "1.0.0", "2.0.0", "9223372036854775807.0.0", "99999999999999999999", "0.9.2", "0.8", "group",
    "array", "geometry_types", "point_cloud", "links_convention", "fragments_tile", "arrays_present",
    "vertices", "vertex_attributes", "intensity", "count", "parent_level", "object_sparsity", "started.json",
    "manifest.json", "void.json", "pieces", "c", "zarr.json", "axes", "x", "type", "translation",
    "link_width", "sid_ndim", "directed", "store", "num_physical_records", "has_perm", "+1", "-1.0.0",
    "+1.0.0", "0_0", "self", "links", "rekey.json", "from", "to", "phase", "keys", "A", "B",
    "links/0/zarr.json", "links/+1/zarr.json", ".zvf/rekey.json", "pyramid/x/zarr.json", "c/0/0/0", "c/9/0/0",
    "c/-1/0/0", "0/c/0/0"};
constexpr std::size_t kWordCount = sizeof kWords / sizeof kWords[0];

double interesting_double(std::uint8_t k) {
  static const double v[] = {0.0, -0.0, 1.0, -1.0, 0.5, 1e-300, 1e300, -1e300, 9007199254740992.0,
                             9.223372036854775807e18, -9.223372036854775808e18, 1.8446744073709552e19,
                             1e20, 125.0, 500.0, 250.0, 62.5, 3.0000000001, 1e-9, 4294967296.0};
  return v[k % (sizeof v / sizeof v[0])];
}

json make_value(Input& in, const json& old) {
  switch (in.u8() % 15) {
    case 0: return nullptr;
    case 1: return (in.u8() & 1) != 0;
    case 2: return static_cast<std::int8_t>(in.u8());
    case 3: return static_cast<std::int64_t>(in.u64());
    case 4: return in.u64();
    case 5: {
      std::uint64_t bits = in.u64();
      double d;
      std::memcpy(&d, &bits, sizeof d);
      return std::isfinite(d) ? d : 1e308;
    }
    case 6: return interesting_double(in.u8());
    case 7: {
      zvf::Bytes b = in.take(in.u8() % 24);
      std::string s(b.begin(), b.end());
      for (auto& ch : s)  // JSON strings must be UTF-8: keep them ASCII
        ch = static_cast<char>(static_cast<unsigned char>(ch) & 0x7f);
      return s;
    }
    case 8: return kWords[in.u8() % kWordCount];
    case 9: return json::array();
    case 10: return json::object();
    case 11: {
      json a = json::array();
      for (int k = in.u8() % 5; k > 0; --k) a.push_back(static_cast<std::int8_t>(in.u8()));
      return a;
    }
    case 12: {
      json a = json::array();
      for (int k = in.u8() % 4; k > 0; --k) a.push_back(interesting_double(in.u8()));
      return a;
    }
    case 13: return json::array({old});
    default: {  // a long array of the old value: sizes and loops driven by metadata
      json a = json::array();
      for (int k = 1 + in.u8() % 64; k > 0; --k) a.push_back(old);
      return a;
    }
  }
}

struct Node {
  json* node;
  json* parent;
  std::string key;    // in an object parent
  std::size_t index;  // in an array parent
};

void collect(json& j, json* parent, const std::string& key, std::size_t index, std::vector<Node>& out) {
  out.push_back({&j, parent, key, index});
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) collect(it.value(), &j, it.key(), 0, out);
  } else if (j.is_array()) {
    for (std::size_t i = 0; i < j.size(); ++i) collect(j[i], &j, "", i, out);
  }
}

// Edits one node of a JSON document; false if the bytes are not JSON.
bool mutate_json(zvf::Bytes& value, Input& in, bool add_key) {
  json doc = json::parse(value.begin(), value.end(), nullptr, false);
  if (doc.is_discarded()) return false;
  std::vector<Node> nodes;
  collect(doc, nullptr, "", 0, nodes);
  const std::size_t pick = in.u16() % nodes.size();
  const Node& n = nodes[pick];
  if (verbose())
    std::fprintf(stderr, "    json node %zu of %zu: %s\n", pick, nodes.size(), n.node->dump().substr(0, 80).c_str());
  if (add_key) {
    json* target = n.node->is_object() ? n.node : (n.parent && n.parent->is_object() ? n.parent : nullptr);
    if (!target) return true;
    const std::string k = kWords[in.u8() % kWordCount];
    (*target)[k] = make_value(in, target->contains(k) ? (*target)[k] : json());
  } else if ((in.u8() & 7) == 0 && n.parent) {  // remove the node
    if (n.parent->is_object()) n.parent->erase(n.key);
    else n.parent->erase(n.index);
  } else {
    *n.node = make_value(in, *n.node);
  }
  const std::string text = doc.dump();
  value.assign(text.begin(), text.end());
  return true;
}

void put_int(zvf::Bytes& v, std::size_t at, std::size_t width, std::uint64_t x) {
  if (v.size() < at + width) v.resize(at + width);
  for (std::size_t i = 0; i < width; ++i) v[at + i] = static_cast<std::uint8_t>(x >> (8 * i));
}

std::uint64_t interesting_int(Input& in, std::size_t value_size) {
  static const std::uint64_t v[] = {0, 1, 2, 7, 8, 15, 16, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff,
                                    0x7fffffff, 0x80000000u, 0xffffffffu, 0x100000000ull,
                                    0x7fffffffffffffffull, 0x8000000000000000ull, ~0ull};
  const std::uint8_t k = in.u8();
  if (k < 200) return v[k % (sizeof v / sizeof v[0])];
  return value_size + static_cast<std::int8_t>(in.u8());  // near the value's own size
}

// Applies one mutation to kv; false once the input is exhausted.
bool mutate(Kv& kv, Input& in, const std::vector<std::string>& keys) {
  if (in.empty() || keys.empty()) return false;
  const std::uint8_t op = in.u8();
  const std::string key = keys[in.u8() % keys.size()];
  auto it = kv.find(key);
  if (it == kv.end()) return true;  // deleted by an earlier mutation
  zvf::Bytes& v = it->second;
  if (verbose()) std::fprintf(stderr, "  mutation %d on %s (%zu bytes)\n", op % 13, key.c_str(), v.size());
  switch (op % 13) {
    case 0: {  // overwrite at an offset
      const std::size_t at = in.u16() % (v.size() + 1);
      zvf::Bytes b = in.take(1 + in.u8() % 16);
      if (v.size() < at + b.size()) v.resize(at + b.size());
      std::copy(b.begin(), b.end(), v.begin() + static_cast<std::ptrdiff_t>(at));
      break;
    }
    case 1: v.resize(in.u16() % (v.size() + 1)); break;  // truncate
    case 2: {                                           // append
      zvf::Bytes b = in.take(in.u8());
      v.insert(v.end(), b.begin(), b.end());
      break;
    }
    case 3: v = in.take(in.u16()); break;  // replace whole
    case 4: kv.erase(it); break;           // delete
    case 5: {                              // insert at an offset
      const std::size_t at = in.u16() % (v.size() + 1);
      zvf::Bytes b = in.take(1 + in.u8() % 16);
      v.insert(v.begin() + static_cast<std::ptrdiff_t>(at), b.begin(), b.end());
      break;
    }
    case 6: {  // flip one bit
      if (v.empty()) break;
      const std::size_t at = in.u16() % v.size();
      v[at] ^= static_cast<std::uint8_t>(1u << (in.u8() % 8));
      break;
    }
    case 7: {  // an interesting integer (sizes, counts) at an offset
      static const std::size_t widths[] = {1, 2, 4, 8};
      const std::size_t width = widths[in.u8() % 4];
      const std::size_t at = in.u16() % (v.size() + 1);
      put_int(v, at, width, interesting_int(in, v.size()));
      break;
    }
    case 8:
    case 9:
    case 10:  // JSON-aware edits, the way into metadata past the parser
      if (!mutate_json(v, in, op % 13 == 10)) v.resize(in.u16() % (v.size() + 1));
      break;
    case 11: {  // another key's value (a cell of another array, another level's metadata)
      const std::string& from = keys[in.u8() % keys.size()];
      if (auto f = kv.find(from); f != kv.end()) it->second = f->second;
      break;
    }
    default: {  // a new key beside this one: an orphan cell, a stray level, a partition file
      std::string parent = key.substr(0, key.rfind('/') == std::string::npos ? 0 : key.rfind('/'));
      std::string name = (in.u8() & 1) ? std::to_string(static_cast<int>(static_cast<std::int8_t>(in.u8())))
                                       : std::string(kWords[in.u8() % kWordCount]);
      std::string nk = parent.empty() ? name : parent + "/" + name;
      try {
        zvf::check_key(nk);
      } catch (const zvf::Error&) {
        break;
      }
      kv[nk] = v;
      break;
    }
  }
  return true;
}

// ------------------------------------------------------------------ running

[[noreturn]] void defect(const char* call, const char* type, const char* what) {
  std::fprintf(stderr, "ZVF FUZZ DEFECT: %s let a %s escape: %s\n", call, type, what);
  std::fflush(stderr);
  std::abort();
}

long max_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024;
}

// zvf::Error is how bad data must surface; anything else escaping is a defect.
template <class F>
void call(const char* what, F&& f) {
  const auto t0 = std::chrono::steady_clock::now();
  auto ms = [&] { return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count(); };
  try {
    f();
    if (verbose()) std::fprintf(stderr, "  %s: ok (%.0f ms, max rss %ld MB)\n", what, ms(), max_rss_mb());
  } catch (const zvf::Error& e) {
    if (verbose())
      std::fprintf(stderr, "  %s: zvf::Error %d (%.0f ms): %s\n", what, static_cast<int>(e.code()), ms(), e.what());
  } catch (const std::exception& e) {
    defect(what, typeid(e).name(), e.what());
  } catch (...) {
    defect(what, "non-std exception", "");
  }
}

zvf::Box box3(std::size_t nd, double lo0, double hi0, double lo, double hi) {
  zvf::Box b{std::vector<double>(nd, lo), std::vector<double>(nd, hi)};
  b.lo[0] = lo0;
  b.hi[0] = hi0;
  return b;
}

void exercise(zvf::MemoryStore& s, const Variant& var, std::uint8_t flags) {
  const std::size_t nd = var.name == std::string("2d-f64") ? 2 : 3;
  // Cuts through chunk 1 and through bins, so bbox reads take the bin-pruning path.
  const zvf::Box part = box3(nd, 300.0, 810.0, 60.0, 333.0);
  call("store_info", [&] { (void)zvf::store_info(s); });
  call("list_partitions", [&] { (void)zvf::list_partitions(s); });
  for (int level = 0; level <= 2; ++level) {
    call("read_points", [&] {
      zvf::ReadOptions o;
      o.level = level;
      const zvf::PointCloud pc = zvf::read_points(s, o, kExec);
      if (verbose()) std::fprintf(stderr, "    level %d: %zu rows\n", level, pc.positions.rows);
    });
    call("read_points(bbox)", [&] {
      zvf::ReadOptions o;
      o.level = level;
      o.bbox = part;
      (void)zvf::read_points(s, o, kExec);
    });
  }
  call("read_points(attributes)", [&] {
    zvf::ReadOptions o;
    o.attributes = std::vector<std::string>{nd == 2 ? "rg" : "intensity"};
    o.bbox = box3(nd, -1e9, 1e9, -1e9, 1e9);
    (void)zvf::read_points(s, o, kExec);
  });
  call("select_level", [&] { (void)zvf::select_level(s, part, 1 + flags % 50, kExec); });
  auto validate = [&](int level) {
    const zvf::ValidationReport r = zvf::validate_store(s, {level}, kExec);
    if (verbose())
      for (const auto& f : r.findings)
        std::fprintf(stderr, "    L%d %s [%s] %s\n", f.level, zvf::severity_name(f.severity), f.key.c_str(),
                     f.message.c_str());
  };
  call("validate_store(5)", [&] { validate(5); });
  call("validate_store(1..4)", [&] { validate(1 + (flags >> 4) % 4); });
  // Finalisation merges what partitions staged: the only reader of pieces and
  // manifests beyond listing them. It writes into this copy, which is discarded.
  if (var.pending || (flags & 0x80)) {
    call("finalise", [&] { (void)zvf::finalise(s, {(flags & 2) != 0}, kExec); });
    call("read_points(after finalise)", [&] { (void)zvf::read_points(s, {}, kExec); });
  }
  if (var.pyramid_parts) {  // the only reader of the parts' records
    call("build_pyramid(finalise_parts)", [&] {
      zvf::PyramidOptions opt;
      opt.levels.push_back({2.0, 1.0, {}});
      opt.finalise_parts = true;
      (void)zvf::build_pyramid(s, opt, kExec);
    });
    call("read_points(level 1 after finalise_parts)", [&] {
      zvf::ReadOptions o;
      o.level = 1;
      (void)zvf::read_points(s, o, kExec);
    });
  }
  if ((flags & 0x0c) == 0x0c) {  // pyramids read all of level 0 their own way
    call("build_pyramid", [&] {
      zvf::PyramidOptions opt;
      opt.levels.push_back({2.0, 1.0, {}});
      opt.overwrite = true;
      (void)zvf::build_pyramid(s, opt, kExec);
    });
  }
}

}  // namespace

int zvf_fuzz_read_one(const std::uint8_t* data, std::size_t size) {
  Input in{data, size};
  const auto& vars = variants();
  const Variant& var = vars[in.u8() % vars.size()];
  const std::uint8_t flags = in.u8();
  if (verbose()) {
    std::fprintf(stderr, "  variant %s, flags 0x%02x, keys:", var.name, flags);
    std::size_t i = 0;
    for (const auto& [k, v] : var.kv) std::fprintf(stderr, " %zu=%s", i++, k.c_str());
    std::fprintf(stderr, "\n");
  }
  if (const char* dir = std::getenv("ZVF_FUZZ_DUMP_DIR")) {  // the unmutated store, for crafting inputs
    zvf::PosixStore out(dir);
    for (const auto& [k, v] : var.kv) out.set(k, zvf::ByteSpan(v));
  }
  Kv kv = var.kv;
  std::vector<std::string> keys;
  for (int k = 0; k < 8; ++k) {
    keys.clear();
    for (const auto& [key, v] : kv) keys.push_back(key);
    if (!mutate(kv, in, keys)) break;
  }
  zvf::MemoryStore s;
  for (const auto& [k, v] : kv) s.set(k, zvf::ByteSpan(v));
  exercise(s, var, flags);
  return 0;
}

#ifdef ZVF_LIBFUZZER
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return zvf_fuzz_read_one(data, size);
}
#endif
