// The store's C API (include/larder/store.h) over the C++ one.
#include <larder/store.h>
#include <larder/store.hpp>

#include <cerrno>
#include <new>

struct larder_store {
  larder::store handle;
};

namespace {

larder::object_id to_id(const larder_object_id* id) {
  if (id == nullptr) return {};
  if (id->is_number) {
    std::uint64_t number = 0;
    for (int i = 7; i >= 0; --i) number = (number << 8) | id->bytes[i];
    return larder::object_id(number);
  }
  return larder::object_id::from_binary(id->bytes, id->size);
}

int invalid() { return static_cast<int>(larder::errc::invalid_argument); }

}  // namespace

extern "C" {

int larder_store_open(larder_store_backing backing, const char* name, size_t reserve, size_t capacity,
                      larder_store** out) {
  if (out == nullptr || backing < LARDER_STORE_ANONYMOUS || backing > LARDER_STORE_FILE) return invalid();
  *out = nullptr;
  larder::store_options options;
  options.heap.kind = static_cast<larder::backing>(backing);
  if (name != nullptr) options.heap.name = name;
  if (reserve != 0) options.heap.reserve = reserve;
  options.capacity = capacity;
  auto* s = new (std::nothrow) larder_store;
  if (s == nullptr) return ENOMEM;
  larder::status st = larder::store::open(options, &s->handle);
  if (!st.ok()) {
    delete s;
    return st.code();
  }
  *out = s;
  return 0;
}

int larder_store_close(larder_store* store) {
  if (store == nullptr) return 0;
  int code = store->handle.close().code();
  delete store;
  return code;
}

int larder_store_create(larder_store* store, const larder_object_id* id, size_t data_size, size_t metadata_size,
                        void** data, void** metadata) {
  if (store == nullptr || data == nullptr) return invalid();
  larder::object_buffer buffer;
  larder::status st = store->handle.create(to_id(id), data_size, metadata_size, &buffer);
  if (!st.ok()) return st.code();
  *data = buffer.data.data();
  if (metadata != nullptr) *metadata = buffer.metadata.data();
  return 0;
}

int larder_store_seal(larder_store* store, const larder_object_id* id) {
  return store == nullptr ? invalid() : store->handle.seal(to_id(id)).code();
}

int larder_store_abort(larder_store* store, const larder_object_id* id) {
  return store == nullptr ? invalid() : store->handle.abort(to_id(id)).code();
}

int larder_store_get(larder_store* store, const larder_object_id* id, int64_t timeout_ms, larder_store_view* out) {
  if (store == nullptr || out == nullptr) return invalid();
  larder::object_view view;
  larder::status st = timeout_ms == 0 ? store->handle.get(to_id(id), &view)
                                      : store->handle.get(to_id(id), timeout_ms, &view);
  if (!st.ok()) return st.code();
  out->data = view.data.data();
  out->data_size = view.data.size();
  out->metadata = view.metadata.data();
  out->metadata_size = view.metadata.size();
  return 0;
}

int larder_store_release(larder_store* store, const larder_object_id* id) {
  return store == nullptr ? invalid() : store->handle.release(to_id(id)).code();
}

int larder_store_delete(larder_store* store, const larder_object_id* id) {
  return store == nullptr ? invalid() : store->handle.remove(to_id(id)).code();
}

int larder_store_contains(larder_store* store, const larder_object_id* id) {
  return store != nullptr && store->handle.contains(to_id(id)) ? 1 : 0;
}

int larder_store_recover(larder_store* store, size_t* recovered) {
  return store == nullptr ? invalid() : store->handle.recover(recovered).code();
}

int larder_store_check(larder_store* store) { return store == nullptr ? invalid() : store->handle.check().code(); }

const char* larder_store_strerror(int code) { return larder::strerror(code); }

}  // extern "C"
