// Page-write tracking of a heap: one tracker over the used part of the heap,
// extended by the segments_claimed hook as pods take new segments; collect
// attributes the written pages to pods and records statistics in the heap.
#include "allocator/alloc.hpp"
#include "allocator/dirty_map.hpp"
#include "allocator/thread.hpp"
#include "port/options.hpp"
#include "port/os.hpp"
#include "runtime/heap_impl.hpp"
#include "runtime/versions_state.hpp"
#include "runtime/process_heap_scope.hpp"

#include <signal.h>

#include <algorithm>
#include <new>
#include <optional>
#include <cstring>
#include <ctime>

namespace larder {
namespace {

constexpr struct {
  tracker_backend backend;
  port::tracker_kind kind;
  layout::tracking_backend_code code;
} kBackends[] = {
    {tracker_backend::uffd_async, port::tracker_kind::uffd_async, layout::kTrackedUffd},
    {tracker_backend::mprotect, port::tracker_kind::mprotect, layout::kTrackedMprotect},
    {tracker_backend::pkey, port::tracker_kind::pkey, layout::kTrackedPkey},
};

tracker_backend backend_of(port::tracker_kind kind) {
  for (const auto& b : kBackends)
    if (b.kind == kind) return b.backend;
  return tracker_backend::none;
}

std::uint64_t realtime_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

status make_backend(tracker_backend requested, std::unique_ptr<port::write_tracker>* out) {
  if (requested == tracker_backend::automatic) {
    // Read again each time, so a program may choose with setenv; an invalid
    // value warns and leaves the choice automatic.
    std::uint64_t index = 0;
    const char* forced = nullptr;
    if (port::read_option_now(port::option::tracker, &index, &forced)) {
      for (const auto& b : kBackends)
        if (std::strcmp(forced, port::tracker_name(b.kind)) == 0) requested = b.backend;
    }
  }
  if (requested == tracker_backend::automatic) {
    std::string reasons;
    for (port::tracker_kind kind : port::kTrackerFallbackOrder) {
      port::tracker_probe probe = port::probe_tracker(kind);
      if (probe.available && port::make_tracker(kind, out) == 0) return {};
      reasons += std::string(reasons.empty() ? "" : "; ") + port::tracker_name(kind) + ": " + probe.reason;
    }
    return status(errc::unsupported, "no page-write tracker works here (" + reasons + ")");
  }
  for (const auto& b : kBackends) {
    if (b.backend != requested) continue;
    port::tracker_probe probe = port::probe_tracker(b.kind);
    if (!probe.available) return status(errc::unsupported, std::string(port::tracker_name(b.kind)) + ": " + probe.reason);
    if (int err = port::make_tracker(b.kind, out))
      return status::from_errno(err, std::string("creating the ") + port::tracker_name(b.kind) + " tracker");
    return {};
  }
  return status(errc::invalid_argument, "no such tracker backend");
}

std::size_t pod_slot(std::uint32_t pod) { return pod == kMetadataPod ? layout::kMaxPods : pod; }

}  // namespace

const char* to_string(tracker_backend backend) noexcept {
  switch (backend) {
    case tracker_backend::none: return "none";
    case tracker_backend::automatic: return "automatic";
    case tracker_backend::uffd_async: return "uffd-async";
    case tracker_backend::mprotect: return "mprotect";
    case tracker_backend::pkey: return "pkey";
  }
  return "unknown";
}

std::vector<tracker_support> tracker_backends() {
  std::vector<tracker_support> result;
  for (port::tracker_kind kind : port::kTrackerFallbackOrder) {
    port::tracker_probe probe = port::probe_tracker(kind);
    result.push_back({backend_of(kind), probe.available, probe.reason});
  }
  return result;
}

void prepare_kernel_write(const void* address, std::size_t size) noexcept {
  (void)port::prepare_kernel_write(address, size);
}

// ---- dirty_set -------------------------------------------------------------

std::size_t dirty_set::page_count() const noexcept {
  std::size_t n = 0;
  for (const dirty_run& r : runs_) n += r.pages;
  return n;
}

std::size_t dirty_set::page_count(std::uint32_t pod) const noexcept {
  std::size_t n = 0;
  for (const dirty_run& r : runs_) n += r.pod == pod ? r.pages : 0;
  return n;
}

std::vector<std::uint32_t> dirty_set::pods() const {
  std::vector<std::uint32_t> result;
  for (const dirty_run& r : runs_) result.push_back(r.pod);
  std::sort(result.begin(), result.end());
  result.erase(std::unique(result.begin(), result.end()), result.end());
  return result;
}

bool dirty_set::contains(const void* address) const noexcept {
  auto a = reinterpret_cast<std::uintptr_t>(address);
  auto it = std::upper_bound(runs_.begin(), runs_.end(), a,
                             [](std::uintptr_t x, const dirty_run& r) { return x < r.start; });
  if (it == runs_.begin()) return false;
  --it;
  return a < it->start + std::uintptr_t{it->pages} * port::kOsPageSize;
}

// ---- heap_impl -------------------------------------------------------------

status heap_impl::start_tracking(tracker_backend backend) {
  process_heap_scope scope;
  if (!can_write()) return status(errc::read_only, name + ": a read-only heap cannot be tracked");
  if (backend == tracker_backend::none) return status(errc::invalid_argument, "tracker_backend::none");
  if (shared_writers())
    return status(errc::unsupported, name + ": page-write tracking sees one process's writes; this heap has shared "
                                            "writers");
  reset_tracking_locks_after_fork();
  std::lock_guard collect_guard(collect_lock);
  if (tracker && (versions_observing || migration_observing) && !tracking_by_program) {
    // Versions or the migrator started it: the program's epoch 1 begins now.
    tracking_by_program = true;
    unreported_writes.clear();
    return {};
  }
  if (tracker) return status(errc::invalid_argument, name + ": already tracking");
  std::unique_ptr<port::write_tracker> fresh;
  if (status s = make_backend(backend, &fresh); !s.ok()) return s;

  // No segment is claimed meanwhile (the hook runs under this lock and
  // takes tracker_lock after it): every segment is either tracked below or
  // claimed later, with the tracker in place.
  std::lock_guard claim_guard(region.claim_lock());
  std::lock_guard tracker_guard(tracker_lock);
  const std::uintptr_t base = region.base();
  const std::size_t high = std::max<std::size_t>(meta()->segments_high, 1);
  int err = 0;
  if (fresh->kind() == port::tracker_kind::pkey) {
    // One key per pod: track runs of segments that share an owner.
    for (std::size_t i = 0; i < high && err == 0;) {
      std::uint32_t pod = alloc::pod_of_address(region, base + (i << layout::kSegmentShift));
      std::size_t j = i + 1;
      while (j < high && alloc::pod_of_address(region, base + (j << layout::kSegmentShift)) == pod) ++j;
      err = fresh->track(base + (i << layout::kSegmentShift), (j - i) << layout::kSegmentShift, pod);
      i = j;
    }
  } else {
    err = fresh->track(base, high << layout::kSegmentShift, 0);
  }
  if (err != 0) return status::from_errno(err, "tracking writes to " + name);
  tracker = std::move(fresh);
  tracking_backend = backend_of(tracker->kind());
  tracking_by_program = false;  // heap::start_tracking says otherwise
  layout::tracking_record& record = meta()->tracking;
  record.backend = [&] {
    for (const auto& b : kBackends)
      if (b.backend == tracking_backend) return b.code;
    return layout::kNotTracked;
  }();
  record.pid = static_cast<std::uint32_t>(port::process_id());
  record.epoch_start_ns = realtime_ns();
  epoch = record.epoch + 1;
  return {};
}

void heap_impl::reset_tracking_locks_after_fork() noexcept {
  // Another thread of the parent may have held them at fork; the child's
  // first call (it has one thread then) starts from fresh ones.
  if (tracking_pid == port::process_id()) return;
  new (&collect_lock) std::mutex;
  new (&tracker_lock) std::mutex;
  tracking_pid = port::process_id();
}

void heap_impl::stop_tracking() noexcept {
  process_heap_scope scope;
  reset_tracking_locks_after_fork();
  // A lazy checkout's pages are loaded while the tracker still serves them;
  // a page that could not be loaded fails the heap (finish_lazy).
  (void)finish_lazy(*this);
  std::lock_guard collect_guard(collect_lock);
  // Destroyed outside tracker_lock: a signal-based tracker leaves the fault
  // dispatcher under its lock, which a fork holds while it takes the region
  // locks, and claims take tracker_lock under a region lock.
  std::unique_ptr<port::write_tracker> old;
  {
    std::lock_guard tracker_guard(tracker_lock);
    if (!tracker) return;
    tracker->untrack_all();
    old = std::move(tracker);
  }
  tracking_backend = tracker_backend::none;
  tracking_by_program = false;
  lost_writes = versions_observing;
  unreported_writes.clear();
  // Writes from now on are not reported: the kept reference graph would
  // go stale (runtime/pod_graph.hpp).
  references.reset();
  if (can_write()) {
    meta()->tracking.backend = layout::kNotTracked;
    meta()->tracking.pid = 0;
  }
}

status heap_impl::collect_dirty(dirty_set* out) {
  process_heap_scope scope;
  reset_tracking_locks_after_fork();
  std::lock_guard collect_guard(collect_lock);
  if (!tracker) return status(errc::invalid_argument, name + ": not tracking (start_tracking first)");
  written_buffer.clear();  // kept between collects: its capacity fits the next
  if (int err = tracker->collect(&written_buffer))
    return status::from_errno(err, "collecting the written pages of " + name);
  if (references) references->rescan(region, written_buffer);
  if (versions_observing) written_since_cut.add(region.base(), written_buffer);
  if (!unreported_writes.empty()) {  // collected by versions or the migrator since the last collect
    unreported_writes.add(region.base(), written_buffer);
    written_buffer.clear();
    unreported_writes.append_runs(region.base(), &written_buffer);
    unreported_writes.clear();
  }
  std::vector<dirty_run> runs;
  alloc::attribute_to_pods(region, written_buffer, &runs);
  placement_note_written(*this, runs);
  const std::uint64_t ended = epoch++;

  // A forked child of the tracking process may not write the heap.
  if (can_write()) {
    layout::heap_meta* m = meta();
    std::uint64_t pages[layout::kMaxPods + 1] = {};
    std::uint64_t all = 0;
    for (const dirty_run& r : runs) {
      all += r.pages;
      if (r.pod == kMetadataPod || r.pod < layout::kMaxPods) pages[pod_slot(r.pod)] += r.pages;
    }
    for (std::size_t i = 0; i <= layout::kMaxPods; ++i) {
      layout::pod_write_record& w = m->pod_writes[i];
      if (pages[i] == 0) {
        if (w.pages_last != 0) w.pages_last = 0;  // untouched records stay clean pages
        continue;
      }
      w.pages_last = pages[i];
      w.pages_total += pages[i];
      w.epochs_written += 1;
      w.last_written_epoch = ended;
    }
    std::uint64_t now = realtime_ns();
    layout::tracking_record& t = m->tracking;
    t.last_epoch_ns = now - std::min(now, t.epoch_start_ns);
    t.epoch_start_ns = now;
    t.epoch = ended;
    t.pages_last = all;
    t.pages_total += all;
  }
  out->assign(ended, std::move(runs));
  return {};
}

// Versions observe before they collect (versions_observing is set), so
// the pages go to written_since_cut.
status heap_impl::collect_for_versions(const std::vector<port::written_run>* within) {
  return collect_observed(within, nullptr);
}

status heap_impl::collect_observed(const std::vector<port::written_run>* within, std::vector<port::written_run>* out) {
  process_heap_scope scope;
  reset_tracking_locks_after_fork();
  std::lock_guard collect_guard(collect_lock);
  if (!tracker) return status(errc::invalid_argument, name + ": not tracking");
  written_buffer.clear();
  int err = within ? tracker->collect_within(*within, &written_buffer) : ENOTSUP;
  if (err == ENOTSUP) err = tracker->collect(&written_buffer);
  if (err) return status::from_errno(err, "collecting the written pages of " + name);
  if (references) references->rescan(region, written_buffer);
  if (versions_observing) written_since_cut.add(region.base(), written_buffer);
  if (tracking_by_program) unreported_writes.add(region.base(), written_buffer);
  // Else no collect_dirty will report these pages again.
  if (!tracking_by_program && placement) {
    std::vector<dirty_run> runs;
    alloc::attribute_to_pods(region, written_buffer, &runs);
    placement_note_written(*this, runs);
  }
  if (out != nullptr) out->insert(out->end(), written_buffer.begin(), written_buffer.end());
  return {};
}

int heap_impl::on_segments_claimed(void* context, std::uintptr_t start, std::size_t size, std::uint32_t pod) {
  auto* self = static_cast<heap_impl*>(context);
  // This runs under the region lock. Setting up a thread takes the threads
  // lock, which a fork takes before the region locks, so a thread whose
  // first use of larder is this claim is left as it is: its tls_heap is
  // the empty heap, whose allocations go to the process heap anyway.
  std::optional<process_heap_scope> scope;
  if (alloc::current_thread() != nullptr) scope.emplace();
  self->reset_tracking_locks_after_fork();
  std::lock_guard guard(self->tracker_lock);
  if (!self->tracker) return 0;
  return self->tracker->track(start, size, pod);
}

// ---- heap ------------------------------------------------------------------

status heap::start_tracking(tracker_backend backend) {
  if (impl_ == nullptr) return status(errc::invalid_argument, "the heap is not open");
  status s = impl_->start_tracking(backend);
  if (s.ok()) impl_->tracking_by_program = true;
  return s;
}

void heap::stop_tracking() noexcept {
  if (impl_ != nullptr) impl_->stop_tracking();
}

tracker_backend heap::tracking() const noexcept {
  return impl_ != nullptr ? impl_->tracking_backend : tracker_backend::none;
}

status heap::collect_dirty(dirty_set* out) {
  if (impl_ == nullptr) return status(errc::invalid_argument, "the heap is not open");
  if (status s = impl_->collect_dirty(out); !s.ok()) return s;
  placement_end_epoch(*this);
  return {};
}

write_stats heap::write_statistics() const {
  write_stats stats{};
  if (impl_ == nullptr) return stats;
  const layout::heap_meta* m = impl_->meta();
  const layout::tracking_record t = m->tracking;
  stats.backend = tracker_backend::none;
  for (const auto& b : kBackends)
    if (b.code == t.backend) stats.backend = b.backend;
  stats.pid = static_cast<int>(t.pid);
  // A tracker that died without stopping leaves its pid behind.
  if (stats.pid != 0 && ::kill(stats.pid, 0) != 0 && errno == ESRCH) {
    stats.backend = tracker_backend::none;
    stats.pid = 0;
  }
  stats.epoch = t.epoch;
  stats.last_epoch_seconds = static_cast<double>(t.last_epoch_ns) / 1e9;
  if (stats.backend != tracker_backend::none && t.epoch_start_ns != 0) {
    std::uint64_t now = realtime_ns();
    stats.current_epoch_seconds = static_cast<double>(now - std::min(now, t.epoch_start_ns)) / 1e9;
  }
  stats.pages_last_epoch = t.pages_last;
  stats.pages_total = t.pages_total;
  std::lock_guard guard(impl_->meta_lock);
  for (std::size_t i = 0; i <= layout::kMaxPods; ++i) {
    const layout::pod_write_record& w = m->pod_writes[i];
    if (w.epochs_written == 0) continue;
    std::uint32_t id = i == layout::kMaxPods ? kMetadataPod : static_cast<std::uint32_t>(i);
    std::string pod_name = i == layout::kMaxPods ? "(metadata)"
                                                 : std::string(m->pods[i].name, strnlen(m->pods[i].name, sizeof m->pods[i].name));
    stats.pods.push_back({id, pod_name, w.pages_last, w.pages_total, w.epochs_written, w.last_written_epoch});
  }
  return stats;
}

}  // namespace larder
