#include "args.hpp"

#include <charconv>
#include <cmath>
#include <limits>
#include <string_view>

namespace zvf::cli {
namespace {

std::string trim(const std::string& s) {
  std::size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  std::size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

// A number, or +-inf/infinity when allow_inf. NaN is never accepted.
bool parse_number(const std::string& s, bool allow_inf, double& out) {
  std::string_view v = s;
  if (v.size() > 1 && v[0] == '+' && v[1] != '-' && v[1] != '+') v.remove_prefix(1);
  if (v.empty()) return false;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || ptr != v.data() + v.size()) return false;
  if (std::isnan(out)) return false;
  return allow_inf || std::isfinite(out);
}

std::string axis(std::size_t d) {
  static const char* kNames[] = {"x", "y", "z", "t"};
  return d < 4 ? kNames[d] : std::to_string(d);
}

}  // namespace

std::int64_t parse_integer(const std::string& flag, const std::string& text, std::int64_t lo, std::int64_t hi) {
  std::int64_t v = 0;
  const char* end = text.data() + text.size();
  const auto r = std::from_chars(text.data(), end, v);
  if (text.empty() || r.ptr != end || r.ec == std::errc::invalid_argument)
    throw UsageError(flag + ": expected a whole number, got '" + text + "'");
  if (r.ec == std::errc::result_out_of_range || v < lo || v > hi)
    throw UsageError(flag + ": " + text + " is out of range: expected " + std::to_string(lo) + " to " +
                     std::to_string(hi));
  return v;
}

std::vector<std::string> split_list(const std::string& text, char sep) {
  std::vector<std::string> out;
  if (trim(text).empty()) return out;
  std::size_t start = 0;
  for (;;) {
    std::size_t i = text.find(sep, start);
    out.push_back(trim(text.substr(start, i == std::string::npos ? std::string::npos : i - start)));
    if (i == std::string::npos) break;
    start = i + 1;
  }
  return out;
}

std::vector<double> parse_shape(const std::string& flag, const std::string& text) {
  auto bad = [&] {
    return UsageError(flag + ": expected 2 to 4 comma-separated positive numbers, got '" + text + "'");
  };
  std::vector<std::string> items = split_list(text);
  if (items.size() < 2 || items.size() > 4) throw bad();
  std::vector<double> out;
  for (const auto& item : items) {
    double v;
    if (!parse_number(item, false, v) || !(v > 0)) throw bad();
    out.push_back(v);
  }
  return out;
}

Box parse_box(const std::string& flag, const std::string& text, bool allow_inf, bool strict) {
  auto bad = [&] {
    return UsageError(flag + ": expected LO,LO[,..]:HI,HI[,..] with 2 to 4 " +
                      (allow_inf ? "numbers (or inf/-inf)" : "finite numbers") +
                      " on each side of ':', got '" + text + "'");
  };
  std::vector<std::string> sides = split_list(text, ':');
  if (sides.size() != 2) throw bad();
  Box box;
  for (int side = 0; side < 2; ++side) {
    std::vector<std::string> items = split_list(sides[side]);
    if (items.size() < 2 || items.size() > 4) throw bad();
    for (const auto& item : items) {
      double v;
      if (!parse_number(item, allow_inf, v)) throw bad();
      (side == 0 ? box.lo : box.hi).push_back(v);
    }
  }
  if (box.lo.size() != box.hi.size())
    throw UsageError(flag + ": lower corner has " + std::to_string(box.lo.size()) + " numbers but upper corner has " +
                     std::to_string(box.hi.size()) + ", in '" + text + "'");
  for (std::size_t d = 0; d < box.lo.size(); ++d)
    if (strict ? !(box.lo[d] < box.hi[d]) : !(box.lo[d] <= box.hi[d]))
      throw UsageError(flag + ": on axis " + axis(d) + " the lower end " + format_number(box.lo[d]) + " is not " +
                       (strict ? "below" : "at or below") + " the upper end " + format_number(box.hi[d]));
  return box;
}

std::pair<double, double> parse_range(const std::string& flag, const std::string& text) {
  std::vector<std::string> items = split_list(text);
  double lo, hi;
  if (items.size() != 2 || !parse_number(items[0], true, lo) || !parse_number(items[1], true, hi))
    throw UsageError(flag + ": expected LO,HI (numbers, inf or -inf), got '" + text + "'");
  if (!(lo < hi)) throw UsageError(flag + ": LO must be below HI (the range is [LO, HI)), got '" + text + "'");
  return {lo, hi};
}

std::pair<std::string, std::string> parse_assignment(const std::string& flag, const std::string& form,
                                                     const std::string& text) {
  std::size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
    throw UsageError(flag + ": expected " + form + ", got '" + text + "'");
  return {text.substr(0, eq), text.substr(eq + 1)};
}

std::pair<std::string, std::string> parse_attr_input(const std::string& text) {
  return parse_assignment("--attr-input", "NAME=FILE", text);
}

std::string format_number(double v, bool float32) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  std::to_chars_result r;
  if (float32 && std::fabs(v) <= std::numeric_limits<float>::max() && static_cast<double>(static_cast<float>(v)) == v)
    r = std::to_chars(buf, buf + sizeof(buf), static_cast<float>(v));
  else
    r = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, r.ptr);
}

std::string format_point(const std::vector<double>& p, bool float32) {
  std::string out = "[";
  for (std::size_t i = 0; i < p.size(); ++i) out += (i ? ", " : "") + format_number(p[i], float32);
  return out + "]";
}

std::string format_box(const Box& b, bool float32) {
  return format_point(b.lo, float32) + " .. " + format_point(b.hi, float32);
}

std::string format_range(const Box& b) {
  std::string out;
  for (std::size_t d = 0; d < b.ndim(); ++d) {
    if (std::isinf(b.lo[d]) && std::isinf(b.hi[d]) && b.lo[d] < 0 && b.hi[d] > 0) continue;
    if (!out.empty()) out += ", ";
    out += axis(d) + " in [" + format_number(b.lo[d]) + ", " + format_number(b.hi[d]) + ")";
  }
  return out.empty() ? "everything" : out;
}

std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-./+:,=@%") ==
                        std::string::npos)
    return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace zvf::cli
