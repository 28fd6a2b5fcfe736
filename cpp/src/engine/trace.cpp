#include "engine/trace.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace zvf::detail {
namespace {

bool trace_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("ZVF_TRACE");
    return v && *v && std::strcmp(v, "0") != 0;
  }();
  return on;
}

}  // namespace

PhaseClock::PhaseClock(const char* operation)
    : operation_(operation), on_(trace_enabled()), last_(std::chrono::steady_clock::now()) {}

void PhaseClock::mark(const char* phase) {
  if (!on_) return;
  const auto now = std::chrono::steady_clock::now();
  std::fprintf(stderr, "zvf trace: %s %s %.1f ms\n", operation_, phase,
               std::chrono::duration<double, std::milli>(now - last_).count());
  last_ = now;
}

}  // namespace zvf::detail
