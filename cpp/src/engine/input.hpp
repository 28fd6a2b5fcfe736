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
// Every chunk's fragment index holds one entry per bin, empty ones included, so a
// bin far smaller than the chunk costs memory and disk for nothing: writers refuse
// more than 64^3 bins per chunk (plan_chunks keeps to 64 per axis too).
constexpr std::int64_t kMaxBinsPerChunk = std::int64_t{1} << 18;
void check_bins_per_chunk(const Grid& g, const std::string& what);
// Declared bounds of a write: finite, and near enough the origin that their chunk
// coordinates fit int64 (the same limit as for positions).
void check_finite_bounds(const Box& bounds, const Grid& g);

CheckedInput check_input(const ArrayView& positions, const std::vector<NamedArray>& attributes,
                         const Layout& layout, int threads);

// Every point must satisfy lo <= p <= hi (inclusive, bounds) or lo <= p < hi
// (half-open, partition range). Decided from the min/max check_input found; only
// when they fall outside are the points scanned, to name the first one outside.
void check_inside(const CheckedInput& in, const Box& box, bool half_open, const char* what, int threads);

std::string box_text(const Box& b, bool half_open);
std::string number_text(double v);

}  // namespace zvf::detail
