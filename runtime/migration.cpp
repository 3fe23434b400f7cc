// The migrator (docs/tiers.md): passes that evict the coldest pods while
// the resident pod pages exceed the budget, the eviction of one pod, the
// source that serves evicted pages back on touch, and the thread.
//
// An eviction, per batch of a pod's segments: hold the writers of the
// segments' data pages (port::write_hold), collect their written pages for
// the program and versions, write the resident used pages to the tier and
// sync it, record them in the segment headers' evicted maps, register them
// with the tracker's loader (serve_on_touch), drop them, let the writers
// go. A writer held meanwhile writes afterwards, into the page faulted
// back from the tier copy, so no write is lost; a kill at any instant
// leaves each page either in the heap (which then wins) or dropped with
// its bit set and its copy durable in the tier (restore_evicted_pages).
#include "runtime/migration_state.hpp"

#include "allocator/dirty_map.hpp"
#include "allocator/segment.hpp"
#include "port/os.hpp"
#include "runtime/heap_impl.hpp"
#include "runtime/migration_test_hooks.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <numeric>
#include <shared_mutex>

namespace larder {
namespace {

constexpr std::size_t kPage = port::kOsPageSize;
// Segments whose writers one eviction holds at once: bounds how long a
// writer waits (a pod larger than this goes in several holds).
constexpr std::size_t kSegmentsPerHold = 64;
static_assert(kSegmentsPerHold <= port::write_hold::kMaxRanges);
// How often the thread looks, at the latest.
constexpr auto kPassInterval = std::chrono::milliseconds(20);

std::uint32_t segment_entry(heap_impl& impl, std::uintptr_t address) {
  const std::size_t index = (address - impl.region.base()) >> layout::kSegmentShift;
  return __atomic_load_n(&impl.meta()->segments[index], __ATOMIC_ACQUIRE);
}

// The page's bit in its segment header's evicted map.
void set_header_bit(std::uintptr_t page, bool evicted) {
  alloc::mark_evicted(alloc::segment_of(reinterpret_cast<void*>(page)), (page & (layout::kSegmentSize - 1)) / kPage,
                      evicted);
}

// Counts an eviction of each page in (`evicted`) or out.
void note_evicted(migration_state& m, const std::vector<std::uintptr_t>& pages, bool evicted) {
  std::lock_guard guard(m.evicted_lock);
  for (std::uintptr_t p : pages) {
    if (evicted) {
      ++m.evicted[p];
    } else if (auto it = m.evicted.find(p); it != m.evicted.end() && --it->second == 0) {
      m.evicted.erase(it);
    }
  }
}

bool is_huge(std::uint32_t entry) {
  return layout::entry_state(entry) == layout::kSegmentHugeHead || layout::entry_state(entry) == layout::kSegmentHugeTail;
}


std::vector<port::written_run> runs_of(const std::vector<std::uintptr_t>& pages) {
  std::vector<port::written_run> runs;
  for (std::uintptr_t p : pages) {
    if (!runs.empty() && runs.back().start + runs.back().pages * kPage == p)
      ++runs.back().pages;
    else
      runs.push_back({p, 1});
  }
  return runs;
}

// The segments of `pod` an eviction moves, ascending: its pages segments,
// and for an anonymous heap its huge blocks' too. (A shm heap's evicted
// pages must be found after a crash, by bits in their segment's header,
// which only a pages segment has.)
std::vector<std::size_t> segments_of(heap_impl& impl, std::uint32_t pod) {
  layout::heap_meta* meta = impl.meta();
  const std::uint64_t high = __atomic_load_n(&meta->segments_high, __ATOMIC_ACQUIRE);
  const bool with_huge = impl.kind == backing::anonymous;
  std::vector<std::size_t> out;
  std::uint32_t huge_pod = layout::kMaxPods;
  for (std::size_t i = 1; i < high; ++i) {
    std::uint32_t e = __atomic_load_n(&meta->segments[i], __ATOMIC_ACQUIRE);
    switch (layout::entry_state(e)) {
      case layout::kSegmentPages:
        if (layout::entry_pod(e) == pod) out.push_back(i);
        break;
      case layout::kSegmentHugeHead:
        huge_pod = layout::entry_pod(e);
        if (with_huge && huge_pod == pod) out.push_back(i);
        break;
      case layout::kSegmentHugeTail:
        if (with_huge && huge_pod == pod) out.push_back(i);
        break;
      default: break;
    }
  }
  return out;
}

// The pages of the segments that an eviction moves: resident, past the
// header's place (kept in every segment, a huge block's too, so that a
// segment given back and taken again never has its header served from a
// tier), in a used slice of a pages segment. A free slice's pages are the
// allocator's to give back, not worth a copy.
std::vector<std::uintptr_t> evictable_pages(heap_impl& impl, const std::size_t* segments, std::size_t count) {
  std::vector<std::uintptr_t> pages;
  unsigned char resident[alloc::kOsPagesPerSegment];
  for (std::size_t n = 0; n < count; ++n) {
    const std::uintptr_t start = alloc::segment_index_to_address(impl.region.base(), segments[n]);
    auto* s = reinterpret_cast<alloc::segment*>(start);
    const bool huge = is_huge(segment_entry(impl, start));
    const std::uint64_t free = huge ? 0 : __atomic_load_n(&s->free_slices, __ATOMIC_ACQUIRE);
    if (port::resident_pages(s, layout::kSegmentSize, resident) != 0) continue;
    for (std::size_t k = alloc::kHeaderOsPages; k < alloc::kOsPagesPerSegment; ++k) {
      const std::size_t slice = k * kPage / layout::kSliceSize;
      if ((free >> slice & 1) == 0 && (resident[k] & 1) != 0) pages.push_back(start + k * kPage);
    }
  }
  return pages;
}

// Drops the pages: a shm heap's storage too, through its descriptor (the
// held mapping is read-only, which madvise(MADV_REMOVE) refuses).
int drop_pages(heap_impl& impl, const std::vector<std::uintptr_t>& pages) {
  if (impl.kind != backing::shm) return port::decommit_pages(pages.data(), pages.size(), false);
  int first = 0;
  for (const port::written_run& r : runs_of(pages)) {
    int e = port::release_file_range(impl.fd, r.start - impl.region.base(), r.pages * kPage);
    if (e != 0 && first == 0) first = e;
  }
  return first;
}

// Evicts the given segments (at most kSegmentsPerHold), adding the pages
// dropped to *moved. Under m.lock.
status evict_segments(migration_state& m, const std::size_t* segments, std::size_t count, std::uint64_t* moved) {
  heap_impl& impl = m.impl;
  // Room in the top tier first, before the writers are held: a cascade
  // may take long (a remote tier below).
  if (status s = make_room(m, 0, evictable_pages(impl, segments, count).size()); !s.ok()) return s;
  port::write_hold::range held[kSegmentsPerHold] = {};
  for (std::size_t n = 0; n < count; ++n) {
    held[n] = {alloc::segment_index_to_address(impl.region.base(), segments[n]) + alloc::kSegmentHeaderSize,
               layout::kSegmentSize - alloc::kSegmentHeaderSize};
  }
  if (int e = m.hold.begin(held, count)) return status::from_errno(e, impl.name + ": holding the writers of a pod");
  struct release {
    port::write_hold& hold;
    ~release() { (void)hold.end(); }
  } release_writers{m.hold};

  std::vector<std::uintptr_t> pages = evictable_pages(impl, segments, count);
  if (pages.empty()) return {};
  // Their writes so far are reported by the next collect of the program
  // and of versions: a page comes back from the tier as unwritten.
  std::vector<port::written_run> runs = runs_of(pages);
  if (status s = impl.collect_observed(&runs, nullptr); !s.ok()) return s;

  const std::uintptr_t base = impl.region.base();
  std::vector<tiers::page_ref> refs(pages.size());
  for (std::size_t i = 0; i < pages.size(); ++i) refs[i] = {(pages[i] - base) / kPage, reinterpret_cast<void*>(pages[i])};
  tiers::tier& top = *m.chain.front();
  if (status s = top.write(kTierPod, refs.data(), refs.size()); !s.ok()) return s;
  migration_kill_point();
  // An anonymous heap dies with the process: its tier need not outlive it.
  if (impl.kind == backing::shm) {
    if (status s = top.sync(); !s.ok()) return s;
    migration_kill_point();
  }

  // A shm heap's pages are marked in their segments' headers, for the open
  // after a crash (only pages segments are evicted there).
  if (impl.kind == backing::shm) {
    for (std::uintptr_t p : pages) {
      set_header_bit(p, true);
      migration_kill_point();
    }
  }
  note_evicted(m, pages, true);

  // Under collect_lock: stop_tracking, which loads every evicted page back
  // before the tracker goes, cannot run between the registration and the
  // drop.
  std::lock_guard collect_guard(impl.collect_lock);
  int err = ENOTSUP;
  {
    std::lock_guard tracker_guard(impl.tracker_lock);
    if (impl.tracker) err = impl.tracker->serve_on_touch(pages, &m.source, m.policy.prefetch_pod);
  }
  if (err != 0) {
    note_evicted(m, pages, false);
    if (impl.kind == backing::shm)
      for (std::uintptr_t p : pages) set_header_bit(p, false);
    return status::from_errno(err, impl.name + ": serving evicted pages on touch");
  }
  *moved += pages.size();
  migration_kill_point();
  if (int e = drop_pages(impl, pages)) {
    // The pages stay where they are (and are served as they are); only
    // memory was not given back.
    return status::from_errno(e, impl.name + ": dropping evicted pages");
  }
  migration_kill_point();
  // An evicted page is not a written one: a checkpoint leaves it alone.
  std::lock_guard tracker_guard(impl.tracker_lock);
  if (int e = impl.tracker->mark_unwritten(runs))
    return status::from_errno(e, impl.name + ": marking evicted pages unwritten");
  return {};
}

std::atomic<int> g_steps_to_stop{0};  // migration_test::stop_after

}  // namespace

void migration_test::stop_after(int steps) noexcept { g_steps_to_stop.store(steps); }

void migration_kill_point() noexcept {
  if (g_steps_to_stop.load(std::memory_order_relaxed) == 0) return;
  if (g_steps_to_stop.fetch_sub(1) == 1) ::_exit(migration_test::kStoppedStatus);
}

std::uint64_t migration_now_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

bool page_evicted(migration_state& m, std::uintptr_t page) {
  std::lock_guard guard(m.evicted_lock);
  return m.evicted.count(page) != 0;
}

std::uint64_t evicted_page_count(migration_state& m) {
  std::lock_guard guard(m.evicted_lock);
  return m.evicted.size();
}

void clear_bits_of_pages_back(migration_state& m) {
  if (m.impl.kind != backing::shm) return;
  std::vector<std::uintptr_t> back;
  {
    std::lock_guard guard(m.evicted_lock);
    back.swap(m.came_back);
  }
  for (std::uintptr_t page : back) {
    // Evicted again since, or no longer a pages segment's (freed: its
    // header means nothing now, and zeroed when it is taken again).
    if (page_evicted(m, page) || layout::entry_state(segment_entry(m.impl, page)) != layout::kSegmentPages) continue;
    set_header_bit(page, false);
  }
}

// ---- tier_source -------------------------------------------------------------

int tier_source::fill(const std::uintptr_t* pages, std::size_t count, void* out) noexcept {
  try {
    const std::uintptr_t base = m_.impl.region.base();
    // Each page from the topmost tier that holds it.
    std::vector<tiers::page_ref> refs[kMaxTiers];
    std::shared_lock guard(m_.moving);
    for (std::size_t i = 0; i < count; ++i) {
      const tiers::page_ref page{(pages[i] - base) / kPage, static_cast<char*>(out) + i * kPage};
      std::size_t level = 0;
      for (; level < kMaxTiers; ++level) {
        tiers::tier* tier = m_.serving[level].load(std::memory_order_acquire);
        if (tier == nullptr) return ENXIO;
        if (tier->holds(kTierPod, page.index)) break;
      }
      if (level == kMaxTiers) return ENXIO;
      refs[level].push_back(page);
    }
    for (std::size_t level = 0; level < kMaxTiers; ++level) {
      if (refs[level].empty()) continue;
      tiers::tier* tier = m_.serving[level].load(std::memory_order_acquire);
      if (!tier->read(kTierPod, refs[level].data(), refs[level].size()).ok()) return EIO;
    }
    return 0;
  } catch (...) {
    return ENOMEM;
  }
}

void tier_source::installed(const std::uintptr_t* pages, std::size_t count, bool touched) noexcept {
  const std::uint64_t now = migration_now_ns();
  for (std::size_t i = 0; i < count; ++i) {
    migration_kill_point();
    std::uint32_t pod = alloc::pod_of_address(m_.impl.region, pages[i]);
    if (pod < layout::kMaxPods) m_.last_touch_ns[pod].store(now, std::memory_order_relaxed);
  }
  // In memory only: this thread never writes the heap (a header bit of a
  // shm heap is cleared by the next pass; until then the heap's own copy
  // wins over the tier's at an open after a crash).
  std::lock_guard guard(m_.evicted_lock);
  for (std::size_t i = 0; i < count; ++i) {
    if (auto it = m_.evicted.find(pages[i]); it != m_.evicted.end() && --it->second == 0) m_.evicted.erase(it);
    if (m_.impl.kind == backing::shm) {
      try {
        m_.came_back.push_back(pages[i]);
      } catch (...) {
        // Its bit stays set: harmless, as the heap holds the page.
      }
    }
  }
  m_.faults.fetch_add(touched ? 1 : 0);
  m_.prefetched_pages.fetch_add(count - (touched ? 1 : 0));
  const std::uint64_t loaded = m_.loaded_since_pass.fetch_add(count) + count;
  const std::uint64_t budget = m_.budget.load(std::memory_order_relaxed);
  if (budget != 0 && m_.resident_at_pass.load(std::memory_order_relaxed) + loaded * kPage > budget)
    m_.wake.notify_one();
}

bool tier_source::may_prefetch(std::size_t pages) noexcept {
  const std::uint64_t budget = m_.budget.load(std::memory_order_relaxed);
  if (budget == 0) return true;
  const std::uint64_t resident =
      m_.resident_at_pass.load(std::memory_order_relaxed) + m_.loaded_since_pass.load(std::memory_order_relaxed) * kPage;
  return resident + pages * kPage <= budget;
}

void tier_source::lost(std::uintptr_t page, int error) noexcept {
  m_.lost_pages.fetch_add(1);
  char what[160];
  std::snprintf(what, sizeof what, "an evicted page at offset %#llx could not be read back from its tier (%s): it reads as zeros",
                static_cast<unsigned long long>(page - m_.impl.region.base()), larder::strerror(error));
  try {
    m_.impl.tx_failure.set(what);
  } catch (...) {
  }
}

// ---- passes ------------------------------------------------------------------

std::uint64_t resident_pod_bytes(heap_impl& impl, std::uint64_t* per_pod) {
  layout::heap_meta* meta = impl.meta();
  const std::uint64_t high = __atomic_load_n(&meta->segments_high, __ATOMIC_ACQUIRE);
  unsigned char resident[alloc::kOsPagesPerSegment];
  std::uint64_t total = 0;
  std::uint32_t huge_pod = 0;
  for (std::size_t i = 1; i < high; ++i) {
    std::uint32_t e = __atomic_load_n(&meta->segments[i], __ATOMIC_ACQUIRE);
    std::uint32_t pod;
    switch (layout::entry_state(e)) {
      case layout::kSegmentPages: pod = layout::entry_pod(e); break;
      case layout::kSegmentHugeHead: pod = huge_pod = layout::entry_pod(e); break;
      case layout::kSegmentHugeTail: pod = huge_pod; break;
      default: continue;
    }
    const void* start = reinterpret_cast<const void*>(alloc::segment_index_to_address(impl.region.base(), i));
    if (port::resident_pages(start, layout::kSegmentSize, resident) != 0) continue;
    std::uint64_t pages = 0;
    for (unsigned char r : resident) pages += r & 1;
    total += pages * kPage;
    if (per_pod != nullptr && pod < layout::kMaxPods) per_pod[pod] += pages * kPage;
  }
  return total;
}

std::uint64_t evicted_pages_recorded(heap_impl& impl) {
  // The migrating process knows; another one reads a shm heap's bits.
  migration_state* own = impl.migration.get();
  if (own != nullptr && own->pid == port::process_id()) return evicted_page_count(*own);
  layout::heap_meta* meta = impl.meta();
  const std::uint64_t high = __atomic_load_n(&meta->segments_high, __ATOMIC_ACQUIRE);
  std::uint64_t pages = 0;
  for (std::size_t i = 1; i < high; ++i) {
    if (layout::entry_state(__atomic_load_n(&meta->segments[i], __ATOMIC_ACQUIRE)) != layout::kSegmentPages) continue;
    auto* s = reinterpret_cast<alloc::segment*>(alloc::segment_index_to_address(impl.region.base(), i));
    const std::uint64_t* map = alloc::evicted_map(s);
    for (std::size_t w = 0; w < alloc::kOsPagesPerSegment / 64; ++w)
      pages += static_cast<std::uint64_t>(__builtin_popcountll(__atomic_load_n(&map[w], __ATOMIC_RELAXED)));
  }
  return pages;
}

status ensure_migration_tracking(heap_impl& impl) {
  if (!impl.tracker) {
    status s = impl.start_tracking(tracker_backend::uffd_async);
    // invalid_argument: the program started tracking meanwhile.
    if (!s.ok() && !s.is(errc::invalid_argument))
      return status(errc::unsupported, impl.name + ": migration needs the uffd write-protect tracker: " + s.message());
    if (s.ok()) impl.migration_observing = true;
  }
  if (impl.tracking_backend != tracker_backend::uffd_async)
    return status(errc::unsupported, impl.name + ": migration needs the uffd write-protect tracker, and the heap is tracked with " +
                                         to_string(impl.tracking_backend));
  if (const char* why = impl.tracker->lazy_refusal())
    return status(errc::unsupported, impl.name + ": evicted pages cannot be served on touch here: " + why);
  return {};
}

status evict_one_pod(migration_state& m, std::uint32_t pod, std::uint64_t* pages_moved) {
  if (pod >= layout::kMaxPods) return status(errc::invalid_argument, "no such pod");
  if (m.pinned[pod]) return status(errc::invalid_argument, m.impl.name + ": pod " + std::to_string(pod) + " is pinned");
  if (m.chain.empty()) return status(errc::invalid_argument, m.impl.name + ": no tier to evict to (set_migration_policy with a tier)");
  if (status s = ensure_migration_tracking(m.impl); !s.ok()) return s;
  std::vector<std::size_t> segments = segments_of(m.impl, pod);
  std::uint64_t moved = 0;
  status result;
  for (std::size_t i = 0; i < segments.size() && result.ok(); i += kSegmentsPerHold)
    result = evict_segments(m, segments.data() + i, std::min(kSegmentsPerHold, segments.size() - i), &moved);
  if (moved != 0) m.evictions.fetch_add(1);
  if (pages_moved != nullptr) *pages_moved = moved;
  return result;
}

status migration_pass(migration_state& m) {
  const std::uint64_t budget = m.policy.dram_budget;
  if (budget == 0 || m.chain.empty()) return {};
  heap_impl& impl = m.impl;
  if (status s = ensure_migration_tracking(impl); !s.ok()) return s;
  clear_bits_of_pages_back(m);
  if (status s = make_room(m, 0, 0); !s.ok()) return s;
  // Written pods count as touched now; faulted ones were when they faulted.
  std::vector<port::written_run> written;
  if (status s = impl.collect_observed(nullptr, &written); !s.ok()) return s;
  std::vector<dirty_run> runs;
  alloc::attribute_to_pods(impl.region, written, &runs);
  const std::uint64_t now = migration_now_ns();
  for (const dirty_run& r : runs)
    if (r.pod < layout::kMaxPods) m.last_touch_ns[r.pod].store(now, std::memory_order_relaxed);

  std::vector<std::uint64_t> per_pod(layout::kMaxPods, 0);
  std::uint64_t total = resident_pod_bytes(impl, per_pod.data());
  m.loaded_since_pass.store(0);
  m.acquired_since_pass.store(0);
  m.resident_at_pass.store(total);
  if (total <= budget) return {};
  // Coldest first (least recently touched), the larger first among equals;
  // the touch times as of now, which the loader's thread keeps changing.
  struct candidate {
    std::uint64_t touched;
    std::uint64_t resident;
    std::uint32_t pod;
  };
  std::vector<candidate> order;
  for (std::uint32_t p = 0; p < layout::kMaxPods; ++p)
    if (per_pod[p] != 0 && !m.pinned[p]) order.push_back({m.last_touch_ns[p].load(std::memory_order_relaxed), per_pod[p], p});
  std::sort(order.begin(), order.end(), [](const candidate& a, const candidate& b) {
    return a.touched != b.touched ? a.touched < b.touched : a.resident > b.resident;
  });
  const std::uint64_t target = budget - budget / 8;
  for (const candidate& c : order) {
    if (total <= target) break;
    std::uint64_t moved = 0;
    if (status s = evict_one_pod(m, c.pod, &moved); !s.ok()) return s;
    total -= std::min(total, moved * kPage);
  }
  m.resident_at_pass.store(total);
  return {};
}

// ---- the thread --------------------------------------------------------------

void start_migrator_thread(migration_state& m) {
  if (m.thread.joinable()) return;
  m.stopping = false;
  m.thread = std::thread([&m] {
    std::unique_lock guard(m.lock);
    while (!m.stopping) {
      m.wake.wait_for(guard, kPassInterval);
      if (m.stopping) break;
      // A failed pass (a full tier, say) is tried again at the next one.
      (void)migration_pass(m);
      ++m.passes;
      m.pass_done.notify_all();
    }
  });
}

void hold_for_budget(migration_state& m, std::size_t segments) noexcept {
  const std::uint64_t budget = m.budget.load(std::memory_order_relaxed);
  if (budget == 0 || m.pid != port::process_id()) return;
  const std::uint64_t acquired = m.acquired_since_pass.fetch_add(segments * layout::kSegmentSize) +
                                 segments * layout::kSegmentSize;
  if (m.resident_at_pass.load() + m.loaded_since_pass.load() + acquired <= budget + budget / 8) return;
  try {
    std::unique_lock guard(m.lock);
    if (m.stopping || !m.thread.joinable()) return;
    const std::uint64_t seen = m.passes;
    m.wake.notify_all();
    m.pass_done.wait_for(guard, std::chrono::milliseconds(200), [&] { return m.passes != seen || m.stopping; });
  } catch (...) {
    // A lock that cannot be taken: the thread goes on unheld.
  }
}

void stop_migrator_thread(migration_state& m) noexcept {
  if (!m.thread.joinable()) return;
  {
    std::lock_guard guard(m.lock);
    m.stopping = true;
  }
  m.wake.notify_all();
  m.pass_done.notify_all();
  m.thread.join();
}

void migration_state_deleter::operator()(migration_state* m) const noexcept {
  // A forked child has a copy of the state but not the thread, and maybe a
  // lock its parent's thread held: it lets go of it untouched.
  if (m == nullptr || m->pid != port::process_id()) return;
  m->impl.budget_holder.store(nullptr, std::memory_order_release);
  stop_migrator_thread(*m);
  delete m;
}

}  // namespace larder
