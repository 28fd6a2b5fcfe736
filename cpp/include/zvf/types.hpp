// Value types shared by the public API: element dtypes, borrowed input arrays,
// owned output arrays and axis-aligned boxes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "zvf/buffer.hpp"
#include "zvf/store.hpp"

namespace zvf {

// Bool and F16 are attribute dtypes only (the reference writes both); positions
// are F32 or F64.
enum class DType : std::uint8_t { F32, F64, I8, I16, I32, I64, U8, U16, U32, U64, Bool, F16 };

std::size_t dtype_size(DType t);
const char* dtype_name(DType t);  // numpy names: "float32", "uint8", ...
// Throws Error(InvalidArgument) naming the value and listing the accepted names.
DType dtype_from_name(const std::string& name);
inline bool is_float(DType t) { return t == DType::F32 || t == DType::F64 || t == DType::F16; }
// IEEE binary16 <-> float, through the compiler's _Float16 (round to nearest even,
// overflow to infinity), so float16 attributes read, print and average like numpy's.
float half_to_float(std::uint16_t bits);
std::uint16_t half_from_double(double v);
// The dtypes a vertices (positions) array may have.
inline bool is_position_dtype(DType t) { return t == DType::F32 || t == DType::F64; }

// A borrowed, C-contiguous 2-D array (rows x cols); `one_d` marks an (N,) array
// (then cols == 1). The caller keeps the memory alive for the duration of the call.
struct ArrayView {
  const void* data = nullptr;
  DType dtype = DType::F32;
  std::size_t rows = 0;
  std::size_t cols = 1;
  bool one_d = false;
  std::size_t row_bytes() const { return cols * dtype_size(dtype); }
};

struct NamedArray {
  std::string name;
  ArrayView view;
};

// An owned array returned by reads; same shape conventions as ArrayView.
struct OwnedArray {
  DType dtype = DType::F32;
  std::size_t rows = 0;
  std::size_t cols = 1;
  bool one_d = false;
  ArrayBytes data;
};

// Axis-aligned box. For bounds and bbox queries both ends are inclusive; for a
// partition's range the box is half-open [lo, hi) and +-infinity marks an
// unbounded side.
struct Box {
  std::vector<double> lo, hi;
  std::size_t ndim() const { return lo.size(); }
  static Box unbounded(std::size_t ndim) {
    return {std::vector<double>(ndim, -std::numeric_limits<double>::infinity()),
            std::vector<double>(ndim, std::numeric_limits<double>::infinity())};
  }
};

}  // namespace zvf
