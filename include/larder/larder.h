/* larder's C ABI: the malloc family under larder_ names.
 * These work whether or not liblarder_malloc.so replaces the system malloc;
 * they follow the C contract: NULL and errno on failure, never an abort. */
#ifndef LARDER_LARDER_H
#define LARDER_LARDER_H

#include <stddef.h>

#if defined(__GNUC__)
#define LARDER_C_EXPORT __attribute__((visibility("default")))
#else
#define LARDER_C_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

LARDER_C_EXPORT void* larder_malloc(size_t size);
LARDER_C_EXPORT void* larder_calloc(size_t count, size_t size);
LARDER_C_EXPORT void* larder_realloc(void* p, size_t size);
LARDER_C_EXPORT void* larder_reallocarray(void* p, size_t count, size_t size);
LARDER_C_EXPORT void larder_free(void* p);
LARDER_C_EXPORT void* larder_aligned_alloc(size_t alignment, size_t size);
LARDER_C_EXPORT int larder_posix_memalign(void** out, size_t alignment, size_t size);
LARDER_C_EXPORT void* larder_memalign(size_t alignment, size_t size);
LARDER_C_EXPORT void* larder_valloc(size_t size);
LARDER_C_EXPORT void* larder_pvalloc(size_t size);
LARDER_C_EXPORT size_t larder_usable_size(const void* p);
/* Description of an errno value or a larder error code. */
LARDER_C_EXPORT const char* larder_strerror(int code);
/* Writes allocator statistics to standard error. */
LARDER_C_EXPORT void larder_stats_print(void);
/* Gives memory held in free pages back to the operating system now. */
LARDER_C_EXPORT void larder_collect(void);

#ifdef __cplusplus
}
#endif

#endif /* LARDER_LARDER_H */
