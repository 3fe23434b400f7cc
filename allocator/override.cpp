// Replaces the C library's malloc family and C++'s operator new/delete with
// larder's, for liblarder_malloc.so (LD_PRELOAD or linked). It only forwards
// to the entry points in alloc.hpp and larder.h.
#include <larder/larder.h>

#include "allocator/alloc.hpp"

#include <errno.h>

#include <cstddef>
#include <new>

#define LARDER_OVERRIDE extern "C" __attribute__((visibility("default")))

using larder::alloc::fast_free;
using larder::alloc::fast_malloc;

LARDER_OVERRIDE void* malloc(size_t size) { return fast_malloc(size); }
LARDER_OVERRIDE void free(void* p) { fast_free(p); }
LARDER_OVERRIDE void cfree(void* p) { fast_free(p); }
LARDER_OVERRIDE void* calloc(size_t count, size_t size) { return larder_calloc(count, size); }
LARDER_OVERRIDE void* realloc(void* p, size_t size) { return larder_realloc(p, size); }
LARDER_OVERRIDE void* reallocarray(void* p, size_t count, size_t size) { return larder_reallocarray(p, count, size); }
LARDER_OVERRIDE void* aligned_alloc(size_t alignment, size_t size) { return larder_aligned_alloc(alignment, size); }
LARDER_OVERRIDE int posix_memalign(void** out, size_t alignment, size_t size) {
  return larder_posix_memalign(out, alignment, size);
}
LARDER_OVERRIDE void* memalign(size_t alignment, size_t size) { return larder_memalign(alignment, size); }
LARDER_OVERRIDE void* valloc(size_t size) { return larder_valloc(size); }
LARDER_OVERRIDE void* pvalloc(size_t size) { return larder_pvalloc(size); }
LARDER_OVERRIDE size_t malloc_usable_size(void* p) { return larder_usable_size(p); }
LARDER_OVERRIDE int malloc_trim(size_t) {
  larder_collect();
  return 1;
}

// glibc's internal names, which a few programs and libraries call directly.
LARDER_OVERRIDE void* __libc_malloc(size_t size) { return fast_malloc(size); }
LARDER_OVERRIDE void __libc_free(void* p) { fast_free(p); }
LARDER_OVERRIDE void* __libc_calloc(size_t count, size_t size) { return larder_calloc(count, size); }
LARDER_OVERRIDE void* __libc_realloc(void* p, size_t size) { return larder_realloc(p, size); }
LARDER_OVERRIDE void* __libc_memalign(size_t alignment, size_t size) { return larder_memalign(alignment, size); }
LARDER_OVERRIDE void* __libc_valloc(size_t size) { return larder_valloc(size); }
LARDER_OVERRIDE void* __libc_pvalloc(size_t size) { return larder_pvalloc(size); }

// ---- operator new / delete -------------------------------------------------

namespace {

// The standard's contract: call the new-handler until it succeeds or there
// is none, then throw (or return nullptr for the nothrow forms).
void* new_slow(std::size_t size, std::size_t alignment, bool nothrow) {
  for (;;) {
    void* p = alignment != 0 ? larder_aligned_alloc(alignment, size) : fast_malloc(size);
    if (p != nullptr) return p;
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) {
      if (nothrow) return nullptr;
      throw std::bad_alloc();
    }
    if (nothrow) {
      try {
        handler();
      } catch (...) {
        return nullptr;
      }
    } else {
      handler();
    }
  }
}

LARDER_ALWAYS_INLINE void* new_fast(std::size_t size) {
  void* p = fast_malloc(size);
  return p != nullptr ? p : new_slow(size, 0, false);
}

LARDER_ALWAYS_INLINE void* new_aligned(std::size_t size, std::align_val_t alignment) {
  void* p = larder_aligned_alloc(static_cast<std::size_t>(alignment), size);
  return p != nullptr ? p : new_slow(size, static_cast<std::size_t>(alignment), false);
}

}  // namespace

#define LARDER_NEW_EXPORT __attribute__((visibility("default")))

LARDER_NEW_EXPORT void* operator new(std::size_t size) { return new_fast(size); }
LARDER_NEW_EXPORT void* operator new[](std::size_t size) { return new_fast(size); }
LARDER_NEW_EXPORT void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  void* p = fast_malloc(size);
  return p != nullptr ? p : new_slow(size, 0, true);
}
LARDER_NEW_EXPORT void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  void* p = fast_malloc(size);
  return p != nullptr ? p : new_slow(size, 0, true);
}
LARDER_NEW_EXPORT void* operator new(std::size_t size, std::align_val_t alignment) {
  return new_aligned(size, alignment);
}
LARDER_NEW_EXPORT void* operator new[](std::size_t size, std::align_val_t alignment) {
  return new_aligned(size, alignment);
}
LARDER_NEW_EXPORT void* operator new(std::size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept {
  void* p = larder_aligned_alloc(static_cast<std::size_t>(alignment), size);
  return p != nullptr ? p : new_slow(size, static_cast<std::size_t>(alignment), true);
}
LARDER_NEW_EXPORT void* operator new[](std::size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept {
  void* p = larder_aligned_alloc(static_cast<std::size_t>(alignment), size);
  return p != nullptr ? p : new_slow(size, static_cast<std::size_t>(alignment), true);
}

LARDER_NEW_EXPORT void operator delete(void* p) noexcept { fast_free(p); }
LARDER_NEW_EXPORT void operator delete[](void* p) noexcept { fast_free(p); }
LARDER_NEW_EXPORT void operator delete(void* p, std::size_t) noexcept { fast_free(p); }
LARDER_NEW_EXPORT void operator delete[](void* p, std::size_t) noexcept { fast_free(p); }
LARDER_NEW_EXPORT void operator delete(void* p, const std::nothrow_t&) noexcept { fast_free(p); }
LARDER_NEW_EXPORT void operator delete[](void* p, const std::nothrow_t&) noexcept { fast_free(p); }
LARDER_NEW_EXPORT void operator delete(void* p, std::align_val_t) noexcept { fast_free(p); }
LARDER_NEW_EXPORT void operator delete[](void* p, std::align_val_t) noexcept { fast_free(p); }
LARDER_NEW_EXPORT void operator delete(void* p, std::size_t, std::align_val_t) noexcept { fast_free(p); }
LARDER_NEW_EXPORT void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { fast_free(p); }
LARDER_NEW_EXPORT void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { fast_free(p); }
LARDER_NEW_EXPORT void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { fast_free(p); }
