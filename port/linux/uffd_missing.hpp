// Internal to port/linux: the loader behind write_tracker::load_lazily and
// serve_on_touch. It serves userfaultfd missing faults on the uffd
// tracker's own descriptor (one VMA takes one userfaultfd, so the
// tracker's registration becomes MISSING|WP rather than a second
// descriptor), installing each page with UFFDIO_COPY write-protected, so
// that the async write-protect tracking still sees the page's first write.
// Pages come in sets, each with its own source: a lazy checkout's, loaded
// between faults too, and evicted pods', loaded only when touched.
#pragma once

#include "port/write_tracker.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace larder::port {

class missing_loader {
 public:
  explicit missing_loader(int uffd) : fd_(uffd) {}
  missing_loader(const missing_loader&) = delete;
  missing_loader& operator=(const missing_loader&) = delete;
  ~missing_loader() { stop(); }

  // A lazy checkout: serves `pages` from `source`, and loads them between
  // faults (unless LARDER_LAZY_PREFETCH=0). An earlier checkout's set is
  // finished first. The thread starts at the first set.
  int start(std::vector<std::uintptr_t> pages, page_source* source);
  // An eviction: serves `pages` from `source` on first touch only
  // (write_tracker::serve_on_touch).
  int add_on_touch(std::vector<std::uintptr_t> pages, page_source* source, bool prefetch_rest);
  // Loads the checkout's pages and waits for them.
  lazy_progress finish() noexcept;
  lazy_progress state() const noexcept;
  // Loads every set's pages and waits for them.
  void finish_all() noexcept;
  // write_tracker::abandon_on_touch.
  void abandon_on_touch() noexcept;
  // Finishes every set, then ends the thread: missing faults are no
  // longer served, so the caller unregisters the ranges right after.
  void stop() noexcept;

 private:
  struct page_set {
    std::vector<std::uintptr_t> pages;  // ascending
    std::vector<bool> loaded;
    std::size_t pending = 0;
    std::size_t cursor = 0;  // no unloaded page below it
    page_source* source = nullptr;
    bool checkout = false;       // loaded between faults; failures go to progress_
    bool prefetch_rest = false;  // a second fault soon after the first loads the rest
    std::chrono::steady_clock::time_point last_fault{};
  };

  int add(page_set set);
  void run() noexcept;
  // The set a loading pass between faults works on, or nullptr. Under lock_.
  page_set* set_to_load() noexcept;
  void serve_fault(std::uintptr_t page) noexcept;
  // Loads up to `count` pending pages of `set` from its index `first` on;
  // `touched`: the first was faulted on.
  void load(page_set* set, std::size_t first, std::size_t count, bool touched) noexcept;
  // Installs one page (write-protected) unless one is there already: 0
  // then. Where the kernel cannot (ENOMEM, ENOSPC, ...), the page gets
  // zeros if it can and its waiters are woken; the errno is returned.
  int install(std::uintptr_t page, const void* bytes) noexcept;
  // Records `count` pages of `set` that read as zeros, the first `page`.
  void count_failed(page_set* set, std::size_t count, std::uintptr_t page, int error) noexcept;
  // Drops sets with nothing pending and wakes the waiters. Under lock_.
  void retire_done() noexcept;
  bool checkout_pending() const noexcept;

  int fd_;
  std::thread thread_;
  mutable std::mutex lock_;
  std::condition_variable done_;
  bool stopping_ = false;
  bool prefetch_ = true;       // load a checkout's untouched pages between faults
  bool finishing_ = false;     // finish() waits: load the checkout's pages
  bool finishing_all_ = false; // finish_all() waits: load everything
  // Only the loader's thread erases a set, so it uses one unlocked while
  // it fills and installs its pages.
  std::list<page_set> sets_;
  lazy_progress progress_;  // the checkout's
  // Pages fetched per fill while nothing faults: large enough to amortise
  // a batch read from the source, small enough that a fault waits little.
  static constexpr std::size_t kBatchPages = 64;
  // What a fill writes into: page aligned, as a tier moving pages without
  // a copy (O_DIRECT) needs.
  struct alignas(kOsPageSize) batch_buffer {
    char bytes[kBatchPages * kOsPageSize];
  };
  std::unique_ptr<batch_buffer> buffer_;
};

}  // namespace larder::port
