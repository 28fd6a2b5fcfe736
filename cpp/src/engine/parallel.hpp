// Minimal fork-join helpers over std::thread. We avoid OpenMP on purpose: libgomp's
// thread pool does not survive fork(), and our callers (Python multiprocessing,
// Slurm task launchers) fork.
#pragma once
#ifdef __linux__
#include <sched.h>
#endif
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace zvf::detail {

// Default thread count: the CPUs this process may run on. Slurm (cgroups, cpusets)
// and mpirun (rank binding) restrict that set; counting every CPU of the node
// instead would oversubscribe the cores of other ranks or jobs.
inline int resolve_threads(int requested) {
  if (requested > 0) return requested;
#ifdef __linux__
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
#endif
  unsigned hc = std::thread::hardware_concurrency();
  return hc ? static_cast<int>(hc) : 1;
}

// Threads for loops that mostly wait on the store (cell reads and writes).
inline int io_threads(int compute_threads, int store_concurrency) {
  return std::max(compute_threads, store_concurrency);
}

// Runs fn(i) for i in [0, n) on up to `threads` threads (the caller is one of
// them), handing out items dynamically. The first exception, from fn or from
// on_item_done, stops the hand-out and is rethrown in the caller after all threads
// join. `on_item_done` runs on the calling thread only, with the number of finished
// items, for progress reports (a Python callback may raise, KeyboardInterrupt too).
// If the system refuses to start more threads, the ones running do the work.
inline void parallel_for(std::size_t n, int threads, const std::function<void(std::size_t)>& fn,
                         const std::function<void(std::size_t)>& on_item_done = {}) {
  if (n == 0) return;
  const int t = std::max(1, std::min<int>(threads, static_cast<int>(n)));
  std::atomic<std::size_t> next{0}, done{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&](bool caller) {
    for (;;) {
      if (failed.load(std::memory_order_relaxed)) return;
      std::size_t i = next.fetch_add(1);
      if (i >= n) return;
      try {
        fn(i);
        std::size_t d = done.fetch_add(1) + 1;
        if (caller && on_item_done) on_item_done(d);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        failed = true;
        return;
      }
    }
  };
  std::vector<std::thread> pool;
  try {
    pool.reserve(t - 1);
    for (int k = 1; k < t; ++k) pool.emplace_back(work, false);
  } catch (const std::exception&) {
    // std::system_error (or bad_alloc): no more threads to be had.
  }
  work(true);
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
  if (on_item_done) on_item_done(done.load());
}

// Splits [0, n) into `threads` contiguous blocks and runs fn(block, begin, end).
inline void parallel_blocks(std::size_t n, int threads,
                            const std::function<void(std::size_t, std::size_t, std::size_t)>& fn) {
  const std::size_t t = static_cast<std::size_t>(std::max(1, threads));
  parallel_for(t, static_cast<int>(t), [&](std::size_t b) { fn(b, n * b / t, n * (b + 1) / t); });
}

}  // namespace zvf::detail
