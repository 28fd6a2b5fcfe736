#include "zvf/types.hpp"

#include <array>
#include <cstring>

#include "zvf/error.hpp"

namespace zvf {
namespace {
struct DTypeRow {
  DType type;
  const char* name;
  std::size_t size;
};
constexpr std::array<DTypeRow, 12> kDTypes{{
    {DType::F32, "float32", 4}, {DType::F64, "float64", 8}, {DType::I8, "int8", 1},
    {DType::I16, "int16", 2},   {DType::I32, "int32", 4},   {DType::I64, "int64", 8},
    {DType::U8, "uint8", 1},    {DType::U16, "uint16", 2},  {DType::U32, "uint32", 4},
    {DType::U64, "uint64", 8},  {DType::Bool, "bool", 1},   {DType::F16, "float16", 2},
}};
}  // namespace

std::size_t dtype_size(DType t) { return kDTypes[static_cast<std::size_t>(t)].size; }
const char* dtype_name(DType t) { return kDTypes[static_cast<std::size_t>(t)].name; }

float half_to_float(std::uint16_t bits) {
  _Float16 h;
  std::memcpy(&h, &bits, 2);
  return static_cast<float>(h);
}

std::uint16_t half_from_double(double v) {
  // One rounding, double -> binary16 (through float it would round twice).
  const _Float16 h = static_cast<_Float16>(v);
  std::uint16_t bits;
  std::memcpy(&bits, &h, 2);
  return bits;
}

DType dtype_from_name(const std::string& name) {
  for (const auto& row : kDTypes)
    if (name == row.name) return row.type;
  std::string names;
  for (const auto& row : kDTypes) names += std::string(names.empty() ? "" : ", ") + row.name;
  invalid("unsupported dtype '" + name + "': expected one of " + names);
}

}  // namespace zvf
