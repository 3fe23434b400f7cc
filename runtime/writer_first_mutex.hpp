// A reader-writer lock where a waiting writer goes first: heap_impl::
// tx_lock, which every transaction takes shared and a checkpoint's cut, a
// checkout or a diff take exclusive. glibc's rwlock lets new readers in
// while a writer waits, so threads that run transaction after transaction
// would keep a checkpoint out for ever. Nothing here allocates.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>

namespace larder {

class writer_first_mutex {
 public:
  void lock() {
    writers_waiting_.fetch_add(1, std::memory_order_acq_rel);
    lock_.lock();
    {
      std::lock_guard guard(wait_lock_);
      writers_waiting_.fetch_sub(1, std::memory_order_acq_rel);
    }
    writers_gone_.notify_all();
  }
  bool try_lock() { return lock_.try_lock(); }
  void unlock() { lock_.unlock(); }

  // Waits first while a writer waits (one that comes after this check
  // waits for this reader).
  void lock_shared() {
    if (writers_waiting_.load(std::memory_order_acquire) != 0) {
      std::unique_lock guard(wait_lock_);
      writers_gone_.wait(guard, [&] { return writers_waiting_.load(std::memory_order_acquire) == 0; });
    }
    lock_.lock_shared();
  }
  void unlock_shared() { lock_.unlock_shared(); }

 private:
  std::shared_mutex lock_;
  std::atomic<int> writers_waiting_{0};
  std::mutex wait_lock_;
  std::condition_variable writers_gone_;
};

}  // namespace larder
