// Synchronisation between processes that map the same memory (a shm or
// file heap opened by several writers): a lock that tells its next taker
// when its holder died, futex waits and wakes on a shared word, and who a
// process is (its id and start time, since ids are reused).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>

namespace larder::port {

// Lives in the shared mapping. Its bytes mean nothing once every process
// that used it is gone (after a restart a file heap holds a stale one):
// the first process to attach initialises it again.
struct alignas(64) robust_lock {
  unsigned char storage[64];
};

// Makes `lock` a fresh, unheld process-shared robust lock. 0 or an errno value.
int robust_lock_init(robust_lock* lock);
// What two builds must agree on to share a robust_lock: the size of the
// C library's mutex and the library's version.
std::uint64_t robust_lock_layout();
std::uint64_t c_library_version();
// Takes the lock, waiting for it. *owner_died is set when the previous
// holder died holding it: the caller now holds it and must repair what
// that holder left half done, then call robust_lock_mark_consistent before
// releasing (otherwise the lock becomes unusable: ENOTRECOVERABLE from then
// on). 0 or an errno value.
int robust_lock_acquire(robust_lock* lock, bool* owner_died);
// As acquire, but EBUSY at once when another holds it.
int robust_lock_try_acquire(robust_lock* lock, bool* owner_died);
void robust_lock_mark_consistent(robust_lock* lock);
void robust_lock_release(robust_lock* lock);

// A lock over state that the threads of one process share or, once bound
// to a robust_lock in shared memory, that every process mapping it shares
// (a heap opened by several writers). BasicLockable, so std::lock_guard
// takes it. When a holder in another process died, the next taker calls
// `on_owner_died(context)` holding it, to repair what was left half done,
// before the lock is marked consistent. A lock that cannot be taken at all
// (the shared bytes are not a lock) ends the process with a message: no
// caller could go on safely.
class shareable_mutex {
 public:
  void bind(robust_lock* shared, void (*on_owner_died)(void*), void* context) noexcept {
    shared_ = shared;
    on_owner_died_ = on_owner_died;
    context_ = context;
  }
  void unbind() noexcept { shared_ = nullptr; }
  bool bound() const noexcept { return shared_ != nullptr; }
  void lock() noexcept;
  void unlock() noexcept;

 private:
  std::mutex local_;
  robust_lock* shared_ = nullptr;
  void (*on_owner_died_)(void*) = nullptr;
  void* context_ = nullptr;
};

// Waits while *word == expected, at most timeout_ns (< 0: no limit), or
// until a wake on the word. Returns 0 when woken or the word differed,
// ETIMEDOUT, or EINTR. The word may be in memory shared between processes.
int futex_wait(const std::atomic<std::uint32_t>* word, std::uint32_t expected, std::int64_t timeout_ns);
// Wakes every waiter on the word, in any process.
void futex_wake_all(const std::atomic<std::uint32_t>* word);

// Who a process is: its id and its start time (clock ticks after boot,
// /proc/<pid>/stat), which together never name two processes, since the
// kernel reuses ids.
struct process_identity {
  std::int32_t pid;
  std::uint32_t unused;
  std::uint64_t start_ticks;
};
process_identity self_identity();
// The identity of process `pid`; start_ticks is 0 when it does not run.
process_identity identity_of(int pid);
// Whether the process `who` names still runs (one that has begun to exit,
// or a zombie, counts as gone).
bool identity_alive(const process_identity& who);

}  // namespace larder::port
