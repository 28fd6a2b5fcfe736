// Point data in and out of plain files, for the `zvf` command-line tool:
//   .npy  NPY 1.0/2.0/3.0, little-endian numeric dtypes, C order, 1-D or 2-D
//   .csv  header row; x,y[,z] columns are positions, other columns attributes
//   .ply  ASCII or binary_little_endian; `element vertex` with x,y[,z] properties
// and writers for query results (.npy per array, or one .csv).
//
// Every reader throws zvf::Error naming the file (and line/column where it
// applies): InvalidArgument for content we cannot use, NotFound for a missing
// file, IO when the filesystem fails.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "zvf/points.hpp"
#include "zvf/types.hpp"

namespace zvf {

enum class FileFormat { Npy, Csv, Ply };

// By extension, case-insensitive (".npy", ".csv", ".ply"). Throws
// Error(InvalidArgument) naming the path and the accepted extensions.
FileFormat file_format(const std::string& path);

// Reads a .npy file into an owned array: (N,) -> one_d, cols 1; (N, C) -> rows N,
// cols C. Accepted descr: '<f4' '<f8' '<i1'..'<i8' '<u1'..'<u8' '|i1' '|u1'.
// Fortran order, big-endian, other dtypes, 0-D or >2-D shapes and truncated
// files throw Error(InvalidArgument) naming the file and the header value.
OwnedArray read_npy(const std::string& path);

// Writes an array as NPY 1.0 ((N,) if one_d, else (N, C)). The file appears
// atomically (written next to the target, then renamed). Error(IO) on failure.
void write_npy(const std::string& path, const OwnedArray& array);

// Column/property selection for CSV and PLY.
struct TableOptions {
  // Names of the position columns in axis order; empty: "x", "y" and, if
  // present, "z" (matched case-insensitively).
  std::vector<std::string> position_columns;
  // Attribute columns; nullopt: every column that is not a position; an empty
  // list: none.
  std::optional<std::vector<std::string>> attribute_columns;
  // Convert positions to this dtype (F32 or F64). nullopt: CSV gives float64;
  // PLY keeps the properties' float type (float64 if they differ or are integers).
  std::optional<DType> positions_dtype;
};

// CSV: comma separated, header row first, blank lines ignored, optional double
// quotes around fields, surrounding spaces trimmed. Positions are float64 (N, D);
// each attribute is (N,) int64 if every value is an integer, else float64.
PointCloud read_csv(const std::string& path, const TableOptions& options = {});

// PLY: positions from the vertex element's position properties, (N, D); each
// other scalar vertex property becomes an (N,) attribute of its own type (list
// properties are skipped unless named, which is an error).
PointCloud read_ply(const std::string& path, const TableOptions& options = {});

// Dispatch on file_format(): CSV/PLY as above; NPY gives positions only (the
// options must then be empty, apart from positions_dtype).
PointCloud read_point_file(const std::string& path, const TableOptions& options = {});

// Returns a copy of `array` converted to `to`. Conversion to a float type rounds;
// conversion to an integer type requires whole numbers in range and otherwise
// throws Error(InvalidArgument) naming `what`, the value and its row.
OwnedArray convert_dtype(const OwnedArray& array, DType to, const std::string& what = "array");

// A borrowed view of an owned array (valid while `array` lives and is unchanged).
ArrayView view_of(const OwnedArray& array);

// Default CSV names of the position axes: x, y, z, t.
std::vector<std::string> axis_names(std::size_t ndim);

// Writes a query result as one CSV: header x,y[,z[,t]] then the attributes
// (an (N, C) attribute becomes columns name_0 .. name_<C-1>). Floats are written
// with the shortest text that reads back to the same value. Atomic like write_npy.
void write_csv(const std::string& path, const PointCloud& cloud);

// Writes positions to `path` (which must end in ".npy") and each attribute to
// "<path without .npy>.<name>.npy". Returns the files written, positions first.
std::vector<std::string> write_npy_set(const std::string& path, const PointCloud& cloud);

}  // namespace zvf
