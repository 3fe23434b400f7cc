// Thread setup, thread exit, and fork; see thread.hpp.
#include "allocator/thread.hpp"

#include "allocator/alloc.hpp"
#include "allocator/arena.hpp"
#include "allocator/internal_pool.hpp"
#include "allocator/page_ops.hpp"
#include "allocator/options.hpp"
#include "allocator/placement.hpp"
#include "allocator/metadata_log.hpp"
#include "port/os.hpp"

#include <mutex>

namespace larder::alloc {

constinit thread_local local_heap* tls_heap __attribute__((tls_model("initial-exec"))) = &g_empty_heap;

constinit thread_local thread_data* tls_thread __attribute__((tls_model("initial-exec"))) = nullptr;
constinit thread_local metadata_sink* t_metadata_sink __attribute__((tls_model("initial-exec"))) = nullptr;

namespace {

std::mutex g_threads_lock;  // guards the thread list and every thread's heap list
thread_data* g_threads = nullptr;
unsigned g_exit_key = 0;
bool g_exit_key_ready = false;

void link_thread(thread_data* td) {
  td->prev = nullptr;
  td->next = g_threads;
  if (g_threads != nullptr) g_threads->prev = td;
  g_threads = td;
}

void unlink_thread(thread_data* td) {
  if (td->prev != nullptr) td->prev->next = td->next;
  if (td->next != nullptr) td->next->prev = td->prev;
  if (g_threads == td) g_threads = td->next;
}

void delete_local_heap(local_heap* h) noexcept {
  internal_delete(h->routes);
  internal_delete(h);
}

// Gives all of `td`'s pages away and frees it. The threads lock is held
// throughout so that a heap being closed meanwhile waits (or has already
// marked the local heap dead, and its pages are not touched).
void retire_thread(thread_data* td) {
  flush_remote_frees(td);
  std::lock_guard<std::mutex> guard(g_threads_lock);
  unlink_thread(td);
  local_heap* h = td->heaps;
  td->heaps = nullptr;
  while (h != nullptr) {
    local_heap* next = h->next_in_thread;
    if (h->owner_region.load(std::memory_order_relaxed) != nullptr) local_heap_abandon(h);
    delete_local_heap(h);
    h = next;
  }
  internal_delete(td);
}

void on_thread_exit(void* value) {
  auto* td = static_cast<thread_data*>(value);
  if (td == nullptr) return;
  tls_heap = &g_empty_heap;
  tls_thread = nullptr;
  retire_thread(td);
}

void before_fork() {
  g_threads_lock.lock();
  lock_regions();
  internal_pool_lock();
}

void after_fork_parent() {
  internal_pool_unlock();
  unlock_regions();
  g_threads_lock.unlock();
}

// Only the forking thread lives on in the child. The others may have been
// halfway through a lock-free change to their caches or pages when the
// fork happened, so their state is not walked: their records are dropped
// from the list but not freed, and blocks of their pages that the child
// frees go onto those pages' remote lists, which is always safe. (Their
// memory is not reused by the child; most children exec soon anyway.)
//
// Heaps other than the process heap are shared mappings: the parent goes on
// allocating in them, so the child may read them but must not change them.
// They become read-only to the child's allocator, and the forking thread's
// caches of them are dropped unflushed (the parent still has its own).
//
// In the process heap, the pages of threads that did not survive get no
// owner, so that a new thread of the child whose TLS lands at a dead
// thread's address does not mistake them for its own; and a page whose
// state a dead thread left at kDelaying (mid-free) is set back to
// kUseDelayed, which nobody else would ever do.
void after_fork_child() {
  internal_pool_unlock();
  unlock_regions();
  g_threads = tls_thread;
  if (tls_thread != nullptr) {
    tls_thread->next = tls_thread->prev = nullptr;
    local_heap** link = &tls_thread->heaps;
    while (local_heap* h = *link) {
      if (h->owner_region.load(std::memory_order_relaxed) != g_process_region) {
        if (tls_heap == h) tls_heap = tls_thread->process_default;
        *link = h->next_in_thread;  // leaked: its memory is the parent's copy
      } else {
        link = &h->next_in_thread;
      }
    }
  }
  for (std::size_t slot = 0; slot < kMaxRegions; ++slot) {
    region* r = region_at(slot);
    if (r != nullptr && r != g_process_region) r->forbid_writes();
  }
  if (g_process_region != nullptr) {
    for (std::uint32_t pod = 0; pod < layout::kMaxPods; ++pod) {
      pod_arena* arena = g_process_region->existing_arena(pod);
      if (arena == nullptr) continue;
      arena->for_each_page([](page* pg) {
        std::uintptr_t tf = pg->xthread_free.load(std::memory_order_relaxed);
        if ((tf & kRemoteStateMask) == kDelaying)
          pg->xthread_free.store((tf & ~kRemoteStateMask) | kUseDelayed, std::memory_order_relaxed);
        local_heap* owner = pg->heap.load(std::memory_order_relaxed);
        if (owner != nullptr && (tls_thread == nullptr || owner->thread != tls_thread))
          pg->owner_tid.store(0, std::memory_order_relaxed);
      });
    }
  }
  g_threads_lock.unlock();
}

}  // namespace

local_heap* thread_setup() noexcept {
  if (tls_thread != nullptr) return tls_thread->process_default;
  region* r = process_region();
  if (r == nullptr) return nullptr;
  auto* td = internal_new<thread_data>();
  if (td == nullptr) return nullptr;
  td->tid = current_tid();
  {
    std::lock_guard<std::mutex> guard(g_threads_lock);
    link_thread(td);
  }
  tls_thread = td;
  td->process_default = local_heap_for(r, 0);
  // pthread_setspecific may itself allocate (for keys past the first 32);
  // by now that allocation finds the thread set up.
  if (td->process_default != nullptr) {
    tls_heap = tls_heap == &g_empty_heap ? td->process_default : tls_heap;
    if (g_exit_key_ready) port::thread_exit_key_set(g_exit_key, td);
  }
  return td->process_default;
}

// Only the owning thread links or unlinks entries of its heap list (other
// threads only mark entries dead, see forget_region), so the walk below
// needs no lock.
local_heap* local_heap_for(region* r, std::uint32_t pod) noexcept {
  if (tls_thread == nullptr && thread_setup() == nullptr) return nullptr;
  thread_data* td = tls_thread;
  for (local_heap* h = td->heaps; h != nullptr; h = h->next_in_thread) {
    if (local_heap_serves(h, r, pod)) return r->writable() ? h : nullptr;
  }
  if (!r->writable()) return nullptr;
  pod_arena* arena = r->arena(pod);
  if (arena == nullptr) return nullptr;
  auto* h = internal_new<local_heap>();
  if (h == nullptr) return nullptr;
  local_heap_init(h, arena, r->owner_tag(td->tid));
  if (pod == 0 && r->placement() != nullptr) {
    h->routes = internal_new<route_cache>();
    if (h->routes == nullptr) {
      internal_delete(h);
      return nullptr;
    }
    h->routes->table_generation = &r->placement()->generation;
  }
  h->owner_region.store(r, std::memory_order_relaxed);
  h->region_generation = r->generation;
  h->thread = td;
  std::lock_guard<std::mutex> guard(g_threads_lock);
  // Free the entries of closed heaps while we are here.
  local_heap** link = &td->heaps;
  while (local_heap* dead = *link) {
    if (dead->owner_region.load(std::memory_order_relaxed) == nullptr) {
      *link = dead->next_in_thread;
      delete_local_heap(dead);
    } else {
      link = &dead->next_in_thread;
    }
  }
  // A router stays first, before the heaps of its region's other pods:
  // allocate_in then finds it, or the pod's heap just behind it, without
  // a walk. Heaps of other regions go first as usual.
  local_heap** at = &td->heaps;
  if (*at != nullptr && (*at)->routes != nullptr && h->routes == nullptr &&
      (*at)->owner_region.load(std::memory_order_relaxed) == r)
    at = &(*at)->next_in_thread;
  h->next_in_thread = *at;
  *at = h;
  return h;
}

bool heap_is_live(local_heap* h) noexcept {
  if (h == &g_empty_heap) return true;
  thread_data* td = tls_thread;
  if (td == nullptr) return false;
  for (local_heap* l = td->heaps; l != nullptr; l = l->next_in_thread) {
    if (l != h) continue;
    region* r = l->owner_region.load(std::memory_order_acquire);
    return r != nullptr && r->writable();
  }
  return false;
}

void restore_heap(local_heap* h) noexcept {
  if (heap_is_live(h)) {
    tls_heap = h;
  } else {
    tls_heap = tls_thread != nullptr ? tls_thread->process_default : &g_empty_heap;
  }
}

void forget_region(region* r) noexcept {
  std::lock_guard<std::mutex> guard(g_threads_lock);
  for (thread_data* td = g_threads; td != nullptr; td = td->next) {
    for (local_heap* h = td->heaps; h != nullptr; h = h->next_in_thread) {
      if (h->owner_region.load(std::memory_order_relaxed) != r) continue;
      // Every block goes back to its page so the heap is whole when it is
      // reopened; the entry itself is freed later by its own thread.
      drain_delayed(h);
      local_heap_flush(h);
      if (tls_heap == h) tls_heap = tls_thread != nullptr ? tls_thread->process_default : &g_empty_heap;
      h->owner_region.store(nullptr, std::memory_order_release);
    }
  }
}

void start_routing(region* r, placement_table* table) noexcept {
  r->set_placement(table);
  thread_data* td = tls_thread;
  if (td == nullptr) return;
  std::lock_guard<std::mutex> guard(g_threads_lock);
  for (local_heap* h = td->heaps; h != nullptr; h = h->next_in_thread) {
    if (!local_heap_serves(h, r, 0)) continue;
    local_heap_abandon(h);
    if (tls_heap == h) tls_heap = td->process_default;
    h->owner_region.store(nullptr, std::memory_order_release);
  }
}

void install_thread_handlers() noexcept {
  if (g_exit_key_ready) return;
  if (port::thread_exit_key(on_thread_exit, &g_exit_key) == 0) {
    g_exit_key_ready = true;
    if (tls_thread != nullptr) port::thread_exit_key_set(g_exit_key, tls_thread);
  }
  port::at_fork(before_fork, after_fork_parent, after_fork_child);
}

}  // namespace larder::alloc
