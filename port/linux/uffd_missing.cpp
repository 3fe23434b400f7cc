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

// A checkout's fault loads the pages after it too: they are likely
// touched next.
constexpr std::size_t kCheckoutFaultAround = 8;
// An evicted set's second fault this soon after its first loads the rest.
constexpr auto kPrefetchWindow = std::chrono::milliseconds(100);

alignas(4096) const char kZeroPage[kOsPageSize] = {};

std::size_t next_unloaded(const std::vector<bool>& loaded, std::size_t from) {
  while (from < loaded.size() && loaded[from]) ++from;
  return from;
}

}  // namespace

int missing_loader::start(std::vector<std::uintptr_t> pages, page_source* source) {
  (void)finish();
  std::uint64_t prefetch = 1;
  const char* text = nullptr;
  if (!read_option_now(option::lazy_prefetch, &prefetch, &text)) prefetch = 1;
  page_set set;
  set.loaded.assign(pages.size(), false);
  set.pending = pages.size();
  set.pages = std::move(pages);
  set.source = source;
  set.checkout = true;
  {
    std::lock_guard guard(lock_);
    prefetch_ = prefetch != 0;
    finishing_ = false;
    progress_ = {};
    progress_.pending = set.pending;
  }
  int err = add(std::move(set));
  if (err != 0) {
    std::lock_guard guard(lock_);
    progress_.pending = 0;
  }
  return err;
}

int missing_loader::add_on_touch(std::vector<std::uintptr_t> pages, page_source* source, bool prefetch_rest) {
  page_set set;
  set.loaded.assign(pages.size(), false);
  set.pending = pages.size();
  set.pages = std::move(pages);
  set.source = source;
  set.prefetch_rest = prefetch_rest;
  return add(std::move(set));
}

int missing_loader::add(page_set set) {
  if (set.pending == 0) return 0;
  try {
    std::lock_guard guard(lock_);
    sets_.push_back(std::move(set));
    stopping_ = false;
  } catch (...) {
    return ENOMEM;
  }
  if (!thread_.joinable()) {
    try {
      if (!buffer_) buffer_ = std::make_unique<batch_buffer>();
      thread_ = std::thread([this] { run(); });
    } catch (...) {
      std::lock_guard guard(lock_);
      sets_.clear();
      return ENOMEM;
    }
  }
  return 0;
}

bool missing_loader::checkout_pending() const noexcept {
  for (const page_set& s : sets_)
    if (s.checkout && s.pending != 0) return true;
  return false;
}

lazy_progress missing_loader::finish() noexcept {
  std::unique_lock guard(lock_);
  finishing_ = true;
  done_.wait(guard, [&] { return !checkout_pending() || !thread_.joinable(); });
  return progress_;
}

lazy_progress missing_loader::state() const noexcept {
  std::lock_guard guard(lock_);
  return progress_;
}

void missing_loader::finish_all() noexcept {
  std::unique_lock guard(lock_);
  finishing_all_ = true;
  done_.wait(guard, [&] { return sets_.empty() || !thread_.joinable(); });
  finishing_all_ = false;
}

void missing_loader::abandon_on_touch() noexcept {
  std::unique_lock guard(lock_);
  // Marked loaded rather than removed: the loader's thread may be loading
  // from a set now, and retires sets itself once nothing is pending.
  for (page_set& s : sets_) {
    if (s.checkout) continue;
    s.loaded.assign(s.loaded.size(), true);
    s.pending = 0;
  }
  done_.wait(guard, [&] {
    return !thread_.joinable() ||
           std::none_of(sets_.begin(), sets_.end(), [](const page_set& s) { return !s.checkout; });
  });
}

void missing_loader::stop() noexcept {
  finish_all();
  {
    std::lock_guard guard(lock_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

missing_loader::page_set* missing_loader::set_to_load() noexcept {
  for (page_set& s : sets_)
    if (s.pending != 0 && (finishing_all_ || (s.checkout && (prefetch_ || finishing_)))) return &s;
  return nullptr;
}

void missing_loader::retire_done() noexcept {
  bool any = false;
  for (auto it = sets_.begin(); it != sets_.end();) {
    if (it->pending == 0) {
      it = sets_.erase(it);
      any = true;
    } else {
      ++it;
    }
  }
  if (any) done_.notify_all();
}

void missing_loader::run() noexcept {
  for (;;) {
    page_set* work;
    {
      std::lock_guard guard(lock_);
      if (stopping_) return;
      work = set_to_load();
    }
    // Faults first; while pages are to be loaded, a batch of them between polls.
    pollfd p{fd_, POLLIN, 0};
    int ready = ::poll(&p, 1, work != nullptr ? 0 : 50);
    if (ready > 0) {
      uffd_msg msg;
      while (::read(fd_, &msg, sizeof msg) == static_cast<ssize_t>(sizeof msg)) {
        if (msg.event == UFFD_EVENT_PAGEFAULT)
          serve_fault(static_cast<std::uintptr_t>(msg.arg.pagefault.address) & ~std::uintptr_t{kOsPageSize - 1});
      }
    } else if (work != nullptr) {
      std::size_t first;
      {
        std::lock_guard guard(lock_);
        work->cursor = first = next_unloaded(work->loaded, work->cursor);
      }
      load(work, first, kBatchPages, false);
    }
    std::lock_guard guard(lock_);
    retire_done();
  }
}

void missing_loader::serve_fault(std::uintptr_t page) noexcept {
  page_set* set = nullptr;
  std::size_t index = 0;
  std::size_t count = 1;
  bool rest = false;
  {
    std::lock_guard guard(lock_);
    for (page_set& s : sets_) {
      auto it = std::lower_bound(s.pages.begin(), s.pages.end(), page);
      if (it == s.pages.end() || *it != page) continue;
      index = static_cast<std::size_t>(it - s.pages.begin());
      if (s.loaded[index]) continue;  // a later set may hold it again
      set = &s;
      break;
    }
    if (set != nullptr && set->checkout) {
      count = kCheckoutFaultAround;
    } else if (set != nullptr && set->prefetch_rest) {
      auto now = std::chrono::steady_clock::now();
      rest = set->last_fault.time_since_epoch().count() != 0 && now - set->last_fault < kPrefetchWindow &&
             set->source->may_prefetch(set->pending - 1);
      set->last_fault = now;
    }
  }
  if (set == nullptr) {
    // Memory given back since, or loaded meanwhile.
    if (int err = install(page, kZeroPage)) count_failed(nullptr, 1, page, err);
    return;
  }
  load(set, index, count, true);  // the faulting thread waits for these only
  while (rest) {
    std::size_t first;
    {
      std::lock_guard guard(lock_);
      set->cursor = first = next_unloaded(set->loaded, set->cursor);
      rest = set->pending != 0;
    }
    if (rest) load(set, first, kBatchPages, false);
  }
}

void missing_loader::load(page_set* set, std::size_t first, std::size_t count, bool touched) noexcept {
  std::uintptr_t pages[kBatchPages];
  std::size_t n = 0;
  {
    std::lock_guard guard(lock_);
    for (std::size_t i = first; i < set->pages.size() && n < std::min(count, kBatchPages); ++i)
      if (!set->loaded[i]) pages[n++] = set->pages[i];
  }
  if (n == 0) return;
  page_source* source = set->source;
  char* out = buffer_->bytes;
  int err = source->fill(pages, n, out);
  bool filled[kBatchPages];
  std::fill(filled, filled + n, true);
  if (err != 0) {
    // Which pages failed: one by one. A page that fails is installed as
    // zeros and counted, so that touching it neither hangs nor signals.
    // Counted before it is installed: whoever reads its zeros can already
    // learn why.
    for (std::size_t k = 0; k < n; ++k) {
      char* bytes = out + k * kOsPageSize;
      if (int e = source->fill(&pages[k], 1, bytes)) {
        std::memset(bytes, 0, kOsPageSize);
        filled[k] = false;
        count_failed(set, 1, pages[k], e);
      }
    }
  }
  for (std::size_t k = 0; k < n; ++k) {
    int e = install(pages[k], out + k * kOsPageSize);
    if (e != 0 && filled[k]) count_failed(set, 1, pages[k], e);
  }
  source->installed(pages, n, touched && pages[0] == set->pages[first]);
  std::lock_guard guard(lock_);
  for (std::size_t k = 0; k < n; ++k) {
    auto it = std::lower_bound(set->pages.begin(), set->pages.end(), pages[k]);
    std::size_t i = static_cast<std::size_t>(it - set->pages.begin());
    if (!set->loaded[i]) {
      set->loaded[i] = true;
      --set->pending;
      if (set->checkout) --progress_.pending;
    }
  }
}

void missing_loader::count_failed(page_set* set, std::size_t count, std::uintptr_t page, int error) noexcept {
  if (set != nullptr && !set->checkout) {
    set->source->lost(page, error);
    return;
  }
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
