// Pods: groups of objects with an arena of their own.
// Every allocation belongs to exactly one pod, and a heap page never holds
// objects of two pods, so a pod can be tracked, checkpointed and moved as a
// unit. A pod handle is the address of the pod's record inside its heap, so
// it stays valid across reopen and can itself be stored in the heap.
#pragma once

#include <larder/export.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace larder {

struct pod_record;  // on-media layout; internal

class LARDER_EXPORT pod {
 public:
  constexpr pod() noexcept = default;
  explicit constexpr pod(pod_record* record) noexcept : record_(record) {}

  bool valid() const noexcept { return record_ != nullptr; }
  std::uint32_t id() const noexcept;
  std::string_view name() const noexcept;

  // Allocates from this pod on the calling thread's cache. Returns nullptr
  // and sets errno to ENOMEM when the heap is full. Thread-safe.
  void* allocate(std::size_t size, std::size_t alignment = alignof(std::max_align_t)) const noexcept;

  pod_record* record() const noexcept { return record_; }
  friend bool operator==(pod a, pod b) noexcept { return a.record_ == b.record_; }

 private:
  pod_record* record_ = nullptr;
};

// Makes `p` the calling thread's current pod for the scope's lifetime:
// malloc, operator new and default-constructed larder::allocator<T> in this
// thread allocate from `p` until the scope ends. Scopes nest. A pod of a
// heap opened read-only (or closed) leaves the current pod unchanged. If
// the scope's heap is closed while a nested scope is active, the end of
// the outer scope falls back to the process heap.
class LARDER_EXPORT pod_scope {
 public:
  explicit pod_scope(pod p) noexcept;
  ~pod_scope();
  pod_scope(const pod_scope&) = delete;
  pod_scope& operator=(const pod_scope&) = delete;

 private:
  void* previous_;
};

// The calling thread's current pod: the innermost pod_scope's, or an
// invalid pod when allocations go to the process heap.
LARDER_EXPORT pod current_pod() noexcept;

}  // namespace larder
