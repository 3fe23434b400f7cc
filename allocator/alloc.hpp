// The allocator's entry points. The fast paths are inline here: a malloc
// that finds a free block on the direct page of its size, and a free by the
// page's owner. Everything else goes to the generic paths in alloc.cpp.
// All of them follow the C contract: nullptr and errno on failure.
#pragma once

#include "allocator/arena.hpp"
#include "allocator/local_heap.hpp"
#include "allocator/placement.hpp"
#include "allocator/region.hpp"
#include "allocator/thread.hpp"

#include <cstddef>
#include <cstdint>

#define LARDER_LIKELY(x) __builtin_expect(!!(x), 1)
#define LARDER_UNLIKELY(x) __builtin_expect(!!(x), 0)
// The allocation paths read the caller's return address as the allocation
// site (allocator/placement.hpp): they must be inlined into the entry
// point the program called, at every optimisation level.
#define LARDER_ALWAYS_INLINE inline __attribute__((always_inline))

namespace larder::alloc {

// The process heap: anonymous memory that malloc allocates from. Set up on
// first use; nullptr before that.
extern region* g_process_region;
// Its address range, for the free fast path (both 0 until it is set up).
extern std::uintptr_t g_process_base;
extern std::size_t g_process_size;
region* process_region() noexcept;

// No request above this can be met (it exceeds the largest reserve).
inline constexpr std::size_t kMaxRequest = layout::kMaxReserve;

// `site`: where the allocation was asked for, which a router
// (allocator/placement.hpp) sends it on by; nullptr when unknown.
void* malloc_generic(local_heap* h, std::size_t size, const void* site = nullptr) noexcept;
void page_retire(local_heap* h, page* pg) noexcept;
// A free by the owner that the thread cache does not take (aligned blocks,
// blocks above kDirectMax).
void free_owned_flagged(page* pg, void* p) noexcept;
// A free in the process heap of a block this thread does not own; `slice`
// is the descriptor of the slice holding `p`.
void free_not_owned(page* slice, void* p) noexcept;
void free_generic(void* p) noexcept;
// `site`: the allocation site for placement; nullptr: the caller's.
void* aligned_alloc_in(local_heap* h, std::size_t size, std::size_t alignment, const void* site = nullptr) noexcept;
void* zalloc_in(local_heap* h, std::size_t size) noexcept;
void* realloc_block(void* p, std::size_t size) noexcept;
std::size_t usable_size(const void* p) noexcept;
// Allocation on `h` through the generic paths only, so that every write to
// on-media metadata reaches the metadata sink (allocator/metadata_log.hpp):
// for transactions.
void* allocate_logged(local_heap* h, std::size_t size, std::size_t alignment) noexcept;
// allocate_in when the thread's first local heap is not the one wanted.
void* allocate_in_generic(region* r, std::uint32_t pod, std::size_t size, std::size_t alignment,
                          const void* site) noexcept;
// With shared writers: folds in what other clients freed into the full
// pages of `h` (or of the calling thread's heaps of `r`), when the client's
// count says there may be some. Not inside a transaction (page_collect).
void collect_foreign_frees(local_heap* h) noexcept;
void collect_foreign_frees(region* r) noexcept;
// A transaction of a heap with shared writers frees a block of a page that
// no thread of its process owns by pushing it onto the page's remote list
// before its commit (page_ops.hpp, fold_gate):
// - pushed_block: the block to push for `p` (the start of an aligned one);
// - push_in_transaction: pushes it, holding the page's owner off folding
//   it in until end_pushes (`lane`: the transaction's undo-log lane);
// - end_pushes: once the transaction ended (or, for a dead client's lane,
//   was recovered), lets the owner fold the segment's pages again;
// - take_back_push: a rollback takes the block back off the list (false
//   when it is not there); *relinked: the block whose link it rewrote, or
//   nullptr (the page's remote-list word changes either way).
void* pushed_block(void* p) noexcept;
void push_in_transaction(region* r, void* block_address, std::uint32_t lane) noexcept;
void end_pushes(region* r, void* block_address, std::uint32_t lane) noexcept;
bool take_back_push(void* block_address, void** relinked) noexcept;
// Pushes the calling thread's batched remote frees to their page.
void flush_remote_frees(thread_data* td) noexcept;
// Returns free memory of every heap to the OS now.
void collect_all() noexcept;

// The fast path proper, for size <= kDirectMax: the most recently freed
// block of the size's bin, else the first free block of its direct page;
// nullptr when `h` has neither.
LARDER_ALWAYS_INLINE block* pop_block(local_heap* h, std::size_t size) noexcept {
  std::size_t slot = (size + 15) >> 4;
  std::size_t bin = kCache.slot_bin[slot];
  if (block* cached = h->cache[bin]; LARDER_LIKELY(cached != nullptr)) {
    h->cache[bin] = cached->next;
    ++h->cache_room[bin];
    return cached;
  }
  page* pg = h->direct[slot];
  block* b = pg->free;
  if (LARDER_LIKELY(b != nullptr)) {
    pg->free = b->next;
    ++pg->used;
    return b;
  }
  return nullptr;
}

// A miss on a heap with routes: a router (allocator/placement.hpp), or the
// empty heap of a thread's first allocation, which may set one up. The
// site's pod comes from the thread's route cache, then its fast path.
LARDER_ALWAYS_INLINE void* routed_heap_malloc(local_heap* h, std::size_t size, const void* site) noexcept {
  if (LARDER_LIKELY(size <= kDirectMax)) {
    const std::uint64_t* filled = nullptr;
    if (local_heap* target = cached_route(h, size, site, &filled)) {
      if (block* b = pop_block(target, size); LARDER_LIKELY(b != nullptr)) return b;
      if (route_is_current(h, filled)) return malloc_generic(target, size);
    }
  }
  return malloc_generic(h, size, site);
}

LARDER_ALWAYS_INLINE void* heap_malloc(local_heap* h, std::size_t size) noexcept {
  if (LARDER_LIKELY(size <= kDirectMax))
    if (block* b = pop_block(h, size); LARDER_LIKELY(b != nullptr)) return b;
  // Only misses pay for placement; the caller's return address is the site.
  if (LARDER_UNLIKELY(h->routes != nullptr)) return routed_heap_malloc(h, size, __builtin_return_address(0));
  return malloc_generic(h, size);
}

LARDER_ALWAYS_INLINE void* fast_malloc(std::size_t size) noexcept { return heap_malloc(tls_heap, size); }

// Whether `h`, one of the calling thread's local heaps, serves (`r`, `pod`).
inline bool local_heap_serves(const local_heap* h, const region* r, std::uint32_t pod) noexcept {
  return h->owner_region.load(std::memory_order_acquire) == r && h->region_generation == r->generation &&
         h->arena->pod == pod;
}

// Allocation in pod `pod` of region `r` on the calling thread. A thread's
// list of local heaps starts with the one it set up last (or a router that
// set it up), which is the one a program using one heap and pod (or
// automatic placement) always wants: that case needs no walk.
LARDER_ALWAYS_INLINE void* allocate_in(region* r, std::uint32_t pod, std::size_t size, std::size_t alignment) noexcept {
  thread_data* td = tls_thread;
  local_heap* h = td != nullptr ? td->heaps : nullptr;
  if (LARDER_LIKELY(h != nullptr && alignment <= 16 && local_heap_serves(h, r, pod) && r->writable()))
    return heap_malloc(h, size);
  // Behind a router (allocator/placement.hpp), the heap its region's pod
  // got last.
  if (h != nullptr && h->routes != nullptr && alignment <= 16 && (h = h->next_in_thread) != nullptr &&
      local_heap_serves(h, r, pod) && r->writable())
    return heap_malloc(h, size);
  return allocate_in_generic(r, pod, size, alignment, __builtin_return_address(0));
}

inline void fast_free(void* p) noexcept {
  auto address = reinterpret_cast<std::uintptr_t>(p);
  // A pointer on a segment boundary is a huge block with a large alignment.
  if (LARDER_LIKELY(address - g_process_base < g_process_size && (address & (kSegmentSize - 1)) != 0)) {
    segment* s = segment_of(p);
    // Continuation slices of multi-slice pages have no owner, so a slice
    // whose owner is this thread is the head of its page.
    page* pg = &s->pages[slice_index(s, p)];
    if (LARDER_LIKELY(pg->owner_tid.load(std::memory_order_relaxed) == current_tid())) {
      std::size_t bin = pg->cache_bin;
      if (LARDER_LIKELY(bin < kCachedBins)) {
        local_heap* h = pg->heap.load(std::memory_order_relaxed);
        auto* b = static_cast<block*>(p);
        b->next = h->cache[bin];
        h->cache[bin] = b;
        if (LARDER_UNLIKELY(--h->cache_room[bin] == 0)) cache_flush(h, bin, kCache.limit[bin] / 2);
        return;
      }
      free_owned_flagged(pg, p);
      return;
    }
    free_not_owned(pg, p);
    return;
  }
  free_generic(p);
}

}  // namespace larder::alloc
