// The generic allocation and free paths; see alloc.hpp for the fast paths
// and page_ops.hpp for the remote-free protocol.
#include "allocator/alloc.hpp"

#include "allocator/arena.hpp"
#include "allocator/huge.hpp"
#include "allocator/options.hpp"
#include "allocator/page_ops.hpp"

#include <errno.h>

#include <cstring>

namespace larder::alloc {

namespace {

// Takes `pg` (not in a queue) as full: from now on a remote free tells the
// owner. A remote free that landed before kUseDelayed was set told nobody,
// so if one did, the page goes back to the queue instead of waiting for a
// notification that may never come.
//
// Not inside a transaction on a heap with shared writers, which cannot fold
// those frees in (page_collect), nor while a transaction's pushes hold the
// fold off (fold_gate): requeued, the page would come round again in the
// same walk, no fuller, for ever. It waits for the next free (or the end
// of those pushes, which the owner is told of).
void set_full(local_heap* h, page* pg) {
  set_flag(pg, kPageInFull);
  full_push(h, pg);
  set_delay_state(pg, kUseDelayed);
  if (metadata_logged() && segment_of(pg)->client != layout::kNoClient) return;
  if (remote_list(pg->xthread_free.load(std::memory_order_acquire)) != nullptr && fold_gate::may_open(pg))
    page_unfull(h, pg);
}

// Makes `pg` (just taken from the arena) the heap's own.
void claim_page(local_heap* h, page* pg) {
  note_metadata(pg, sizeof(page));
  pg->heap.store(h, std::memory_order_release);
  pg->owner_tid.store(h->tid, std::memory_order_relaxed);
  set_delay_state(pg, kNoDelayed);
  page_collect(pg);
}

// A page of `bin` with a free block, from the queue or the arena.
page* find_free_page(local_heap* h, std::size_t bin) {
  page_queue& q = h->queues[bin];
  for (page* pg = q.first; pg != nullptr;) {
    page* next = pg->next;
    page_collect(pg);
    if (pg->free == nullptr) page_extend(pg);
    if (pg->free != nullptr) {
      if (pg != q.first) {
        queue_remove(h, bin, pg);
        queue_push_front(h, bin, pg);
      }
      return pg;
    }
    queue_remove(h, bin, pg);
    set_full(h, pg);  // may queue it again at the back, where the walk collects it
    pg = next;
  }
  for (;;) {
    page* pg = h->arena->take_page(bin);
    if (pg == nullptr) return nullptr;
    claim_page(h, pg);
    if (pg->free == nullptr) page_extend(pg);
    if (pg->free != nullptr) {
      queue_push_front(h, bin, pg);
      return pg;
    }
    set_full(h, pg);  // an abandoned page that is still full
    if ((pg->flags.load(std::memory_order_relaxed) & kPageInFull) == 0) {
      page_collect(pg);  // frees arrived meanwhile and set_full queued it
      if (pg->free == nullptr) continue;  // pushes hold the fold off again: it stays queued
      queue_remove(h, bin, pg);
      queue_push_front(h, bin, pg);
      return pg;
    }
  }
}

}  // namespace

// Queued at the back: by the time the queue reaches the page it has
// usually gathered more free blocks, so pages flip between full and not
// full less often.
void page_unfull(local_heap* h, page* pg) noexcept {
  full_remove(h, pg);
  clear_flag(pg, kPageInFull);
  set_delay_state(pg, kNoDelayed);
  queue_push_back(h, pg->bin, pg);
}

void page_retire(local_heap* h, page* pg) noexcept {
  page_queue& q = h->queues[pg->bin];
  // Keep the last page of a size so that alloc/free pairs do not thrash.
  if (q.first == pg && pg->next == nullptr) return;
  queue_remove(h, pg->bin, pg);
  pg->owner_tid.store(0, std::memory_order_relaxed);
  pg->heap.store(nullptr, std::memory_order_relaxed);
  h->arena->free_page(pg);
}

void free_to_owned_page(local_heap* h, page* pg, block* b) noexcept {
  note_metadata(pg, sizeof(page));
  note_metadata(b, sizeof(block));
  note_plain_change(pg);
  b->next = pg->free;
  pg->free = b;
  --pg->used;
  if (pg->flags.load(std::memory_order_relaxed) & kPageInFull) page_unfull(h, pg);
  if (pg->used == 0) page_retire(h, pg);
}

void free_owned_flagged(page* pg, void* p) noexcept {
  if (pg->flags.load(std::memory_order_relaxed) & kPageHasAligned) p = block_start(pg, p);
  free_to_owned_page(pg->heap.load(std::memory_order_relaxed), pg, static_cast<block*>(p));
}

void drain_delayed(local_heap* h) noexcept {
  block* b = h->delayed_free.exchange(nullptr, std::memory_order_acquire);
  while (b != nullptr) {
    block* next = b->next;
    segment* s = segment_of(b);
    free_to_owned_page(h, page_of(s, b), b);
    b = next;
  }
}

void* malloc_generic(local_heap* h, std::size_t size, const void* site) noexcept {
  if (h == &g_empty_heap) {
    h = thread_setup();
    if (h == nullptr) {
      errno = ENOMEM;
      return nullptr;
    }
    if (tls_heap == &g_empty_heap) tls_heap = h;
  }
  if (LARDER_UNLIKELY(h->routes != nullptr)) return routed_malloc(h, size, site);
  // Draining writes links into freed blocks; a transaction leaves that to
  // the next allocation outside one (see page_collect).
  if (h->delayed_free.load(std::memory_order_relaxed) != nullptr && !metadata_logged()) drain_delayed(h);
  if (thread_data* td = h->thread; td->remote_pending && !metadata_logged()) flush_remote_frees(td);
  if (!metadata_logged() && h->arena->owner->shared_writers()) collect_foreign_frees(h);
  if (size > kLargeMax) return huge_alloc(h, size, 0, nullptr);
  page* pg = find_free_page(h, bin_of(size));
  if (pg == nullptr) {
    if (errno != ENOSPC && errno != EROFS) errno = ENOMEM;
    return nullptr;
  }
  block* b = pg->free;
  note_metadata(pg, sizeof(page));
  note_metadata(b, sizeof(block));
  pg->free = b->next;
  ++pg->used;
  return b;
}

namespace {

// Pushes the chain head..tail of `count` blocks of `pg` onto the page's
// remote list, or, when the page is full, hands it to the owner heap's
// delayed list (see page_ops.hpp).
void push_remote(page* pg, block* head, block* tail, std::uint32_t count) {
  note_metadata(pg, sizeof(page));
  note_metadata(tail, sizeof(block));
  note_plain_change(pg);
  std::uintptr_t tf = pg->xthread_free.load(std::memory_order_relaxed);
  bool delayed = false;
  for (;;) {
    std::uintptr_t state = tf & 3;
    if (state == kUseDelayed) {
      if (pg->xthread_free.compare_exchange_weak(tf, (tf & ~kRemoteStateMask) | kDelaying,
                                                 std::memory_order_acq_rel, std::memory_order_relaxed)) {
        delayed = true;
        break;
      }
      continue;
    }
    tail->next = remote_list(tf);
    std::uintptr_t total = std::uintptr_t{remote_count(tf) + count} << kRemoteCountShift;
    if (pg->xthread_free.compare_exchange_weak(tf, total | reinterpret_cast<std::uintptr_t>(head) | state,
                                               std::memory_order_release, std::memory_order_relaxed))
      return;
  }
  if (!delayed) return;
  // kDelaying keeps the owner heap alive until the state is reset below.
  local_heap* h = pg->heap.load(std::memory_order_acquire);
  block* first = h->delayed_free.load(std::memory_order_relaxed);
  do {
    tail->next = first;
  } while (!h->delayed_free.compare_exchange_weak(first, head, std::memory_order_release, std::memory_order_relaxed));
  tf = pg->xthread_free.load(std::memory_order_relaxed);
  while (!pg->xthread_free.compare_exchange_weak(tf, (tf & ~kRemoteStateMask) | kNoDelayed,
                                                 std::memory_order_acq_rel, std::memory_order_relaxed)) {
  }
}

constexpr std::uint32_t kRemoteBatch = 64;

void flush_batch(remote_batch& batch) {
  if (batch.head != nullptr) push_remote(batch.pg, batch.head, batch.tail, batch.count);
  batch = remote_batch{};
}

// Remote frees into the process heap are gathered per page and pushed as
// one chain: a consumer freeing a producer's blocks then pays one atomic
// operation (and one trip of the page's cache line between cores) per batch
// instead of per block. A thread holds at most one batch per small size
// class, until the batch fills, another page of its class comes, or the
// thread takes the slow allocation path or exits. A thread that has not
// allocated yet is set up here, so that one that only frees (a consumer)
// batches too and flushes when it exits. Heaps that can be closed are not
// batched, so no thread ever holds blocks of a heap that goes away.
void free_remote(region* r, page* pg, block* b) {
  thread_data* td = nullptr;
  if (r == g_process_region && (current_thread() != nullptr || thread_setup() != nullptr)) td = current_thread();
  if (td == nullptr) {
    push_remote(pg, b, b, 1);
    return;
  }
  remote_batch& batch = td->remote[pg->bin < kCachedBins ? pg->bin : 0];
  if (batch.pg != pg || batch.count >= kRemoteBatch) {
    flush_batch(batch);
    batch.pg = pg;
    batch.tail = b;
  }
  b->next = batch.head;
  batch.head = b;
  ++batch.count;
  td->remote_pending = true;
}

// A free into a page of another client of a heap with shared writers.
// The page's owner heap lives in another process, so the delayed-free
// hand-over cannot reach it: the block goes onto the page's remote list
// (its delay state left as it is), and the owning client's count of such
// frees tells it to look in its full pages (collect_foreign_frees).
void free_foreign(region* r, segment* s, page* pg, block* b) {
  note_metadata(pg, sizeof(page));
  note_metadata(b, sizeof(block));
  std::uintptr_t tf = pg->xthread_free.load(std::memory_order_relaxed);
  for (;;) {
    b->next = remote_list(tf);
    std::uintptr_t total = std::uintptr_t{remote_count(tf) + 1} << kRemoteCountShift;
    if (pg->xthread_free.compare_exchange_weak(tf, total | reinterpret_cast<std::uintptr_t>(b) | (tf & kRemoteStateMask),
                                               std::memory_order_release, std::memory_order_relaxed))
      break;
  }
  r->note_foreign_free(__atomic_load_n(&s->client, __ATOMIC_ACQUIRE));
}

// `pg` is a live page of `r` holding `p`.
void free_in_page(region* r, page* pg, void* p) {
  if (pg->flags.load(std::memory_order_relaxed) & kPageHasAligned) p = block_start(pg, p);
  auto* b = static_cast<block*>(p);
  if (r->shared_writers()) {
    segment* s = segment_of(pg);
    if (!r->owns(s)) {
      free_foreign(r, s, pg, b);
      return;
    }
  }
  if (pg->owner_tid.load(std::memory_order_relaxed) == r->owner_tag(current_tid())) {
    free_to_owned_page(pg->heap.load(std::memory_order_relaxed), pg, b);
  } else {
    free_remote(r, pg, b);
  }
}

}  // namespace

void* pushed_block(void* p) noexcept {
  page* pg = page_of(segment_of(p), p);
  return (pg->flags.load(std::memory_order_relaxed) & kPageHasAligned) ? block_start(pg, p) : p;
}

void push_in_transaction(region* r, void* block_address, std::uint32_t lane) noexcept {
  segment* s = segment_of(block_address);
  page* pg = page_of(s, block_address);
  s->pending_pushes.fetch_or(std::uint64_t{1} << lane, std::memory_order_seq_cst);
  // A fold that began before the bit went up ends within moments; one
  // whose client died stays up until someone puts it down.
  for (unsigned spins = 0; pg->folding.load(std::memory_order_seq_cst) != 0; ++spins) {
    if (spins % 1024 != 1023) {
      sched_yield();
      continue;
    }
    std::uint16_t owner = __atomic_load_n(&s->client, __ATOMIC_ACQUIRE);
    if (owner == layout::kNoClient || !r->client_alive(owner)) {
      std::uint8_t up = 1;
      pg->folding.compare_exchange_strong(up, 0, std::memory_order_seq_cst);
    }
  }
  free_foreign(r, s, pg, static_cast<block*>(block_address));
}

void end_pushes(region* r, void* block_address, std::uint32_t lane) noexcept {
  segment* s = segment_of(block_address);
  s->pending_pushes.fetch_and(~(std::uint64_t{1} << lane), std::memory_order_release);
  // The owner may have looked while the bit held it off.
  r->note_foreign_free(__atomic_load_n(&s->client, __ATOMIC_ACQUIRE));
}

bool take_back_push(void* block_address, void** relinked) noexcept {
  auto* b = static_cast<block*>(block_address);
  page* pg = page_of(segment_of(b), b);
  *relinked = nullptr;
  std::uintptr_t tf = pg->xthread_free.load(std::memory_order_acquire);
  for (;;) {
    block* head = remote_list(tf);
    if (head == b) {
      std::uintptr_t rest = ((tf >> kRemoteCountShift) - 1) << kRemoteCountShift;
      if (pg->xthread_free.compare_exchange_weak(tf, rest | reinterpret_cast<std::uintptr_t>(b->next) | (tf & kRemoteStateMask),
                                                 std::memory_order_acq_rel, std::memory_order_acquire))
        return true;
      continue;
    }
    // Deeper in the list: the link of the block pushed after it is written
    // by no one else until a fold, which pending_pushes holds off.
    // A page holds at most 4096 blocks: a longer walk is a damaged list.
    block* before = head;
    for (unsigned steps = 0; before != nullptr && before->next != b; ++steps)
      before = steps < 4096 ? before->next : nullptr;
    if (before == nullptr) return false;
    // The count first: a kill between the two steps then leaves the block
    // on the list uncounted (the page's count of blocks in use stays one
    // high, a leak), never counted and gone (one low: a live block's page
    // could be given back).
    while (!pg->xthread_free.compare_exchange_weak(tf, tf - (std::uintptr_t{1} << kRemoteCountShift),
                                                   std::memory_order_acq_rel, std::memory_order_acquire)) {
    }
    before->next = b->next;
    *relinked = before;
    return true;
  }
}

void collect_foreign_frees(local_heap* h) noexcept {
  if (h->delayed_free.load(std::memory_order_relaxed) != nullptr) drain_delayed(h);
  std::uint64_t now = h->arena->owner->foreign_frees();
  if (now == h->foreign_seen) return;
  h->foreign_seen = now;
  for (page* pg = h->full.first; pg != nullptr;) {
    page* next = pg->next;
    if (remote_list(pg->xthread_free.load(std::memory_order_acquire)) != nullptr) {
      page_collect(pg);
      if (pg->free != nullptr) page_unfull(h, pg);
    }
    pg = next;
  }
}

void collect_foreign_frees(region* r) noexcept {
  thread_data* td = current_thread();
  if (td == nullptr || !r->shared_writers()) return;
  for (local_heap* h = td->heaps; h != nullptr; h = h->next_in_thread)
    if (h->owner_region.load(std::memory_order_acquire) == r) collect_foreign_frees(h);
}

void flush_remote_frees(thread_data* td) noexcept {
  if (!td->remote_pending) return;
  for (remote_batch& batch : td->remote) flush_batch(batch);
  td->remote_pending = false;
}

void free_generic(void* p) noexcept {
  if (p == nullptr) return;
  region* r = g_process_region;
  if (r == nullptr || !r->contains(p)) r = find_region(p);
  if (r == nullptr) {
    verbose("free: ignoring %p, which no larder heap holds", p);
    return;
  }
  if (!r->writable()) {
    warning("free: ignoring %p, which is in a heap opened read-only", p);
    return;
  }
  segment* s = segment_of(p);
  if ((reinterpret_cast<std::uintptr_t>(p) & (kSegmentSize - 1)) == 0 ||
      layout::entry_state(r->entry(r->segment_index(p))) != layout::kSegmentPages) {
    segment* head = r->head_segment(p);
    std::uint8_t flags = head == nullptr ? 0 : head->pages[0].flags.load(std::memory_order_relaxed);
    if (!(flags & kPageHuge) || (flags & kPageQuarantined)) {
      warning("free: %p is not a live block%s", p, (flags & kPageQuarantined) ? " (a quarantined huge block)" : "");
      return;
    }
    huge_free(r, head);
    return;
  }
  page* pg = page_of(s, p);
  if (pg->slice_count == 0 || (pg->flags.load(std::memory_order_relaxed) & kPageQuarantined)) {
    warning("free: %p is not a live block%s", p, pg->slice_count == 0 ? "" : " (its page is quarantined)");
    return;
  }
  free_in_page(r, pg, p);
}

void free_not_owned(page* slice, void* p) noexcept {
  page* pg = slice - slice->slice_offset;
  // Huge blocks, quarantined pages and stray pointers take the careful path.
  if (pg->slice_count == 0 || (pg->flags.load(std::memory_order_relaxed) & (kPageHuge | kPageQuarantined))) {
    free_generic(p);
    return;
  }
  free_in_page(g_process_region, pg, p);
}

namespace {

// `h`, or where it sends an allocation of `size` made at `site`: the
// thread's process heap when it is not set up yet, a router's target.
// nullptr with errno ENOMEM when that cannot be had.
local_heap* usable_heap(local_heap* h, std::size_t size, const void* site) noexcept {
  if (h == &g_empty_heap && (h = thread_setup()) == nullptr) {
    errno = ENOMEM;
    return nullptr;
  }
  if (LARDER_UNLIKELY(h->routes != nullptr)) {
    region* r = h->owner_region.load(std::memory_order_relaxed);
    if ((h = route_target(h, size, site)) == nullptr) errno = r != nullptr && r->writable() ? ENOMEM : EROFS;
  }
  return h;
}

}  // namespace

void* aligned_alloc_in(local_heap* h, std::size_t size, std::size_t alignment, const void* site) noexcept {
  if ((h = usable_heap(h, size, site != nullptr ? site : __builtin_return_address(0))) == nullptr) return nullptr;
  if (alignment <= 16) return heap_malloc(h, size);
  if (size >= alignment && alignment <= 4096 && size <= kLargeMax) {
    // Power-of-two blocks on slice-aligned pages often come out aligned.
    void* p = heap_malloc(h, size);
    if (p == nullptr || (reinterpret_cast<std::uintptr_t>(p) & (alignment - 1)) == 0) return p;
    fast_free(p);
  }
  if (size > kLargeMax || alignment > kLargeMax / 4 || size + alignment - 1 > kLargeMax) {
    return huge_alloc(h, size, alignment, nullptr);
  }
  auto* raw = static_cast<std::uint8_t*>(heap_malloc(h, size + alignment - 1));
  if (raw == nullptr) return nullptr;
  auto address = reinterpret_cast<std::uintptr_t>(raw);
  std::uintptr_t aligned = (address + alignment - 1) & ~(alignment - 1);
  if (aligned != address) {
    segment* s = segment_of(raw);
    page* pg = page_of(s, raw);
    set_flag(pg, kPageHasAligned);
    pg->cache_bin = kNoCacheBin;  // its frees need block_start first
  }
  return reinterpret_cast<void*>(aligned);
}

void* allocate_logged(local_heap* h, std::size_t size, std::size_t alignment) noexcept {
  if (alignment <= 16) return size > kLargeMax ? huge_alloc(h, size, 0, nullptr) : malloc_generic(h, size);
  if (size > kLargeMax || alignment > kLargeMax / 4 || size + alignment - 1 > kLargeMax)
    return huge_alloc(h, size, alignment, nullptr);
  auto* raw = static_cast<std::uint8_t*>(malloc_generic(h, size + alignment - 1));
  if (raw == nullptr) return nullptr;
  auto address = reinterpret_cast<std::uintptr_t>(raw);
  std::uintptr_t aligned = (address + alignment - 1) & ~(alignment - 1);
  if (aligned != address) {
    page* pg = page_of(segment_of(raw), raw);
    set_flag(pg, kPageHasAligned);
    pg->cache_bin = kNoCacheBin;
  }
  return reinterpret_cast<void*>(aligned);
}

void* zalloc_in(local_heap* h, std::size_t size) noexcept {
  if ((h = usable_heap(h, size, __builtin_return_address(0))) == nullptr) return nullptr;
  if (size > kLargeMax) {
    bool zeroed = false;
    void* p = huge_alloc(h, size, 0, &zeroed);
    if (p != nullptr && !zeroed) std::memset(p, 0, size);
    return p;
  }
  void* p = heap_malloc(h, size);
  if (p != nullptr) std::memset(p, 0, size);
  return p;
}

std::size_t usable_size(const void* p) noexcept {
  if (p == nullptr) return 0;
  region* r = g_process_region;
  if (r == nullptr || !r->contains(p)) r = find_region(p);
  if (r == nullptr) return 0;
  segment* head = r->head_segment(p);
  if (head == nullptr) return 0;
  if (head->pages[0].flags.load(std::memory_order_relaxed) & kPageHuge) return huge_usable(head, p);
  page* pg = page_of(head, p);
  if (pg->slice_count == 0) return 0;
  const auto* start = static_cast<const std::uint8_t*>(block_start(pg, p));
  return pg->block_size - static_cast<std::size_t>(static_cast<const std::uint8_t*>(p) - start);
}

void* allocate_in_generic(region* r, std::uint32_t pod, std::size_t size, std::size_t alignment,
                          const void* site) noexcept {
  local_heap* h = local_heap_for(r, pod);
  if (h == nullptr) {
    errno = r->writable() ? ENOMEM : EROFS;
    return nullptr;
  }
  if (alignment > 16) return aligned_alloc_in(h, size, alignment, site);
  return h->routes != nullptr ? routed_heap_malloc(h, size, site) : heap_malloc(h, size);
}

void* realloc_block(void* p, std::size_t size) noexcept {
  if (size > kMaxRequest) {
    errno = ENOMEM;
    return nullptr;
  }
  region* r = g_process_region;
  if (r == nullptr || !r->contains(p)) r = find_region(p);
  segment* head = r == nullptr ? nullptr : r->head_segment(p);
  if (head == nullptr) {
    errno = EINVAL;
    return nullptr;
  }
  if (!r->writable()) {
    errno = EROFS;
    return nullptr;
  }
  bool huge = head->pages[0].flags.load(std::memory_order_relaxed) & kPageHuge;
  if (huge && huge_resize_in_place(r, head, p, size)) return p;
  std::size_t old_size = usable_size(p);
  if (!huge && size <= old_size && size >= old_size / 2) return p;
  void* fresh = allocate_in(r, head->pod, size, 16);
  if (fresh == nullptr) return nullptr;
  std::memcpy(fresh, p, size < old_size ? size : old_size);
  free_generic(p);
  return fresh;
}

void collect_all() noexcept {
  if (thread_data* td = current_thread()) flush_remote_frees(td);
  for_each_region(
      [](region* r, void*) {
        if (!r->writable()) return;  // read-only, or a forked child's view of a parent's heap
        for (std::uint32_t pod = 0; pod < layout::kMaxPods; ++pod)
          if (pod_arena* a = r->existing_arena(pod)) a->collect();
        r->purge_retained();
      },
      nullptr);
}

}  // namespace larder::alloc
