/* larder's object store for C (the C++ API is larder/store.hpp; the model
 * and guarantees are in docs/store.md). A larder_store is one client of a
 * store inside a heap; use one per thread. Every function returns 0 or an
 * error code: an errno value or one of the LARDER_STORE_* codes below
 * (larder's own codes, described by larder_store_strerror). */
#ifndef LARDER_STORE_H
#define LARDER_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__)
#define LARDER_STORE_EXPORT __attribute__((visibility("default")))
#else
#define LARDER_STORE_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

enum {
  LARDER_STORE_NOT_FOUND = 20007,
  LARDER_STORE_ALREADY_EXISTS = 20008,
  LARDER_STORE_TABLE_FULL = 20010,
  LARDER_STORE_INVALID_ARGUMENT = 20012,
  LARDER_STORE_CORRUPT = 20002,
  LARDER_STORE_ALREADY_SEALED = 20100,
  LARDER_STORE_NOT_SEALED = 20101,
  LARDER_STORE_NOT_CREATOR = 20102,
  LARDER_STORE_NOT_REFERENCED = 20103,
  LARDER_STORE_FULL = 20104,
  LARDER_STORE_TIMED_OUT = 20105
};

enum larder_store_backing {
  LARDER_STORE_ANONYMOUS = 0, /* one process, gone at close */
  LARDER_STORE_SHM = 1,       /* a POSIX shared-memory object ("/name") */
  LARDER_STORE_FILE = 2       /* a regular file */
};

/* A 64-bit or 1..20-byte binary id; ids of the two kinds never match. */
typedef struct larder_object_id {
  uint8_t bytes[20];
  uint8_t size;
  uint8_t is_number;
} larder_object_id;

static inline larder_object_id larder_object_id_from_u64(uint64_t number) {
  larder_object_id id;
  memset(&id, 0, sizeof(id));
  for (int i = 0; i < 8; ++i) id.bytes[i] = (uint8_t)(number >> (8 * i));
  id.size = 8;
  id.is_number = 1;
  return id;
}

static inline larder_object_id larder_object_id_from_binary(const void* bytes, size_t size) {
  larder_object_id id;
  memset(&id, 0, sizeof(id));
  if (size >= 1 && size <= 20) {
    memcpy(id.bytes, bytes, size);
    id.size = (uint8_t)size;
  }
  return id;
}

typedef struct larder_store larder_store;

typedef struct larder_store_view {
  const void* data;
  size_t data_size;
  const void* metadata;
  size_t metadata_size;
} larder_store_view;

/* Opens (or creates, reserving `reserve` bytes of address space; 0 for
 * larder's default) the heap `name` and the store in it. capacity: bytes
 * of objects the store may hold when it is made (0: as much as the heap). */
LARDER_STORE_EXPORT int larder_store_open(enum larder_store_backing backing, const char* name, size_t reserve,
                                          size_t capacity, larder_store** out);
/* Releases this client's references and unsealed objects, then frees it. */
LARDER_STORE_EXPORT int larder_store_close(larder_store* store);
LARDER_STORE_EXPORT int larder_store_create(larder_store* store, const larder_object_id* id, size_t data_size,
                                            size_t metadata_size, void** data, void** metadata);
LARDER_STORE_EXPORT int larder_store_seal(larder_store* store, const larder_object_id* id);
LARDER_STORE_EXPORT int larder_store_abort(larder_store* store, const larder_object_id* id);
/* Waits at most timeout_ms for the object to be sealed (0: not at all;
 * negative: no limit). The view holds a reference until release. */
LARDER_STORE_EXPORT int larder_store_get(larder_store* store, const larder_object_id* id, int64_t timeout_ms,
                                         larder_store_view* out);
LARDER_STORE_EXPORT int larder_store_release(larder_store* store, const larder_object_id* id);
LARDER_STORE_EXPORT int larder_store_delete(larder_store* store, const larder_object_id* id);
/* 1 when the object is sealed and not deleted, else 0. */
LARDER_STORE_EXPORT int larder_store_contains(larder_store* store, const larder_object_id* id);
/* *recovered (may be NULL): how many dead clients were cleaned up. */
LARDER_STORE_EXPORT int larder_store_recover(larder_store* store, size_t* recovered);
LARDER_STORE_EXPORT int larder_store_check(larder_store* store);
/* A static description of an error code of these functions. */
LARDER_STORE_EXPORT const char* larder_store_strerror(int code);

#ifdef __cplusplus
}
#endif

#endif /* LARDER_STORE_H */
