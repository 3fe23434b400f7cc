// Standard-library adaptors: larder::allocator<T> for containers and
// larder::memory_resource for std::pmr.
// Both hold a pod handle, which is an address inside the heap, so a
// container that lives in a heap and uses them keeps working after reopen.
#pragma once

#include <larder/export.hpp>
#include <larder/pod.hpp>

#include <cstddef>
#include <limits>
#include <memory_resource>
#include <new>

namespace larder {

// Frees any block larder handed out, from any heap or pod. Null is ignored.
LARDER_EXPORT void free(void* p) noexcept;
// Bytes usable in the block at `p` (at least what was asked for).
LARDER_EXPORT std::size_t usable_size(const void* p) noexcept;

template <class T>
class allocator {
 public:
  using value_type = T;
  // Assignment keeps the target's pod: a container that lives in a heap
  // and is assigned one built elsewhere (a temporary outside any
  // pod_scope, say) copies the elements into its own pod when the pods
  // differ, rather than taking over blocks that do not survive the
  // process. Swap must not copy, so it exchanges the allocators with the
  // blocks: swap only containers of the same pod (docs/containers.md).
  using propagate_on_container_copy_assignment = std::false_type;
  using propagate_on_container_move_assignment = std::false_type;
  using propagate_on_container_swap = std::true_type;

  // The calling thread's current pod (see pod_scope) at construction.
  allocator() noexcept : pod_(current_pod()) {}
  explicit allocator(pod p) noexcept : pod_(p) {}
  template <class U>
  allocator(const allocator<U>& other) noexcept : pod_(other.target()) {}

  T* allocate(std::size_t n) {
    if (n > std::numeric_limits<std::size_t>::max() / sizeof(T)) throw std::bad_array_new_length();
    void* p = pod_.valid() ? pod_.allocate(n * sizeof(T), alignof(T))
                           : ::operator new(n * sizeof(T), std::align_val_t{alignof(T)});
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t) noexcept {
    if (pod_.valid()) {
      larder::free(p);
    } else {
      ::operator delete(p, std::align_val_t{alignof(T)});
    }
  }

  pod target() const noexcept { return pod_; }
  template <class U>
  bool operator==(const allocator<U>& other) const noexcept {
    return pod_ == other.target();
  }

 private:
  pod pod_;
};

// A std::pmr::memory_resource over one pod. Equal to another larder
// memory_resource when both allocate from the same pod. A pmr container
// holds a pointer to its resource, and the resource a vtable pointer, so a
// pmr container in a heap is usable only while the process that made it
// runs; containers that must survive a restart use larder::allocator<T>.
class LARDER_EXPORT memory_resource final : public std::pmr::memory_resource {
 public:
  explicit memory_resource(pod p) noexcept : pod_(p) {}
  pod target() const noexcept { return pod_; }

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override;
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override;
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override;

  pod pod_;
};

}  // namespace larder
