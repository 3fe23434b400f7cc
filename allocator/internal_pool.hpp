// Memory for the allocator's own process-local bookkeeping (thread caches,
// pod arenas): taken straight from the OS, never from a larder heap, so it
// can be used while malloc itself is being set up.
#pragma once

#include <cstddef>
#include <new>
#include <utility>

namespace larder::alloc {

// Zeroed memory of `size` bytes (rounded up to 64), or nullptr.
void* internal_alloc(std::size_t size) noexcept;
void internal_free(void* p, std::size_t size) noexcept;

template <class T, class... Args>
T* internal_new(Args&&... args) noexcept {
  void* raw = internal_alloc(sizeof(T));
  return raw == nullptr ? nullptr : ::new (raw) T(std::forward<Args>(args)...);
}

template <class T>
void internal_delete(T* object) noexcept {
  if (object == nullptr) return;
  object->~T();
  internal_free(object, sizeof(T));
}

// Fork handlers for the pool's lock.
void internal_pool_lock() noexcept;
void internal_pool_unlock() noexcept;

}  // namespace larder::alloc
