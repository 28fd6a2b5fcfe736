#include "engine/input.hpp"

#include <charconv>
#include <cstring>
#include <type_traits>
#include <cmath>
#include <limits>
#include <mutex>
#include <set>
#include <sstream>

#include "engine/parallel.hpp"
#include "zvf/error.hpp"

namespace zvf::detail {

std::string number_text(double v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest form that round-trips
  return std::string(buf, r.ptr);
}

std::string box_text(const Box& b, bool half_open) {
  static const char* axes = "xyzw";
  std::string s;
  for (std::size_t d = 0; d < b.ndim(); ++d) {
    if (d) s += ", ";
    s += std::string(1, axes[d]) + " in [" + number_text(b.lo[d]) + ", " + number_text(b.hi[d]) +
         (half_open ? ")" : "]");
  }
  return s;
}

namespace {

// Min, max and "all finite" of rows [0, m) of an (m, ND) array. Works on the
// flat array in groups of L values, so each lane keeps one column and the loop
// vectorises; non-finite values are found from their exponent bits.
template <class T, int ND>
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
bool min_max_finite(const T* __restrict p, std::size_t m, double* mn_out, double* mx_out) {
  using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  constexpr U kExp = sizeof(T) == 4 ? U(0x7f800000u) : U(0x7ff0000000000000ull);
  constexpr int L = ND * 32 / static_cast<int>(sizeof(T));  // a multiple of ND: lane j is column j % ND
  T mn[L], mx[L];
  U bad[L];
  for (int j = 0; j < L; ++j) {
    mn[j] = std::numeric_limits<T>::infinity();
    mx[j] = -std::numeric_limits<T>::infinity();
    bad[j] = 0;
  }
  const std::size_t flat = m * ND, full = flat / L * L;
  for (std::size_t f = 0; f < full; f += L) {
    for (int j = 0; j < L; ++j) {
      const T x = p[f + j];
      U bits;
      std::memcpy(&bits, &x, sizeof bits);
      bad[j] |= static_cast<U>((bits & kExp) == kExp);
      mn[j] = x < mn[j] ? x : mn[j];
      mx[j] = x > mx[j] ? x : mx[j];
    }
  }
  U any = 0;
  for (int j = 0; j < L; ++j) any |= bad[j];
  for (std::size_t f = full; f < flat; ++f) {
    const T x = p[f];
    any |= static_cast<U>(!std::isfinite(x));
    const int j = static_cast<int>(f % ND);
    mn[j] = x < mn[j] ? x : mn[j];
    mx[j] = x > mx[j] ? x : mx[j];
  }
  for (int j = 0; j < L; ++j) {
    mn_out[j % ND] = std::min(mn_out[j % ND], static_cast<double>(mn[j]));
    mx_out[j % ND] = std::max(mx_out[j % ND], static_cast<double>(mx[j]));
  }
  return any == 0;
}

template <class T>
bool min_max_finite_nd(const T* p, std::size_t m, std::size_t nd, double* mn, double* mx) {
  switch (nd) {
    case 2: return min_max_finite<T, 2>(p, m, mn, mx);
    case 3: return min_max_finite<T, 3>(p, m, mn, mx);
    default: return min_max_finite<T, 4>(p, m, mn, mx);
  }
}

template <class T>
void scan_positions(const ArrayView& v, int threads, std::vector<double>& mn, std::vector<double>& mx) {
  const std::size_t nd = v.cols;
  const T* p = static_cast<const T*>(v.data);
  std::mutex m;
  std::size_t bad = std::numeric_limits<std::size_t>::max();
  mn.assign(nd, std::numeric_limits<double>::infinity());
  mx.assign(nd, -std::numeric_limits<double>::infinity());
  parallel_blocks(v.rows, threads, [&](std::size_t, std::size_t lo, std::size_t hi) {
    std::vector<double> a(nd, std::numeric_limits<double>::infinity()), b(nd, -a[0]);
    std::size_t first_bad = std::numeric_limits<std::size_t>::max();
    if (!min_max_finite_nd<T>(p + lo * nd, hi - lo, nd, a.data(), b.data())) {
      // Rare: find the first non-finite row, for the error message.
      for (std::size_t i = lo; i < hi && first_bad == std::numeric_limits<std::size_t>::max(); ++i)
        for (std::size_t d = 0; d < nd; ++d)
          if (!std::isfinite(static_cast<double>(p[i * nd + d]))) first_bad = i;
    }
    std::lock_guard<std::mutex> lock(m);
    bad = std::min(bad, first_bad);
    for (std::size_t d = 0; d < nd; ++d) {
      mn[d] = std::min(mn[d], a[d]);
      mx[d] = std::max(mx[d], b[d]);
    }
  });
  if (bad != std::numeric_limits<std::size_t>::max()) {
    std::string row;
    for (std::size_t d = 0; d < nd; ++d) row += (d ? ", " : "") + number_text(static_cast<double>(p[bad * nd + d]));
    invalid("positions[" + std::to_string(bad) + "] = (" + row +
            ") is not finite: every coordinate must be a finite number (no NaN or Inf)");
  }
}

}  // namespace

CheckedInput check_input(const ArrayView& positions, const std::vector<NamedArray>& attributes,
                         const Layout& layout, int threads) {
  if (!is_position_dtype(positions.dtype))
    invalid(std::string("positions have dtype ") + dtype_name(positions.dtype) +
            "; expected float32 or float64");
  if (positions.one_d || positions.cols < 2 || positions.cols > kMaxDims)
    invalid("positions must be a 2-D array of shape (N, D) with D in 2..4; got " +
            (positions.one_d ? std::string("a 1-D array") : "D = " + std::to_string(positions.cols)));
  CheckedInput in;
  in.positions = &positions;
  in.attributes = &attributes;
  in.grid = Grid::make(layout.chunk_shape, layout.bin_shape, positions.cols);
  check_bins_per_chunk(in.grid, "bin_shape");
  std::set<std::string> seen;
  for (const auto& a : attributes) {
    meta::check_attribute_name(a.name);
    if (!seen.insert(a.name).second) invalid("attribute '" + a.name + "' is given twice");
    if (a.view.rows != positions.rows)
      invalid("attribute '" + a.name + "' has " + std::to_string(a.view.rows) + " rows; expected " +
              std::to_string(positions.rows) + " (one per position)");
    if (!a.view.one_d && a.view.cols == 0)
      invalid("attribute '" + a.name + "' has zero columns; expected shape (N,) or (N, C) with C >= 1");
    if (a.view.dtype == DType::Bool) {
      // numpy can view other bytes as bool; stored, they would not read back as 0/1.
      const auto* b = static_cast<const std::uint8_t*>(a.view.data);
      const std::size_t n = a.view.rows * a.view.cols;
      const auto* bad = std::find_if(b, b + n, [](std::uint8_t x) { return x > 1; });
      if (bad != b + n)
        invalid("attribute '" + a.name + "' (bool) holds the byte " + std::to_string(*bad) + " at row " +
                std::to_string(static_cast<std::size_t>(bad - b) / a.view.cols) + "; expected 0 (False) or 1 (True)");
    }
    in.attr_specs.push_back({a.name, a.view.dtype, a.view.cols, a.view.one_d});
  }
  if (positions.rows > 0) {
    if (positions.dtype == DType::F32) scan_positions<float>(positions, threads, in.pos_min, in.pos_max);
    else scan_positions<double>(positions, threads, in.pos_min, in.pos_max);
    // Chunk coordinates are int64: refuse coordinates whose bin index overflows.
    for (std::size_t d = 0; d < positions.cols; ++d) {
      double extreme = std::max(std::abs(in.pos_min[d]), std::abs(in.pos_max[d]));
      if (extreme / in.grid.bin_shape[d] > 9.0e18)
        invalid("positions reach " + number_text(extreme) + " on axis " + std::to_string(d) +
                ", too far from the origin for bin size " + number_text(in.grid.bin_shape[d]));
    }
  }
  return in;
}

void check_bins_per_chunk(const Grid& g, const std::string& what) {
  if (g.bins_per_chunk_total() <= kMaxBinsPerChunk) return;
  std::string per_axis;
  for (auto b : g.bins_per_chunk) per_axis += (per_axis.empty() ? "" : " x ") + std::to_string(b);
  invalid(what + " gives " + per_axis + " = " + std::to_string(g.bins_per_chunk_total()) +
          " bins per chunk; at most " + std::to_string(kMaxBinsPerChunk) +
          " (64^3) are allowed, since every chunk stores one fragment entry per bin: use a larger bin_shape");
}

void check_finite_bounds(const Box& bounds, const Grid& g) {
  for (std::size_t d = 0; d < bounds.ndim(); ++d)
    for (double v : {bounds.lo[d], bounds.hi[d]}) {
      if (!std::isfinite(v))
        invalid("bounds " + box_text(bounds, false) + " are not finite on axis " + std::to_string(d) +
                "; expected finite numbers (the store's declared extent)");
      if (std::abs(v) / g.bin_shape[d] > 9.0e18)
        invalid("bounds reach " + number_text(v) + " on axis " + std::to_string(d) +
                ", too far from the origin for bin size " + number_text(g.bin_shape[d]));
    }
}

void check_inside(const CheckedInput& in, const Box& box, bool half_open, const char* what, int threads) {
  const ArrayView& v = *in.positions;
  const std::size_t nd = v.cols;
  if (box.lo.size() != nd || box.hi.size() != nd)
    invalid(std::string(what) + " has " + std::to_string(box.lo.size()) + " dimensions; expected " +
            std::to_string(nd) + " (one per position column)");
  for (std::size_t d = 0; d < nd; ++d) {
    if (std::isnan(box.lo[d]) || std::isnan(box.hi[d]) || !(box.lo[d] <= box.hi[d]) ||
        (half_open && !(box.lo[d] < box.hi[d])))
      invalid(std::string(what) + " " + box_text(box, half_open) + " is empty or not a number on axis " +
              std::to_string(d) + "; expected lo " + (half_open ? "<" : "<=") + " hi");
  }
  bool all_inside = true;
  for (std::size_t d = 0; d < in.pos_min.size(); ++d)
    all_inside = all_inside && in.pos_min[d] >= box.lo[d] &&
                 (half_open ? in.pos_max[d] < box.hi[d] : in.pos_max[d] <= box.hi[d]);
  if (all_inside) return;
  std::mutex m;
  std::size_t bad = std::numeric_limits<std::size_t>::max();
  auto scan = [&](auto tag) {
    using T = decltype(tag);
    const T* p = static_cast<const T*>(v.data);
    parallel_blocks(v.rows, threads, [&](std::size_t, std::size_t lo, std::size_t hi) {
      for (std::size_t i = lo; i < hi; ++i)
        for (std::size_t d = 0; d < nd; ++d) {
          double x = static_cast<double>(p[i * nd + d]);
          bool inside = x >= box.lo[d] && (half_open ? x < box.hi[d] : x <= box.hi[d]);
          if (!inside) {
            std::lock_guard<std::mutex> lock(m);
            bad = std::min(bad, i);
            return;
          }
        }
    });
    if (bad != std::numeric_limits<std::size_t>::max()) {
      std::string row;
      for (std::size_t d = 0; d < nd; ++d) row += (d ? ", " : "") + number_text(static_cast<double>(p[bad * nd + d]));
      invalid("positions[" + std::to_string(bad) + "] = (" + row + ") lies outside the " + what + " " +
              box_text(box, half_open) + "; every position must lie inside it");
    }
  };
  if (v.dtype == DType::F32) scan(float{});
  else scan(double{});
}

}  // namespace zvf::detail
