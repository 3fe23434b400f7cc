// process_heap_scope: while one lives, the calling thread's allocations go
// to the process heap even inside a pod_scope of a larder heap. Page-write
// tracking needs it (its allocations may happen inside an allocation of
// the tracked heap, the segments_claimed hook, and must not add writes to
// the heap being collected), and so do versions (a checkout replaces the
// heap's pages under them).
#pragma once

#include "allocator/alloc.hpp"
#include "allocator/thread.hpp"

namespace larder {

class process_heap_scope {
 public:
  process_heap_scope() noexcept : previous_(alloc::tls_heap) {
    if (alloc::local_heap* h = alloc::local_heap_for(alloc::g_process_region, 0)) alloc::tls_heap = h;
  }
  ~process_heap_scope() { alloc::restore_heap(previous_); }
  process_heap_scope(const process_heap_scope&) = delete;
  process_heap_scope& operator=(const process_heap_scope&) = delete;

 private:
  alloc::local_heap* previous_;
};

}  // namespace larder
