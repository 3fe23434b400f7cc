// Per-thread state: the thread's local heaps (one per region and pod it
// allocates from), the TLS pointer the malloc fast path reads, thread exit
// and fork handling.
#pragma once

#include "allocator/local_heap.hpp"

#include <cstdint>

namespace larder::alloc {

class placement_table;

class region;

// Blocks of one page of the process heap that a thread freed but does not
// own, waiting to be pushed to the page together (see alloc.cpp).
struct remote_batch {
  page* pg = nullptr;
  block* head = nullptr;
  block* tail = nullptr;
  std::uint32_t count = 0;
};

struct thread_data {
  std::uintptr_t tid = 0;
  local_heap* heaps = nullptr;          // this thread's local heaps
  local_heap* process_default = nullptr;  // process heap, pod 0
  thread_data* next = nullptr;          // all threads, under the threads lock
  thread_data* prev = nullptr;
  // One batch per small size class (indexed by bin; slot 0 takes every
  // larger class), since a thread freeing another's blocks of mixed sizes
  // rarely frees two of one page in a row.
  remote_batch remote[kCachedBins];
  bool remote_pending = false;  // some batch holds blocks
};

// Where malloc in this thread goes. Initial-exec TLS: reading it never
// calls into the dynamic loader (which could call malloc).
extern thread_local constinit local_heap* tls_heap __attribute__((tls_model("initial-exec")));

// A unique id of the calling thread among live threads of this process.
inline std::uintptr_t current_tid() noexcept { return reinterpret_cast<std::uintptr_t>(&tls_heap); }

extern thread_local constinit thread_data* tls_thread __attribute__((tls_model("initial-exec")));

// The calling thread's data, or nullptr before its first allocation.
inline thread_data* current_thread() noexcept { return tls_thread; }
// Sets the calling thread up on its first allocation and returns the
// process heap's local heap, or nullptr if memory is out.
local_heap* thread_setup() noexcept;
// The calling thread's local heap for (`r`, `pod`), created on first use.
local_heap* local_heap_for(region* r, std::uint32_t pod) noexcept;
// Makes `h` the calling thread's malloc target again if it is still one of
// the thread's live local heaps, else the process heap (pod_scope's end).
void restore_heap(local_heap* h) noexcept;
// Returns every block that threads hold for `r` (caches, delayed lists) to
// its page and marks their local heaps of `r` dead, since `r` is going
// away. Nothing may be allocating from `r` meanwhile.
void forget_region(region* r) noexcept;
// Gives `r` its placement table (allocator/placement.hpp) while the heap is
// being opened, before any other thread uses it: the calling thread's
// local heap of pod 0, if it has one, gives its pages back, so that its
// next allocation there sets up a router.
void start_routing(region* r, placement_table* table) noexcept;
// Installs the thread-exit and fork handlers (once, at library load).
void install_thread_handlers() noexcept;

}  // namespace larder::alloc
