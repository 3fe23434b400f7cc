// Segment bookkeeping for one region and the region registry; see region.hpp.
#include "allocator/region.hpp"

#include "allocator/arena.hpp"
#include "allocator/heap_walk.hpp"
#include "allocator/huge.hpp"
#include "allocator/internal_pool.hpp"
#include "allocator/options.hpp"
#include "allocator/metadata_log.hpp"
#include "allocator/unsettled.hpp"
#include "port/assert.hpp"
#include "port/os.hpp"

#include <errno.h>

#include <cstring>

namespace larder::alloc {

using layout::entry_state;
using layout::segment_entry;

void region::init(std::uintptr_t base, std::size_t reserve, std::size_t committed, bool shared, bool writable,
                  region_hooks hooks) noexcept {
  base_ = base;
  reserve_ = reserve;
  segment_limit_ = reserve / kSegmentSize;
  if (segment_limit_ > layout::kMaxSegments) segment_limit_ = layout::kMaxSegments;
  committed_.store(committed, std::memory_order_relaxed);
  shared_ = shared;
  writable_ = writable;
  hooks_ = hooks;
  placement_ = nullptr;
  meta_ = reinterpret_cast<layout::heap_meta*>(base + layout::kMetaOffset);
  search_hint_ = 1;
  table_reserved_ = 0;
}

void region::destroy() noexcept {
  for (auto& slot : arenas_) internal_delete(slot.exchange(nullptr));
  retained_runs_ = 0;
  retained_count_ = 0;
}

pod_arena* region::arena(std::uint32_t pod) noexcept {
  if (pod >= layout::kMaxPods) return nullptr;
  if (pod_arena* a = arenas_[pod].load(std::memory_order_acquire)) return a;
  std::lock_guard<std::mutex> guard(arenas_lock_);
  if (pod_arena* a = arenas_[pod].load(std::memory_order_relaxed)) return a;
  pod_arena* a = internal_new<pod_arena>();
  if (a == nullptr) return nullptr;
  a->owner = this;
  a->pod = pod;
  arenas_[pod].store(a, std::memory_order_release);
  return a;
}

int region::ensure_committed(std::size_t size) noexcept {
  if (size <= committed_.load(std::memory_order_relaxed)) return 0;
  if (hooks_.grow == nullptr) return ENOMEM;
  // Grow by at least an eighth so that a growing heap does few resizes.
  std::size_t current = committed_.load(std::memory_order_relaxed);
  std::size_t target = size;
  std::size_t step = (current / 8 + kSegmentSize - 1) & ~(kSegmentSize - 1);
  if (target < current + step) target = current + step;
  if (target > reserve_) target = reserve_;
  int err = hooks_.grow(hooks_.context, target);
  if (err != 0 && target > size) {
    target = size;
    err = hooks_.grow(hooks_.context, target);
  }
  if (err != 0) return err;
  committed_.store(target, std::memory_order_relaxed);
  return 0;
}

bool region::run_is_free(std::size_t first, std::size_t count) const noexcept {
  if (first + count > segment_limit_) return false;
  for (std::size_t i = first; i < first + count; ++i)
    if (entry_state(entry(i)) != layout::kSegmentFree) return false;
  return true;
}

segment* region::acquire(std::size_t count, std::uint32_t pod, layout::segment_state state, bool* zeroed,
                         const huge_request* huge) noexcept {
  segment* s = take_segments(count, pod, state, zeroed, huge);
  if (s != nullptr && hooks_.segments_acquired != nullptr) hooks_.segments_acquired(hooks_.context, count);
  return s;
}

segment* region::take_segments(std::size_t count, std::uint32_t pod, layout::segment_state state, bool* zeroed,
                               const huge_request* huge) noexcept {
  if (!writable_) {
    errno = EROFS;
    return nullptr;
  }
  std::lock_guard guard(lock_);
  std::size_t first = 0;
  if (!find_retained(count, &first)) {
    std::size_t high = meta_->segments_high;
    // Other processes free segments below this process's hint.
    if (lock_.bound()) search_hint_ = 1;
    for (std::size_t i = search_hint_; i < high && first == 0; ++i) {
      if (entry_state(entry(i)) == layout::kSegmentFree && run_is_free(i, count)) first = i;
    }
    if (first == 0) first = high > 0 ? high : 1;
    // Past segments_high everything should be free; make sure.
    while (first + count <= segment_limit_ && !run_is_free(first, count)) ++first;
    if (first + count > segment_limit_) {
      errno = ENOMEM;
      return nullptr;
    }
  }
  if (int err = ensure_committed((first + count) << kSegmentShift)) {
    errno = err == ENOSPC ? ENOSPC : ENOMEM;
    return nullptr;
  }
  if (int err = claim(first, count, pod)) {
    errno = err;
    return nullptr;
  }
  const std::size_t moved = move_retained_into(first, count);
  // Retained segments were used, so they lie below segments_high.
  *zeroed = first >= meta_->segments_high && moved == 0;
  if (int err = reserve_run(first, count, state)) {
    errno = err;
    return nullptr;
  }
  unretain(first, count);
  note_in_use(count);
  // The order below keeps every instant of a process kill recoverable
  // (docs/format/heap.md, "Allocator states a kill can leave"): the table
  // covers the segments first (segments_high), then the header is
  // written, then the tails, and the head's entry last, which is the
  // moment the segments change hands. A kill before it leaves free
  // segments or tails no head covers, which opening frees.
  note_metadata(&meta_->segments_high, sizeof(meta_->segments_high));
  note_metadata(&meta_->segments[first], count * sizeof(meta_->segments[0]));
  // Atomic: a checkpoint reads it off the region lock (runtime/versions.cpp).
  if (first + count > meta_->segments_high) __atomic_store_n(&meta_->segments_high, first + count, __ATOMIC_RELEASE);
  auto* s = reinterpret_cast<segment*>(segment_index_to_address(base_, first));
  if (state != layout::kSegmentLog) {  // the log writes its own records from the start
    note_fresh(s, sizeof(segment));
    if (!*zeroed) std::memset(static_cast<void*>(s), 0, sizeof(segment));
    // A segment used before may carry bits of pages evicted in its last
    // life, or a huge block's bytes where a pages segment keeps its map:
    // its pages now are free memory, evicted nowhere.
    if (!*zeroed && state == layout::kSegmentPages) std::memset(evicted_map(s), 0, kOsPagesPerSegment / 8);
    s->pod = pod;
    s->span = static_cast<std::uint32_t>(count);
    s->free_slices = ~std::uint64_t{0};
    // No slice has storage yet (reserve_run): each gets it when it is
    // handed out (pod_arena::new_page).
    if (state == layout::kSegmentPages && hooks_.reserve_backing != nullptr) s->holes = ~std::uint64_t{0};
    if (huge != nullptr) init_huge_header(s, *huge);
    s->client = client_;
    s->magic = kSegmentMagic;
    note_plain_change(s);
  }
  layout::segment_state rest = state == layout::kSegmentLog ? layout::kSegmentLog : layout::kSegmentHugeTail;
  for (std::size_t i = 1; i < count; ++i) set_entry(first + i, segment_entry(rest, pod));
  set_entry(first, segment_entry(state, pod));
  if (first == search_hint_) search_hint_ = first + count;
  return s;
}

bool region::extend(segment* s, std::size_t span, std::size_t count) noexcept {
  if (!writable_) return false;
  std::lock_guard guard(lock_);
  std::size_t first = segment_index(s) + span;
  if (first + count > segment_limit_) return false;
  std::size_t high = meta_->segments_high;
  for (std::size_t i = first; i < first + count && i < high; ++i)
    if (entry_state(entry(i)) != layout::kSegmentFree) return false;
  if (ensure_committed((first + count) << kSegmentShift) != 0) return false;
  if (claim(first, count, s->pod) != 0) return false;
  if (reserve_run(first, count, layout::kSegmentHugeTail) != 0) return false;
  unretain(first, count);
  note_in_use(count);
  note_metadata(&meta_->segments_high, sizeof(meta_->segments_high));
  note_metadata(&meta_->segments[first], count * sizeof(meta_->segments[0]));
  note_metadata(s, 64);
  note_plain_change(s);
  // Atomic: a checkpoint reads it off the region lock (runtime/versions.cpp).
  if (first + count > meta_->segments_high) __atomic_store_n(&meta_->segments_high, first + count, __ATOMIC_RELEASE);
  // Tails first: until the span covers them they are tails of nobody,
  // which opening frees.
  for (std::size_t i = first; i < first + count; ++i)
    set_entry(i, segment_entry(layout::kSegmentHugeTail, s->pod));
  __atomic_store_n(&s->span, static_cast<std::uint32_t>(span + count), __ATOMIC_RELEASE);
  return true;
}

// A file or shm backing grows as a hole (region_hooks::grow), and a freed
// run may have been given back (decommit): a run gets storage for what is
// written as it changes hands. Its segment-table entries, and then: the
// header of a pages segment (its slices get theirs as they are handed
// out), every byte of a huge block (the program may write all of it),
// nothing for an undo log (which reserves as it fills).
int region::reserve_run(std::size_t first, std::size_t count, layout::segment_state state) noexcept {
  if (hooks_.reserve_backing == nullptr) return 0;
  if (first + count > table_reserved_) {
    // Whole pages of the table, so that most growth needs no call.
    auto start = reinterpret_cast<std::uintptr_t>(&meta_->segments[table_reserved_]);
    auto end = (reinterpret_cast<std::uintptr_t>(&meta_->segments[first + count]) + port::kOsPageSize - 1) &
               ~(port::kOsPageSize - 1);
    if (int err = reserve_backing(reinterpret_cast<const void*>(start), end - start)) return err;
    table_reserved_ = (end - reinterpret_cast<std::uintptr_t>(&meta_->segments[0])) / sizeof(meta_->segments[0]);
  }
  void* s = reinterpret_cast<void*>(segment_index_to_address(base_, first));
  switch (state) {
    case layout::kSegmentPages: return reserve_backing(s, kSegmentHeaderSize);
    case layout::kSegmentHugeHead:
    case layout::kSegmentHugeTail: return reserve_backing(s, count << kSegmentShift);
    default: return 0;
  }
}

int region::claim(std::size_t first, std::size_t count, std::uint32_t pod) noexcept {
  if (hooks_.segments_claimed == nullptr) return 0;
  return hooks_.segments_claimed(hooks_.context, base_ + (first << kSegmentShift), count << kSegmentShift, pod);
}

// Retained segments are free in the segment table, so a run found there
// may include some: they must leave the retained runs before use. What is
// left of a run on either side stays retained.
void region::unretain(std::size_t first, std::size_t count) noexcept {
  const std::size_t end = first + count;
  for (std::size_t k = 0; k < retained_runs_;) {
    retained_run r = retained_[k];
    const std::size_t r_end = r.first + r.count;
    if (r_end <= first || r.first >= end) {
      ++k;
      continue;
    }
    retained_count_ -= r.count;
    for (std::size_t j = k; j + 1 < retained_runs_; ++j) retained_[j] = retained_[j + 1];
    --retained_runs_;
    if (r.first < first) {
      retained_[retained_runs_++] = {r.first, first - r.first};
      retained_count_ += first - r.first;
    }
    if (r_end > end) {
      if (retained_runs_ < kRetainedRuns) {
        retained_[retained_runs_++] = {end, r_end - end};
        retained_count_ += r_end - end;
      } else {
        port::decommit(reinterpret_cast<void*>(segment_index_to_address(base_, end)), (r_end - end) << kSegmentShift,
                       shared_);
      }
    }
  }
}

// Fills the segments of [first, first + count) that hold no retained
// memory with the memory of retained runs outside it, oldest first: a
// block made of several scattered freed ones is then not faulted in again
// page by page. Returns how many segments were moved.
std::size_t region::move_retained_into(std::size_t first, std::size_t count) noexcept {
  if (!memory_movable_ || meta_->segments_high > kMaxMovableSegments) return 0;
  const std::size_t end = first + count;
  std::size_t moved = 0;
  for (std::size_t at = first; at < end;) {
    std::size_t gap_end = end;  // [at, gap_end) holds no retained memory
    bool retained = false;
    for (std::size_t k = 0; k < retained_runs_ && !retained; ++k) {
      const retained_run r = retained_[k];
      retained = r.first <= at && at < r.first + r.count;
      if (retained) at = r.first + r.count;
      if (r.first > at && r.first < gap_end) gap_end = r.first;
    }
    if (retained) continue;
    std::size_t k = 0;
    while (k < retained_runs_ && retained_[k].first < end && retained_[k].first + retained_[k].count > first) ++k;
    if (k == retained_runs_) break;  // nothing outside the run to move
    retained_run& donor = retained_[k];
    const std::size_t n = donor.count < gap_end - at ? donor.count : gap_end - at;
    const std::size_t from = donor.first + donor.count - n;
    if (port::move_memory(reinterpret_cast<void*>(segment_index_to_address(base_, from)),
                          reinterpret_cast<void*>(segment_index_to_address(base_, at)), n << kSegmentShift) != 0) {
      memory_movable_ = false;
      break;
    }
    donor.count -= n;
    retained_count_ -= n;
    if (donor.count == 0) {
      for (std::size_t j = k; j + 1 < retained_runs_; ++j) retained_[j] = retained_[j + 1];
      --retained_runs_;
    }
    moved += n;
    at += n;
  }
  return moved;
}

void region::note_in_use(std::size_t count) noexcept {
  in_use_ += count;
  if (in_use_ > peak_in_use_) peak_in_use_ = in_use_;
}

// A run for `count` segments made of retained ones: the smallest retained
// run that holds it, else the largest that free neighbours complete (only those
// are faulted in afresh). Nothing changes until unretain.
bool region::find_retained(std::size_t count, std::size_t* first) noexcept {
  std::size_t best = kRetainedRuns;
  for (std::size_t k = 0; k < retained_runs_; ++k)
    if (retained_[k].count >= count && (best == kRetainedRuns || retained_[k].count < retained_[best].count)) best = k;
  if (best < kRetainedRuns) {
    *first = retained_[best].first;
    return true;
  }
  std::size_t most = 0;
  for (std::size_t k = 0; k < retained_runs_; ++k) {
    const retained_run r = retained_[k];
    if (r.count <= most) continue;
    const std::size_t missing = count - r.count;
    if (run_is_free(r.first + r.count, missing)) {
      *first = r.first;
      most = r.count;
    } else if (r.first >= missing + 1 && run_is_free(r.first - missing, missing)) {
      *first = r.first - missing;
      most = r.count;
    }
  }
  return most > 0;
}

void region::drop_retained(std::size_t k) noexcept {
  retained_run r = retained_[k];
  port::decommit(reinterpret_cast<void*>(segment_index_to_address(base_, r.first)), r.count << kSegmentShift, shared_);
  for (std::size_t j = k; j + 1 < retained_runs_; ++j) retained_[j] = retained_[j + 1];
  --retained_runs_;
  retained_count_ -= r.count;
}

// Keeps a freed run committed, joined with retained neighbours, within
// LARDER_RETAIN_SEGMENTS: the oldest runs go back to the OS first, so
// memory that stays unused is given back while a free-and-allocate cycle
// of the same blocks never faults them in again.
void region::retain(std::size_t first, std::size_t count) noexcept {
  std::size_t budget = static_cast<std::size_t>(option_value(option::retain_segments));
  const std::uint64_t now = port::monotonic_ns();
  if (now - peak_checked_ns_ >= kPeakDecayNs) {
    peak_in_use_ = in_use_ + (peak_in_use_ - in_use_) / 2;
    peak_checked_ns_ = now;
  }
  if (budget > 0 && peak_in_use_ - in_use_ > budget) budget = peak_in_use_ - in_use_;
  for (std::size_t k = 0; k < retained_runs_;) {
    const retained_run r = retained_[k];
    if (r.first + r.count != first && first + count != r.first) {
      ++k;
      continue;
    }
    for (std::size_t j = k; j + 1 < retained_runs_; ++j) retained_[j] = retained_[j + 1];
    --retained_runs_;
    retained_count_ -= r.count;
    if (r.first < first) first = r.first;
    count += r.count;
  }
  if (count > budget) {
    const std::size_t excess = count - budget;
    port::decommit(reinterpret_cast<void*>(segment_index_to_address(base_, first)), excess << kSegmentShift, shared_);
    first += excess;
    count = budget;
  }
  if (count == 0) return;
  if (retained_runs_ == kRetainedRuns) drop_retained(0);
  // Only as much of the oldest runs as the budget needs goes back.
  while (retained_runs_ > 0 && retained_count_ + count > budget) {
    retained_run& oldest = retained_[0];
    const std::size_t over = retained_count_ + count - budget;
    if (over >= oldest.count) {
      drop_retained(0);
      continue;
    }
    oldest.count -= over;
    retained_count_ -= over;
    port::decommit(reinterpret_cast<void*>(segment_index_to_address(base_, oldest.first + oldest.count)),
                   over << kSegmentShift, shared_);
  }
  retained_[retained_runs_++] = {first, count};
  retained_count_ += count;
}

void region::release(segment* s, std::size_t count, bool written) noexcept {
  if (!writable_) return;
  std::size_t first = segment_index(s);
  std::lock_guard guard(lock_);
  note_metadata(&meta_->segments[first], count * sizeof(meta_->segments[0]));
  // The head's entry first: a kill after it leaves tails of nobody, which
  // opening frees. Then the header goes, so that a free segment never
  // looks like a used one (the undo log takes free segments over).
  for (std::size_t i = first; i < first + count; ++i) set_entry(i, layout::kSegmentFree);
  if (written) {
    note_metadata(&s->magic, sizeof(s->magic));
    __atomic_store_n(&s->magic, 0, __ATOMIC_RELEASE);
  }
  if (first < search_hint_) search_hint_ = first;
  in_use_ -= count < in_use_ ? count : in_use_;
  // A rollback may still need the contents: leave them (the segment is
  // free in the table and is reused from there).
  if (metadata_logged()) return;
  if (lock_.bound()) {
    // Another process may take the run as soon as the lock is let go, so
    // it is never kept aside (not even by a client still attaching, which
    // frees what a dead one left): its memory goes back now, while the
    // lock holds.
    port::decommit(s, count << kSegmentShift, shared_);
    return;
  }
  retain(first, count);
}

void region::purge_retained() noexcept {
  std::lock_guard guard(lock_);
  while (retained_runs_ > 0) drop_retained(retained_runs_ - 1);
}

segment* region::head_segment(const void* p) const noexcept {
  if (!contains(p)) return nullptr;
  std::size_t i = segment_index(p);
  while (i > 0 && entry_state(entry(i)) == layout::kSegmentHugeTail) --i;
  layout::segment_state st = entry_state(entry(i));
  if (st != layout::kSegmentPages && st != layout::kSegmentHugeHead) return nullptr;
  return reinterpret_cast<segment*>(segment_index_to_address(base_, i));
}

void region::usage(std::size_t* in_use, std::size_t* held) const noexcept {
  for (std::size_t pod = 0; pod < layout::kMaxPods; ++pod) in_use[pod] = held[pod] = 0;
  std::size_t high = __atomic_load_n(&meta_->segments_high, __ATOMIC_ACQUIRE);
  for (std::size_t i = 1; i < high; ++i) {
    std::uint32_t e = entry(i);
    std::size_t pod = layout::entry_pod(e);
    layout::segment_state st = entry_state(e);
    // A log segment's first bytes are its lane's records, which a
    // transaction may be writing.
    if (st != layout::kSegmentHugeHead && st != layout::kSegmentPages) continue;
    auto* s = reinterpret_cast<const segment*>(segment_index_to_address(base_, i));
    if (pod >= layout::kMaxPods || s->magic != kSegmentMagic) continue;
    if (st == layout::kSegmentHugeHead) {
      std::size_t bytes = std::size_t{s->span} << kSegmentShift;
      in_use[pod] += bytes - s->huge_offset;  // what usable_size reports
      held[pod] += bytes;
    } else if (st == layout::kSegmentPages) {
      for (std::size_t k = 0; k < kSlicesPerSegment; ++k) {
        const page& pg = s->pages[k];
        if (((s->free_slices >> k) & 1) || pg.slice_count == 0) continue;
        std::size_t pending = remote_count(pg.xthread_free.load(std::memory_order_relaxed));
        std::size_t live = pg.used > pending ? pg.used - pending : 0;
        in_use[pod] += live * pg.block_size;
        held[pod] += std::size_t{pg.slice_count} << kSliceShift;
      }
    }
  }
}

std::size_t region::segments_in_use() const noexcept {
  std::size_t used = 0;
  for (std::size_t i = 1; i < meta_->segments_high; ++i)
    if (entry_state(entry(i)) != layout::kSegmentFree) ++used;
  return used;
}

namespace {

// Open's reporter: the first damage ends the walk.
class first_damage final : public walk_reporter {
 public:
  bool damage(const walk_place&, const std::string& message) override {
    message_ = message;
    return false;
  }
  const std::string& message() const noexcept { return message_; }

 private:
  std::string message_;
};

// The full walk's reporter for debug builds: says what is wrong.
class warn_damage final : public walk_reporter {
 public:
  bool damage(const walk_place&, const std::string& message) override {
    warning("heap at %p: %s", reinterpret_cast<void*>(base_), message.c_str());
    return true;
  }
  explicit warn_damage(std::uintptr_t base) : base_(base) {}

 private:
  std::uintptr_t base_;
};

}  // namespace

heap_view region::view() const noexcept {
  heap_view v;
  v.local = reinterpret_cast<std::uint8_t*>(base_);
  v.base = base_;
  v.size = v.readable = committed();
  v.reserve = reserve_;
  return v;
}

status region::validate_segments() const {
  first_damage first;
  // With full walks on, open follows every free list too, so that a heap
  // it accepts holds every invariant that region::is_valid() checks.
  walk_options options;
  options.full_lists = LARDER_DEBUG_LEVEL >= 3;
  walk_heap(view(), options, first);
  if (first.message().empty()) return {};
  return status(errc::corrupt, first.message() + " (larder check --repair rebuilds what the rest of the heap determines)");
}

bool region::is_valid() const {
  warn_damage report(base_);
  walk_options full;
  full.full_lists = true;
  return walk_heap(view(), full, report).damage == 0;
}

std::size_t region::free_unowned_tails() noexcept {
  std::size_t freed = 0;
  std::size_t covered_to = 0;  // one past the last segment of the current run
  std::size_t high = meta_->segments_high;
  for (std::size_t i = 1; i < high; ++i) {
    std::uint32_t e = entry(i);
    layout::segment_state st = entry_state(e);
    if (st == layout::kSegmentHugeHead || st == layout::kSegmentPages) {
      auto* s = reinterpret_cast<const segment*>(segment_index_to_address(base_, i));
      covered_to = i + s->span;
    } else if (st == layout::kSegmentHugeTail && i >= covered_to) {
      note_metadata(&meta_->segments[i], sizeof(meta_->segments[i]));
      set_entry(i, layout::kSegmentFree);
      ++freed;
    }
  }
  return freed;
}

status region::adopt_existing() {
  // Validate everything first, so that a refused heap is left untouched.
  if (status s = validate_segments(); !s.ok()) return s;
  if (std::size_t freed = free_unowned_tails())
    verbose("freed %zu segments that a huge block left behind when a process stopped", freed);
  std::size_t high = meta_->segments_high;
  for (std::size_t i = 1; i < high; ++i) {
    std::uint32_t e = entry(i);
    layout::segment_state st = entry_state(e);
    if (st == layout::kSegmentFree || st == layout::kSegmentHugeTail || st == layout::kSegmentLog) continue;
    auto* s = reinterpret_cast<segment*>(segment_index_to_address(base_, i));
    s->next_with_free = nullptr;
    s->listed = 0;
    if (st == layout::kSegmentHugeHead) continue;
    // No transaction is open now: what shared writers left pending (a
    // power failure can make such bits durable with the header) is over.
    s->pending_pushes.store(0, std::memory_order_relaxed);
    for (page& pg : s->pages) pg.folding.store(0, std::memory_order_relaxed);
    pod_arena* a = arena(s->pod);
    if (a == nullptr) return status::from_errno(ENOMEM, "setting up pod arenas");
    a->adopt_segment(s);
  }
  LARDER_ASSERT_EXPENSIVE(is_valid());
  return {};
}

void region::share(std::uint16_t client, bool take_all) noexcept {
  bind_shared_lock();
  client_ = client;
  if (take_all) mark_all_segments(client);
}

void region::bind_shared_lock() noexcept {
  if (lock_.bound()) return;
  // Runs kept aside are free in the table, where other clients may take
  // them from now on: they go back now.
  while (retained_runs_ > 0) drop_retained(retained_runs_ - 1);
  lock_.bind(&meta_->shared.region_lock, &region::repair_after_death, this);
}

void region::mark_all_segments(std::uint16_t client) noexcept {
  std::size_t high = meta_->segments_high;
  for (std::size_t i = 1; i < high; ++i) {
    layout::segment_state st = entry_state(entry(i));
    if (st != layout::kSegmentPages && st != layout::kSegmentHugeHead) continue;
    auto* s = reinterpret_cast<segment*>(segment_index_to_address(base_, i));
    if (s->client != client) s->client = client;
  }
}

// A client died holding the segment-table lock, somewhere in acquire,
// extend or release: their order of writes leaves at worst tails that no
// head covers (see acquire).
void region::repair_after_death(void* self) noexcept {
  auto* r = static_cast<region*>(self);
  // Not part of whatever transaction the taker runs: a rollback of it
  // would put the tails back after others took the segments.
  metadata_sink_scope repair_is_nobodys(nullptr);
  if (std::size_t freed = r->free_unowned_tails())
    verbose("freed %zu segments that a huge block of a dead client left behind", freed);
}

segment* region::adopt_unowned(std::uint32_t pod) noexcept {
  if (!shared_writers() || !writable_) return nullptr;
  if (__atomic_load_n(&meta_->shared.unowned_segments, __ATOMIC_RELAXED) == 0) return nullptr;
  std::lock_guard guard(lock_);
  std::size_t high = meta_->segments_high;
  for (std::size_t i = 1; i < high; ++i) {
    std::uint32_t e = entry(i);
    if (entry_state(e) != layout::kSegmentPages || layout::entry_pod(e) != pod) continue;
    auto* s = reinterpret_cast<segment*>(segment_index_to_address(base_, i));
    if (s->magic != kSegmentMagic || __atomic_load_n(&s->client, __ATOMIC_ACQUIRE) != layout::kNoClient) continue;
    // Another client may have grown the backing past what this one knows.
    if (ensure_committed((i + 1) << kSegmentShift) != 0) return nullptr;
    // What its last owner's threads left in the page descriptors means
    // nothing here; it goes before this client's frees can take the
    // segment for theirs (a forked sibling may share their thread ids).
    for (page& pg : s->pages) {
      pg.owner_tid.store(0, std::memory_order_relaxed);
      pg.heap.store(nullptr, std::memory_order_relaxed);
    }
    __atomic_store_n(&s->client, client_, __ATOMIC_RELEASE);
    std::uint64_t left = meta_->shared.unowned_segments;
    meta_->shared.unowned_segments = left > 0 ? left - 1 : 0;
    return s;
  }
  return nullptr;
}

bool region::client_alive(std::uint16_t c) const noexcept {
  if (c == layout::kNoClient || c > layout::kMaxClients) return false;
  const layout::client_record& rec = meta_->shared.clients[c - 1];
  if (__atomic_load_n(&rec.state, __ATOMIC_ACQUIRE) != layout::kClientAttached) return false;
  return port::identity_alive({rec.pid, 0, rec.start_ticks});
}

void region::disown_segments(std::uint16_t client) noexcept {
  std::lock_guard guard(lock_);
  std::size_t high = meta_->segments_high;
  for (std::size_t i = 1; i < high; ++i) {
    layout::segment_state st = entry_state(entry(i));
    if (st != layout::kSegmentPages && st != layout::kSegmentHugeHead) continue;
    auto* s = reinterpret_cast<segment*>(segment_index_to_address(base_, i));
    if (__atomic_load_n(&s->client, __ATOMIC_ACQUIRE) != client) continue;
    s->next_with_free = nullptr;
    s->listed = 0;
    // A fold its thread was in the middle of when it died ends here.
    for (page& pg : s->pages) pg.folding.store(0, std::memory_order_release);
    __atomic_store_n(&s->client, static_cast<std::uint16_t>(layout::kNoClient), __ATOMIC_RELEASE);
    if (st == layout::kSegmentPages) ++meta_->shared.unowned_segments;
  }
}

// A lock shared with other processes is not held across fork: the child,
// which may not write the heap, could not let go of it.
void region::lock_all() noexcept {
  arenas_lock_.lock();
  for (auto& slot : arenas_)
    if (pod_arena* a = slot.load(std::memory_order_relaxed)) a->lock.lock();
  if (!lock_.bound()) lock_.lock();
}

void region::unlock_all() noexcept {
  if (!lock_.bound()) lock_.unlock();
  for (auto& slot : arenas_)
    if (pod_arena* a = slot.load(std::memory_order_relaxed)) a->lock.unlock();
  arenas_lock_.unlock();
}

// ---- registry ------------------------------------------------------------

namespace {
std::atomic<region*> g_regions[kMaxRegions];
std::mutex g_registry_lock;
std::atomic<std::size_t> g_region_high{0};
std::uint64_t g_generations[kMaxRegions];
}  // namespace

int register_region(region* r) noexcept {
  std::lock_guard<std::mutex> guard(g_registry_lock);
  for (std::size_t i = 0; i < kMaxRegions; ++i) {
    if (g_regions[i].load(std::memory_order_relaxed) != nullptr) continue;
    r->slot = static_cast<std::uint32_t>(i);
    r->generation = ++g_generations[i];
    g_regions[i].store(r, std::memory_order_release);
    if (i + 1 > g_region_high.load(std::memory_order_relaxed)) g_region_high.store(i + 1, std::memory_order_release);
    return 0;
  }
  return EMFILE;
}

void unregister_region(region* r) noexcept {
  std::lock_guard<std::mutex> guard(g_registry_lock);
  g_regions[r->slot].store(nullptr, std::memory_order_release);
}

region* find_region(const void* p) noexcept {
  std::size_t high = g_region_high.load(std::memory_order_acquire);
  for (std::size_t i = 0; i < high; ++i) {
    region* r = g_regions[i].load(std::memory_order_acquire);
    if (r != nullptr && r->contains(p)) return r;
  }
  return nullptr;
}

region* region_at(std::size_t slot) noexcept {
  return slot < kMaxRegions ? g_regions[slot].load(std::memory_order_acquire) : nullptr;
}

void for_each_region(void (*fn)(region*, void*), void* context) noexcept {
  std::lock_guard<std::mutex> guard(g_registry_lock);
  for (auto& slot : g_regions)
    if (region* r = slot.load(std::memory_order_relaxed)) fn(r, context);
}

void lock_regions() noexcept {
  g_registry_lock.lock();
  for (auto& slot : g_regions)
    if (region* r = slot.load(std::memory_order_relaxed)) r->lock_all();
}

void unlock_regions() noexcept {
  for (auto& slot : g_regions)
    if (region* r = slot.load(std::memory_order_relaxed)) r->unlock_all();
  g_registry_lock.unlock();
}

}  // namespace larder::alloc
