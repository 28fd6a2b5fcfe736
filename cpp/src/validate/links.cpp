// Level 3 for links/<delta>/<offsets> arrays (the reference's pyramids link each
// vertex to its metavertex one level up): offsets segments well-formed, the
// canonical order of intra-level families, records whole and counted as the
// family says, and source (and, within a level, target) chunks present.
#include <algorithm>
#include <charconv>
#include <cstring>
#include <set>

#include "validate/checks.hpp"
#include "zvf/error.hpp"

namespace zvf::detail::validation {
namespace {

// "0", "+N" or "-N": a level delta, and each component of a chunk offset.
std::optional<int> parse_delta(const std::string& name) {
  if (name == "0") return 0;
  if (name.size() < 2 || (name[0] != '+' && name[0] != '-')) return std::nullopt;
  int v = 0;
  auto [p, ec] = std::from_chars(name.data() + 1, name.data() + name.size(), v);
  if (ec != std::errc() || p != name.data() + name.size()) return std::nullopt;
  return name[0] == '-' ? -v : v;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::size_t at = 0;
  for (std::size_t next; (next = s.find(sep, at)) != std::string::npos; at = next + 1) out.push_back(s.substr(at, next - at));
  out.push_back(s.substr(at));
  return out;
}

// An offsets segment: link_width - 1 offsets joined by '_', each sid components
// joined by '.'; "self" when link_width is 1. Flattened; nullopt if malformed.
std::optional<std::vector<std::int64_t>> parse_segment(const std::string& seg, std::int64_t width, std::size_t sid) {
  std::vector<std::int64_t> out;
  if (width == 1) return seg == "self" ? std::optional(out) : std::nullopt;
  const auto parts = split(seg, '_');
  if (static_cast<std::int64_t>(parts.size()) != width - 1) return std::nullopt;
  for (const auto& part : parts) {
    const auto comps = split(part, '.');
    if (comps.size() != sid) return std::nullopt;
    for (const auto& comp : comps) {
      auto v = parse_delta(comp);
      if (!v) return std::nullopt;
      out.push_back(*v);
    }
  }
  return out;
}

int lex_sign(const std::vector<std::int64_t>& v, std::size_t from, std::size_t n) {
  for (std::size_t i = from; i < from + n; ++i)
    if (v[i] != 0) return v[i] > 0 ? 1 : -1;
  return 0;
}

}  // namespace

void check_links(Checker& c, int level, const std::set<ChunkCoord>& chunks) {
  const std::string base = level_key(level, "links");
  for (const auto& name : c.store.list_dir(base)) {
    const auto delta = parse_delta(name);
    if (!delta) continue;
    const std::string family = base + "/" + name;
    auto doc = c.read_doc(family + "/zarr.json");
    if (!doc || !doc->contains("attributes") || !(*doc)["attributes"].is_object()) continue;
    const json& fa = (*doc)["attributes"];
    const auto not_integer = [&](const char* k) { return fa.contains(k) && !fa[k].is_number_integer(); };
    if (not_integer("link_width") || not_integer("sid_ndim")) {  // value() would cast floats unchecked
      c.error(family + "/zarr.json", "link_width and sid_ndim must be integers");
      continue;
    }
    std::int64_t width = 2;
    std::size_t sid = 0;
    bool canonical = false;
    try {  // value() throws json::type_error for a field of another type
      width = fa.value("link_width", std::int64_t{2});
      sid = fa.value("sid_ndim", std::size_t{0});
      // Only an undirected, single-copy, intra-level family stores each record once,
      // under the lexicographically non-negative offset, in non-decreasing order.
      canonical =
          !fa.value("directed", false) && fa.value("store", std::string("canonical")) == "canonical" && *delta == 0;
    } catch (const json::exception& e) {
      c.error(family + "/zarr.json", std::string("cannot be used: ") + e.what());
      continue;
    }
    if (sid == 0) continue;  // as the reference: a family without sid_ndim is not checked
    if (width < 1) {
      c.error(family + "/zarr.json", "link_width = " + std::to_string(width) + ", must be >= 1");
      continue;
    }
    std::uint64_t records = 0;
    std::size_t segments = 0;
    for (const auto& seg : c.store.list_dir(family)) {
      if (seg == "zarr.json") continue;
      ++segments;
      const std::string path = family + "/" + seg;
      auto offsets = parse_segment(seg, width, sid);
      if (!offsets) {
        c.error(path, "links offsets segment '" + seg + "' is malformed: expected " + std::to_string(width - 1) +
                          " offsets of " + std::to_string(sid) + " components (\"0\", \"+N\" or \"-N\")");
        continue;
      }
      if (canonical)
        for (std::size_t k = 0; k + 1 < static_cast<std::size_t>(width); ++k) {
          if (lex_sign(*offsets, k * sid, sid) < 0)
            c.error(path, "offset " + std::to_string(k + 1) + " is lexicographically negative in a canonical family");
          if (k > 0 && std::lexicographical_compare(offsets->begin() + k * sid, offsets->begin() + (k + 1) * sid,
                                                    offsets->begin() + (k - 1) * sid, offsets->begin() + k * sid))
            c.error(path, "offsets are not non-decreasing (canonical order)");
        }
      auto adoc = c.read_doc(path + "/zarr.json");
      if (!adoc) continue;
      ArrayMeta a;
      a.path = path;
      a.origin = ChunkCoord(c.ndim, 0);
      DType dtype = DType::I64;
      bool has_perm = false;  // a leading permutation column in every record
      try {
        a.codec = CodecSpec::from_json(adoc->at("codecs"));
        const json& at = adoc->at("attributes");
        if (at.contains("dtype")) dtype = dtype_from_name(at["dtype"].get<std::string>());
        if (at.contains("chunk_grid_origin"))  // get<>() would cast floats unchecked
          a.origin =
              meta::is_integer_list(at["chunk_grid_origin"]) ? at["chunk_grid_origin"].get<ChunkCoord>() : ChunkCoord{};
        has_perm = at.value("has_perm", false);
      } catch (const Error& e) {
        if (e.code() == Error::Code::Unsupported)
          c.warn(path + "/zarr.json", std::string(e.what()) + ": its cells were not checked");
        else
          c.error(path + "/zarr.json", std::string("cannot be used: ") + e.what());
        continue;
      } catch (const std::exception& e) {
        c.error(path + "/zarr.json", std::string("cannot be used: ") + e.what());
        continue;
      }
      if (a.origin.size() != c.ndim) {  // indexed per axis below
        c.error(path + "/zarr.json", "chunk_grid_origin must be " + std::to_string(c.ndim) + " integers");
        continue;
      }
      const std::size_t record = static_cast<std::size_t>(width + (has_perm ? 1 : 0)) * dtype_size(dtype);
      // The intra-chunk array of delta 0 holds bare records (its groups are in a
      // sidecar index); every other array's cell is a blob: i64 k, k i64 group
      // offsets, then the records.
      const bool flat = *delta == 0 && std::all_of(offsets->begin(), offsets->end(), [](auto o) { return o == 0; });
      const std::string prefix = path + "/c/";
      for (const auto& key : c.store.list(path + "/c")) {
        if (key.size() <= prefix.size()) {  // list() includes "<path>/c" itself if that is a key
          c.warn(key, "not a chunk key of this links array");
          continue;
        }
        std::string rest = key.substr(prefix.size());
        std::replace(rest.begin(), rest.end(), '/', '.');
        ChunkCoord src;
        try {
          src = parse_dotted_key(rest, c.ndim);
        } catch (const Error&) {
          c.warn(key, "not a chunk key of this links array");
          continue;
        }
        for (std::size_t d = 0; d < c.ndim; ++d) src[d] += a.origin[d];
        Bytes payload;
        try {
          payload = decode_cell(ByteSpan(*c.store.get(key)), a.codec, key);
        } catch (const Error& e) {
          c.error(key, std::string("links cell does not decode: ") + e.what());
          continue;
        }
        std::size_t header = 0;
        if (!flat && payload.size() >= 8) {
          std::int64_t k = 0;
          std::memcpy(&k, payload.data(), 8);
          header = k > 0 && static_cast<std::uint64_t>(k) < payload.size() / 8 ? 8 * (1 + static_cast<std::size_t>(k))
                                                                              : payload.size();
        } else if (!flat) {
          header = payload.size();
        }
        if ((payload.size() - header) % record != 0) {
          c.error(key, "links cell holds " + std::to_string(payload.size() - header) + " bytes of records, not whole "
                           "records of " + std::to_string(record / dtype_size(dtype)) + " x " + dtype_name(dtype));
          continue;
        }
        const std::uint64_t n = (payload.size() - header) / record;
        records += n;
        if (n == 0) continue;
        if (!chunks.count(src))
          c.error(key, "links[delta=" + name + "] refer to source chunk (" + dotted_key(src) + "), which has no vertices");
        if (*delta == 0 && sid == c.ndim)
          for (std::size_t k = 0; k + 1 < static_cast<std::size_t>(width); ++k) {
            ChunkCoord target = src;
            for (std::size_t d = 0; d < c.ndim; ++d) target[d] += (*offsets)[k * sid + d];
            if (!chunks.count(target))
              c.error(key, "links[delta=0] refer to chunk (" + dotted_key(target) + "), which has no vertices");
          }
      }
    }
    if (fa.contains("num_physical_records") && fa["num_physical_records"].is_number_unsigned() &&
        fa["num_physical_records"].get<std::uint64_t>() != records)
      c.error(family + "/zarr.json", "num_physical_records = " + fa["num_physical_records"].dump() + " but " +
                                         std::to_string(records) + " records are on disk");
    else
      c.pass("level " + std::to_string(level) + ": links[delta=" + name + "] validated (" + std::to_string(records) +
             " links across " + std::to_string(segments) + " offset arrays)");
  }
}

}  // namespace zvf::detail::validation
