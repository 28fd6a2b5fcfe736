// Parsing of the CLI's option values ("500,500,500", "lo,lo:hi,hi", "NAME=FILE")
// and number formatting. Pure functions: no I/O, no engine calls.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "zvf/types.hpp"

namespace zvf::cli {

// A malformed command line (exit code 2, like CLI11's own parse errors).
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Splits at `sep`, trimming spaces around items; "" gives no items.
std::vector<std::string> split_list(const std::string& text, char sep = ',');

// "500,500,500": 2 to 4 comma-separated finite numbers > 0.
std::vector<double> parse_shape(const std::string& flag, const std::string& text);

// "lo,lo,lo:hi,hi,hi": the same count (2 to 4) on each side. With allow_inf,
// "inf"/"-inf" are accepted. strict: lo < hi on every axis (half-open ranges),
// otherwise lo <= hi (inclusive boxes).
Box parse_box(const std::string& flag, const std::string& text, bool allow_inf, bool strict);

// "LO,HI" with LO < HI; "inf"/"-inf" accepted.
std::pair<double, double> parse_range(const std::string& flag, const std::string& text);

// A whole number in [lo, hi], written as one ("2", not "2.0" or "2e0"); a
// UsageError naming `flag` otherwise.
std::int64_t parse_integer(const std::string& flag, const std::string& text, std::int64_t lo, std::int64_t hi);

// "NAME=FILE" (for --attr-input).
std::pair<std::string, std::string> parse_attr_input(const std::string& text);
// "NAME=VALUE" for `flag`; `form` names the expected form in the message ("NAME=DTYPE").
std::pair<std::string, std::string> parse_assignment(const std::string& flag, const std::string& form,
                                                     const std::string& text);

// A word as a POSIX shell reads it back: bare if it is plain, else single-quoted.
std::string shell_quote(const std::string& s);

// Shortest text that reads back to the same double ("0.1", "500", "inf").
// With float32, a value that is exactly a float is written as the shortest text
// of that float ("0.1" rather than "0.10000000149011612"), for display only.
std::string format_number(double v, bool float32 = false);
// "[1, 2, 3]".
std::string format_point(const std::vector<double>& p, bool float32 = false);
// "[0, 0, 0] .. [1, 1, 1]".
std::string format_box(const Box& b, bool float32 = false);
// Half-open partition range, bounded axes only: "z in [0, 500)"; "everything" if unbounded.
std::string format_range(const Box& b);

}  // namespace zvf::cli
