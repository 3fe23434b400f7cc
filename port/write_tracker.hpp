// Page-write tracking: which OS pages of a range were written since the last
// collect. Three backends sit behind one interface, all in port/linux:
//   uffd_async  userfaultfd write-protect in async mode, collected and
//               re-protected by one PAGEMAP_SCAN ioctl (Linux 6.7+). The
//               kernel resolves the first write to a page itself: no signal,
//               no thread, and kernel writes (read(2) into the range) need
//               nothing special.
//   mprotect    PROT_READ plus a SIGSEGV handler that records the page and
//               unprotects it. Synchronous: the first-write callback runs
//               before the write lands.
//   pkey        memory protection keys: one key per group of ranges (a pod),
//               write access granted per thread by the fault handler through
//               PKRU, revoked for all threads on collect. Group-granular:
//               after the first write to a group, its whole range counts as
//               written.
// Every backend reports a page written in an epoch in that epoch's collect
// or, if the write raced with the collect, in the next one. Never missed.
#pragma once

#include "port/os.hpp"

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace larder::port {

enum class tracker_kind : std::uint8_t { uffd_async, mprotect, pkey };
// The order `automatic` tries: precise and cheap first; pkey, being
// group-granular, only when asked for or when nothing else works.
inline constexpr tracker_kind kTrackerFallbackOrder[] = {tracker_kind::uffd_async, tracker_kind::mprotect,
                                                         tracker_kind::pkey};
const char* tracker_name(tracker_kind kind) noexcept;

// Where pages loaded on first touch come from (write_tracker::load_lazily).
// Runs on the loader's thread, never in a signal handler.
class page_source {
 public:
  // Writes the pages at heap addresses pages[0, count) into `out` (page
  // aligned), kOsPageSize bytes each: 0, or an errno value (the loader
  // then asks page by page, to tell which pages failed).
  virtual int fill(const std::uintptr_t* pages, std::size_t count, void* out) noexcept = 0;
  // After pages[0, count) of this source were installed (what fill gave,
  // or zeros where it failed); `touched`: pages[0] was faulted on, the
  // rest came with it.
  virtual void installed(const std::uintptr_t* pages, std::size_t count, bool touched) noexcept {
    (void)pages;
    (void)count;
    (void)touched;
  }
  // Whether a serve_on_touch set whose rest would come back with a fault
  // (prefetch_rest) may bring `pages` more pages in now.
  virtual bool may_prefetch(std::size_t pages) noexcept {
    (void)pages;
    return true;
  }
  // A page of a serve_on_touch set that reads as zeros: its fill or its
  // install failed with `error`. (A lazy checkout's failures are counted
  // in lazy_progress instead.)
  virtual void lost(std::uintptr_t page, int error) noexcept {
    (void)page;
    (void)error;
  }

 protected:
  ~page_source() = default;
};

// Where lazy loading stands. A page whose fill failed is installed as
// zeros (never left missing: touching it must not hang or signal).
struct lazy_progress {
  std::size_t pending = 0;  // pages not loaded yet
  std::size_t failed = 0;   // pages that read as zeros: their fill or install failed
  std::uintptr_t first_failed = 0;
  int first_error = 0;
};

// A run of written pages, in kOsPageSize units.
struct written_run {
  std::uintptr_t start;
  std::size_t pages;
};

// Runs inside the SIGSEGV handler (or before a wrapped system call writes):
// async-signal-safe code only. `page` is the page about to be written.
using first_write_fn = void (*)(void* context, std::uintptr_t page);

class write_tracker {
 public:
  virtual ~write_tracker() = default;
  virtual tracker_kind kind() const noexcept = 0;
  // True when the first-write callback sees each page before its first
  // write in an epoch lands (mprotect only).
  virtual bool synchronous() const noexcept { return false; }
  // Starts tracking [start, start + size), page-aligned, already mapped:
  // its pages read as unwritten from now on. `group` (a pod) matters to the
  // pkey backend only; tracking a range again moves it to `group`.
  // Returns 0 or an errno value.
  virtual int track(std::uintptr_t start, std::size_t size, std::uint32_t group) = 0;
  // Stops tracking every range and leaves the memory writable.
  virtual void untrack_all() noexcept = 0;
  // Appends the runs of pages written since the last collect, ascending,
  // and re-arms them in the same step. Returns 0 or an errno value. Not
  // concurrent with itself or track on the same tracker.
  virtual int collect(std::vector<written_run>* out) = 0;
  // As collect, over the tracked parts of `within` (ascending, disjoint)
  // only: pages outside keep their marks for a later collect. ENOTSUP
  // where the backend can only collect everything at once.
  virtual int collect_within(const std::vector<written_run>& within, std::vector<written_run>* out) {
    (void)within;
    (void)out;
    return ENOTSUP;
  }
  // Sets the callback for first writes (synchronous backends only).
  virtual void set_first_write(first_write_fn fn, void* context) noexcept {
    (void)fn;
    (void)context;
  }
  // Bytes currently tracked.
  virtual std::size_t tracked_bytes() const noexcept = 0;

  // Lazy loading (uffd_async over anonymous or shmem memory; ENOTSUP
  // elsewhere): `pages` (ascending, tracked, page-aligned addresses) are
  // dropped (`shared`: their backing's storage too) and from now on loaded
  // from `source` on first touch, through userfaultfd missing faults on
  // the tracker's own descriptor, installed write-protected so that a
  // later write is still tracked; a thread of the tracker loads the rest
  // meanwhile. `source` must live until finish_lazy returns. Until the
  // tracker is untracked, a missing page outside `pages` (memory given
  // back since) is installed as zeros by that thread. 0 or an errno value.
  virtual int load_lazily(std::vector<std::uintptr_t> pages, bool shared, page_source* source) {
    (void)pages;
    (void)shared;
    (void)source;
    return ENOTSUP;
  }
  // Why load_lazily cannot serve every touch here (static text), or
  // nullptr where it can.
  virtual const char* lazy_refusal() const noexcept { return nullptr; }
  // Loads every page load_lazily still has missing and waits for it;
  // its `source` is not used after. Pages of serve_on_touch sets stay.
  virtual lazy_progress finish_lazy() noexcept { return {}; }
  virtual lazy_progress lazy_state() const noexcept { return {}; }

  // Eviction: from now on `pages` (ascending, tracked, page-aligned; the
  // caller drops them right after this returns, and they may be dropped
  // already) are loaded from `source` on their first touch only, installed
  // write-protected as load_lazily's are; nothing loads them before. A set
  // of pages is served until each was touched once, so the same page may
  // be given again in a later set after its touch. With `prefetch_rest`,
  // the second fault in the set within a short time loads the whole rest
  // of the set, where the source agrees (may_prefetch): a set whose pages
  // are touched together comes back in a few large reads. `source` must
  // live until every page was loaded, or until finish_all returns. Where
  // load_lazily works; ENOTSUP elsewhere.
  virtual int serve_on_touch(std::vector<std::uintptr_t> pages, page_source* source, bool prefetch_rest) {
    (void)pages;
    (void)source;
    (void)prefetch_rest;
    return ENOTSUP;
  }
  // Marks the pages of `runs` unwritten again, for pages that were just
  // dropped (which the kernel would report written: a dropped page keeps
  // no write-protect mark). Only where serve_on_touch works. 0 or an
  // errno value.
  virtual int mark_unwritten(const std::vector<written_run>& runs) {
    (void)runs;
    return ENOTSUP;
  }
  // Loads every page still missing, of load_lazily and of serve_on_touch,
  // and waits for it. Called by untrack_all too.
  virtual void finish_all() noexcept {}
  // Forgets the pages of serve_on_touch sets not loaded yet, for memory
  // about to be unmapped: a later touch of one reads zeros. Returns once
  // the loader no longer uses their sources.
  virtual void abandon_on_touch() noexcept {}
};

struct tracker_probe {
  tracker_kind kind;
  bool available;
  const char* reason;  // why not, when unavailable (static text)
};
// Whether `kind` works in this process on this kernel and CPU.
tracker_probe probe_tracker(tracker_kind kind) noexcept;
// Creates a tracker of `kind`: 0, or ENOSYS/EPERM/... when unavailable.
int make_tracker(tracker_kind kind, std::unique_ptr<write_tracker>* out);

// Kernel writes into protected memory fail with EFAULT instead of faulting
// into the handler. larder's read/pread/readv/recv/... wrappers call this
// for their buffer first; code that hands heap memory to other system calls
// calls it too. It marks the range written (running the first-write
// callbacks) and makes it writable until the next collect. Cheap when no
// synchronous or pkey tracker exists. Returns true if any range was touched.
bool prepare_kernel_write(const void* p, std::size_t size) noexcept;

// The bare ioctl, for comparison: counts pages of [start, start + size)
// marked written by uffd async write-protect, re-protecting them. -errno
// on failure. Used by the benchmark and the probe.
long pagemap_scan_written(std::uintptr_t start, std::size_t size, bool reprotect) noexcept;

}  // namespace larder::port
