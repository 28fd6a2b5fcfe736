#include "zvf/grid.hpp"

#include <charconv>
#include <cmath>
#include <algorithm>

#include "zvf/error.hpp"

namespace zvf {
namespace {
// Shortest form that round-trips, so that a near-miss such as 83.333333 shows all
// of its digits and a ratio of 3.0000000036 does not print as "3.000000".
std::string ratio_text(double v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string shape_text(const std::vector<double>& v) {
  std::string s = "(";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + ratio_text(v[i]);
  return s + ")";
}
}  // namespace

std::int64_t whole_ratio(double chunk, double bin) {
  if (!(bin > 0) || !std::isfinite(bin) || !std::isfinite(chunk)) return 0;
  const double ratio = chunk / bin, r = std::round(ratio);
  // Beyond 2^53 no double is a meaningful whole ratio, and casting one past 2^63 is undefined.
  return r >= 1 && r <= 0x1p53 && std::abs(ratio - r) <= 1e-9 * std::max(1.0, r) ? static_cast<std::int64_t>(r) : 0;
}

std::int64_t Grid::bins_per_chunk_total() const {
  std::int64_t n = 1;
  for (auto b : bins_per_chunk) n *= b;
  return n;
}

Grid Grid::make(std::vector<double> chunk_shape, std::vector<double> bin_shape, std::size_t ndim) {
  if (ndim < 2 || ndim > kMaxDims)
    invalid("positions must have 2 to " + std::to_string(kMaxDims) + " columns, got " +
            std::to_string(ndim));
  if (chunk_shape.size() != ndim)
    invalid("chunk_shape " + shape_text(chunk_shape) + " has " + std::to_string(chunk_shape.size()) +
            " values; expected " + std::to_string(ndim) + " (one per position column)");
  for (double c : chunk_shape)
    if (!std::isfinite(c) || c <= 0)
      invalid("chunk_shape " + shape_text(chunk_shape) + " must be finite and > 0 on every axis");
  if (bin_shape.empty()) bin_shape = chunk_shape;
  if (bin_shape.size() != ndim)
    invalid("bin_shape " + shape_text(bin_shape) + " has " + std::to_string(bin_shape.size()) +
            " values; expected " + std::to_string(ndim));
  Grid g;
  for (std::size_t d = 0; d < ndim; ++d) {
    double b = bin_shape[d];
    if (!std::isfinite(b) || b <= 0)
      invalid("bin_shape " + shape_text(bin_shape) + " must be finite and > 0 on every axis");
    const std::int64_t r = whole_ratio(chunk_shape[d], b);
    if (r == 0)
      invalid("bin_shape " + shape_text(bin_shape) + " does not divide chunk_shape " +
              shape_text(chunk_shape) + " on axis " + std::to_string(d) + ": chunk/bin = " +
              ratio_text(chunk_shape[d] / b) + ", expected a whole number >= 1");
    g.bins_per_chunk.push_back(r);
  }
  // A fragment index counts a chunk's bins in a uint32; checked per axis so the product cannot overflow.
  std::int64_t total = 1;
  for (auto b : g.bins_per_chunk) {
    if (b > (std::int64_t{1} << 32) / total)
      invalid("bin_shape " + shape_text(bin_shape) + " gives more than 2^32 bins per chunk_shape " +
              shape_text(chunk_shape) + ", more than a fragment index can count");
    total *= b;
  }
  g.chunk_shape = std::move(chunk_shape);
  g.bin_shape = std::move(bin_shape);
  return g;
}

std::string dotted_key(const std::int64_t* c, std::size_t ndim) {
  std::string s;
  char buf[24];
  for (std::size_t d = 0; d < ndim; ++d) {
    if (d) s += '.';
    auto r = std::to_chars(buf, buf + sizeof buf, c[d]);
    s.append(buf, r.ptr);
  }
  return s;
}

ChunkCoord parse_dotted_key(const std::string& key, std::size_t ndim) {
  ChunkCoord c;
  const char* p = key.data();
  const char* end = p + key.size();
  while (p <= end) {
    std::int64_t v = 0;
    auto r = std::from_chars(p, end, v);
    if (r.ec != std::errc()) break;
    c.push_back(v);
    p = r.ptr;
    if (p == end) {
      if (c.size() == ndim) return c;
      break;
    }
    if (*p != '.') break;
    ++p;
  }
  fail(Error::Code::Corrupt, "chunk key '" + key + "' is not " + std::to_string(ndim) +
                                 " dot-separated integers");
}

std::string cell_key(const ChunkCoord& c, const ChunkCoord& origin) {
  std::string s = "c";
  char buf[24];
  for (std::size_t d = 0; d < c.size(); ++d) {
    s += '/';
    auto r = std::to_chars(buf, buf + sizeof buf, c[d] - origin[d]);
    s.append(buf, r.ptr);
  }
  return s;
}

}  // namespace zvf
