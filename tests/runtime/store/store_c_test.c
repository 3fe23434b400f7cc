/* The store's C API (include/larder/store.h), compiled as C: every call
 * and its error codes on an anonymous heap. Exits 0 when all checks pass. */
#include <larder/store.h>

#include <stdio.h>
#include <string.h>

static int failures = 0;

#define CHECK(cond)                                              \
  do {                                                           \
    if (!(cond)) {                                               \
      fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                \
    }                                                            \
  } while (0)

int main(void) {
  larder_store* s = NULL;
  CHECK(larder_store_open(LARDER_STORE_ANONYMOUS, NULL, (size_t)1 << 30, 0, &s) == 0);
  if (s == NULL) return 1;
  larder_object_id id = larder_object_id_from_u64(42);
  const unsigned char raw[20] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20};
  larder_object_id binary = larder_object_id_from_binary(raw, sizeof(raw));
  void* data = NULL;
  void* metadata = NULL;
  CHECK(larder_store_create(s, &id, 6, 2, &data, &metadata) == 0);
  memcpy(data, "hello", 6);
  memcpy(metadata, "m", 2);
  CHECK(larder_store_create(s, &id, 6, 0, &data, NULL) == LARDER_STORE_ALREADY_EXISTS);
  larder_store_view view;
  CHECK(larder_store_get(s, &id, 0, &view) == LARDER_STORE_NOT_SEALED);
  CHECK(larder_store_seal(s, &id) == 0);
  CHECK(larder_store_seal(s, &id) == LARDER_STORE_ALREADY_SEALED);
  CHECK(larder_store_contains(s, &id) == 1);
  CHECK(larder_store_contains(s, &binary) == 0);
  CHECK(larder_store_get(s, &id, 0, &view) == 0);
  CHECK(view.data_size == 6 && strcmp((const char*)view.data, "hello") == 0);
  CHECK(view.metadata_size == 2 && strcmp((const char*)view.metadata, "m") == 0);
  CHECK(larder_store_release(s, &id) == 0);
  CHECK(larder_store_release(s, &id) == LARDER_STORE_NOT_REFERENCED);
  CHECK(larder_store_get(s, &binary, 20, &view) == LARDER_STORE_TIMED_OUT);
  CHECK(larder_store_create(s, &binary, 1, 0, &data, NULL) == 0);
  CHECK(larder_store_abort(s, &binary) == 0);
  CHECK(larder_store_delete(s, &binary) == LARDER_STORE_NOT_FOUND);
  CHECK(larder_store_delete(s, &id) == 0);
  CHECK(larder_store_contains(s, &id) == 0);
  size_t recovered = 99;
  CHECK(larder_store_recover(s, &recovered) == 0 && recovered == 0);
  CHECK(larder_store_check(s) == 0);
  CHECK(strlen(larder_store_strerror(LARDER_STORE_FULL)) > 0);
  CHECK(larder_store_open((enum larder_store_backing)7, "x", 0, 0, &s) == LARDER_STORE_INVALID_ARGUMENT);
  CHECK(larder_store_close(s) == 0);
  if (failures == 0) printf("store C API: all checks passed\n");
  return failures == 0 ? 0 : 1;
}
