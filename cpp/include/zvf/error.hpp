// One error type for the whole core. The Python binding maps Error::Code to
// exception classes and the CLI maps it to exit codes, each in one place.
#pragma once
#include <stdexcept>
#include <string>
#include <string_view>

namespace zvf {

class Error : public std::runtime_error {
 public:
  enum class Code {
    InvalidArgument,  // caller passed a bad value (shape, dtype, NaN, range, name...)
    NotFound,         // store, key or level does not exist
    Corrupt,          // bytes on disk do not decode (truncated cell, bad magic, bad JSON)
    Conflict,         // partitions disagree, overlap, or are incomplete
    IO,               // the filesystem or network failed
    Unsupported,      // a valid store that uses a ZV feature zvf does not implement (sharding, ...)
  };
  Error(Code code, const std::string& message) : std::runtime_error(message), code_(code) {}
  Code code() const noexcept { return code_; }

 private:
  Code code_;
};

// Text from a file or a caller, fit for an error message: control bytes escaped
// as Python's repr() does (\t, \n, \r, \xNN), so that a NUL cannot cut the message short.
std::string printable(std::string_view text);

[[noreturn]] inline void fail(Error::Code code, const std::string& message) { throw Error(code, message); }
[[noreturn]] inline void invalid(const std::string& message) { throw Error(Error::Code::InvalidArgument, message); }

}  // namespace zvf
