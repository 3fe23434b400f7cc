// Internal to port/linux: the loader behind write_tracker::load_lazily. It
// serves userfaultfd missing faults on the uffd tracker's own descriptor
// (one VMA takes one userfaultfd, so the tracker's registration becomes
// MISSING|WP rather than a second descriptor), installing each page with
// UFFDIO_COPY write-protected, so that the async write-protect tracking
// still sees the page's first write.
#pragma once

#include "port/write_tracker.hpp"

#include <condition_variable>
#include <cstdint>
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

  // Starts serving `pages` from `source` (the thread starts at the first
  // call). Any load of an earlier call is finished first.
  int start(std::vector<std::uintptr_t> pages, page_source* source);
  lazy_progress finish() noexcept;
  lazy_progress state() const noexcept;
  // Finishes, then ends the thread: missing faults are no longer served,
  // so the caller unregisters the ranges right after.
  void stop() noexcept;

 private:
  void run() noexcept;
  void serve_fault(std::uintptr_t page) noexcept;
  // Loads pending pages [first, first + count), those not loaded yet.
  void load(std::size_t first, std::size_t count) noexcept;
  // Installs one page (write-protected) unless one is there already: 0
  // then. Where the kernel cannot (ENOMEM, ENOSPC, ...), the page gets
  // zeros if it can and its waiters are woken; the errno is returned.
  int install(std::uintptr_t page, const void* bytes) noexcept;
  // Counts `count` pages that read as zeros, the first `page` (`error`).
  void count_failed(std::size_t count, std::uintptr_t page, int error) noexcept;
  std::size_t next_unloaded() const noexcept;

  int fd_;
  std::thread thread_;
  mutable std::mutex lock_;
  std::condition_variable done_;
  bool stopping_ = false;
  bool prefetch_ = true;   // load untouched pages between faults
  bool finishing_ = false;  // finish() waits: load everything
  page_source* source_ = nullptr;
  std::vector<std::uintptr_t> pending_;  // ascending
  std::vector<bool> loaded_;
  std::size_t cursor_ = 0;  // no unloaded page below it
  lazy_progress progress_;
  std::vector<char> buffer_;
};

}  // namespace larder::port
