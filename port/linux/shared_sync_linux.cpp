#include "port/shared_sync.hpp"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>

namespace larder::port {

static_assert(sizeof(pthread_mutex_t) <= sizeof(robust_lock::storage));

namespace {

pthread_mutex_t* mutex_of(robust_lock* lock) { return reinterpret_cast<pthread_mutex_t*>(lock->storage); }

int finish(int err, bool* owner_died) {
  *owner_died = err == EOWNERDEAD;
  return err == EOWNERDEAD ? 0 : err;
}

// Field 22 of /proc/<pid>/stat; the command name (field 2) may hold
// spaces and parentheses, so fields are counted after its last ')'.
// State 'Z' or 'X' (a zombie or dead task) reads as gone: 0, and so does
// a process that has begun to exit (PF_EXITING in field 9): the kernel
// sets it before it releases the robust locks the process held, so whoever
// is handed such a lock already sees its holder gone.
std::uint64_t start_ticks_of(int pid) {
  char path[40];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char text[1024];
  ssize_t n = ::read(fd, text, sizeof text - 1);
  ::close(fd);
  if (n <= 0) return 0;
  text[n] = '\0';
  const char* p = std::strrchr(text, ')');
  if (p == nullptr || p[1] != ' ') return 0;
  p += 2;  // field 3, the state
  if (*p == 'Z' || *p == 'X') return 0;
  constexpr unsigned long kExiting = 0x4;  // PF_EXITING
  for (int field = 3; field < 22; ++field) {
    p = std::strchr(p, ' ');
    if (p == nullptr) return 0;
    ++p;
    if (field + 1 == 9 && (std::strtoul(p, nullptr, 10) & kExiting) != 0) return 0;
  }
  return std::strtoull(p, nullptr, 10);
}

}  // namespace

int robust_lock_init(robust_lock* lock) {
  std::memset(lock->storage, 0, sizeof lock->storage);
  pthread_mutexattr_t attributes;
  if (int err = pthread_mutexattr_init(&attributes)) return err;
  int err = pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED);
  if (err == 0) err = pthread_mutexattr_setrobust(&attributes, PTHREAD_MUTEX_ROBUST);
  if (err == 0) err = pthread_mutex_init(mutex_of(lock), &attributes);
  pthread_mutexattr_destroy(&attributes);
  return err;
}

std::uint64_t robust_lock_layout() { return sizeof(pthread_mutex_t); }

std::uint64_t c_library_version() { return (std::uint64_t{__GLIBC__} << 16) | __GLIBC_MINOR__; }

int robust_lock_acquire(robust_lock* lock, bool* owner_died) {
  return finish(pthread_mutex_lock(mutex_of(lock)), owner_died);
}

int robust_lock_try_acquire(robust_lock* lock, bool* owner_died) {
  return finish(pthread_mutex_trylock(mutex_of(lock)), owner_died);
}

void robust_lock_mark_consistent(robust_lock* lock) { pthread_mutex_consistent(mutex_of(lock)); }

void robust_lock_release(robust_lock* lock) { pthread_mutex_unlock(mutex_of(lock)); }

void shareable_mutex::lock() noexcept {
  if (shared_ == nullptr) {
    local_.lock();
    return;
  }
  bool died = false;
  if (int err = robust_lock_acquire(shared_, &died)) {
    char message[160];
    int n = std::snprintf(message, sizeof message, "larder: a lock shared between processes cannot be taken: %s\n",
                          std::strerror(err));
    (void)!::write(2, message, static_cast<std::size_t>(n));
    std::abort();
  }
  if (died) {
    if (on_owner_died_ != nullptr) on_owner_died_(context_);
    robust_lock_mark_consistent(shared_);
  }
}

void shareable_mutex::unlock() noexcept {
  if (shared_ == nullptr) {
    local_.unlock();
  } else {
    robust_lock_release(shared_);
  }
}

int futex_wait(const std::atomic<std::uint32_t>* word, std::uint32_t expected, std::int64_t timeout_ns) {
  struct timespec timeout;
  struct timespec* limit = nullptr;
  if (timeout_ns >= 0) {
    timeout.tv_sec = static_cast<time_t>(timeout_ns / 1'000'000'000);
    timeout.tv_nsec = static_cast<long>(timeout_ns % 1'000'000'000);
    limit = &timeout;
  }
  // Not FUTEX_PRIVATE: waiters and wakers may be different processes.
  long r = syscall(SYS_futex, reinterpret_cast<const std::uint32_t*>(word), FUTEX_WAIT, expected, limit, nullptr, 0);
  if (r == 0 || errno == EAGAIN) return 0;
  return errno;
}

void futex_wake_all(const std::atomic<std::uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<const std::uint32_t*>(word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

process_identity self_identity() { return identity_of(static_cast<int>(getpid())); }

process_identity identity_of(int pid) { return {pid, 0, start_ticks_of(pid)}; }

bool identity_alive(const process_identity& who) {
  if (who.pid <= 0) return false;
  std::uint64_t ticks = start_ticks_of(who.pid);
  return ticks != 0 && ticks == who.start_ticks;
}

}  // namespace larder::port
