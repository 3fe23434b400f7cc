// Operations on a page that the fast and slow paths share: carving fresh
// blocks, folding in remote frees, the delayed-free protocol, and what
// happens when a page fills or empties.
//
// Remote frees (by a thread that does not own the page) push onto
// page::xthread_free, whose low two bits hold a delay_state. When a page
// fills, its owner moves it to the full queue and sets kUseDelayed: the next
// remote free then also tells the owner heap (through its delayed_free list)
// so the owner can move the page back. kDelaying marks that hand-over in
// flight; an owner changing the state waits it out, so a heap is never
// freed while a remote free still writes to it.
#pragma once

#include "allocator/local_heap.hpp"
#include "allocator/metadata_log.hpp"
#include "allocator/segment.hpp"
#include "allocator/unsettled.hpp"

#include <sched.h>

namespace larder::alloc {

inline void set_delay_state(page* pg, delay_state state) noexcept {
  note_metadata(pg, sizeof(page));
  std::uintptr_t tf = pg->xthread_free.load(std::memory_order_relaxed);
  for (;;) {
    if ((tf & 3) == kDelaying) {
      sched_yield();
      tf = pg->xthread_free.load(std::memory_order_relaxed);
      continue;
    }
    if ((tf & 3) == state) return;
    if (pg->xthread_free.compare_exchange_weak(tf, (tf & ~kRemoteStateMask) | state, std::memory_order_acq_rel,
                                               std::memory_order_relaxed))
      return;
  }
}

// Flags are written only by the page's owner; remote frees only read them,
// so a plain load and store suffice.
inline void set_flag(page* pg, std::uint8_t flag) noexcept {
  note_metadata(pg, sizeof(page));
  note_plain_change(pg);
  pg->flags.store(pg->flags.load(std::memory_order_relaxed) | flag, std::memory_order_relaxed);
}
inline void clear_flag(page* pg, std::uint8_t flag) noexcept {
  note_metadata(pg, sizeof(page));
  note_plain_change(pg);
  pg->flags.store(pg->flags.load(std::memory_order_relaxed) & ~flag, std::memory_order_relaxed);
}

// With shared writers a transaction frees a block of a page it does not
// own by pushing it onto the page's remote list before its commit, so that
// the commit is what makes the block free, with no step after it that a
// kill could skip (push_in_transaction). Until the transaction ends, its
// lane's bit in the segment's pending_pushes keeps owners from taking the
// list: a rollback may still take the block back out of it. Owner and
// pusher meet as in Dekker's algorithm: the owner raises page::folding and
// then reads pending_pushes; the pusher raises its bit and then waits while
// folding is up. One of them sees the other.
struct fold_gate {
  // Whether the owner may take pg's remote list now; if so, close(pg)
  // once it has. Heaps without shared writers (no client) skip the gate.
  static bool open(page* pg) noexcept {
    segment* s = segment_of(pg);
    if (__atomic_load_n(&s->client, __ATOMIC_RELAXED) == layout::kNoClient) return true;
    if (s->pending_pushes.load(std::memory_order_relaxed) != 0) return false;
    pg->folding.store(1, std::memory_order_seq_cst);
    if (s->pending_pushes.load(std::memory_order_seq_cst) == 0) return true;
    pg->folding.store(0, std::memory_order_release);
    return false;
  }
  // Whether open(pg) may succeed now (a cheap look, no promise).
  static bool may_open(const page* pg) noexcept {
    return segment_of(pg)->pending_pushes.load(std::memory_order_relaxed) == 0;
  }
  static void close(page* pg) noexcept {
    if (pg->folding.load(std::memory_order_relaxed) != 0) pg->folding.store(0, std::memory_order_release);
  }
};

// Moves remote frees onto the owner's free list. The count travels with
// the list, so it is walked only when the free list is not empty.
//
// Inside a transaction it waits while the page has free blocks: folding
// then writes a link into a free block, which a transaction capturing
// pages would capture and an abort would rewind under the live allocator.
//
// With shared writers it never folds inside a transaction: other clients
// push onto the list meanwhile, so a rollback of this client's lane leaves
// the list as it finds it (runtime/shared_writers.cpp), and blocks folded
// in would be in neither list after it.
inline void page_collect(page* pg) noexcept {
  std::uintptr_t tf = pg->xthread_free.load(std::memory_order_relaxed);
  if (remote_list(tf) == nullptr) return;
  if (metadata_logged() && (pg->free != nullptr || segment_of(pg)->client != layout::kNoClient)) return;
  if (!fold_gate::open(pg)) return;
  note_metadata(pg, sizeof(page));
  note_plain_change(pg);
  while (!pg->xthread_free.compare_exchange_weak(tf, tf & kRemoteStateMask, std::memory_order_acq_rel,
                                                 std::memory_order_relaxed)) {
  }
  fold_gate::close(pg);
  block* head = remote_list(tf);
  if (pg->free != nullptr) {
    block* tail = head;
    while (tail->next != nullptr) tail = tail->next;
    note_metadata(tail, sizeof(block));
    tail->next = pg->free;
  }
  pg->free = head;
  pg->used -= remote_count(tf);
}

// Carves up to an OS page's worth of never-used blocks onto the free list;
// inside a transaction one block, which the caller takes at once (so no
// link is left in free memory that an abort could rewind; see above).
inline void page_extend(page* pg) noexcept {
  if (pg->reserved >= pg->capacity) return;
  segment* s = segment_of(pg);
  std::size_t size = pg->block_size;
  std::size_t count = metadata_logged() ? 1 : 4096 / size;
  if (count == 0) count = 1;
  if (count > static_cast<std::size_t>(pg->capacity - pg->reserved)) count = pg->capacity - pg->reserved;
  std::uint8_t* start = page_start(s, pg) + std::size_t{pg->reserved} * size;
  note_metadata(pg, sizeof(page));
  note_fresh(start, count * size);
  note_plain_change(pg);
  for (std::size_t i = 0; i + 1 < count; ++i)
    reinterpret_cast<block*>(start + i * size)->next = reinterpret_cast<block*>(start + (i + 1) * size);
  reinterpret_cast<block*>(start + (count - 1) * size)->next = pg->free;
  // `reserved` first: a process killed between the two stores then leaks
  // the blocks instead of leaving them to be carved a second time.
  pg->reserved = static_cast<std::uint16_t>(pg->reserved + count);
  std::atomic_signal_fence(std::memory_order_release);
  pg->free = reinterpret_cast<block*>(start);
}

// Start of the block holding interior pointer `p`.
inline void* block_start(page* pg, const void* p) noexcept {
  segment* s = segment_of(pg);
  std::uint8_t* start = page_start(s, pg);
  std::size_t offset = static_cast<std::size_t>(static_cast<const std::uint8_t*>(p) - start);
  return start + (offset - offset % pg->block_size);
}

// Defined in alloc.cpp.
void page_retire(local_heap* h, page* pg) noexcept;
void page_unfull(local_heap* h, page* pg) noexcept;
void free_to_owned_page(local_heap* h, page* pg, block* b) noexcept;
void free_owned_flagged(page* pg, void* p) noexcept;
void drain_delayed(local_heap* h) noexcept;

}  // namespace larder::alloc
