// Byte storage for large results (the arrays a read returns). A std::vector whose
// allocator neither value-initialises (a read overwrites every byte, so zeroing
// first would be one more pass over memory) nor hands out 4 KiB pages for large
// sizes: those ask for transparent huge pages, as numpy does for its own arrays,
// so the first touch costs one fault per 2 MiB, and are reused once freed.
#pragma once
#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

namespace zvf {
namespace detail {
void* allocate_large(std::size_t bytes);  // throws std::bad_alloc
void free_large(void* p) noexcept;
// Freed blocks of 8 MiB and more are kept for reuse (buffer.cpp explains why):
// the bytes kept now, and a way to hand them all back to the system.
std::size_t cached_large_bytes() noexcept;
void release_cached_large_blocks() noexcept;
}  // namespace detail

template <class T>
struct UninitAllocator {
  using value_type = T;
  UninitAllocator() noexcept = default;
  template <class U>
  UninitAllocator(const UninitAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    if (n > static_cast<std::size_t>(-1) / sizeof(T)) throw std::bad_array_new_length();
    return static_cast<T*>(detail::allocate_large(n * sizeof(T)));
  }
  void deallocate(T* p, std::size_t) noexcept { detail::free_large(p); }
  // Default-initialise: for trivial T this leaves the bytes as they are.
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(static_cast<Args&&>(args)...);
  }
  template <class U>
  bool operator==(const UninitAllocator<U>&) const noexcept { return true; }
};

// The bytes of an OwnedArray.
using ArrayBytes = std::vector<std::uint8_t, UninitAllocator<std::uint8_t>>;

}  // namespace zvf
