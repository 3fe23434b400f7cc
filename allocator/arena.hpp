// A pod arena: the pages and segments of one pod inside one region, shared
// by every thread that allocates from the pod. Threads take pages from it
// (a page with free blocks that a dead thread abandoned, or fresh slices)
// and give empty pages back; it returns memory to the OS under the
// purge_slices option.
#pragma once

#include "allocator/segment.hpp"
#include "allocator/region.hpp"
#include "allocator/size_class.hpp"

#include <cstddef>
#include <cstdint>
#include <mutex>

namespace larder::alloc {

class region;

struct pod_arena {
  region* owner = nullptr;
  std::uint32_t pod = 0;
  std::mutex lock;

  // A page for blocks of `bin` owned by nobody: an abandoned one with free
  // blocks if there is one, else fresh slices. nullptr when memory is out.
  page* take_page(std::size_t bin) noexcept;
  // Gives an empty page's slices back.
  void free_page(page* pg) noexcept;
  // Offers a page that still holds live blocks to other threads.
  void abandon(page* pg) noexcept;
  // Returns free slices and empty abandoned pages to the OS now.
  void collect() noexcept;

  // Calls fn(page*) for each heap page in the pod's segments, holding
  // `lock` (so fn must not take it).
  template <class Fn>
  void for_each_page(Fn&& fn) noexcept;

  // Used by region::adopt_existing while nothing else runs.
  void adopt_segment(segment* s) noexcept;

 private:
  page* take_abandoned(std::size_t bin) noexcept;
  page* new_page(std::size_t bin) noexcept;
  segment* segment_with_run(std::size_t slices, std::size_t* first) noexcept;
  // Returns true when this emptied the segment and it went back to the region.
  bool release_slices(segment* s, std::size_t first, std::size_t count) noexcept;
  void purge_free_slices() noexcept;
  void list_segment(segment* s) noexcept;
  void unlist_segment(segment* s) noexcept;

  page* abandoned_[kBinCount] = {};
  segment* with_free_ = nullptr;  // segments that have free slices
  std::size_t unpurged_slices_ = 0;
};

template <class Fn>
void pod_arena::for_each_page(Fn&& fn) noexcept {
  // The arena lock keeps the pod's pages from being carved or released
  // (new_page, release_slices) while the walk reads free_slices and
  // slice_count, and keeps its segments from changing hands. Other pods
  // grow the region under the region lock, which guards segments_high.
  std::lock_guard<std::mutex> guard(lock);
  std::size_t high;
  {
    std::lock_guard region_guard(owner->claim_lock());
    high = owner->meta()->segments_high;
  }
  for (std::size_t i = 1; i < high; ++i) {
    std::uint32_t entry = owner->entry(i);
    if (layout::entry_state(entry) != layout::kSegmentPages || layout::entry_pod(entry) != pod) continue;
    auto* s = reinterpret_cast<segment*>(segment_index_to_address(owner->base(), i));
    // Other clients' pages say things only to their own process.
    if (!owner->owns(s)) continue;
    for (std::size_t k = 0; k < kSlicesPerSegment; ++k)
      if (s->pages[k].slice_count != 0 && ((s->free_slices >> k) & 1) == 0) fn(&s->pages[k]);
  }
}

}  // namespace larder::alloc
