// The mprotect backend: tracked pages are PROT_READ; the first write to one
// faults, the handler marks it written, runs the first-write callback and
// makes it writable; collect re-protects what was written.
//
// Collect and the handler exclude each other (a flag plus a count of
// handlers inside): a handler that saw the page written-and-unprotected from
// the ending epoch must not unprotect it after collect re-protected it, or
// the next write would be missed. Handlers that arrive during a collect wait
// for it; the collecting thread's own faults do not.
//
// Written bits live in 1 GiB chunks found through a flat table over the
// 47-bit address space, so the handler finds a page's bit in O(1) without
// locks, and any number of ranges can be tracked.
//
// The tracker, its table and its list of chunks are mapped from the OS
// (os_mapped.hpp): the handler writes them.
#include "port/linux/os_mapped.hpp"
#include "port/linux/tracker_backends.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <mutex>
#include <new>

namespace larder::port {
namespace {

constexpr std::size_t kChunkShift = 30;
constexpr std::size_t kPagesPerChunk = (std::size_t{1} << kChunkShift) / kOsPageSize;
constexpr std::size_t kWordsPerChunk = kPagesPerChunk / 64;
constexpr std::size_t kChunks = std::size_t{1} << (47 - kChunkShift);
constexpr std::size_t kFallbackBlock = std::size_t{2} << 20;
constexpr std::size_t kRunsForWholeProtect = 32;

struct chunk {
  std::uint64_t tracked[kWordsPerChunk];
  std::uint64_t written[kWordsPerChunk];
};

bool test_bit(const std::uint64_t* words, std::size_t i) {
  return (__atomic_load_n(&words[i >> 6], __ATOMIC_ACQUIRE) >> (i & 63)) & 1;
}
bool set_bit(std::uint64_t* words, std::size_t i) {
  std::uint64_t mask = std::uint64_t{1} << (i & 63);
  return (__atomic_fetch_or(&words[i >> 6], mask, __ATOMIC_ACQ_REL) & mask) == 0;
}
void clear_bit(std::uint64_t* words, std::size_t i) {
  __atomic_fetch_and(&words[i >> 6], ~(std::uint64_t{1} << (i & 63)), __ATOMIC_ACQ_REL);
}

class mprotect_tracker final : public write_tracker, public fault_client, public os_mapped {
 public:
  mprotect_tracker() = default;
  ~mprotect_tracker() override {
    untrack_all();
    remove_fault_client(this);
    if (table_ != nullptr) ::munmap(table_, kChunks * sizeof(chunk*));
    if (chunks_ != nullptr) ::munmap(chunks_, kChunks * sizeof(std::uintptr_t));
  }

  int init() {
    table_ = map_zeroed<std::atomic<chunk*>>(kChunks * sizeof(chunk*));
    // Room for every chunk index; only the pages used are ever touched.
    chunks_ = map_zeroed<std::uintptr_t>(kChunks * sizeof(std::uintptr_t));
    if (table_ == nullptr || chunks_ == nullptr) return errno;
    return add_fault_client(this);
  }

  tracker_kind kind() const noexcept override { return tracker_kind::mprotect; }
  bool synchronous() const noexcept override { return true; }

  void set_first_write(first_write_fn fn, void* context) noexcept override {
    std::lock_guard guard(lock_);
    exclusive_begin();
    hook_context_ = context;
    hook_ = fn;
    exclusive_end();
  }

  int track(std::uintptr_t start, std::size_t size, std::uint32_t) override {
    std::lock_guard guard(lock_);
    std::uintptr_t end = start + size;
    if (end > (std::uintptr_t{1} << 47) || (start | size) & (kOsPageSize - 1)) return EINVAL;
    for (std::uintptr_t c = start >> kChunkShift; c <= (end - 1) >> kChunkShift; ++c) {
      if (table_[c].load(std::memory_order_relaxed) != nullptr) continue;
      chunk* fresh = map_zeroed<chunk>(sizeof(chunk));
      if (fresh == nullptr) return errno;
      table_[c].store(fresh, std::memory_order_release);
      std::uintptr_t* at = std::upper_bound(chunks_, chunks_ + chunk_count_, c);
      std::copy_backward(at, chunks_ + chunk_count_, chunks_ + chunk_count_ + 1);
      *at = c;
      ++chunk_count_;
    }
    exclusive_begin();
    // Pages already tracked keep their state: re-protecting one would lose
    // a write made in this epoch.
    int result = 0;
    for_each_page_run(start, end, [&](std::uintptr_t lo, std::uintptr_t hi, bool tracked) {
      if (tracked || result != 0) return;
      if (::mprotect(reinterpret_cast<void*>(lo), hi - lo, PROT_READ) != 0) {
        result = errno;
        return;
      }
      for (std::uintptr_t p = lo; p < hi; p += kOsPageSize) set_bit(chunk_of(p)->tracked, page_index(p));
      tracked_bytes_ += hi - lo;
    });
    exclusive_end();
    return result;
  }

  void untrack_all() noexcept override {
    std::lock_guard guard(lock_);
    exclusive_begin();
    for (std::uintptr_t c : chunk_list()) {
      chunk* ch = table_[c].load(std::memory_order_relaxed);
      std::uintptr_t base = c << kChunkShift;
      for_each_set_run(ch->tracked, base, [](std::uintptr_t lo, std::uintptr_t hi) {
        ::mprotect(reinterpret_cast<void*>(lo), hi - lo, PROT_READ | PROT_WRITE);
      });
      table_[c].store(nullptr, std::memory_order_release);
      ::munmap(ch, sizeof(chunk));
    }
    chunk_count_ = 0;
    tracked_bytes_ = 0;
    report_all_ = false;
    exclusive_end();
  }

  int collect(std::vector<written_run>* out) override {
    std::lock_guard guard(lock_);
    exclusive_begin();
    int result = 0;
    for (std::uintptr_t c : chunk_list()) {
      chunk* ch = table_[c].load(std::memory_order_relaxed);
      std::uintptr_t base = c << kChunkShift;
      const std::uint64_t* source = report_all_ ? ch->tracked : ch->written;
      // Re-protecting many scattered runs one call each costs far more than
      // one call over the whole tracked part of the chunk, which also
      // merges the split mappings back.
      std::size_t runs = 0;
      for_each_set_run(source, base, [&](std::uintptr_t, std::uintptr_t) { ++runs; });
      bool whole = runs > kRunsForWholeProtect;
      if (whole) {
        for_each_set_run(ch->tracked, base, [&](std::uintptr_t lo, std::uintptr_t hi) {
          if (::mprotect(reinterpret_cast<void*>(lo), hi - lo, PROT_READ) != 0) whole = false;
        });
      }
      for_each_set_run(source, base, [&](std::uintptr_t lo, std::uintptr_t hi) {
        append(out, lo, hi);
        if (!whole && ::mprotect(reinterpret_cast<void*>(lo), hi - lo, PROT_READ) != 0) {
          // Keep it marked, so it is reported again (a false positive next
          // time, never a miss), and writable: a marked page that stayed
          // protected (a partial failure) would fault forever.
          ::mprotect(reinterpret_cast<void*>(lo), hi - lo, PROT_READ | PROT_WRITE);
          for (std::uintptr_t p = lo; p < hi; p += kOsPageSize) set_bit(ch->written, page_index(p));
          result = result != 0 ? result : errno;
          return;
        }
        for (std::uintptr_t p = lo; p < hi; p += kOsPageSize) clear_bit(ch->written, page_index(p));
      });
    }
    report_all_ = false;
    exclusive_end();
    return result == ENOMEM ? 0 : result;
  }

  std::size_t tracked_bytes() const noexcept override {
    std::lock_guard guard(lock_);
    return tracked_bytes_;
  }

  // ---- fault_client ------------------------------------------------------
  bool on_fault(const siginfo_t* info, ucontext_t*) noexcept override {
    if (info->si_code != SEGV_ACCERR) return false;
    auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
    if (addr >= (std::uintptr_t{1} << 47)) return false;
    handler_enter();
    bool handled = false;
    std::uintptr_t page = addr & ~(kOsPageSize - 1);
    chunk* ch = chunk_of(page);
    if (ch != nullptr && test_bit(ch->tracked, page_index(page))) {
      // Only the thread that sets the bit unprotects; another that faults
      // meanwhile retries until it has (after the callback ran).
      handled = !set_bit(ch->written, page_index(page)) || mark_and_unprotect(ch, page);
    }
    handler_leave();
    return handled;
  }

  bool prepare_write(std::uintptr_t lo, std::uintptr_t hi) noexcept override {
    if (hi > (std::uintptr_t{1} << 47)) return false;
    handler_enter();
    bool touched = false;
    for (std::uintptr_t page = lo; page < hi; page += kOsPageSize) {
      chunk* ch = chunk_of(page);
      if (ch == nullptr || !test_bit(ch->tracked, page_index(page))) continue;
      touched = true;
      if (set_bit(ch->written, page_index(page))) mark_and_unprotect(ch, page);
    }
    handler_leave();
    return touched;
  }

  void fork_child() noexcept override {
    new (&lock_) std::mutex;  // a parent thread may have held it
    // A thread of the parent may have been between marking a page and
    // unprotecting it; that thread is gone. Re-protect everything and let
    // the child's first collect report every tracked page.
    collecting_.store(false, std::memory_order_relaxed);
    inside_.store(0, std::memory_order_relaxed);
    for (std::uintptr_t c : chunk_list()) {
      chunk* ch = table_[c].load(std::memory_order_relaxed);
      for_each_set_run(ch->tracked, c << kChunkShift, [](std::uintptr_t lo, std::uintptr_t hi) {
        ::mprotect(reinterpret_cast<void*>(lo), hi - lo, PROT_READ);
      });
      for (auto& w : ch->written) w = 0;
    }
    report_all_ = true;
  }

 private:
  chunk* chunk_of(std::uintptr_t page) const noexcept {
    return table_[page >> kChunkShift].load(std::memory_order_acquire);
  }
  static std::size_t page_index(std::uintptr_t page) noexcept { return (page >> 12) & (kPagesPerChunk - 1); }

  struct index_range {
    const std::uintptr_t* first;
    const std::uintptr_t* last;
    const std::uintptr_t* begin() const noexcept { return first; }
    const std::uintptr_t* end() const noexcept { return last; }
  };
  index_range chunk_list() const noexcept { return {chunks_, chunks_ + chunk_count_}; }

  // Runs the callback, then makes the page writable. When the kernel is out
  // of mappings (each unprotected page can split one), unprotects the
  // surrounding 2 MiB instead, marking all of it written.
  bool mark_and_unprotect(chunk* ch, std::uintptr_t page) noexcept {
    if (hook_ != nullptr) hook_(hook_context_, page);
    if (::mprotect(reinterpret_cast<void*>(page), kOsPageSize, PROT_READ | PROT_WRITE) == 0) return true;
    std::uintptr_t lo = page & ~(kFallbackBlock - 1);
    for (std::uintptr_t p = lo; p < lo + kFallbackBlock; p += kOsPageSize) {
      chunk* c = chunk_of(p);
      if (c == nullptr || !test_bit(c->tracked, page_index(p))) continue;
      if (set_bit(c->written, page_index(p)) && hook_ != nullptr) hook_(hook_context_, p);
      ::mprotect(reinterpret_cast<void*>(p), kOsPageSize, PROT_READ | PROT_WRITE);
    }
    if (::mprotect(reinterpret_cast<void*>(lo), kFallbackBlock, PROT_READ | PROT_WRITE) == 0) return true;
    clear_bit(ch->written, page_index(page));
    const char message[] = "larder: cannot unprotect a written page (mprotect failed)\n";
    write_stderr(message, sizeof(message) - 1);
    return false;
  }

  void handler_enter() noexcept {
    for (;;) {
      if (collecting_.load(std::memory_order_acquire) && collector_ != current_tid()) {
        ::sched_yield();
        continue;
      }
      inside_.fetch_add(1, std::memory_order_seq_cst);
      if (collecting_.load(std::memory_order_seq_cst) && collector_ != current_tid()) {
        inside_.fetch_sub(1, std::memory_order_seq_cst);
        continue;
      }
      return;
    }
  }
  void handler_leave() noexcept { inside_.fetch_sub(1, std::memory_order_release); }

  void exclusive_begin() noexcept {
    collector_ = current_tid();
    collecting_.store(true, std::memory_order_seq_cst);
    while (inside_.load(std::memory_order_seq_cst) != 0) ::sched_yield();
  }
  void exclusive_end() noexcept {
    collecting_.store(false, std::memory_order_release);
  }

  // fn(lo, hi, tracked) over maximal runs of pages of equal tracked state.
  template <class Fn>
  void for_each_page_run(std::uintptr_t start, std::uintptr_t end, Fn&& fn) {
    std::uintptr_t run = start;
    bool state = test_bit(chunk_of(start)->tracked, page_index(start));
    for (std::uintptr_t p = start + kOsPageSize; p <= end; p += kOsPageSize) {
      bool s = p < end && test_bit(chunk_of(p)->tracked, page_index(p));
      if (p == end || s != state) {
        fn(run, p, state);
        run = p;
        state = s;
      }
    }
  }

  // fn(lo, hi) over runs of set bits in a chunk's bitmap.
  template <class Fn>
  static void for_each_set_run(const std::uint64_t* words, std::uintptr_t base, Fn&& fn) {
    std::size_t run_start = 0;
    bool in_run = false;
    for (std::size_t w = 0; w < kWordsPerChunk; ++w) {
      std::uint64_t bits = __atomic_load_n(&words[w], __ATOMIC_ACQUIRE);
      if (!in_run && bits == 0) continue;
      if (in_run && bits == ~std::uint64_t{0}) continue;
      for (std::size_t b = 0; b < 64; ++b) {
        bool set = (bits >> b) & 1;
        std::size_t i = w * 64 + b;
        if (set && !in_run) {
          run_start = i;
          in_run = true;
        } else if (!set && in_run) {
          fn(base + run_start * kOsPageSize, base + i * kOsPageSize);
          in_run = false;
        }
      }
    }
    if (in_run) fn(base + run_start * kOsPageSize, base + kPagesPerChunk * kOsPageSize);
  }

  static void append(std::vector<written_run>* out, std::uintptr_t lo, std::uintptr_t hi) {
    if (!out->empty() && out->back().start + out->back().pages * kOsPageSize == lo)
      out->back().pages += (hi - lo) / kOsPageSize;
    else
      out->push_back({lo, (hi - lo) / kOsPageSize});
  }

  mutable std::mutex lock_;
  std::atomic<chunk*>* table_ = nullptr;
  std::uintptr_t* chunks_ = nullptr;  // indices with a chunk, ascending
  std::size_t chunk_count_ = 0;
  std::size_t tracked_bytes_ = 0;
  bool report_all_ = false;
  std::atomic<bool> collecting_{false};
  std::atomic<int> inside_{0};
  std::atomic<int> collector_{0};
  first_write_fn hook_ = nullptr;
  void* hook_context_ = nullptr;
};

}  // namespace

namespace backends {

tracker_probe probe_mprotect() noexcept { return {tracker_kind::mprotect, true, ""}; }

int make_mprotect(std::unique_ptr<write_tracker>* out) {
  auto tracker = std::make_unique<mprotect_tracker>();
  if (int e = tracker->init()) return e;
  *out = std::move(tracker);
  return 0;
}

}  // namespace backends
}  // namespace larder::port
