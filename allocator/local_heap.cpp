// Page queues of a local heap and giving a heap up at thread exit; see
// local_heap.hpp.
#include "allocator/local_heap.hpp"

#include "allocator/arena.hpp"
#include "allocator/page_ops.hpp"

namespace larder::alloc {

constinit page g_empty_page{};
constinit local_heap g_empty_heap{};

namespace {

// The direct slots (size + 15) / 16 that map to each bin.
struct direct_range {
  std::uint8_t first[kBinCount] = {};
  std::uint8_t last[kBinCount] = {};
  constexpr direct_range() {
    for (std::size_t slot = 0; slot < kDirectSlots; ++slot) {
      std::size_t bin = bin_of_units(slot);
      if (first[bin] == 0 && bin != 1) first[bin] = static_cast<std::uint8_t>(slot);
      last[bin] = static_cast<std::uint8_t>(slot);
    }
  }
};
constexpr direct_range kDirectRange{};

void update_direct(local_heap* h, std::size_t bin) {
  if (bin >= kFullBin || kSizeClasses.block_size[bin] > kDirectMax) return;
  page* target = h->queues[bin].first != nullptr ? h->queues[bin].first : &g_empty_page;
  for (std::size_t slot = kDirectRange.first[bin]; slot <= kDirectRange.last[bin]; ++slot) h->direct[slot] = target;
}

}  // namespace

void local_heap_init(local_heap* h, pod_arena* arena, std::uintptr_t tid) noexcept {
  h->tid = tid;
  h->arena = arena;
}

void queue_push_front(local_heap* h, std::size_t bin, page* pg) noexcept {
  page_queue& q = h->queues[bin];
  pg->prev = nullptr;
  pg->next = q.first;
  if (q.first != nullptr) q.first->prev = pg;
  q.first = pg;
  if (q.last == nullptr) q.last = pg;
  update_direct(h, bin);
}

void queue_remove(local_heap* h, std::size_t bin, page* pg) noexcept {
  page_queue& q = h->queues[bin];
  if (pg->prev != nullptr) pg->prev->next = pg->next;
  if (pg->next != nullptr) pg->next->prev = pg->prev;
  bool was_first = q.first == pg;
  if (was_first) q.first = pg->next;
  if (q.last == pg) q.last = pg->prev;
  pg->next = pg->prev = nullptr;
  if (was_first) update_direct(h, bin);
}

void local_heap_abandon(local_heap* h) noexcept {
  // First stop remote frees from using the delayed list, then fold in what
  // they left there, then give every page away.
  for (auto& q : h->queues)
    for (page* pg = q.first; pg != nullptr; pg = pg->next) set_delay_state(pg, kNeverDelayed);
  drain_delayed(h);
  for (std::size_t bin = 0; bin <= kFullBin; ++bin) {
    while (page* pg = h->queues[bin].first) {
      queue_remove(h, bin, pg);
      page_collect(pg);
      pg->owner_tid.store(0, std::memory_order_relaxed);
      pg->heap.store(nullptr, std::memory_order_release);
      pg->flags.store(pg->flags.load(std::memory_order_relaxed) & ~kPageInFull, std::memory_order_relaxed);
      if (pg->used == 0) {
        h->arena->free_page(pg);
      } else {
        h->arena->abandon(pg);
      }
    }
  }
}

}  // namespace larder::alloc
