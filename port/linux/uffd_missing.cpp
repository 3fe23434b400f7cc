// The missing-fault loader of the uffd tracker; see uffd_missing.hpp.
#include "port/linux/uffd_missing.hpp"

#include "port/linux/kernel_abi.hpp"
#include "port/options.hpp"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace larder::port {
namespace {

// Pages fetched per fill while nothing faults: large enough to amortise a
// batch read from the source, small enough that a fault waits little.
constexpr std::size_t kPrefetchPages = 64;

alignas(4096) const char kZeroPage[kOsPageSize] = {};

}  // namespace

int missing_loader::start(std::vector<std::uintptr_t> pages, page_source* source) {
  (void)finish();
  std::uint64_t prefetch = 1;
  const char* text = nullptr;
  if (!read_option_now(option::lazy_prefetch, &prefetch, &text)) prefetch = 1;
  {
    std::lock_guard guard(lock_);
    prefetch_ = prefetch != 0;
    finishing_ = false;
    pending_ = std::move(pages);
    loaded_.assign(pending_.size(), false);
    cursor_ = 0;
    progress_ = {};
    progress_.pending = pending_.size();
    source_ = source;
    stopping_ = false;
  }
  if (!thread_.joinable()) {
    try {
      buffer_.resize(kPrefetchPages * kOsPageSize);
      thread_ = std::thread([this] { run(); });
    } catch (...) {
      std::lock_guard guard(lock_);
      pending_.clear();
      progress_.pending = 0;
      source_ = nullptr;
      return ENOMEM;
    }
  }
  return 0;
}

lazy_progress missing_loader::finish() noexcept {
  std::unique_lock guard(lock_);
  finishing_ = true;
  done_.wait(guard, [&] { return progress_.pending == 0 || !thread_.joinable(); });
  source_ = nullptr;
  return progress_;
}

lazy_progress missing_loader::state() const noexcept {
  std::lock_guard guard(lock_);
  return progress_;
}

void missing_loader::stop() noexcept {
  (void)finish();
  {
    std::lock_guard guard(lock_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

std::size_t missing_loader::next_unloaded() const noexcept {
  std::size_t i = cursor_;
  while (i < loaded_.size() && loaded_[i]) ++i;
  return i;
}

void missing_loader::run() noexcept {
  for (;;) {
    bool prefetch;
    {
      std::lock_guard guard(lock_);
      if (stopping_) return;
      prefetch = progress_.pending != 0 && (prefetch_ || finishing_);
    }
    // Faults first; while pages are pending, a batch of them between polls.
    pollfd p{fd_, POLLIN, 0};
    int ready = ::poll(&p, 1, prefetch ? 0 : 50);
    if (ready > 0) {
      uffd_msg msg;
      while (::read(fd_, &msg, sizeof msg) == static_cast<ssize_t>(sizeof msg)) {
        if (msg.event == UFFD_EVENT_PAGEFAULT)
          serve_fault(static_cast<std::uintptr_t>(msg.arg.pagefault.address) & ~std::uintptr_t{kOsPageSize - 1});
      }
      continue;
    }
    if (prefetch) {
      std::size_t first;
      {
        std::lock_guard guard(lock_);
        cursor_ = first = next_unloaded();
      }
      load(first, kPrefetchPages);
    }
  }
}

void missing_loader::serve_fault(std::uintptr_t page) noexcept {
  std::size_t index;
  {
    std::lock_guard guard(lock_);
    auto it = std::lower_bound(pending_.begin(), pending_.end(), page);
    index = static_cast<std::size_t>(it - pending_.begin());
    if (it == pending_.end() || *it != page || loaded_[index]) {
      index = pending_.size();
    }
  }
  if (index == pending_.size()) {
    // Memory given back since, or loaded meanwhile.
    if (int err = install(page, kZeroPage)) count_failed(1, page, err);
    return;
  }
  // The pages after it are likely touched next: load a few with it.
  load(index, 8);
}

void missing_loader::load(std::size_t first, std::size_t count) noexcept {
  std::uintptr_t pages[kPrefetchPages];
  std::size_t n = 0;
  page_source* source;
  {
    std::lock_guard guard(lock_);
    source = source_;
    for (std::size_t i = first; i < pending_.size() && n < std::min(count, kPrefetchPages); ++i)
      if (!loaded_[i]) pages[n++] = pending_[i];
  }
  if (n == 0 || source == nullptr) return;
  char* out = buffer_.data();
  int err = source->fill(pages, n, out);
  bool filled[kPrefetchPages];
  std::fill(filled, filled + n, true);
  std::size_t failed = 0;
  std::uintptr_t first_failed = 0;
  int first_error = 0;
  if (err != 0) {
    // Which pages failed: one by one. A page that fails is installed as
    // zeros and counted, so that touching it neither hangs nor signals.
    for (std::size_t k = 0; k < n; ++k) {
      char* bytes = out + k * kOsPageSize;
      if (int e = source->fill(&pages[k], 1, bytes)) {
        std::memset(bytes, 0, kOsPageSize);
        filled[k] = false;
        if (failed++ == 0) {
          first_failed = pages[k];
          first_error = e;
        }
      }
    }
  }
  // Counted before a page is installed: whoever reads its zeros can
  // already learn why.
  if (failed != 0) count_failed(failed, first_failed, first_error);
  for (std::size_t k = 0; k < n; ++k) {
    int e = install(pages[k], out + k * kOsPageSize);
    if (e != 0 && filled[k]) count_failed(1, pages[k], e);
  }
  std::lock_guard guard(lock_);
  for (std::size_t k = 0; k < n; ++k) {
    auto it = std::lower_bound(pending_.begin(), pending_.end(), pages[k]);
    std::size_t i = static_cast<std::size_t>(it - pending_.begin());
    if (!loaded_[i]) {
      loaded_[i] = true;
      --progress_.pending;
    }
  }
  if (progress_.pending == 0) done_.notify_all();
}

void missing_loader::count_failed(std::size_t count, std::uintptr_t page, int error) noexcept {
  std::lock_guard guard(lock_);
  if (progress_.failed == 0) {
    progress_.first_failed = page;
    progress_.first_error = error;
  }
  progress_.failed += count;
}

int missing_loader::install(std::uintptr_t page, const void* bytes) noexcept {
  uffdio_copy copy{};
  copy.dst = page;
  copy.src = reinterpret_cast<std::uint64_t>(bytes);
  copy.len = kOsPageSize;
  copy.mode = UFFDIO_COPY_MODE_WP;
  int err;
  do {
    copy.copy = 0;
    err = ::ioctl(fd_, UFFDIO_COPY, &copy) == 0 ? 0 : errno;
  } while (err == EAGAIN || err == EINTR);  // the mapping changed meanwhile
  if (err == 0) return 0;
  uffdio_range range{page, kOsPageSize};
  if (err != EEXIST) {
    // The page stays missing: a toucher woken now would fault again for
    // ever. Zeros, which take no copy, resolve it (and wake it).
    uffdio_zeropage zero{};
    zero.range = range;
    int zerr;
    do {
      zero.zeropage = 0;
      zerr = ::ioctl(fd_, UFFDIO_ZEROPAGE, &zero) == 0 ? 0 : errno;
    } while (zerr == EAGAIN || zerr == EINTR);
    if (zerr == 0) return err;
  }
  // EEXIST: the page is there already (a fault raised before it was
  // installed): wake whoever still waits on it.
  (void)::ioctl(fd_, UFFDIO_WAKE, &range);
  return err == EEXIST ? 0 : err;
}

}  // namespace larder::port
