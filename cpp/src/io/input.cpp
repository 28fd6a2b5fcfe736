// Readers and writers of plain point files (.npy, .csv, .ply) for the CLI.
// See zvf/input.hpp for the accepted formats. Plain C++: no format library.
#include "zvf/input.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "zvf/error.hpp"

static_assert(std::endian::native == std::endian::little,
              "input.cpp copies little-endian file bytes as native values");

namespace zvf {
namespace {

using Code = Error::Code;

// ---------------------------------------------------------------- small helpers

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool ends_with_ci(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && lower(std::string_view(s).substr(s.size() - suffix.size())) == suffix;
}

std::string join(const std::vector<std::string>& names, const char* sep = ", ") {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i) out += sep;
    out += names[i];
  }
  return out;
}

// Text from the file for an error message: control bytes escaped, and cut short,
// so that a binary or hostile file cannot flood the message (a header line or an
// NPY header can be megabytes).
std::string shown(std::string_view s) {
  constexpr std::size_t kMax = 160;  // characters shown, escapes included
  std::string out;
  std::size_t i = 0;
  while (i < s.size() && out.size() < kMax) {
    std::size_t j = i + 1;  // a UTF-8 character is not cut in two
    while (j < s.size() && (static_cast<unsigned char>(s[j]) & 0xc0) == 0x80) ++j;
    out += printable(s.substr(i, j - i));
    i = j;
  }
  if (i < s.size()) out += "... (" + std::to_string(s.size()) + " bytes)";
  return out;
}

std::string squote(std::string_view s) { return "'" + shown(s) + "'"; }

// Opens an input file; a missing file is NotFound, anything else IO.
std::ifstream open_input(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) invalid(path + ": is a directory, expected a file");
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    if (err == ENOENT) fail(Code::NotFound, "input file not found: " + path);
    fail(Code::IO, "cannot open " + path + ": " + (err ? std::strerror(err) : "unknown error"));
  }
  return in;
}

void check_read(const std::ifstream& in, const std::string& path) {
  if (in.bad()) fail(Code::IO, "error reading " + path);
}

// Parses a whole field as a number. Accepts a leading '+', "nan", "inf".
bool parse_double(std::string_view s, double& out) {
  if (s.size() > 1 && s[0] == '+' && s[1] != '-' && s[1] != '+') s.remove_prefix(1);
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

bool parse_int64(std::string_view s, std::int64_t& out) {
  if (s.size() > 1 && s[0] == '+' && s[1] != '-' && s[1] != '+') s.remove_prefix(1);
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

template <class Buffer, class T>
void append_pod(Buffer& b, T v) {
  std::size_t off = b.size();
  b.resize(off + sizeof(T));
  std::memcpy(b.data() + off, &v, sizeof(T));
}

template <class T>
T load(const std::uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

double value_as_double(const std::uint8_t* p, DType t) {
  switch (t) {
    case DType::F32: return load<float>(p);
    case DType::F64: return load<double>(p);
    case DType::I8: return load<std::int8_t>(p);
    case DType::I16: return load<std::int16_t>(p);
    case DType::I32: return load<std::int32_t>(p);
    case DType::I64: return static_cast<double>(load<std::int64_t>(p));
    case DType::U8: return load<std::uint8_t>(p);
    case DType::U16: return load<std::uint16_t>(p);
    case DType::U32: return load<std::uint32_t>(p);
    case DType::U64: return static_cast<double>(load<std::uint64_t>(p));
    case DType::Bool: return p[0] != 0;
    case DType::F16: return half_to_float(load<std::uint16_t>(p));
  }
  return 0;
}

std::size_t checked_bytes(std::size_t rows, std::size_t cols, std::size_t item, const std::string& what) {
  std::size_t n = 0, bytes = 0;
  if (__builtin_mul_overflow(rows, cols, &n) || __builtin_mul_overflow(n, item, &bytes))
    invalid(what + ": " + std::to_string(rows) + " x " + std::to_string(cols) + " values of " + std::to_string(item) +
            " bytes overflow the address space");
  return bytes;
}

// Output written next to the target and renamed into place on commit(), so a
// killed job never leaves a half-written result under the final name.
class OutFile {
 public:
  explicit OutFile(std::string path) : path_(std::move(path)) {
    tmp_ = path_ + ".zvftmp." + std::to_string(::getpid());
    f_ = std::fopen(tmp_.c_str(), "wb");
    if (!f_) fail(Code::IO, "cannot create " + path_ + ": " + std::strerror(errno));
  }
  OutFile(const OutFile&) = delete;
  OutFile& operator=(const OutFile&) = delete;
  ~OutFile() {
    if (f_) {
      std::fclose(f_);
      std::remove(tmp_.c_str());
    }
  }
  void write(const void* data, std::size_t n) {
    if (n && std::fwrite(data, 1, n, f_) != n) fail(Code::IO, "cannot write " + path_ + ": " + std::strerror(errno));
  }
  void write(std::string_view s) { write(s.data(), s.size()); }
  void commit() {
    bool ok = std::fflush(f_) == 0 && !std::ferror(f_);
    int err = errno;
    ok = (std::fclose(f_) == 0) && ok;
    f_ = nullptr;
    if (!ok) {
      std::remove(tmp_.c_str());
      fail(Code::IO, "cannot write " + path_ + ": " + std::strerror(err ? err : errno));
    }
    if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
      err = errno;
      std::remove(tmp_.c_str());
      fail(Code::IO, "cannot rename output into place at " + path_ + ": " + std::strerror(err));
    }
  }

 private:
  std::string path_, tmp_;
  std::FILE* f_ = nullptr;
};

// ---------------------------------------------------------------- NPY

struct NpyDescr {
  const char* descr;
  DType dtype;
};
constexpr std::array<NpyDescr, 14> kNpyDescrs{{
    {"<f4", DType::F32}, {"<f8", DType::F64}, {"<i1", DType::I8},  {"<i2", DType::I16},
    {"<i4", DType::I32}, {"<i8", DType::I64}, {"<u1", DType::U8},  {"<u2", DType::U16},
    {"<u4", DType::U32}, {"<u8", DType::U64}, {"|i1", DType::I8},  {"|u1", DType::U8},
    {"|b1", DType::Bool}, {"<f2", DType::F16},
}};
constexpr const char* kNpyAccepted = "'<f2', '<f4', '<f8', '<i1'..'<i8', '<u1'..'<u8', '|i1', '|u1', '|b1'";

const char* npy_descr(DType t) {
  switch (t) {
    case DType::I8: return "|i1";
    case DType::U8: return "|u1";
    default:
      for (const auto& d : kNpyDescrs)
        if (d.dtype == t) return d.descr;
  }
  return "?";
}

// A value of the Python literal that is an NPY header: a dict of strings,
// True/False/None, integers and tuples/lists.
struct PyValue {
  enum Kind { Str, Ident, Int, Seq, Dict } kind = Str;
  // User-provided: clang with libstdc++ in C++20 otherwise rejects the
  // self-referencing vector<pair<string, PyValue>> below (incomplete pair).
  PyValue() {}
  std::string text;  // Str: contents; Ident/Int: the token
  std::vector<PyValue> items;
  std::vector<std::pair<std::string, PyValue>> entries;
  std::string repr() const {
    switch (kind) {
      case Str: return "'" + text + "'";
      case Ident:
      case Int: return text;
      case Seq: {
        std::string s = "(";
        for (std::size_t i = 0; i < items.size(); ++i) s += (i ? ", " : "") + items[i].repr();
        return s + (items.size() == 1 ? ",)" : ")");
      }
      case Dict: return "{...}";
    }
    return "";
  }
};

class PyLiteralParser {
 public:
  PyLiteralParser(std::string_view s, const std::string& path) : s_(s), path_(path) {}
  PyValue parse() {
    PyValue v = value();
    ws();
    if (i_ != s_.size()) bad("unexpected text after the header dict");
    return v;
  }

 private:
  [[noreturn]] void bad(const std::string& why) {
    invalid(path_ + ": malformed NPY header (" + why + "): " + shown(trim(s_)));
  }
  void ws() {
    while (i_ < s_.size() && is_space(s_[i_])) ++i_;
  }
  bool eat(char c) {
    ws();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  PyValue value() {
    ws();
    if (i_ >= s_.size()) bad("unexpected end");
    // numpy's headers nest a few levels (a structured descr: a list of tuples of
    // shapes); the limit keeps a header of brackets from overflowing the stack.
    // (After a throw the parser is not used again, so only returns step back.)
    if (++depth_ > kMaxDepth) bad("nested deeper than " + std::to_string(kMaxDepth) + " levels");
    char c = s_[i_];
    PyValue v;
    if (c == '\'' || c == '"') {
      ++i_;
      std::size_t start = i_;
      while (i_ < s_.size() && s_[i_] != c) ++i_;
      if (i_ >= s_.size()) bad("unterminated string");
      v.kind = PyValue::Str;
      v.text = std::string(s_.substr(start, i_ - start));
      ++i_;
    } else if (c == '{') {
      ++i_;
      v.kind = PyValue::Dict;
      while (!eat('}')) {
        PyValue key = value();
        if (key.kind != PyValue::Str) bad("dict key is not a string");
        if (!eat(':')) bad("expected ':'");
        v.entries.emplace_back(key.text, value());
        if (!eat(',')) {
          if (!eat('}')) bad("expected ',' or '}'");
          break;
        }
      }
    } else if (c == '(' || c == '[') {
      char close = c == '(' ? ')' : ']';
      ++i_;
      v.kind = PyValue::Seq;
      while (!eat(close)) {
        v.items.push_back(value());
        if (!eat(',')) {
          if (!eat(close)) bad(std::string("expected ',' or '") + close + "'");
          break;
        }
      }
    } else if (std::isdigit(static_cast<unsigned char>(c)) || c == '-') {
      std::size_t start = i_++;
      while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
      v.kind = PyValue::Int;
      v.text = std::string(s_.substr(start, i_ - start));
      if (i_ < s_.size() && (s_[i_] == 'L' || s_[i_] == 'l')) ++i_;  // Python 2 long
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      std::size_t start = i_;
      while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '_')) ++i_;
      v.kind = PyValue::Ident;
      v.text = std::string(s_.substr(start, i_ - start));
    } else {
      bad("unexpected character " + squote(std::string_view(&c, 1)));
    }
    --depth_;
    return v;
  }

  static constexpr int kMaxDepth = 32;
  std::string_view s_;
  const std::string& path_;
  std::size_t i_ = 0;
  int depth_ = 0;
};

// ---------------------------------------------------------------- CSV

// Splits one CSV line at commas outside double quotes. Fields are raw (untrimmed,
// still quoted). Returns false for an unterminated quote.
bool split_csv(std::string_view line, std::vector<std::string_view>& out) {
  out.clear();
  std::size_t start = 0;
  bool in_quotes = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (c == '"') {
      in_quotes = !in_quotes;  // "" inside quotes toggles twice: stays quoted
    } else if (c == ',' && !in_quotes) {
      out.push_back(line.substr(start, i - start));
      start = i + 1;
    }
  }
  out.push_back(line.substr(start));
  return !in_quotes;
}

// Trims a field and strips its surrounding quotes (value fields: no unescaping).
std::string_view field_view(std::string_view f) {
  f = trim(f);
  if (f.size() >= 2 && f.front() == '"' && f.back() == '"') f = trim(f.substr(1, f.size() - 2));
  return f;
}

// Header names: trimmed, unquoted, "" -> ".
std::string field_name(std::string_view f) {
  f = trim(f);
  if (f.size() >= 2 && f.front() == '"' && f.back() == '"') {
    std::string out;
    std::string_view in = f.substr(1, f.size() - 2);
    for (std::size_t i = 0; i < in.size(); ++i) {
      out += in[i];
      if (in[i] == '"' && i + 1 < in.size() && in[i + 1] == '"') ++i;
    }
    return out;
  }
  return std::string(f);
}

// Resolves the position and attribute columns among `names` (CSV header or PLY
// vertex properties). `usable[i]` false marks names that cannot be selected
// (PLY list properties); `what` is "column" or "property".
struct Selection {
  std::vector<std::size_t> positions;
  std::vector<std::size_t> attributes;
};

Selection select_columns(const std::vector<std::string>& names, const std::vector<bool>& usable,
                         const TableOptions& options, const std::string& where, const char* what) {
  auto listing = [&] { return " (" + std::string(what) + "s: " + shown(join(names)) + ")"; };
  auto find_exact = [&](const std::string& n) -> std::optional<std::size_t> {
    for (std::size_t i = 0; i < names.size(); ++i)
      if (names[i] == n) return i;
    return std::nullopt;
  };
  auto find_ci = [&](const std::string& n) -> std::optional<std::size_t> {
    if (auto i = find_exact(n)) return i;
    for (std::size_t i = 0; i < names.size(); ++i)
      if (lower(names[i]) == n) return i;
    return std::nullopt;
  };
  auto check_usable = [&](std::size_t i) {
    if (!usable[i]) invalid(where + ": " + what + " " + squote(names[i]) + " is a list property and cannot be used");
  };

  Selection sel;
  std::vector<bool> taken(names.size(), false);
  if (options.position_columns.empty()) {
    for (const char* axis : {"x", "y", "z"}) {
      auto i = find_ci(axis);
      if (!i) {
        if (std::string(axis) == "z") break;
        invalid(where + ": no " + what + " named " + squote(axis) + listing() +
                "; choose the position " + what + "s explicitly (--position-columns)");
      }
      check_usable(*i);
      sel.positions.push_back(*i);
      taken[*i] = true;
    }
  } else {
    for (const auto& n : options.position_columns) {
      auto i = find_exact(n);
      if (!i) invalid(where + ": no " + what + " named " + squote(n) + listing());
      if (taken[*i]) invalid(where + ": position " + what + " " + squote(n) + " is named twice");
      check_usable(*i);
      sel.positions.push_back(*i);
      taken[*i] = true;
    }
  }
  if (!options.attribute_columns) {
    for (std::size_t i = 0; i < names.size(); ++i)
      if (!taken[i] && usable[i]) sel.attributes.push_back(i);
  } else {
    std::vector<bool> attr_taken(names.size(), false);
    for (const auto& n : *options.attribute_columns) {
      auto i = find_exact(n);
      if (!i) invalid(where + ": no " + what + " named " + squote(n) + listing());
      if (taken[*i]) invalid(where + ": " + what + " " + squote(n) + " is a position and cannot also be an attribute");
      if (attr_taken[*i]) invalid(where + ": attribute " + what + " " + squote(n) + " is named twice");
      check_usable(*i);
      sel.attributes.push_back(*i);
      attr_taken[*i] = true;
    }
  }
  return sel;
}

void check_positions_dtype(const TableOptions& options) {
  if (options.positions_dtype && !is_position_dtype(*options.positions_dtype))
    invalid(std::string("cannot convert positions to ") + dtype_name(*options.positions_dtype) +
            "; expected float32 or float64");
}

void convert_positions_in_place(PointCloud& cloud, const TableOptions& options, const std::string& path) {
  check_positions_dtype(options);
  if (options.positions_dtype && *options.positions_dtype != cloud.positions.dtype)
    cloud.positions = convert_dtype(cloud.positions, *options.positions_dtype, path + ": positions");
}

// ---------------------------------------------------------------- PLY

struct PlyProperty {
  std::string name;
  DType type = DType::F32;
  bool is_list = false;
  DType count_type = DType::U8;
};

struct PlyElement {
  std::string name;
  std::uint64_t count = 0;
  std::vector<PlyProperty> props;
};

std::optional<DType> ply_type(const std::string& t) {
  static const std::pair<const char*, DType> kTypes[] = {
      {"char", DType::I8},     {"int8", DType::I8},     {"uchar", DType::U8},   {"uint8", DType::U8},
      {"short", DType::I16},   {"int16", DType::I16},   {"ushort", DType::U16}, {"uint16", DType::U16},
      {"int", DType::I32},     {"int32", DType::I32},   {"uint", DType::U32},   {"uint32", DType::U32},
      {"float", DType::F32},   {"float32", DType::F32}, {"double", DType::F64}, {"float64", DType::F64},
  };
  for (const auto& [name, dt] : kTypes)
    if (t == name) return dt;
  return std::nullopt;
}

std::vector<std::string_view> split_ws(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && is_space(line[i])) ++i;
    std::size_t start = i;
    while (i < line.size() && !is_space(line[i])) ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

// Source of PLY values: ASCII (one element row per line) or little-endian binary.
class PlySource {
 public:
  PlySource(std::ifstream& in, const std::string& path, bool ascii, std::size_t lineno)
      : in_(in), path_(path), ascii_(ascii), lineno_(lineno) {
    if (!ascii_) buf_.resize(1 << 20);
  }

  // Starts a row of `element`: in ASCII, the next non-blank line. Returns false at
  // end of data.
  bool begin_row(const std::string& element) {
    element_ = &element;
    if (!ascii_) return true;
    do {
      if (!std::getline(in_, line_)) {
        check_read(in_, path_);
        return false;
      }
      ++lineno_;
      toks_ = split_ws(line_);
      tok_i_ = 0;
    } while (toks_.empty());
    return true;
  }

  // Ends the row: in ASCII, the line must hold nothing more. A value too many or
  // too few would otherwise shift every later value into the wrong property.
  void end_row() {
    if (ascii_ && tok_i_ < toks_.size())
      invalid(path_ + ":" + std::to_string(lineno_) + ": element " + squote(*element_) + " has " +
              std::to_string(toks_.size()) + " values on this line, more than its properties take (" +
              std::to_string(tok_i_) + "); an ASCII PLY row is one line");
  }

  // Reads one value of type t into raw[0..dtype_size(t)) as native bytes.
  // Returns false at end of data (binary).
  bool read(DType t, std::uint8_t* raw, const std::string& prop) {
    if (!ascii_) return read_bytes(raw, dtype_size(t));
    if (tok_i_ >= toks_.size())
      invalid(path_ + ":" + std::to_string(lineno_) + ": element " + squote(*element_) + " ends after " +
              std::to_string(toks_.size()) + " values, before property " + squote(prop) +
              "; an ASCII PLY row is one line");
    parse_ascii(toks_[tok_i_++], t, raw, prop);
    return true;
  }
  std::size_t lineno() const { return lineno_; }

 private:
  bool read_bytes(std::uint8_t* dst, std::size_t n) {
    while (n) {
      if (pos_ == len_) {
        in_.read(reinterpret_cast<char*>(buf_.data()), static_cast<std::streamsize>(buf_.size()));
        check_read(in_, path_);
        len_ = static_cast<std::size_t>(in_.gcount());
        pos_ = 0;
        if (len_ == 0) return false;
      }
      std::size_t k = std::min(n, len_ - pos_);
      std::memcpy(dst, buf_.data() + pos_, k);
      pos_ += k;
      dst += k;
      n -= k;
    }
    return true;
  }

  void parse_ascii(std::string_view tok, DType t, std::uint8_t* raw, const std::string& prop) {
    auto where = [&] {
      return path_ + ":" + std::to_string(lineno_) + ": property " + squote(prop) + " (" + dtype_name(t) + "): ";
    };
    if (is_float(t)) {
      double d;
      if (!parse_double(tok, d)) invalid(where() + "cannot parse " + squote(tok) + " as a number");
      if (t == DType::F32) {
        float f = static_cast<float>(d);
        std::memcpy(raw, &f, 4);
      } else if (t == DType::F16) {
        const std::uint16_t h = half_from_double(d);
        std::memcpy(raw, &h, 2);
      } else {
        std::memcpy(raw, &d, 8);
      }
      return;
    }
    std::int64_t v;
    if (!parse_int64(tok, v)) {
      double d;  // tolerate "3.0" for an integer property
      if (!parse_double(tok, d) || d != std::floor(d) || std::abs(d) > 9.0e15)
        invalid(where() + "cannot parse " + squote(tok) + " as an integer");
      v = static_cast<std::int64_t>(d);
    }
    auto put = [&](auto typed) {
      using T = decltype(typed);
      if (v < static_cast<std::int64_t>(std::numeric_limits<T>::min()) ||
          v > static_cast<std::int64_t>(std::numeric_limits<T>::max()))
        invalid(where() + "value " + squote(tok) + " is out of range");
      T x = static_cast<T>(v);
      std::memcpy(raw, &x, sizeof(T));
    };
    switch (t) {
      case DType::I8: put(std::int8_t{}); break;
      case DType::U8: put(std::uint8_t{}); break;
      case DType::I16: put(std::int16_t{}); break;
      case DType::U16: put(std::uint16_t{}); break;
      case DType::I32: put(std::int32_t{}); break;
      case DType::U32: put(std::uint32_t{}); break;
      default: invalid(where() + "unsupported type");
    }
  }

  std::ifstream& in_;
  const std::string& path_;
  bool ascii_;
  std::size_t lineno_;
  const std::string* element_ = nullptr;
  // binary
  std::vector<std::uint8_t> buf_;
  std::size_t pos_ = 0, len_ = 0;
  // ascii
  std::string line_;
  std::vector<std::string_view> toks_;
  std::size_t tok_i_ = 0;
};

std::int64_t count_value(const std::uint8_t* raw, DType t) {
  switch (t) {
    case DType::I8: return load<std::int8_t>(raw);
    case DType::U8: return load<std::uint8_t>(raw);
    case DType::I16: return load<std::int16_t>(raw);
    case DType::U16: return load<std::uint16_t>(raw);
    case DType::I32: return load<std::int32_t>(raw);
    case DType::U32: return load<std::uint32_t>(raw);
    default: return -1;
  }
}

// ---------------------------------------------------------------- text output

// The shortest decimal that reads back as the same float16 (as numpy prints it,
// e.g. 65504 as 65500):
// to_chars has no binary16 overload before C++23, and binary16 needs at most 5
// significant digits, so try 1..5.
std::to_chars_result half_to_chars(char* b, char* e, std::uint16_t bits) {
  const float v = half_to_float(bits);
  if (!std::isfinite(v)) return std::to_chars(b, e, v);
  std::to_chars_result r{};
  for (int digits = 1; digits <= 5; ++digits) {
    r = std::to_chars(b, e, v, std::chars_format::general, digits);
    double back = 0;
    std::from_chars(b, r.ptr, back);
    // Shortest double text of those digits: 65500, not "6.55e+04".
    if (half_from_double(back) == bits) return std::to_chars(b, e, back);
  }
  return r;
}

void append_number(std::string& out, const std::uint8_t* p, DType t) {
  char buf[64];
  std::to_chars_result r{};
  char* b = buf;
  char* e = buf + sizeof(buf);
  switch (t) {
    case DType::F32: r = std::to_chars(b, e, load<float>(p)); break;
    case DType::F64: r = std::to_chars(b, e, load<double>(p)); break;
    case DType::I8: r = std::to_chars(b, e, static_cast<int>(load<std::int8_t>(p))); break;
    case DType::I16: r = std::to_chars(b, e, load<std::int16_t>(p)); break;
    case DType::I32: r = std::to_chars(b, e, load<std::int32_t>(p)); break;
    case DType::I64: r = std::to_chars(b, e, load<std::int64_t>(p)); break;
    case DType::U8: r = std::to_chars(b, e, static_cast<unsigned>(load<std::uint8_t>(p))); break;
    case DType::U16: r = std::to_chars(b, e, load<std::uint16_t>(p)); break;
    case DType::U32: r = std::to_chars(b, e, load<std::uint32_t>(p)); break;
    case DType::U64: r = std::to_chars(b, e, load<std::uint64_t>(p)); break;
    case DType::Bool: r = std::to_chars(b, e, p[0] != 0 ? 1 : 0); break;  // 0/1, so the CSV reads back as numbers
    case DType::F16: r = half_to_chars(b, e, load<std::uint16_t>(p)); break;
  }
  out.append(buf, r.ptr);
}

std::string csv_escape(const std::string& name) {
  if (name.find_first_of(",\"\r\n") == std::string::npos && trim(name).size() == name.size()) return name;
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string category_text(const std::vector<std::string>& categories, const std::uint8_t* p, DType t,
                          const std::string& name) {
  const double code = value_as_double(p, t);
  if (!(code >= 0 && code < static_cast<double>(categories.size()))) {
    std::string shown;
    append_number(shown, p, t);
    fail(Code::Corrupt, "attribute " + squote(name) + " holds code " + shown + ", beyond its " +
                            std::to_string(categories.size()) + " categories");
  }
  return csv_escape(categories[static_cast<std::size_t>(code)]);
}

void check_rows(const PointCloud& cloud) {
  for (const auto& [name, arr] : cloud.attributes)
    if (arr.rows != cloud.positions.rows)
      invalid("attribute " + squote(name) + " has " + std::to_string(arr.rows) + " rows but positions have " +
              std::to_string(cloud.positions.rows));
}

}  // namespace

// ================================================================ public API

FileFormat file_format(const std::string& path) {
  if (ends_with_ci(path, ".npy")) return FileFormat::Npy;
  if (ends_with_ci(path, ".csv")) return FileFormat::Csv;
  if (ends_with_ci(path, ".ply")) return FileFormat::Ply;
  invalid(path + ": unknown file type; expected a .npy, .csv or .ply file");
}

ArrayView view_of(const OwnedArray& a) {
  ArrayView v;
  v.data = a.data.data();
  v.dtype = a.dtype;
  v.rows = a.rows;
  v.cols = a.cols;
  v.one_d = a.one_d;
  return v;
}

std::vector<std::string> axis_names(std::size_t ndim) {
  static const char* kNames[] = {"x", "y", "z", "t"};
  std::vector<std::string> out;
  for (std::size_t d = 0; d < ndim; ++d) out.push_back(d < 4 ? kNames[d] : "axis" + std::to_string(d));
  return out;
}

namespace {

// One element as the widest type of its kind.
struct Scalar {
  enum Kind { Signed, Unsigned, Float } kind;
  std::int64_t s = 0;
  std::uint64_t u = 0;
  double d = 0;
};

Scalar load_scalar(const std::uint8_t* p, DType t) {
  switch (t) {
    case DType::F32: return {Scalar::Float, 0, 0, load<float>(p)};
    case DType::F64: return {Scalar::Float, 0, 0, load<double>(p)};
    case DType::I8: return {Scalar::Signed, load<std::int8_t>(p)};
    case DType::I16: return {Scalar::Signed, load<std::int16_t>(p)};
    case DType::I32: return {Scalar::Signed, load<std::int32_t>(p)};
    case DType::I64: return {Scalar::Signed, load<std::int64_t>(p)};
    case DType::U8: return {Scalar::Unsigned, 0, load<std::uint8_t>(p)};
    case DType::U16: return {Scalar::Unsigned, 0, load<std::uint16_t>(p)};
    case DType::U32: return {Scalar::Unsigned, 0, load<std::uint32_t>(p)};
    case DType::U64: return {Scalar::Unsigned, 0, load<std::uint64_t>(p)};
    case DType::Bool: return {Scalar::Unsigned, 0, p[0] != 0 ? 1u : 0u};
    case DType::F16: return {Scalar::Float, 0, 0, half_to_float(load<std::uint16_t>(p))};
  }
  return {Scalar::Float};
}

std::string scalar_text(const Scalar& v) {
  if (v.kind == Scalar::Signed) return std::to_string(v.s);
  if (v.kind == Scalar::Unsigned) return std::to_string(v.u);
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), v.d);
  return std::string(buf, r.ptr);
}

// Stores v as T; false if T cannot hold it exactly (integers only; floats round).
template <class T>
bool store_as(const Scalar& v, std::uint8_t* out) {
  T x{};
  if constexpr (std::is_floating_point_v<T>) {
    x = v.kind == Scalar::Float ? static_cast<T>(v.d)
        : v.kind == Scalar::Signed ? static_cast<T>(v.s) : static_cast<T>(v.u);
  } else {
    using L = std::numeric_limits<T>;
    if (v.kind == Scalar::Signed) {
      if (std::is_unsigned_v<T> ? v.s < 0 || static_cast<std::uint64_t>(v.s) > static_cast<std::uint64_t>(L::max())
                                : v.s < static_cast<std::int64_t>(L::min()) || v.s > static_cast<std::int64_t>(L::max()))
        return false;
      x = static_cast<T>(v.s);
    } else if (v.kind == Scalar::Unsigned) {
      if (v.u > static_cast<std::uint64_t>(L::max())) return false;
      x = static_cast<T>(v.u);
    } else {
      // Whole numbers in range only; 2^63 and 2^64 are the first doubles past int64/uint64.
      if (!std::isfinite(v.d) || v.d != std::floor(v.d)) return false;
      if (v.d < static_cast<double>(L::min()) || v.d >= std::ldexp(1.0, L::digits)) return false;
      x = static_cast<T>(v.d);
    }
  }
  std::memcpy(out, &x, sizeof(T));
  return true;
}

bool store_scalar(const Scalar& v, DType t, std::uint8_t* out) {
  switch (t) {
    case DType::F32: return store_as<float>(v, out);
    case DType::F64: return store_as<double>(v, out);
    case DType::I8: return store_as<std::int8_t>(v, out);
    case DType::I16: return store_as<std::int16_t>(v, out);
    case DType::I32: return store_as<std::int32_t>(v, out);
    case DType::I64: return store_as<std::int64_t>(v, out);
    case DType::U8: return store_as<std::uint8_t>(v, out);
    case DType::U16: return store_as<std::uint16_t>(v, out);
    case DType::U32: return store_as<std::uint32_t>(v, out);
    case DType::U64: return store_as<std::uint64_t>(v, out);
    case DType::Bool: {  // 0 and 1 only: any other value would not read back
      std::uint8_t b = 0;
      if (!store_as<std::uint8_t>(v, &b) || b > 1) return false;
      *out = b;
      return true;
    }
    case DType::F16: {  // rounds, as the other float conversions do
      const double d = v.kind == Scalar::Float ? v.d : v.kind == Scalar::Signed ? static_cast<double>(v.s) : static_cast<double>(v.u);
      const std::uint16_t h = half_from_double(d);
      std::memcpy(out, &h, 2);
      return true;
    }
  }
  return false;
}

}  // namespace

OwnedArray convert_dtype(const OwnedArray& a, DType to, const std::string& what) {
  if (a.dtype == to) return a;
  OwnedArray out;
  out.dtype = to;
  out.rows = a.rows;
  out.cols = a.cols;
  out.one_d = a.one_d;
  const std::size_t n = a.rows * a.cols, in_size = dtype_size(a.dtype), out_size = dtype_size(to);
  out.data.resize(n * out_size);
  for (std::size_t i = 0; i < n; ++i) {
    Scalar v = load_scalar(a.data.data() + i * in_size, a.dtype);
    if (!store_scalar(v, to, out.data.data() + i * out_size))
      invalid(what + ": value " + scalar_text(v) + " in row " + std::to_string(i / a.cols) + " does not fit " +
              dtype_name(to));
  }
  return out;
}

// ---------------------------------------------------------------- NPY

OwnedArray read_npy(const std::string& path) {
  std::ifstream in = open_input(path);
  char pre[10];
  in.read(pre, 8);
  check_read(in, path);
  if (in.gcount() != 8 || std::memcmp(pre, "\x93NUMPY", 6) != 0) invalid(path + ": not an NPY file (bad magic)");
  int major = static_cast<unsigned char>(pre[6]), minor = static_cast<unsigned char>(pre[7]);
  std::size_t header_len = 0;
  if (major == 1) {
    unsigned char l[2];
    in.read(reinterpret_cast<char*>(l), 2);
    if (in.gcount() != 2) invalid(path + ": truncated NPY header");
    header_len = l[0] | (l[1] << 8);
  } else if (major == 2 || major == 3) {
    unsigned char l[4];
    in.read(reinterpret_cast<char*>(l), 4);
    if (in.gcount() != 4) invalid(path + ": truncated NPY header");
    header_len = std::size_t(l[0]) | (std::size_t(l[1]) << 8) | (std::size_t(l[2]) << 16) | (std::size_t(l[3]) << 24);
  } else {
    invalid(path + ": unsupported NPY format version " + std::to_string(major) + "." + std::to_string(minor) +
            " (supported: 1.0, 2.0, 3.0)");
  }
  if (header_len > (std::size_t(1) << 24)) invalid(path + ": NPY header length " + std::to_string(header_len) + " is implausible");
  // The file size, where the filesystem knows it: what a header claims is
  // checked against it before anything is allocated for the claim.
  std::error_code size_ec;
  const std::uintmax_t file_size = std::filesystem::file_size(path, size_ec);
  const bool sized = !size_ec;
  if (sized && file_size < static_cast<std::uintmax_t>(in.tellg()) + header_len)
    invalid(path + ": truncated NPY header: its length field says " + std::to_string(header_len) + " bytes, the file has " +
            std::to_string(file_size - static_cast<std::uintmax_t>(in.tellg())) + " after it");
  std::string header(header_len, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_len));
  check_read(in, path);
  if (static_cast<std::size_t>(in.gcount()) != header_len) invalid(path + ": truncated NPY header");

  PyValue dict = PyLiteralParser(header, path).parse();
  if (dict.kind != PyValue::Dict) invalid(path + ": NPY header is not a dict: " + shown(trim(header)));
  const PyValue* descr = nullptr;
  const PyValue* fortran = nullptr;
  const PyValue* shape = nullptr;
  for (const auto& [k, v] : dict.entries) {
    if (k == "descr") descr = &v;
    else if (k == "fortran_order") fortran = &v;
    else if (k == "shape") shape = &v;
  }
  if (!descr || !fortran || !shape)
    invalid(path + ": NPY header lacks 'descr', 'fortran_order' or 'shape': " + shown(trim(header)));

  if (descr->kind != PyValue::Str)
    invalid(path + ": structured dtype " + shown(descr->repr()) + " is not supported; expected one of " + kNpyAccepted);
  std::optional<DType> dtype;
  for (const auto& d : kNpyDescrs)
    if (descr->text == d.descr) dtype = d.dtype;
  if (!dtype) {
    std::string why;
    if (!descr->text.empty() && descr->text[0] == '>') why = " (big-endian; convert with arr.astype(arr.dtype.newbyteorder('<')))";
    invalid(path + ": unsupported dtype " + squote(descr->text) + why + "; expected one of " + kNpyAccepted);
  }

  if (fortran->kind != PyValue::Ident || (fortran->text != "True" && fortran->text != "False"))
    invalid(path + ": bad fortran_order value " + shown(fortran->repr()) + "; expected True or False");
  if (fortran->text == "True")
    invalid(path + ": fortran_order is True; only C-order arrays are supported (save np.ascontiguousarray(arr))");

  const std::string shape_text = shown(shape->repr());
  if (shape->kind != PyValue::Seq) invalid(path + ": bad shape value " + shape_text + "; expected a tuple of integers");
  std::vector<std::size_t> dims;
  for (const auto& item : shape->items) {
    std::uint64_t n = 0;
    auto [ptr, ec] = std::from_chars(item.text.data(), item.text.data() + item.text.size(), n);
    if (item.kind != PyValue::Int || ec != std::errc() || ptr != item.text.data() + item.text.size())
      invalid(path + ": bad shape value " + shape_text + "; expected a tuple of integers");
    dims.push_back(static_cast<std::size_t>(n));
  }
  if (dims.empty() || dims.size() > 2)
    invalid(path + ": shape " + shape_text + " is " + std::to_string(dims.size()) +
            "-D; expected a 1-D (N,) or 2-D (N, C) array");

  OwnedArray out;
  out.dtype = *dtype;
  out.rows = dims[0];
  out.one_d = dims.size() == 1;
  out.cols = out.one_d ? 1 : dims[1];
  std::size_t bytes = checked_bytes(out.rows, out.cols, dtype_size(out.dtype), path + ": shape " + shape_text);
  // Compared as "needed > left" (data_start + bytes could wrap around): a
  // header may claim any shape, the file must hold it.
  const std::uintmax_t data_start = static_cast<std::uintmax_t>(in.tellg());
  if (sized && bytes > file_size - data_start)
    invalid(path + ": truncated NPY data: shape " + shape_text + " of '" + descr->text + "' needs " +
            std::to_string(bytes) + " bytes, the file has " + std::to_string(file_size - data_start));
  // Read in steps, so that a file of unknown size (a pipe) is never allocated
  // more than it has delivered plus one step.
  constexpr std::size_t kStep = std::size_t(64) << 20;
  std::size_t got = 0;
  while (got < bytes) {
    const std::size_t want = std::min(bytes - got, kStep);
    out.data.resize(got + want);
    in.read(reinterpret_cast<char*>(out.data.data() + got), static_cast<std::streamsize>(want));
    check_read(in, path);
    got += static_cast<std::size_t>(in.gcount());
    if (static_cast<std::size_t>(in.gcount()) != want)
      invalid(path + ": truncated NPY data: expected " + std::to_string(bytes) + " bytes, read " + std::to_string(got));
  }
  return out;
}

void write_npy(const std::string& path, const OwnedArray& a) {
  std::size_t bytes = checked_bytes(a.rows, a.cols, dtype_size(a.dtype), path);
  if (a.data.size() != bytes)
    invalid(path + ": array holds " + std::to_string(a.data.size()) + " bytes, its shape needs " + std::to_string(bytes));
  std::string shape = a.one_d ? "(" + std::to_string(a.rows) + ",)"
                              : "(" + std::to_string(a.rows) + ", " + std::to_string(a.cols) + ")";
  std::string dict = std::string("{'descr': '") + npy_descr(a.dtype) + "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Pad with spaces so magic + version + length + dict + '\n' is a multiple of 64.
  std::size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';
  std::string pre = "\x93NUMPY";
  pre += '\x01';
  pre += '\x00';
  pre += static_cast<char>(dict.size() & 0xff);
  pre += static_cast<char>((dict.size() >> 8) & 0xff);
  OutFile f(path);
  f.write(pre);
  f.write(dict);
  f.write(a.data.data(), a.data.size());
  f.commit();
}

// ---------------------------------------------------------------- CSV

PointCloud read_csv(const std::string& path, const TableOptions& options) {
  std::ifstream in = open_input(path);
  std::string line;
  std::size_t lineno = 0;
  std::vector<std::string_view> fields;

  // Header: the first non-blank line.
  std::vector<std::string> names;
  // Column of each name, to find a repeated one without comparing all pairs
  // (a header of 2*10^5 columns took a minute).
  std::unordered_map<std::string, std::size_t> column_of;
  while (std::getline(in, line)) {
    ++lineno;
    std::string_view l = line;
    if (lineno == 1 && l.substr(0, 3) == "\xEF\xBB\xBF") l.remove_prefix(3);  // UTF-8 BOM
    if (trim(l).empty()) continue;
    if (!split_csv(l, fields)) invalid(path + ":" + std::to_string(lineno) + ": unterminated quote in header");
    for (std::size_t i = 0; i < fields.size(); ++i) {
      names.push_back(field_name(fields[i]));
      if (names.back().empty()) invalid(path + ":" + std::to_string(lineno) + ": column " + std::to_string(i + 1) + " has an empty name");
      if (auto [it, fresh] = column_of.emplace(names.back(), i); !fresh)
        invalid(path + ":" + std::to_string(lineno) + ": column " + squote(names.back()) + " appears twice (columns " +
                std::to_string(it->second + 1) + " and " + std::to_string(i + 1) + ")");
    }
    break;
  }
  check_read(in, path);
  if (names.empty()) invalid(path + ": empty file; expected a header row such as x,y,z");

  Selection sel = select_columns(names, std::vector<bool>(names.size(), true), options, path, "column");
  const std::size_t ndim = sel.positions.size();

  struct AttrCol {
    std::size_t field;
    bool is_int = true;
    ArrayBytes data;  // int64 or float64 values (both 8 bytes: converted in place on switch)
  };
  std::vector<AttrCol> attrs;
  for (std::size_t f : sel.attributes) attrs.push_back({f, true, {}});
  ArrayBytes pos;
  std::size_t rows = 0;

  auto bad_number = [&](std::size_t field, std::string_view text, const char* expected) {
    return Error(Code::InvalidArgument, path + ":" + std::to_string(lineno) + ": column " + squote(names[field]) + " (" + std::to_string(field + 1) +
            "): cannot parse " + (text.empty() ? std::string("an empty value") : squote(text)) + " as " + expected);
  };

  while (std::getline(in, line)) {
    ++lineno;
    std::string_view l = line;
    if (trim(l).empty()) continue;
    if (!split_csv(l, fields)) invalid(path + ":" + std::to_string(lineno) + ": unterminated quote");
    if (fields.size() != names.size())
      invalid(path + ":" + std::to_string(lineno) + ": expected " + std::to_string(names.size()) +
              " fields as in the header, got " + std::to_string(fields.size()));
    for (std::size_t d = 0; d < ndim; ++d) {
      std::string_view t = field_view(fields[sel.positions[d]]);
      double v;
      if (!parse_double(t, v)) throw bad_number(sel.positions[d], t, "a number");
      append_pod(pos, v);
    }
    for (auto& a : attrs) {
      std::string_view t = field_view(fields[a.field]);
      if (a.is_int) {
        std::int64_t iv;
        if (parse_int64(t, iv)) {
          append_pod(a.data, iv);
          continue;
        }
        double dv;
        if (!parse_double(t, dv)) throw bad_number(a.field, t, "a number");
        // First non-integer: the column becomes float64.
        for (std::size_t off = 0; off < a.data.size(); off += 8) {
          double c = static_cast<double>(load<std::int64_t>(a.data.data() + off));
          std::memcpy(a.data.data() + off, &c, 8);
        }
        a.is_int = false;
        append_pod(a.data, dv);
      } else {
        double dv;
        if (!parse_double(t, dv)) throw bad_number(a.field, t, "a number");
        append_pod(a.data, dv);
      }
    }
    ++rows;
  }
  check_read(in, path);

  PointCloud cloud;
  cloud.positions.dtype = DType::F64;
  cloud.positions.rows = rows;
  cloud.positions.cols = ndim;
  cloud.positions.one_d = false;
  cloud.positions.data = std::move(pos);
  for (auto& a : attrs) {
    OwnedArray arr;
    arr.dtype = (a.is_int && rows > 0) ? DType::I64 : DType::F64;
    arr.rows = rows;
    arr.cols = 1;
    arr.one_d = true;
    arr.data = std::move(a.data);
    cloud.attributes.emplace_back(names[a.field], std::move(arr));
  }
  convert_positions_in_place(cloud, options, path);
  return cloud;
}

// ---------------------------------------------------------------- PLY

PointCloud read_ply(const std::string& path, const TableOptions& options) {
  std::ifstream in = open_input(path);
  std::string line;
  std::size_t lineno = 0;
  auto where = [&] { return path + ":" + std::to_string(lineno); };

  auto next_header_line = [&]() -> std::vector<std::string_view> {
    if (!std::getline(in, line)) {
      check_read(in, path);
      invalid(path + ": PLY header ends before 'end_header'");
    }
    ++lineno;
    return split_ws(line);
  };

  auto first = next_header_line();
  if (first.size() != 1 || first[0] != "ply") invalid(path + ": not a PLY file (first line is not 'ply')");

  std::string format;
  std::vector<PlyElement> elements;
  // The last element's property names: repeats found without comparing all pairs.
  std::unordered_set<std::string> prop_names;
  for (;;) {
    auto tok = next_header_line();
    if (tok.empty()) continue;
    if (tok[0] == "end_header") break;
    if (tok[0] == "comment" || tok[0] == "obj_info") continue;
    if (tok[0] == "format") {
      if (tok.size() < 2) invalid(where() + ": 'format' without a value");
      format = std::string(tok[1]);
      if (format != "ascii" && format != "binary_little_endian")
        invalid(where() + ": PLY format " + squote(format) + " is not supported (ascii and binary_little_endian are)");
    } else if (tok[0] == "element") {
      std::uint64_t n = 0;
      if (tok.size() != 3 || std::from_chars(tok[2].data(), tok[2].data() + tok[2].size(), n).ptr != tok[2].data() + tok[2].size())
        invalid(where() + ": malformed element line " + squote(trim(line)) + "; expected 'element NAME COUNT'");
      elements.push_back({std::string(tok[1]), n, {}});
      prop_names.clear();
    } else if (tok[0] == "property") {
      if (elements.empty()) invalid(where() + ": 'property' before any 'element'");
      PlyProperty p;
      if (tok.size() == 5 && tok[1] == "list") {
        auto ct = ply_type(std::string(tok[2]));
        auto it = ply_type(std::string(tok[3]));
        if (!ct || is_float(*ct)) invalid(where() + ": bad list count type " + squote(tok[2]) + "; expected an integer type");
        if (!it) invalid(where() + ": unknown PLY property type " + squote(tok[3]));
        p = {std::string(tok[4]), *it, true, *ct};
      } else if (tok.size() == 3) {
        auto t = ply_type(std::string(tok[1]));
        if (!t) invalid(where() + ": unknown PLY property type " + squote(tok[1]));
        p = {std::string(tok[2]), *t, false, DType::U8};
      } else {
        invalid(where() + ": malformed property line " + squote(trim(line)) +
                "; expected 'property TYPE NAME' or 'property list COUNT_TYPE TYPE NAME'");
      }
      if (!prop_names.insert(p.name).second) invalid(where() + ": property " + squote(p.name) + " appears twice");
      elements.back().props.push_back(std::move(p));
    } else {
      invalid(where() + ": unknown PLY header line " + squote(trim(line)));
    }
  }
  if (format.empty()) invalid(path + ": PLY header has no 'format' line");
  auto vit = std::find_if(elements.begin(), elements.end(), [](const PlyElement& e) { return e.name == "vertex"; });
  if (vit == elements.end()) invalid(path + ": PLY file has no 'element vertex'");
  const PlyElement& vertex = *vit;

  std::vector<std::string> names;
  std::vector<bool> usable;
  for (const auto& p : vertex.props) {
    names.push_back(p.name);
    usable.push_back(!p.is_list);
  }
  Selection sel = select_columns(names, usable, options, path + ": element vertex", "property");
  const std::size_t ndim = sel.positions.size();

  // Positions: the properties' float type if they agree, float64 otherwise.
  DType pos_type = vertex.props[sel.positions[0]].type;
  for (std::size_t i : sel.positions)
    if (vertex.props[i].type != pos_type) pos_type = DType::F64;
  if (!is_position_dtype(pos_type)) pos_type = DType::F64;
  check_positions_dtype(options);
  if (options.positions_dtype) pos_type = *options.positions_dtype;

  // Role of each vertex property: -1 skip, d < ndim position axis, ndim + k attribute k.
  std::vector<long> role(vertex.props.size(), -1);
  for (std::size_t d = 0; d < ndim; ++d) role[sel.positions[d]] = static_cast<long>(d);
  for (std::size_t k = 0; k < sel.attributes.size(); ++k) role[sel.attributes[k]] = static_cast<long>(ndim + k);

  PointCloud cloud;
  std::vector<ArrayBytes> attr_data(sel.attributes.size());
  ArrayBytes pos;
  // Reserve for the rows the header claims, but no more than the rest of the
  // file can hold (at least 1 byte per value): a tiny file claiming 2^60
  // vertices must not reserve gigabytes.
  std::uint64_t rows_in_file = vertex.count;
  std::error_code size_ec;
  const std::uintmax_t file_size = std::filesystem::file_size(path, size_ec);
  const std::streamoff data_start = in.tellg();
  if (!size_ec && data_start >= 0 && file_size >= static_cast<std::uintmax_t>(data_start))
    rows_in_file = (file_size - static_cast<std::uintmax_t>(data_start)) / std::max<std::size_t>(1, vertex.props.size());
  const std::uint64_t reserve_rows = std::min<std::uint64_t>({vertex.count, rows_in_file, 1u << 22});
  pos.reserve(reserve_rows * ndim * dtype_size(pos_type));
  for (std::size_t k = 0; k < sel.attributes.size(); ++k)
    attr_data[k].reserve(reserve_rows * dtype_size(vertex.props[sel.attributes[k]].type));

  PlySource src(in, path, format == "ascii", lineno);
  std::uint8_t raw[8];
  for (const auto& el : elements) {
    const bool is_vertex = &el == &vertex;
    // A binary element without properties has no bytes: its rows need no loop
    // (which could run 2^64 times on a count from the header).
    if (format != "ascii" && el.props.empty()) continue;
    for (std::uint64_t r = 0; r < el.count; ++r) {
      auto truncated = [&] {
        return Error(Code::InvalidArgument, path + ": unexpected end of data in element " + squote(el.name) + " (row " + std::to_string(r + 1) + " of " +
                std::to_string(el.count) + ")");
      };
      if (!src.begin_row(el.name)) throw truncated();
      for (std::size_t pi = 0; pi < el.props.size(); ++pi) {
        const PlyProperty& p = el.props[pi];
        if (p.is_list) {
          if (!src.read(p.count_type, raw, p.name)) throw truncated();
          std::int64_t n = count_value(raw, p.count_type);
          if (n < 0)
            invalid(path + ": negative list length " + std::to_string(n) + " in property " + squote(p.name) + " of element " +
                    squote(el.name));
          for (std::int64_t j = 0; j < n; ++j)
            if (!src.read(p.type, raw, p.name)) throw truncated();
          continue;
        }
        if (!src.read(p.type, raw, p.name)) throw truncated();
        if (!is_vertex || role[pi] < 0) continue;
        std::size_t rl = static_cast<std::size_t>(role[pi]);
        if (rl < ndim) {
          double v = value_as_double(raw, p.type);
          if (pos_type == DType::F32) append_pod(pos, static_cast<float>(v));
          else append_pod(pos, v);
        } else {
          ArrayBytes& b = attr_data[rl - ndim];
          b.insert(b.end(), raw, raw + dtype_size(p.type));
        }
      }
      src.end_row();
    }
    if (is_vertex) break;  // nothing after the vertex element is needed
  }

  cloud.positions.dtype = pos_type;
  cloud.positions.rows = vertex.count;
  cloud.positions.cols = ndim;
  cloud.positions.one_d = false;
  cloud.positions.data = std::move(pos);
  for (std::size_t k = 0; k < sel.attributes.size(); ++k) {
    OwnedArray arr;
    arr.dtype = vertex.props[sel.attributes[k]].type;
    arr.rows = vertex.count;
    arr.cols = 1;
    arr.one_d = true;
    arr.data = std::move(attr_data[k]);
    cloud.attributes.emplace_back(vertex.props[sel.attributes[k]].name, std::move(arr));
  }
  return cloud;
}

PointCloud read_point_file(const std::string& path, const TableOptions& options) {
  switch (file_format(path)) {
    case FileFormat::Csv: return read_csv(path, options);
    case FileFormat::Ply: return read_ply(path, options);
    case FileFormat::Npy: break;
  }
  if (!options.position_columns.empty() || options.attribute_columns)
    invalid(path + ": position/attribute column selection applies to CSV and PLY input, not .npy");
  PointCloud cloud;
  cloud.positions = read_npy(path);
  convert_positions_in_place(cloud, options, path);
  return cloud;
}

// ---------------------------------------------------------------- output

void write_csv(const std::string& path, const PointCloud& cloud) {
  check_rows(cloud);
  const OwnedArray& pos = cloud.positions;
  std::string out;
  std::vector<std::string> header = axis_names(pos.cols);
  for (const auto& [name, arr] : cloud.attributes) {
    if (arr.one_d || arr.cols == 1) header.push_back(name);
    else
      for (std::size_t c = 0; c < arr.cols; ++c) header.push_back(name + "_" + std::to_string(c));
  }
  for (std::size_t i = 0; i < header.size(); ++i) out += (i ? "," : "") + csv_escape(header[i]);
  out += '\n';

  // Dictionary-encoded attributes (the reference's strings) are written as their
  // categories, as Python's read_points returns them.
  std::vector<const std::vector<std::string>*> categories;
  for (const auto& [name, arr] : cloud.attributes) {
    auto it = cloud.categories.find(name);
    categories.push_back(it != cloud.categories.end() && !is_float(arr.dtype) ? &it->second : nullptr);
  }
  OutFile f(path);
  const std::size_t pos_item = dtype_size(pos.dtype);
  for (std::size_t r = 0; r < pos.rows; ++r) {
    bool first = true;
    for (std::size_t c = 0; c < pos.cols; ++c) {
      if (!first) out += ',';
      first = false;
      append_number(out, pos.data.data() + (r * pos.cols + c) * pos_item, pos.dtype);
    }
    for (std::size_t a = 0; a < cloud.attributes.size(); ++a) {
      const auto& [name, arr] = cloud.attributes[a];
      const std::size_t item = dtype_size(arr.dtype);
      for (std::size_t c = 0; c < arr.cols; ++c) {
        if (!first) out += ',';
        first = false;
        const std::uint8_t* p = arr.data.data() + (r * arr.cols + c) * item;
        if (categories[a]) out += category_text(*categories[a], p, arr.dtype, name);
        else append_number(out, p, arr.dtype);
      }
    }
    out += '\n';
    if (out.size() >= (1u << 20)) {
      f.write(out);
      out.clear();
    }
  }
  f.write(out);
  f.commit();
}

std::vector<std::string> write_npy_set(const std::string& path, const PointCloud& cloud) {
  if (!ends_with_ci(path, ".npy")) invalid(path + ": expected an output path ending in .npy");
  check_rows(cloud);
  const std::string base = path.substr(0, path.size() - 4);
  std::vector<std::string> files{path};
  for (const auto& [name, arr] : cloud.attributes) {
    if (name.empty() || name.find('/') != std::string::npos)
      invalid("attribute name " + squote(name) + " cannot be used in a file name");
    files.push_back(base + "." + name + ".npy");
  }
  // A dictionary-encoded attribute's file holds its codes; its categories go to
  // OUT.<name>.categories.json, a JSON list indexed by code.
  std::vector<std::pair<std::string, const std::vector<std::string>*>> dictionaries;
  for (const auto& [name, arr] : cloud.attributes)
    if (auto it = cloud.categories.find(name); it != cloud.categories.end())
      dictionaries.emplace_back(base + "." + name + ".categories.json", &it->second);
  for (const auto& d : dictionaries) files.push_back(d.first);
  for (std::size_t i = 1; i < files.size(); ++i)
    if (files[i] == path) invalid("attribute file " + files[i] + " would overwrite the positions file");
  write_npy(path, cloud.positions);
  for (std::size_t i = 0; i < cloud.attributes.size(); ++i) write_npy(files[i + 1], cloud.attributes[i].second);
  for (const auto& [file, cats] : dictionaries) {
    OutFile f(file);
    f.write(nlohmann::json(*cats).dump() + "\n");
    f.commit();
  }
  return files;
}

}  // namespace zvf
