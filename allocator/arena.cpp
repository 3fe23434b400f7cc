// Page supply for one pod; see arena.hpp. Every function that touches the
// arena's lists holds `lock`; the region's lock is only ever taken inside it.
#include "allocator/arena.hpp"

#include "allocator/options.hpp"
#include "allocator/region.hpp"
#include "allocator/metadata_log.hpp"
#include "allocator/page_ops.hpp"
#include "allocator/unsettled.hpp"
#include "port/os.hpp"

#include <bit>
#include <cstring>

namespace larder::alloc {

namespace {

constexpr std::uint64_t kAllSlices = ~std::uint64_t{0};

std::uint64_t run_mask(std::size_t first, std::size_t count) {
  std::uint64_t ones = count >= 64 ? kAllSlices : ((std::uint64_t{1} << count) - 1);
  return ones << first;
}

// Index of the first run of `count` set bits in `mask`, or 64.
std::size_t find_run(std::uint64_t mask, std::size_t count) {
  for (std::size_t i = 0; i + count <= 64; ++i) {
    std::uint64_t want = run_mask(i, count);
    if ((mask & want) == want) return i;
    if (count == 1) {
      if (mask == 0) return 64;
      return static_cast<std::size_t>(std::countr_zero(mask));
    }
  }
  return 64;
}

// Folds remote frees into an unowned page's free list, or, while a
// transaction's pushes onto it are pending, only marks it abandoned. The
// caller holds the arena lock and the page is on no thread's queue.
void fold_remote_frees(page* pg) {
  if (!fold_gate::open(pg)) {
    set_delay_state(pg, kNeverDelayed);
    return;
  }
  note_metadata(pg, sizeof(page));
  note_plain_change(pg);
  std::uintptr_t list = pg->xthread_free.exchange(kNeverDelayed, std::memory_order_acq_rel);
  fold_gate::close(pg);
  for (block* b = remote_list(list); b != nullptr;) {
    block* next = b->next;
    note_metadata(b, sizeof(block));
    b->next = pg->free;
    pg->free = b;
    --pg->used;
    b = next;
  }
}

void init_page(segment* s, std::size_t first, std::size_t slices, std::size_t bin) {
  page* pg = &s->pages[first];
  std::size_t block_size = kSizeClasses.block_size[bin];
  pg->free = nullptr;
  pg->used = 0;
  pg->reserved = 0;
  pg->owner_tid.store(0, std::memory_order_relaxed);
  pg->xthread_free.store(kNoDelayed, std::memory_order_relaxed);
  pg->heap.store(nullptr, std::memory_order_relaxed);
  pg->next = pg->prev = nullptr;
  pg->block_size = static_cast<std::uint32_t>(block_size);
  pg->slice_count = static_cast<std::uint8_t>(slices);
  pg->slice_offset = 0;
  pg->bin = static_cast<std::uint8_t>(bin);
  pg->cache_bin = bin < kCachedBins ? static_cast<std::uint8_t>(bin) : kNoCacheBin;
  pg->flags.store(0, std::memory_order_relaxed);
  pg->folding.store(0, std::memory_order_relaxed);
  pg->capacity = static_cast<std::uint16_t>(page_area(pg, first) / block_size);
  for (std::size_t j = 1; j < slices; ++j) {
    page* cont = &s->pages[first + j];
    cont->owner_tid.store(0, std::memory_order_relaxed);  // see fast_free
    cont->slice_count = 0;
    cont->slice_offset = static_cast<std::uint8_t>(j);
  }
}

}  // namespace

void pod_arena::list_segment(segment* s) noexcept {
  if (s->listed) return;
  s->listed = 1;
  s->next_with_free = with_free_;
  with_free_ = s;
}

void pod_arena::unlist_segment(segment* s) noexcept {
  if (!s->listed) return;
  for (segment** link = &with_free_; *link != nullptr; link = &(*link)->next_with_free) {
    if (*link == s) {
      *link = s->next_with_free;
      break;
    }
  }
  s->listed = 0;
  s->next_with_free = nullptr;
}

segment* pod_arena::segment_with_run(std::size_t slices, std::size_t* first) noexcept {
  for (segment* s = with_free_; s != nullptr; s = s->next_with_free) {
    std::size_t at = find_run(s->free_slices, slices);
    if (at < 64) {
      *first = at;
      return s;
    }
  }
  bool zeroed = false;
  segment* s = owner->acquire(1, pod, layout::kSegmentPages, &zeroed);
  if (s == nullptr) return nullptr;
  list_segment(s);
  *first = 0;
  return s;
}

page* pod_arena::new_page(std::size_t bin) noexcept {
  std::size_t slices = slices_for_block(kSizeClasses.block_size[bin]);
  std::size_t first = 0;
  segment* s = segment_with_run(slices, &first);
  if (s == nullptr) return nullptr;
  std::uint64_t mask = run_mask(first, slices);
  // Slices of a file or shm heap without storage (never handed out since
  // the segment was taken, or purged since): the first store would die by
  // SIGBUS on a full file system.
  if ((s->holes & mask) != 0) {
    std::size_t offset = first == 0 ? kSegmentHeaderSize : 0;
    auto* start = reinterpret_cast<std::uint8_t*>(s) + (first << kSliceShift) + offset;
    if (int err = owner->reserve_backing(start, (slices << kSliceShift) - offset)) {
      errno = err;
      return nullptr;
    }
    note_metadata(&s->holes, sizeof(s->holes));
    s->holes &= ~mask;
  }
  note_metadata(s, kSegmentHeaderSize);
  note_plain_change(s);
  const bool resident = (s->unpurged & mask) == mask;
  if ((s->unpurged & mask) != 0) {
    std::size_t purged_back = static_cast<std::size_t>(std::popcount(s->unpurged & mask));
    unpurged_slices_ -= purged_back < unpurged_slices_ ? purged_back : unpurged_slices_;
  }
  // The descriptor first, then the slices leave the free set: a kill in
  // between leaves free slices with a stale descriptor, which nothing reads.
  init_page(s, first, slices, bin);
  std::atomic_signal_fence(std::memory_order_release);
  s->free_slices &= ~mask;
  s->unpurged &= ~mask;
  if (s->free_slices == 0) unlist_segment(s);
  page* pg = &s->pages[first];
  // Taking a small-block page in at once is cheaper than 16 separate
  // faults (on a shared mapping each goes through the file system); its
  // blocks are all handed out before another page of its size is taken.
  if (slices == 1 && (owner->shared() || !resident)) port::populate(page_start(s, pg), page_area(pg, first));
  return pg;
}

page* pod_arena::take_abandoned(std::size_t bin) noexcept {
  page* pg = abandoned_[bin];
  if (pg != nullptr) abandoned_[bin] = pg->next;
  return pg;
}

page* pod_arena::take_page(std::size_t bin) noexcept {
  std::lock_guard<std::mutex> guard(lock);
  if (page* pg = take_abandoned(bin)) {
    pg->next = nullptr;
    return pg;
  }
  // With shared writers, what clients that left or died hold comes before
  // new pages: their pages of this size, and their free slices.
  while (segment* s = owner->adopt_unowned(pod)) {
    adopt_segment(s);
    if (page* pg = take_abandoned(bin)) {
      pg->next = nullptr;
      return pg;
    }
  }
  return new_page(bin);
}

void pod_arena::abandon(page* pg) noexcept {
  std::lock_guard<std::mutex> guard(lock);
  pg->prev = nullptr;
  pg->next = abandoned_[pg->bin];
  abandoned_[pg->bin] = pg;
}

bool pod_arena::release_slices(segment* s, std::size_t first, std::size_t count) noexcept {
  note_metadata(s, kSegmentHeaderSize);
  note_plain_change(s);
  // Free first, then the descriptors go: see new_page.
  std::uint64_t mask = run_mask(first, count);
  s->free_slices |= mask;
  std::atomic_signal_fence(std::memory_order_release);
  for (std::size_t j = 0; j < count; ++j) {
    page* pg = &s->pages[first + j];
    pg->slice_count = 0;
    pg->slice_offset = 0;
    pg->block_size = 0;
  }
  // With shared writers a segment a transaction empties stays: another
  // client could take it before the commit, and a rollback would then
  // hand it back to this one.
  if (s->free_slices == kAllSlices && !(owner->shared_writers() && metadata_logged())) {
    std::size_t was_unpurged = static_cast<std::size_t>(std::popcount(s->unpurged));
    unpurged_slices_ -= was_unpurged < unpurged_slices_ ? was_unpurged : unpurged_slices_;
    unlist_segment(s);
    s->unpurged = 0;
    owner->release(s, 1);
    return true;
  }
  s->unpurged |= mask;
  unpurged_slices_ += count;
  list_segment(s);
  if (unpurged_slices_ > static_cast<std::size_t>(option_value(option::purge_slices)) && !metadata_logged())
    purge_free_slices();
  return false;
}

void pod_arena::free_page(page* pg) noexcept {
  segment* s = segment_of(pg);
  std::size_t first = static_cast<std::size_t>(pg - s->pages);
  std::lock_guard<std::mutex> guard(lock);
  release_slices(s, first, pg->slice_count);
}

void pod_arena::purge_free_slices() noexcept {
  for (segment* s = with_free_; s != nullptr; s = s->next_with_free) {
    std::uint64_t mask = s->unpurged;
    while (mask != 0) {
      std::size_t first = static_cast<std::size_t>(std::countr_zero(mask));
      std::size_t count = static_cast<std::size_t>(std::countr_one(mask >> first));
      auto* start = reinterpret_cast<std::uint8_t*>(s) + (first << kSliceShift);
      std::size_t bytes = count << kSliceShift;
      if (first == 0) {  // keep the segment header
        start += kSegmentHeaderSize;
        bytes -= kSegmentHeaderSize;
      }
      port::decommit(start, bytes, owner->shared());
      if (owner->shared()) s->holes |= run_mask(first, count);
      mask &= ~run_mask(first, count);
    }
    s->unpurged = 0;
  }
  unpurged_slices_ = 0;
}

void pod_arena::collect() noexcept {
  std::lock_guard<std::mutex> guard(lock);
  for (std::size_t bin = 0; bin < kBinCount; ++bin) {
    page** link = &abandoned_[bin];
    while (page* pg = *link) {
      fold_remote_frees(pg);
      if (pg->used == 0) {
        *link = pg->next;
        segment* s = segment_of(pg);
        release_slices(s, static_cast<std::size_t>(pg - s->pages), pg->slice_count);
      } else {
        link = &pg->next;
      }
    }
  }
  purge_free_slices();
}

void pod_arena::adopt_segment(segment* s) noexcept {
  std::size_t k = 0;
  while (k < kSlicesPerSegment) {
    page* pg = &s->pages[k];
    if ((s->free_slices >> k) & 1 || pg->slice_count == 0) {
      ++k;
      continue;
    }
    std::size_t slices = pg->slice_count;
    pg->owner_tid.store(0, std::memory_order_relaxed);
    pg->heap.store(nullptr, std::memory_order_relaxed);
    pg->next = pg->prev = nullptr;
    pg->flags.store(pg->flags.load(std::memory_order_relaxed) & ~kPageInFull, std::memory_order_relaxed);
    if (pg->flags.load(std::memory_order_relaxed) & kPageQuarantined) {  // never handed out again
      k += slices;
      continue;
    }
    // In a transaction of a heap with shared writers the remote frees stay
    // on their list (see page_collect); the page is only marked abandoned.
    if (metadata_logged() && owner->shared_writers()) {
      set_delay_state(pg, kNeverDelayed);
    } else {
      fold_remote_frees(pg);
    }
    if (pg->used == 0) {
      if (release_slices(s, k, slices)) return;  // the whole segment went back
    } else {
      pg->next = abandoned_[pg->bin];
      abandoned_[pg->bin] = pg;
    }
    k += slices;
  }
  if (s->free_slices != 0) list_segment(s);
}

}  // namespace larder::alloc
