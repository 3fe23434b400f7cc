// A local heap is one thread's cache for one pod: its pages, grouped in
// queues by size class, and the direct page pointers of the malloc fast
// path. Only its thread touches it, except `delayed_free`, where other
// threads leave blocks they freed into its full pages.
#pragma once

#include "allocator/segment.hpp"
#include "allocator/size_class.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace larder::alloc {

struct pod_arena;
class region;
struct route_cache;
struct thread_data;

struct page_queue {
  page* first = nullptr;
  page* last = nullptr;
};

extern page g_empty_page;

struct local_heap {
  constexpr local_heap() noexcept {
    for (auto& slot : direct) slot = &g_empty_page;
    for (std::size_t bin = 0; bin < kCachedBins; ++bin) cache_room[bin] = kCache.limit[bin];
  }
  constexpr explicit local_heap(route_cache* routes_to) noexcept : local_heap() { routes = routes_to; }

  // Blocks this thread freed, by bin, reused first (most recent first):
  // they are likely still in the CPU cache. They count as used in their
  // pages until flushed back.
  block* cache[kCachedBins] = {};
  std::uint16_t cache_room[kCachedBins] = {};  // blocks the cache takes before it flushes
  page* direct[kDirectSlots];  // first page of the queue for (size + 15) / 16
  page_queue queues[kBinCount];  // pages with free blocks, by bin
  page_queue full;               // full pages (kPageInFull), every bin
  // With shared writers: the client's count of frees other clients made
  // into its pages (region::foreign_frees) when this heap last looked
  // for them in its full pages.
  std::uint64_t foreign_seen = 0;
  // Set on a router (allocator/placement.hpp): pod 0 of a region with a
  // placement table, which owns no pages and sends each allocation on.
  route_cache* routes = nullptr;
  std::atomic<block*> delayed_free{nullptr};
  std::uintptr_t tid = 0;
  pod_arena* arena = nullptr;
  std::atomic<region*> owner_region{nullptr};  // nullptr once its heap is closed
  std::uint64_t region_generation = 0;
  thread_data* thread = nullptr;
  local_heap* next_in_thread = nullptr;
};

// g_empty_page has no free blocks and fills every empty direct slot;
// g_empty_heap has only such slots: a thread's first malloc fails the fast
// path there and sets the thread up. Its routes are an empty route cache,
// so that the miss carries its site along, for the router the thread may
// be set up with (allocator/placement.hpp).
extern local_heap g_empty_heap;

// Returns the cached blocks of `bin` beyond the most recent `keep` to their
// pages; local_heap_flush returns all of them. The free fast path calls it
// when the cache is full, keeping half.
void cache_flush(local_heap* h, std::size_t bin, std::size_t keep) noexcept;
void local_heap_flush(local_heap* h) noexcept;

void local_heap_init(local_heap* h, pod_arena* arena, std::uintptr_t tid) noexcept;
// Gives every page away (abandoning those with live blocks); the heap can
// then be freed.
void local_heap_abandon(local_heap* h) noexcept;

void queue_push_front(local_heap* h, std::size_t bin, page* pg) noexcept;
void queue_push_back(local_heap* h, std::size_t bin, page* pg) noexcept;
void queue_remove(local_heap* h, std::size_t bin, page* pg) noexcept;
void full_push(local_heap* h, page* pg) noexcept;
void full_remove(local_heap* h, page* pg) noexcept;

}  // namespace larder::alloc
