// Page queues of a local heap and giving a heap up at thread exit; see
// local_heap.hpp.
#include "allocator/local_heap.hpp"

#include "allocator/arena.hpp"
#include "allocator/page_ops.hpp"
#include "allocator/placement.hpp"

namespace larder::alloc {

constinit page g_empty_page{};
constinit route_cache g_no_routes{};
constinit local_heap g_empty_heap{&g_no_routes};

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
  if (kSizeClasses.block_size[bin] > kDirectMax) return;
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

void queue_push_back(local_heap* h, std::size_t bin, page* pg) noexcept {
  page_queue& q = h->queues[bin];
  if (q.first == nullptr) {
    queue_push_front(h, bin, pg);
    return;
  }
  pg->next = nullptr;
  pg->prev = q.last;
  q.last->next = pg;
  q.last = pg;
}

void full_push(local_heap* h, page* pg) noexcept {
  pg->prev = nullptr;
  pg->next = h->full.first;
  if (h->full.first != nullptr) h->full.first->prev = pg;
  h->full.first = pg;
  if (h->full.last == nullptr) h->full.last = pg;
}

void full_remove(local_heap* h, page* pg) noexcept {
  if (pg->prev != nullptr) pg->prev->next = pg->next;
  if (pg->next != nullptr) pg->next->prev = pg->prev;
  if (h->full.first == pg) h->full.first = pg->next;
  if (h->full.last == pg) h->full.last = pg->prev;
  pg->next = pg->prev = nullptr;
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

void cache_flush(local_heap* h, std::size_t bin, std::size_t keep) noexcept {
  block* rest = h->cache[bin];
  std::size_t kept = 0;
  if (keep == 0) {
    h->cache[bin] = nullptr;
  } else {
    block* last = rest;
    for (kept = 1; kept < keep && last->next != nullptr; ++kept) last = last->next;
    rest = last->next;
    last->next = nullptr;
  }
  h->cache_room[bin] = static_cast<std::uint16_t>(kCache.limit[bin] - kept);
  while (rest != nullptr) {
    block* next = rest->next;
    free_to_owned_page(h, page_of(segment_of(rest), rest), rest);
    rest = next;
  }
}

void local_heap_flush(local_heap* h) noexcept {
  for (std::size_t bin = 0; bin < kCachedBins; ++bin)
    if (h->cache[bin] != nullptr) cache_flush(h, bin, 0);
}

void local_heap_abandon(local_heap* h) noexcept {
  local_heap_flush(h);
  // Full pages: found through the pod's segments (their list's links are
  // reused below).
  h->full = page_queue{};
  page* pages = nullptr;
  for (auto& q : h->queues) {
    while (page* pg = q.first) {
      q.first = pg->next;
      pg->next = pages;
      pages = pg;
    }
    q.last = nullptr;
  }
  h->arena->for_each_page([&](page* pg) {
    if (pg->heap.load(std::memory_order_relaxed) == h && (pg->flags.load(std::memory_order_relaxed) & kPageInFull)) {
      pg->next = pages;
      pages = pg;
    }
  });
  // Stop remote frees from using the delayed list, then fold in what they
  // left there, then give every page away.
  for (page* pg = pages; pg != nullptr; pg = pg->next) set_delay_state(pg, kNeverDelayed);
  block* delayed = h->delayed_free.exchange(nullptr, std::memory_order_acquire);
  while (delayed != nullptr) {
    block* next = delayed->next;
    page* pg = page_of(segment_of(delayed), delayed);
    note_plain_change(pg);
    delayed->next = pg->free;
    pg->free = delayed;
    --pg->used;
    delayed = next;
  }
  while (page* pg = pages) {
    pages = pg->next;
    pg->next = pg->prev = nullptr;
    page_collect(pg);
    pg->owner_tid.store(0, std::memory_order_relaxed);
    pg->heap.store(nullptr, std::memory_order_release);
    clear_flag(pg, kPageInFull);
    if (pg->used == 0) {
      h->arena->free_page(pg);
    } else {
      h->arena->abandon(pg);
    }
  }
  for (auto& slot : h->direct) slot = &g_empty_page;
}

}  // namespace larder::alloc
