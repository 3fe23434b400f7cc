// The larder_* C ABI (include/larder/larder.h) over the allocator's entry
// points. Argument checks follow the C and POSIX contracts.
#include <larder/larder.h>

#include "allocator/alloc.hpp"
#include "allocator/stats.hpp"

#include <errno.h>

#include <larder/status.hpp>

namespace {

using namespace larder::alloc;

bool is_power_of_two(std::size_t x) { return x != 0 && (x & (x - 1)) == 0; }

bool multiply_overflows(std::size_t a, std::size_t b, std::size_t* out) { return __builtin_mul_overflow(a, b, out); }

}  // namespace

extern "C" {

LARDER_C_EXPORT void* larder_malloc(size_t size) { return fast_malloc(size); }

LARDER_C_EXPORT void larder_free(void* p) { fast_free(p); }

LARDER_C_EXPORT void* larder_calloc(size_t count, size_t size) {
  std::size_t total = 0;
  if (multiply_overflows(count, size, &total)) {
    errno = ENOMEM;
    return nullptr;
  }
  return zalloc_in(tls_heap, total);
}

LARDER_C_EXPORT void* larder_realloc(void* p, size_t size) {
  if (p == nullptr) return fast_malloc(size);
  if (size == 0) {  // glibc's behaviour, which programs written for it expect
    fast_free(p);
    return nullptr;
  }
  return realloc_block(p, size);
}

LARDER_C_EXPORT void* larder_reallocarray(void* p, size_t count, size_t size) {
  std::size_t total = 0;
  if (multiply_overflows(count, size, &total)) {
    errno = ENOMEM;
    return nullptr;
  }
  return larder_realloc(p, total);
}

LARDER_C_EXPORT void* larder_aligned_alloc(size_t alignment, size_t size) {
  if (!is_power_of_two(alignment)) {
    errno = EINVAL;
    return nullptr;
  }
  return aligned_alloc_in(tls_heap, size, alignment);
}

LARDER_C_EXPORT int larder_posix_memalign(void** out, size_t alignment, size_t size) {
  if (!is_power_of_two(alignment) || alignment % sizeof(void*) != 0) return EINVAL;
  int saved = errno;
  void* p = aligned_alloc_in(tls_heap, size, alignment);
  if (p == nullptr) {
    int err = errno;
    errno = saved;
    return err != 0 ? err : ENOMEM;
  }
  *out = p;
  return 0;
}

LARDER_C_EXPORT void* larder_memalign(size_t alignment, size_t size) {
  // glibc rounds a non-power-of-two alignment up instead of failing.
  if (alignment != 0 && !is_power_of_two(alignment)) {
    if (alignment > (SIZE_MAX >> 1)) {
      errno = EINVAL;
      return nullptr;
    }
    alignment = std::size_t{1} << (64 - __builtin_clzl(alignment));
  }
  return aligned_alloc_in(tls_heap, size, alignment);
}

LARDER_C_EXPORT void* larder_valloc(size_t size) { return aligned_alloc_in(tls_heap, size, 4096); }

LARDER_C_EXPORT void* larder_pvalloc(size_t size) {
  std::size_t rounded = (size + 4095) & ~std::size_t{4095};
  if (rounded < size) {
    errno = ENOMEM;
    return nullptr;
  }
  return aligned_alloc_in(tls_heap, rounded == 0 ? 4096 : rounded, 4096);
}

LARDER_C_EXPORT size_t larder_usable_size(const void* p) { return usable_size(p); }

LARDER_C_EXPORT const char* larder_strerror(int code) { return larder::strerror(code); }

LARDER_C_EXPORT void larder_stats_print(void) { print_stats(); }

LARDER_C_EXPORT void larder_collect(void) { collect_all(); }

}  // extern "C"
