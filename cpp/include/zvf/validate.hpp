// Validation of a ZV 0.9 store, at the conformance levels of the reference
// validator (zarr-vectors 0.9.2, zarr_vectors.validate.validate), run cumulatively:
//   1 structure    root group and its zarr_vectors block, level groups, their arrays;
//                  plus what our partition protocol leaves behind (.zvf/)
//   2 metadata     root and level metadata well-formed (shapes, bins, conventions,
//                  dtypes, codecs, presence lists)
//   3 consistency  every listed cell decodes; fragment indexes, attribute rows and
//                  vertex counts agree with the data; orphan cells
//   4 conformance  geometry types and the links they require
//   5 multiscale   the pyramid: levels contiguous and published, counts shrink
// As in the reference, level 1 errors stop the run, and level 2 errors stop it
// before level 3. Works on any Store (POSIX, memory, S3).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "zvf/points.hpp"
#include "zvf/store.hpp"

namespace zvf {

inline constexpr int kMaxValidationLevel = 5;

enum class Severity { Warning, Error };
const char* severity_name(Severity s);  // "warning" | "error"

struct Finding {
  int level = 1;         // the check level that produced it (1..5)
  Severity severity = Severity::Error;
  std::string key;       // store key it concerns ("0/vertices/c/0/1/2", "zarr.json"); "" for the store
  std::string message;
};

struct ValidationReport {
  int level = 3;                     // the level requested
  std::vector<Finding> findings;     // in check order
  std::vector<std::string> passed;   // checks that passed, one line each
  bool ok() const { return error_count() == 0; }  // valid: no errors (warnings allowed)
  std::size_t error_count() const;
  std::size_t warning_count() const;
};

struct ValidateOptions {
  int level = 3;  // 1..kMaxValidationLevel
};

// Validates the store up to `options.level`. An invalid store is a report with
// errors, not an exception. Throws Error(InvalidArgument) for a level outside
// 1..5, Error(NotFound) if nothing exists at the store's location, and
// Error(IO) if the store cannot be read. exec.progress counts cells checked.
ValidationReport validate_store(const Store& store, const ValidateOptions& options = {}, const Exec& exec = {});

}  // namespace zvf
