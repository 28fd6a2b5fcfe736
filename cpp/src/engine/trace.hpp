// ZVF_TRACE=1 prints the wall time of each phase of a write (validation, sort,
// cells, metadata) to stderr, to see where a job's time goes without a profiler.
#pragma once
#include <chrono>

namespace zvf::detail {

class PhaseClock {
 public:
  explicit PhaseClock(const char* operation);
  // Prints "zvf trace: <operation> <phase> <ms> ms" for the time since the last
  // mark (or construction), if tracing is on.
  void mark(const char* phase);

 private:
  const char* operation_;
  bool on_;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace zvf::detail
