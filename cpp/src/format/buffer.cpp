#include "zvf/buffer.hpp"

#include <pthread.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace zvf::detail {
namespace {

constexpr std::size_t kHuge = std::size_t(2) << 20;
constexpr std::size_t kLargeMin = 4 * kHuge;  // below this, plain malloc
constexpr std::size_t kMaxCachedBlocks = 8;

// Large blocks are mapped directly, 2 MiB aligned, with transparent huge pages
// advised, as numpy does for its own arrays: the first touch costs one fault
// per 2 MiB. That first touch is still the kernel zeroing every page, and on a
// VM whose balloon reports free pages to the host, the host faulting them back
// in too (docs/benchmarks.md). A write needs sorted copies as large as its
// input, and a process that writes several partitions would pay for them every
// time. So a freed large block is kept for the next request of about its size,
// after madvise(MADV_FREE): the kernel may still take its pages back under
// memory pressure (they are clean to it), and if it has not, reusing them costs
// nothing. A request that no kept block fits releases them all first, so keeping
// blocks never raises a process's peak memory by more than the fit's slack.
// ZVF_BUFFER_CACHE_MB caps the bytes kept (default 1024; 0 keeps nothing).
class LargeBlocks {
 public:
  LargeBlocks() { cached_.reserve(kMaxCachedBlocks); }  // release() must not allocate

  void* allocate(std::size_t bytes) {
    const std::size_t need = (bytes + kHuge - 1) / kHuge * kHuge;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      std::size_t best = cached_.size();
      for (std::size_t i = 0; i < cached_.size(); ++i) {
        const std::size_t cap = cached_[i].capacity;
        if (cap >= need && cap - need <= need / 4 && (best == cached_.size() || cap < cached_[best].capacity)) best = i;
      }
      if (best != cached_.size()) {  // a kept block fits: reuse it
        const Block b = cached_[best];
        cached_.erase(cached_.begin() + static_cast<std::ptrdiff_t>(best));
        cached_bytes_ -= b.capacity;
        live_.emplace(b.ptr, b.capacity);
        return b.ptr;
      }
    }
    release_cached();
    void* p = map_aligned(need);
    try {
      std::lock_guard<std::mutex> lock(mutex_);
      live_.emplace(p, need);
    } catch (...) {
      ::munmap(p, need);
      throw;
    }
    return p;
  }

  // False if p is not a large block (it came from malloc).
  bool release(void* p) noexcept {
    std::size_t capacity = 0;
    bool keep = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      const auto it = live_.find(p);
      if (it == live_.end()) return false;
      capacity = it->second;
      live_.erase(it);
      keep = cached_bytes_ + capacity <= limit_ && cached_.size() < kMaxCachedBlocks;
    }
#ifdef MADV_FREE
    keep = keep && ::madvise(p, capacity, MADV_FREE) == 0;
#else
    keep = false;
#endif
    if (!keep) {
      ::munmap(p, capacity);
      return true;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    cached_.push_back({p, capacity});
    cached_bytes_ += capacity;
    return true;
  }

  std::size_t cached_bytes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_bytes_;
  }

  void release_cached() {
    // Copied out and cleared, not swapped: cached_ keeps its reserved capacity,
    // so that release() never allocates.
    Block released[kMaxCachedBlocks];
    std::size_t count = 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (const Block& b : cached_) released[count++] = b;
      cached_.clear();
      cached_bytes_ = 0;
    }
    for (std::size_t i = 0; i < count; ++i) ::munmap(released[i].ptr, released[i].capacity);
  }

  // A child of fork() must not inherit the mutex held by another thread.
  void lock() { mutex_.lock(); }
  void unlock() { mutex_.unlock(); }

 private:
  struct Block {
    void* ptr;
    std::size_t capacity;
  };

  static std::size_t configured_limit() {
    constexpr unsigned long long kDefaultMiB = 1024;
    const char* env = std::getenv("ZVF_BUFFER_CACHE_MB");
    if (!env || !*env) return std::size_t(kDefaultMiB) << 20;
    char* end = nullptr;
    errno = 0;
    const unsigned long long mb = std::strtoull(env, &end, 10);
    if (*end != '\0' || errno == ERANGE || env[0] == '-' || mb > (std::numeric_limits<std::size_t>::max() >> 20)) {
      // Read on the first large allocation, where an exception would surprise: say so and go on.
      std::fprintf(stderr, "zvf: warning: ZVF_BUFFER_CACHE_MB='%s' is not a whole number of MiB; using %llu\n",
                   env, kDefaultMiB);
      return std::size_t(kDefaultMiB) << 20;
    }
    return static_cast<std::size_t>(mb) << 20;
  }

  static void* map_aligned(std::size_t need) {
    // Over-map by one huge page, then trim both ends to a 2 MiB boundary.
    const std::size_t span = need + kHuge;
    void* raw = ::mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) throw std::bad_alloc();
    const auto base = reinterpret_cast<std::uintptr_t>(raw);
    const std::uintptr_t aligned = (base + kHuge - 1) / kHuge * kHuge;
    if (aligned > base) ::munmap(raw, aligned - base);
    const std::uintptr_t tail = aligned + need, end = base + span;
    if (end > tail) ::munmap(reinterpret_cast<void*>(tail), end - tail);
    void* p = reinterpret_cast<void*>(aligned);
#ifdef MADV_HUGEPAGE
    ::madvise(p, need, MADV_HUGEPAGE);  // advice only: failure is harmless
#endif
    return p;
  }

  std::mutex mutex_;
  std::unordered_map<void*, std::size_t> live_;
  std::vector<Block> cached_;
  std::size_t cached_bytes_ = 0;
  const std::size_t limit_ = configured_limit();
};

LargeBlocks& large_blocks() {
  // Never destroyed: blocks may be freed by static destructors (numpy arrays at exit).
  static LargeBlocks* blocks = [] {
    auto* b = new LargeBlocks;
    ::pthread_atfork([] { large_blocks().lock(); }, [] { large_blocks().unlock(); },
                     [] { large_blocks().unlock(); });
    return b;
  }();
  return *blocks;
}

}  // namespace

void* allocate_large(std::size_t bytes) {
  if (bytes >= kLargeMin) return large_blocks().allocate(bytes);
  void* p = std::malloc(bytes ? bytes : 1);
  if (!p) throw std::bad_alloc();
  return p;
}

void free_large(void* p) noexcept {
  if (!p) return;
  // Large blocks are 2 MiB aligned; malloc's small ones almost never are.
  if (reinterpret_cast<std::uintptr_t>(p) % kHuge == 0 && large_blocks().release(p)) return;
  std::free(p);
}

std::size_t cached_large_bytes() noexcept { return large_blocks().cached_bytes(); }

void release_cached_large_blocks() noexcept { large_blocks().release_cached(); }

}  // namespace zvf::detail
