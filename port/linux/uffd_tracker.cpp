// The uffd_async backend: userfaultfd write-protect in async mode, where the
// kernel resolves a write fault on a protected page itself and leaves the
// page marked written; PAGEMAP_SCAN reads those marks and re-protects the
// pages in the same walk, under the page-table lock, so a racing write is
// seen either by this scan or by the next. The tracker, with the buffer the
// kernel writes a scan's results into, is mapped from the OS (os_mapped.hpp).
#include "port/linux/kernel_abi.hpp"
#include "port/linux/os_mapped.hpp"
#include "port/linux/tracker_backends.hpp"
#include "port/linux/uffd_missing.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <new>

namespace larder::port {
namespace {

constexpr std::size_t kScanVector = 1024;  // page_region entries per ioctl

// *user_mode_only (where given) tells whether the descriptor takes faults
// from user mode only.
int open_uffd(int* out, bool* user_mode_only = nullptr) {
  int fd = static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
  const bool user_only = fd < 0 && errno == EPERM;
  if (user_only)  // unprivileged: user-mode faults only, which async mode allows
    fd = static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | kabi::kUffdUserModeOnly));
  if (fd < 0) return errno;
  if (user_mode_only != nullptr) *user_mode_only = user_only;
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = kabi::kUffdFeatureWpAsync | kabi::kUffdFeatureWpUnpopulated;
  if (::ioctl(fd, UFFDIO_API, &api) != 0) {
    int e = errno;
    ::close(fd);
    return e == EINVAL ? ENOTSUP : e;
  }
  *out = fd;
  return 0;
}

int register_and_protect(int fd, std::uintptr_t start, std::size_t size) {
  uffdio_register reg{};
  reg.range.start = start;
  reg.range.len = size;
  reg.mode = UFFDIO_REGISTER_MODE_WP;
  if (::ioctl(fd, UFFDIO_REGISTER, &reg) != 0) return errno;
  uffdio_writeprotect wp{};
  wp.range.start = start;
  wp.range.len = size;
  wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
  if (::ioctl(fd, UFFDIO_WRITEPROTECT, &wp) != 0) return errno;
  return 0;
}

// The pagemap descriptor of this process; reopened after fork, since the
// inherited one reads the parent's page tables.
class pagemap_file {
 public:
  ~pagemap_file() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() {
    int pid = ::getpid();
    if (fd_ < 0 || pid_ != pid) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
      pid_ = pid;
    }
    return fd_;
  }

 private:
  int fd_ = -1;
  int pid_ = 0;
};

// Calls on_run(start, pages) for each written run of [start, end).
template <class OnRun>
long scan_written(int pagemap, std::uintptr_t start, std::uintptr_t end, bool reprotect,
                  kabi::page_region* vec, std::size_t vec_len, OnRun&& on_run) {
  long pages = 0;
  while (start < end) {
    kabi::pm_scan_arg arg{};
    arg.size = sizeof(arg);
    arg.flags = kabi::kPmScanCheckWpAsync | (reprotect ? kabi::kPmScanWpMatching : 0);
    arg.start = start;
    arg.end = end;
    arg.vec = reinterpret_cast<std::uint64_t>(vec);
    arg.vec_len = vec_len;
    arg.category_mask = kabi::kPageIsWritten;
    arg.return_mask = kabi::kPageIsWritten;
    long n = ::ioctl(pagemap, kabi::kPagemapScan, &arg);
    if (n < 0) return -errno;
    std::uintptr_t reported_end = start;
    for (long i = 0; i < n; ++i) {
      std::size_t run = (vec[i].end - vec[i].start) / kOsPageSize;
      on_run(static_cast<std::uintptr_t>(vec[i].start), run);
      pages += static_cast<long>(run);
      reported_end = static_cast<std::uintptr_t>(vec[i].end);
    }
    // walk_end can fall short of the last region reported (seen on 6.18
    // with writes racing the scan); going on from there would report those
    // pages twice and out of order.
    std::uintptr_t next = std::max<std::uintptr_t>(arg.walk_end, reported_end);
    if (next <= start) return -EIO;  // no progress: never expected
    start = next;
  }
  return pages;
}

class uffd_tracker final : public write_tracker, public os_mapped {
 public:
  uffd_tracker(int fd, bool user_mode_only) : fd_(fd), pid_(::getpid()), user_mode_only_(user_mode_only) {}
  ~uffd_tracker() override { untrack_all(); }

  tracker_kind kind() const noexcept override { return tracker_kind::uffd_async; }

  int track(std::uintptr_t start, std::size_t size, std::uint32_t) override {
    std::lock_guard guard(lock());
    if (fd_ < 0) {  // after untrack_all
      if (int e = open_uffd(&fd_, &user_mode_only_)) return e;
      pid_ = ::getpid();
    }
    if (int e = reattach_after_fork()) return e;
    // Only what is not tracked yet: protecting a tracked page again would
    // forget a write made to it in this epoch.
    for (auto [lo, hi] : untracked_parts(start, start + size)) {
      if (int e = register_and_protect(fd_, lo, hi - lo)) return e;
      add_range(lo, hi);
    }
    return 0;
  }

  void untrack_all() noexcept override {
    // Pages still missing are loaded first: unregistered, they would read
    // as zeros.
    if (loader_ && ::getpid() == pid_) loader_->stop();
    std::lock_guard guard(lock());
    drop_loader();
    if (fd_ >= 0) {
      // Closing alone would not release the context while a forked child
      // still holds the inherited descriptor.
      if (::getpid() == pid_) {
        for (auto [lo, hi] : ranges_) {
          uffdio_range range{lo, hi - lo};
          ::ioctl(fd_, UFFDIO_UNREGISTER, &range);
        }
      }
      ::close(fd_);
    }
    fd_ = -1;
    ranges_.clear();
    report_all_ = false;
  }

  int collect(std::vector<written_run>* out) override {
    std::lock_guard guard(lock());
    return scan(ranges_, out);
  }

  // A scan costs the page tables it walks: a heap of 1 GiB with 1 % written
  // takes ~3.6 ms whole, and far less where only a few runs are asked for.
  int collect_within(const std::vector<written_run>& within, std::vector<written_run>* out) override {
    std::lock_guard guard(lock());
    std::vector<range> parts;
    auto tracked = ranges_.begin();
    for (const written_run& run : within) {
      std::uintptr_t lo = run.start, hi = run.start + run.pages * kOsPageSize;
      while (tracked != ranges_.end() && tracked->second <= lo) ++tracked;
      for (auto t = tracked; t != ranges_.end() && t->first < hi; ++t)
        parts.push_back({std::max(lo, t->first), std::min(hi, t->second)});
    }
    return scan(parts, out);
  }

  int load_lazily(std::vector<std::uintptr_t> pages, bool shared, page_source* source) override {
    std::lock_guard guard(lock());
    if (int e = check_pages_and_widen(pages)) return e;
    // Dropped before the loader starts, or it could find a page still
    // present and take it for loaded. A touch from here on waits in the
    // descriptor's queue for the loader.
    const int dropped = decommit_pages(pages.data(), pages.size(), shared);
    // Started even when a drop failed: pages dropped before it must still
    // be served, or a touch would wait for ever.
    if (!loader_) loader_ = std::make_unique<missing_loader>(fd_);
    if (int e = loader_->start(std::move(pages), source)) return e;
    return dropped;
  }

  // Registered before the caller drops the pages: a touch of a dropped
  // page must find its set.
  int serve_on_touch(std::vector<std::uintptr_t> pages, page_source* source, bool prefetch_rest) override {
    std::lock_guard guard(lock());
    if (int e = check_pages_and_widen(pages)) return e;
    if (!loader_) loader_ = std::make_unique<missing_loader>(fd_);
    return loader_->add_on_touch(std::move(pages), source, prefetch_rest);
  }

  // Write-protecting a dropped page leaves a marker in its empty entry
  // (UFFD_FEATURE_WP_UNPOPULATED for anonymous memory; always for shmem),
  // which a touch still takes to the missing-fault handler.
  int mark_unwritten(const std::vector<written_run>& runs) override {
    std::lock_guard guard(lock());
    if (fd_ < 0 || ::getpid() != pid_) return EINVAL;
    for (const written_run& r : runs) {
      uffdio_writeprotect wp{};
      wp.range.start = r.start;
      wp.range.len = r.pages * kOsPageSize;
      wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
      if (::ioctl(fd_, UFFDIO_WRITEPROTECT, &wp) != 0) return errno;
    }
    return 0;
  }

  void abandon_on_touch() noexcept override {
    if (loader_ && ::getpid() == pid_) loader_->abandon_on_touch();
  }
  void finish_all() noexcept override {
    if (loader_ && ::getpid() == pid_) loader_->finish_all();
  }

  const char* lazy_refusal() const noexcept override {
    std::lock_guard guard(lock());
    return user_mode_only_ ? "this process's userfaultfd takes user-mode faults only (unprivileged, "
                             "vm.unprivileged_userfaultfd=0): the kernel touching a missing page (read(2) "
                             "into it, a futex) would fail with EFAULT"
                           : nullptr;
  }

  // In a forked child the loader's thread does not exist (and its lock may
  // have been held at fork): nothing is waited for.
  lazy_progress finish_lazy() noexcept override {
    if (::getpid() != pid_) {
      std::lock_guard guard(lock());
      drop_loader();
      return {};
    }
    return loader_ ? loader_->finish() : lazy_progress{};
  }
  lazy_progress lazy_state() const noexcept override {
    return loader_ && ::getpid() == pid_ ? loader_->state() : lazy_progress{};
  }

  std::size_t tracked_bytes() const noexcept override {
    std::lock_guard guard(lock());
    std::size_t total = 0;
    for (auto [lo, hi] : ranges_) total += hi - lo;
    return total;
  }

 private:
  using range = std::pair<std::uintptr_t, std::uintptr_t>;

  // Checks that every page is tracked, then widens the registration of
  // every range to MISSING|WP (the same descriptor takes missing faults
  // too, and every page keeps its write-protect state). Under lock().
  int check_pages_and_widen(const std::vector<std::uintptr_t>& pages) {
    if (fd_ < 0 || ::getpid() != pid_) return EINVAL;
    if (user_mode_only_) return ENOTSUP;
    for (std::uintptr_t page : pages) {
      auto in = std::find_if(ranges_.begin(), ranges_.end(), [&](const range& r) { return r.first <= page && page < r.second; });
      if (in == ranges_.end()) return EINVAL;
    }
    for (auto [lo, hi] : ranges_) {
      uffdio_register reg{};
      reg.range.start = lo;
      reg.range.len = hi - lo;
      reg.mode = UFFDIO_REGISTER_MODE_WP | UFFDIO_REGISTER_MODE_MISSING;
      if (::ioctl(fd_, UFFDIO_REGISTER, &reg) != 0) return errno == EINVAL ? ENOTSUP : errno;
    }
    return 0;
  }

  // The child of a fork: the kernel dropped the registration and the marks,
  // so nothing tells what was written; the next collect reports everything.
  int reattach_after_fork() {
    if (::getpid() == pid_ || fd_ < 0) return 0;
    drop_loader();
    ::close(fd_);  // the parent's context; closing our copy leaves it alone
    fd_ = -1;
    report_all_ = true;
    if (int e = open_uffd(&fd_, &user_mode_only_)) return e;
    pid_ = ::getpid();
    for (auto [lo, hi] : ranges_)
      if (int e = register_and_protect(fd_, lo, hi - lo)) return e;
    return 0;
  }

  // In a forked child the loader's thread does not exist: its object is
  // let go without waiting for it (the child's missing pages were never
  // its to load: docs/versions.md, "Lazy checkout").
  void drop_loader() noexcept {
    if (loader_ && ::getpid() != pid_)
      (void)loader_.release();
    else
      loader_.reset();
  }

  // Collects `parts` (ascending, disjoint, tracked) into `out`. Under lock().
  int scan(const std::vector<range>& parts, std::vector<written_run>* out) {
    if (int e = reattach_after_fork()) return e;
    if (report_all_) {
      for (auto [lo, hi] : ranges_) out->push_back({lo, (hi - lo) / kOsPageSize});
      report_all_ = false;
      return 0;
    }
    int pagemap = pagemap_.get();
    if (pagemap < 0) return errno;
    for (auto [lo, hi] : parts) {
      long n = scan_written(pagemap, lo, hi, true, vec_, kScanVector, [&](std::uintptr_t s, std::size_t pages) {
        if (!out->empty() && out->back().start + out->back().pages * kOsPageSize == s)
          out->back().pages += pages;
        else
          out->push_back({s, pages});
      });
      if (n < 0) {
        // Pages already re-protected by this collect would be lost: the
        // next one reports everything instead.
        report_all_ = true;
        return static_cast<int>(-n);
      }
    }
    return 0;
  }

  std::vector<range> untracked_parts(std::uintptr_t lo, std::uintptr_t hi) const {
    std::vector<range> parts;
    for (auto [a, b] : ranges_) {  // sorted, disjoint
      if (b <= lo || a >= hi) continue;
      if (a > lo) parts.push_back({lo, a});
      lo = std::max(lo, b);
      if (lo >= hi) break;
    }
    if (lo < hi) parts.push_back({lo, hi});
    return parts;
  }

  void add_range(std::uintptr_t lo, std::uintptr_t hi) {
    ranges_.push_back({lo, hi});
    std::sort(ranges_.begin(), ranges_.end());
    std::vector<range> merged;
    for (auto r : ranges_) {
      if (!merged.empty() && merged.back().second == r.first)
        merged.back().second = r.second;
      else
        merged.push_back(r);
    }
    ranges_.swap(merged);
  }

  // A thread of the parent may have held the lock at fork: the child's
  // first call (it has one thread then) starts from a fresh one.
  std::mutex& lock() const noexcept {
    if (::getpid() != lock_pid_) {
      new (&lock_) std::mutex;
      lock_pid_ = ::getpid();
    }
    return lock_;
  }

  mutable std::mutex lock_;
  mutable int lock_pid_ = ::getpid();
  int fd_;
  int pid_;
  bool user_mode_only_;  // the descriptor takes user-mode faults only
  std::vector<range> ranges_;
  bool report_all_ = false;
  std::unique_ptr<missing_loader> loader_;  // since the first load_lazily
  kabi::page_region vec_[kScanVector];
  pagemap_file pagemap_;
};

tracker_probe probe_uffd() noexcept {
  int fd = -1;
  if (int e = open_uffd(&fd)) {
    const char* reason = e == ENOSYS    ? "the kernel has no userfaultfd"
                         : e == ENOTSUP ? "the kernel lacks async write-protect (UFFD_FEATURE_WP_ASYNC, Linux 6.7+)"
                         : e == EPERM   ? "userfaultfd is not permitted (vm.unprivileged_userfaultfd)"
                                        : "userfaultfd could not be opened";
    return {tracker_kind::uffd_async, false, reason};
  }
  // One page, written after protecting it, must be scanned as written.
  tracker_probe result{tracker_kind::uffd_async, false, "PAGEMAP_SCAN did not report a written page"};
  void* page = ::mmap(nullptr, kOsPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) {
    ::close(fd);
    return {tracker_kind::uffd_async, false, "no memory for the probe"};
  }
  auto at = reinterpret_cast<std::uintptr_t>(page);
  if (register_and_protect(fd, at, kOsPageSize) != 0) {
    result.reason = "userfaultfd write-protect registration failed";
  } else {
    *static_cast<volatile char*>(page) = 1;
    long n = pagemap_scan_written(at, kOsPageSize, true);
    if (n == 1)
      result = {tracker_kind::uffd_async, true, ""};
    else if (n < 0)
      result.reason = "the kernel has no PAGEMAP_SCAN ioctl (Linux 6.7+)";
  }
  ::munmap(page, kOsPageSize);
  ::close(fd);
  return result;
}

}  // namespace

long pagemap_scan_written(std::uintptr_t start, std::size_t size, bool reprotect) noexcept {
  static pagemap_file pagemap;
  static std::mutex lock;
  std::lock_guard guard(lock);
  int fd = pagemap.get();
  if (fd < 0) return -errno;
  kabi::page_region vec[kScanVector];
  return scan_written(fd, start, start + size, reprotect, vec, kScanVector, [](std::uintptr_t, std::size_t) {});
}

namespace backends {

tracker_probe probe_uffd_async() noexcept {
  static const tracker_probe cached = probe_uffd();
  return cached;
}

int make_uffd_async(std::unique_ptr<write_tracker>* out) {
  if (!probe_uffd_async().available) return ENOTSUP;
  int fd = -1;
  bool user_mode_only = false;
  if (int e = open_uffd(&fd, &user_mode_only)) return e;
  *out = std::make_unique<uffd_tracker>(fd, user_mode_only);
  return 0;
}

}  // namespace backends
}  // namespace larder::port
