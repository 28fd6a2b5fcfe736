#include "engine/cells.hpp"

#include <algorithm>
#include <cstring>

#include "zvf/error.hpp"
#include "zvf/fragments.hpp"

namespace zvf::detail {
namespace {

void gather_rows(const void* src, std::size_t row_bytes, std::span<const std::uint64_t> rows, Payload& out) {
  out.resize(rows.size() * row_bytes);
  const auto* s = static_cast<const std::uint8_t*>(src);
  std::uint8_t* d = out.data();
  // Fixed-size copies let the compiler inline the common row widths.
  switch (row_bytes) {
    case 4:
      for (auto r : rows) { std::memcpy(d, s + r * 4, 4); d += 4; }
      break;
    case 8:
      for (auto r : rows) { std::memcpy(d, s + r * 8, 8); d += 8; }
      break;
    case 12:
      for (auto r : rows) { std::memcpy(d, s + r * 12, 12); d += 12; }
      break;
    case 24:
      for (auto r : rows) { std::memcpy(d, s + r * 24, 24); d += 24; }
      break;
    default:
      for (auto r : rows) { std::memcpy(d, s + r * row_bytes, row_bytes); d += row_bytes; }
  }
}

// Cells are published by metadata written after them (zarr.json, manifests).
// `room`: the payload may be framed in place (ChunkView::header_room).
void put_cell(Store& store, const std::string& key, ByteSpan payload, const CodecSpec& codec, bool room = false) {
  if (codec.is_identity()) {
    // The vlen-bytes frame goes in front of the payload without copying it.
    std::uint32_t head[2] = {1u, static_cast<std::uint32_t>(payload.size())};
    const ByteSpan parts[2] = {ByteSpan(reinterpret_cast<const std::uint8_t*>(head), sizeof head), payload};
    store.set_unpublished(key, parts);
  } else {
    thread_local ArrayBytes enc;  // the compressed cell, reused by the thread's next cell
    const ByteSpan whole =
        room ? encode_cell_in_place({const_cast<std::uint8_t*>(payload.data()) - kCellHeaderBytes,
                                     payload.size() + kCellHeaderBytes},
                                    codec, enc)
             : encode_cell_into(payload, codec, enc);
    store.set_unpublished(key, std::span<const ByteSpan>(&whole, 1));
  }
}

Payload to_payload(const Bytes& b) {
  Payload p;
  p.resize(b.size());
  if (!b.empty()) std::memcpy(p.data(), b.data(), b.size());
  return p;
}

// "/<cell key>", appended to an array path. (Built by append: GCC 12 warns
// falsely about "/" + std::string here.)
std::string cell_suffix(const ChunkCoord& c, const ChunkCoord& origin) {
  std::string s(1, '/');
  s += cell_key(c, origin);
  return s;
}

}  // namespace

ChunkView view_of(const ChunkData& d) {
  ChunkView v{d.count, &d.frag_counts, d.vertices.bytes(), {}};
  for (const auto& a : d.attrs) v.attrs.push_back(a.bytes());
  return v;
}

void write_cells(Store& store, const CellLayout& layout, const ChunkCoord& c, const ChunkCoord& origin,
                 const ChunkView& data) {
  const std::string cell = cell_suffix(c, origin);
  for (std::size_t k = 0; k < layout.attrs.size(); ++k)
    put_cell(store, meta::attribute_path(layout.attrs[k].name, layout.level) + cell, data.attrs[k], layout.codec,
             data.header_room);
  Bytes frag = encode_range_fragments(*data.frag_counts);
  put_cell(store, meta::fragments_path(layout.level) + cell, ByteSpan(frag), layout.codec);
  put_cell(store, meta::vertices_path(layout.level) + cell, data.vertices, layout.codec, data.header_room);
}

void erase_cells(Store& store, const CellLayout& layout, const ChunkCoord& c, const ChunkCoord& origin) {
  const std::string cell = cell_suffix(c, origin);
  store.erase(meta::vertices_path(layout.level) + cell);
  store.erase(meta::fragments_path(layout.level) + cell);
  for (const auto& a : layout.attrs) store.erase(meta::attribute_path(a.name, layout.level) + cell);
}

std::vector<std::size_t> directory_spread_order(const std::vector<ChunkCoord>& chunks) {
  std::vector<std::size_t> order(chunks.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const ChunkCoord &ca = chunks[a], &cb = chunks[b];
    if (ca.back() != cb.back()) return ca.back() < cb.back();
    return std::lexicographical_compare(ca.begin(), ca.end() - 1, cb.begin(), cb.end() - 1);
  });
  return order;
}

std::optional<ChunkData> read_cells(const Store& store, const CellLayout& layout, const ChunkCoord& c,
                                    const ChunkCoord& origin) {
  const std::string cell = cell_suffix(c, origin);
  auto vkey = meta::vertices_path(layout.level) + cell;
  auto raw = store.get(vkey);
  if (!raw) return std::nullopt;
  ChunkData d;
  d.vertices = to_payload(decode_cell(ByteSpan(*raw), layout.codec, store.describe() + "/" + vkey));
  if (d.vertices.size() % layout.vertex_row_bytes() != 0)
    fail(Error::Code::Corrupt, store.describe() + "/" + vkey + ": " + std::to_string(d.vertices.size()) +
                                   " bytes is not a whole number of rows");
  d.count = d.vertices.size() / layout.vertex_row_bytes();
  auto fkey = meta::fragments_path(layout.level) + cell;
  auto fraw = store.get(fkey);
  if (!fraw) fail(Error::Code::Corrupt, store.describe() + "/" + fkey + " is missing");
  auto frags = decode_fragments(ByteSpan(decode_cell(ByteSpan(*fraw), layout.codec, fkey)), fkey);
  std::int64_t next = 0;
  for (const auto& f : frags) {
    if (!f.is_range || f.start != next)
      fail(Error::Code::Corrupt, fkey + ": expected contiguous range fragments");
    d.frag_counts.push_back(f.count);
    next += f.count;
  }
  if (static_cast<std::uint64_t>(next) != d.count || d.frag_counts.size() != static_cast<std::size_t>(layout.nbins))
    fail(Error::Code::Corrupt, fkey + ": fragments do not cover the cell's " + std::to_string(d.count) + " rows");
  for (std::size_t k = 0; k < layout.attrs.size(); ++k) {
    auto akey = meta::attribute_path(layout.attrs[k].name, layout.level) + cell;
    auto araw = store.get(akey);
    if (!araw) fail(Error::Code::Corrupt, store.describe() + "/" + akey + " is missing");
    d.attrs.push_back(to_payload(decode_cell(ByteSpan(*araw), layout.codec, akey)));
    if (d.attrs.back().size() != d.count * layout.attr_row_bytes(k))
      fail(Error::Code::Corrupt, akey + ": holds " + std::to_string(d.attrs.back().size()) + " bytes, expected " +
                                     std::to_string(d.count * layout.attr_row_bytes(k)));
  }
  return d;
}

std::vector<ByteSpan> encode_piece(const ChunkView& d, Bytes& header) {
  const auto& frag_counts = *d.frag_counts;
  header.resize(4 + 4 + 8 + 4 + frag_counts.size() * 8);
  std::uint8_t* p = header.data();
  auto put = [&](const void* src, std::size_t n) {
    if (n) std::memcpy(p, src, n);
    p += n;
  };
  put("ZVFP", 4);
  std::uint32_t version = 1, nbins = static_cast<std::uint32_t>(frag_counts.size());
  put(&version, 4);
  put(&d.count, 8);
  put(&nbins, 4);
  put(frag_counts.data(), frag_counts.size() * 8);
  std::vector<ByteSpan> parts{ByteSpan(header), d.vertices};
  parts.insert(parts.end(), d.attrs.begin(), d.attrs.end());
  return parts;
}

ChunkView decode_piece(ByteSpan in, const CellLayout& layout, const std::string& what,
                       std::vector<std::int64_t>& frag_counts) {
  auto corrupt = [&](const std::string& why) { fail(Error::Code::Corrupt, what + ": staged piece is corrupt: " + why); };
  if (in.size() < 20 || std::memcmp(in.data(), "ZVFP", 4) != 0) corrupt("bad header");
  ChunkView d;
  std::uint32_t version, nbins;
  std::memcpy(&version, in.data() + 4, 4);
  std::memcpy(&d.count, in.data() + 8, 8);
  std::memcpy(&nbins, in.data() + 16, 4);
  if (version != 1) corrupt("unsupported version " + std::to_string(version));
  if (nbins != static_cast<std::uint32_t>(layout.nbins)) corrupt("bin count differs from the store's layout");
  // Bounds the row count before it is multiplied into sizes (every row is >= 1 byte).
  if (d.count > in.size())
    corrupt("claims " + std::to_string(d.count) + " rows in " + std::to_string(in.size()) + " bytes");
  std::size_t need = 20 + std::size_t(nbins) * 8 + d.count * layout.vertex_row_bytes();
  for (std::size_t k = 0; k < layout.attrs.size(); ++k) need += d.count * layout.attr_row_bytes(k);
  if (in.size() != need)
    corrupt("holds " + std::to_string(in.size()) + " bytes, expected " + std::to_string(need));
  std::size_t at = 20;
  frag_counts.resize(nbins);
  std::memcpy(frag_counts.data(), in.data() + at, std::size_t(nbins) * 8);
  at += std::size_t(nbins) * 8;
  // merge_chunks copies rows bin by bin: the counts must be the piece's rows exactly.
  std::uint64_t sum = 0;
  for (auto n : frag_counts) {
    if (n < 0 || static_cast<std::uint64_t>(n) > d.count - sum)
      corrupt("its bin counts do not add up to its " + std::to_string(d.count) + " rows");
    sum += static_cast<std::uint64_t>(n);
  }
  if (sum != d.count)
    corrupt("its bin counts add up to " + std::to_string(sum) + ", expected " + std::to_string(d.count) + " rows");
  d.frag_counts = &frag_counts;
  auto take = [&](std::size_t n) {
    const ByteSpan s = in.subspan(at, n);
    at += n;
    return s;
  };
  d.vertices = take(d.count * layout.vertex_row_bytes());
  for (std::size_t k = 0; k < layout.attrs.size(); ++k) d.attrs.push_back(take(d.count * layout.attr_row_bytes(k)));
  return d;
}

ChunkData merge_chunks(const std::vector<ChunkView>& sources, const CellLayout& layout) {
  ChunkData out;
  out.frag_counts.assign(static_cast<std::size_t>(layout.nbins), 0);
  for (const auto& s : sources) {
    out.count += s.count;
    for (std::size_t f = 0; f < out.frag_counts.size(); ++f) out.frag_counts[f] += (*s.frag_counts)[f];
  }
  const std::size_t na = layout.attrs.size();
  out.vertices.resize(out.count * layout.vertex_row_bytes());
  out.attrs.resize(na);
  for (std::size_t k = 0; k < na; ++k) out.attrs[k].resize(out.count * layout.attr_row_bytes(k));
  // Walk fragments in order; within a fragment, take each source's rows in turn.
  std::vector<std::uint64_t> src_row(sources.size(), 0);
  std::uint64_t dst = 0;
  const std::size_t vb = layout.vertex_row_bytes();
  for (std::size_t f = 0; f < out.frag_counts.size(); ++f) {
    for (std::size_t s = 0; s < sources.size(); ++s) {
      const std::uint64_t n = static_cast<std::uint64_t>((*sources[s].frag_counts)[f]);
      if (n == 0) continue;
      const std::uint64_t r = src_row[s];
      std::memcpy(out.vertices.data() + dst * vb, sources[s].vertices.data() + r * vb, n * vb);
      for (std::size_t k = 0; k < na; ++k) {
        const std::size_t ab = layout.attr_row_bytes(k);
        std::memcpy(out.attrs[k].data() + dst * ab, sources[s].attrs[k].data() + r * ab, n * ab);
      }
      src_row[s] += n;
      dst += n;
    }
  }
  return out;
}

ChunkData drop_points_inside(const ChunkData& d, const CellLayout& layout, const std::vector<Box>& boxes) {
  ChunkData out;
  out.frag_counts.assign(d.frag_counts.size(), 0);
  out.attrs.resize(layout.attrs.size());
  const std::size_t vb = layout.vertex_row_bytes();
  auto inside = [&](std::uint64_t r) {
    double p[kMaxDims];
    for (std::size_t a = 0; a < layout.ndim; ++a) {
      if (layout.dtype == DType::F32) {
        float v;
        std::memcpy(&v, d.vertices.data() + r * vb + a * 4, 4);
        p[a] = v;
      } else {
        std::memcpy(&p[a], d.vertices.data() + r * vb + a * 8, 8);
      }
    }
    for (const auto& b : boxes) {
      bool in = true;
      for (std::size_t a = 0; a < layout.ndim && in; ++a) in = p[a] >= b.lo[a] && p[a] < b.hi[a];
      if (in) return true;
    }
    return false;
  };
  std::vector<std::uint64_t> keep;
  std::uint64_t r = 0;
  for (std::size_t f = 0; f < d.frag_counts.size(); ++f)
    for (std::int64_t i = 0; i < d.frag_counts[f]; ++i, ++r)
      if (!inside(r)) {
        keep.push_back(r);
        ++out.frag_counts[f];
      }
  out.count = keep.size();
  gather_rows(d.vertices.data(), vb, keep, out.vertices);
  for (std::size_t k = 0; k < layout.attrs.size(); ++k)
    gather_rows(d.attrs[k].data(), layout.attr_row_bytes(k), keep, out.attrs[k]);
  return out;
}

}  // namespace zvf::detail
