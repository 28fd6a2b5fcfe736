// Validation of caller input shared by every write entry point. Nothing is
// written before these checks pass.
#pragma once
#include <optional>
#include <vector>

#include "format/metadata.hpp"
#include "zvf/grid.hpp"
#include "zvf/points.hpp"

namespace zvf::detail {

struct CheckedInput {
  const ArrayView* positions = nullptr;
  const std::vector<NamedArray>* attributes = nullptr;
  Grid grid;
  std::vector<meta::AttrSpec> attr_specs;
  std::vector<double> pos_min, pos_max;  // per axis; empty when there are no points
};

// Checks dtypes, shapes, names, NaN/Inf and the layout; computes min/max.
CheckedInput check_input(const ArrayView& positions, const std::vector<NamedArray>& attributes,
                         const Layout& layout, int threads);

// Every point must satisfy lo <= p <= hi (inclusive, bounds) or lo <= p < hi
// (half-open, partition range). Decided from the min/max check_input found; only
// when they fall outside are the points scanned, to name the first one outside.
void check_inside(const CheckedInput& in, const Box& box, bool half_open, const char* what, int threads);

std::string box_text(const Box& b, bool half_open);
std::string number_text(double v);

}  // namespace zvf::detail
