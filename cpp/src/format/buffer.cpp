#include "zvf/buffer.hpp"

#include <sys/mman.h>

#include <cstdlib>

namespace zvf::detail {

void* allocate_large(std::size_t bytes) {
  constexpr std::size_t kHuge = std::size_t(2) << 20;
  void* p = nullptr;
  if (bytes >= 4 * kHuge) {
    const std::size_t rounded = (bytes + kHuge - 1) / kHuge * kHuge;
    p = std::aligned_alloc(kHuge, rounded);
#ifdef MADV_HUGEPAGE
    if (p) ::madvise(p, rounded, MADV_HUGEPAGE);  // advice only: failure is harmless
#endif
  } else {
    p = std::malloc(bytes ? bytes : 1);
  }
  if (!p) throw std::bad_alloc();
  return p;
}

void free_large(void* p) noexcept { std::free(p); }

}  // namespace zvf::detail
