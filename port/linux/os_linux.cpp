// Linux implementation of port/os.hpp.
#include "port/os.hpp"

#include "port/directory.hpp"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <vector>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000  // Linux 4.17
#endif

extern char** environ;

namespace larder::port {

int map_fixed(std::uintptr_t addr, std::size_t size, int fd, bool writable, bool copy_on_write) {
  int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  void* want = reinterpret_cast<void*>(addr);
  if (fd >= 0 && writable && !copy_on_write) {
    // On a DAX file system, MAP_SYNC makes the file's metadata (blocks
    // allocated by a first store) durable before the store can be, so CPU
    // cache flushes alone make data durable. Elsewhere the kernel refuses
    // it and the mapping is an ordinary shared one.
    void* got = mmap(want, size, prot, MAP_FIXED_NOREPLACE | MAP_SHARED_VALIDATE | MAP_SYNC, fd, 0);
    if (got == want) return 0;
    if (got != MAP_FAILED) {
      munmap(got, size);
      return EEXIST;
    }
    if (errno != EOPNOTSUPP && errno != EINVAL) return errno;
  }
  int flags = MAP_FIXED_NOREPLACE | (fd < 0 ? MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE
                                            : (copy_on_write ? MAP_PRIVATE | MAP_NORESERVE : MAP_SHARED));
  void* got = mmap(want, size, prot, flags, fd, 0);
  if (got == MAP_FAILED) return errno;
  if (got != want) {  // kernels before 4.17 treat the flag as a hint
    munmap(got, size);
    return EEXIST;
  }
  return 0;
}

int map_aligned(std::size_t size, std::size_t alignment, void** out) {
  std::size_t padded = size + alignment;
  void* raw = mmap(nullptr, padded, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) return errno;
  auto start = reinterpret_cast<std::uintptr_t>(raw);
  std::uintptr_t aligned = (start + alignment - 1) & ~(alignment - 1);
  if (aligned > start) munmap(raw, aligned - start);
  std::size_t tail = (start + padded) - (aligned + size);
  if (tail > 0) munmap(reinterpret_cast<void*>(aligned + size), tail);
  *out = reinterpret_cast<void*>(aligned);
  return 0;
}

int unmap(void* addr, std::size_t size) { return munmap(addr, size) == 0 ? 0 : errno; }

int decommit(void* addr, std::size_t size, bool shared) {
  int advice = shared ? MADV_REMOVE : MADV_DONTNEED;
  if (madvise(addr, size, advice) == 0) return 0;
  // Some file systems cannot punch holes; the pages are then only dropped
  // from memory, which is still correct because free pages are never read.
  if (shared && madvise(addr, size, MADV_DONTNEED) == 0) return 0;
  return errno;
}

int decommit_pages(const std::uintptr_t* pages, std::size_t count, bool shared) {
  std::vector<iovec> runs;
  for (std::size_t i = 0; i < count;) {
    std::size_t j = i + 1;
    while (j < count && pages[j] == pages[j - 1] + kOsPageSize) ++j;
    runs.push_back({reinterpret_cast<void*>(pages[i]), (j - i) * kOsPageSize});
    i = j;
  }
  std::size_t done = 0;
  const int self = static_cast<int>(::syscall(SYS_pidfd_open, ::getpid(), 0));
  if (self >= 0) {
    const int advice = shared ? MADV_REMOVE : MADV_DONTNEED;
    while (done < runs.size()) {
      const std::size_t n = std::min<std::size_t>(runs.size() - done, IOV_MAX);
      long bytes = ::syscall(SYS_process_madvise, self, runs.data() + done, n, advice, 0u);
      if (bytes < 0) break;  // an older kernel, or a run it refused: the rest one by one
      // A short count stops at a run's end: the runs advised are skipped.
      for (; done < runs.size() && bytes >= static_cast<long>(runs[done].iov_len); ++done)
        bytes -= static_cast<long>(runs[done].iov_len);
      if (bytes != 0) break;
    }
    ::close(self);
  }
  int first = 0;
  for (; done < runs.size(); ++done) {
    int err = decommit(runs[done].iov_base, runs[done].iov_len, shared);
    if (first == 0) first = err;
  }
  return first;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif

int populate(void* addr, std::size_t size) { return madvise(addr, size, MADV_POPULATE_WRITE) == 0 ? 0 : errno; }

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4  // Linux 5.7
#endif

int move_memory(void* from, void* to, std::size_t size) {
  void* got = mremap(from, size, size, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, to);
  if (got == to) return 0;
  int err = errno;
  // MREMAP_FIXED unmaps `to` before it moves anything, so a failure past
  // that point (the kernel out of memory) leaves a hole in the caller's
  // reservation: map it again before another mapping can take it.
  mmap(to, size, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return err;
}

int sync_range(void* addr, std::size_t size) { return msync(addr, size, MS_SYNC) == 0 ? 0 : errno; }

namespace {
int open_flags(bool create, bool exclusive, bool writable) {
  int flags = (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC;
  if (create) flags |= O_CREAT;
  if (create && exclusive) flags |= O_EXCL;
  return flags;
}

// Tries to open an existing object first so `created` is exact even when
// create is allowed.
template <class Open>
int open_common(Open open_fn, bool create, bool exclusive, bool writable, int* fd, bool* created) {
  *created = false;
  for (;;) {
    if (!(create && exclusive)) {
      int f = open_fn(open_flags(false, false, writable));
      if (f >= 0) {
        *fd = f;
        return 0;
      }
      if (errno != ENOENT || !create) return errno;
    }
    int f = open_fn(open_flags(true, true, writable));
    if (f >= 0) {
      *fd = f;
      *created = true;
      return 0;
    }
    // Another process made it between the two opens: open theirs.
    if (errno != EEXIST || exclusive) return errno;
  }
}
}  // namespace

int open_file(const char* path, bool create, bool exclusive, bool writable, int* fd, bool* created) {
  return open_common([&](int flags) { return ::open(path, flags, 0600); }, create, exclusive, writable, fd,
                     created);
}

int open_shm(const char* name, bool create, bool exclusive, bool writable, int* fd, bool* created) {
  return open_common([&](int flags) { return ::shm_open(name, flags & ~O_CLOEXEC, 0600); }, create,
                     exclusive, writable, fd, created);
}

int remove_file(const char* path) { return ::unlink(path) == 0 ? 0 : errno; }

int rename_durably(const char* from, const char* to) {
  if (int err = rename_file(from, to, false)) return err;
  char directory[4096] = ".";
  if (const char* slash = std::strrchr(to, '/')) {
    std::size_t length = slash == to ? 1 : static_cast<std::size_t>(slash - to);
    if (length >= sizeof(directory)) return ENAMETOOLONG;
    std::memcpy(directory, to, length);
    directory[length] = '\0';
  }
  return sync_directory(directory);
}
int remove_shm(const char* name) { return ::shm_unlink(name) == 0 ? 0 : errno; }
int close_fd(int fd) { return ::close(fd) == 0 ? 0 : errno; }

int file_size(int fd, std::uint64_t* size) {
  struct stat st;
  if (fstat(fd, &st) != 0) return errno;
  *size = static_cast<std::uint64_t>(st.st_size);
  return 0;
}

namespace {

// fallocate(2) itself over the whole pages [offset, offset + length)
// touches: posix_fallocate would emulate it by writing. 0 or errno,
// EOPNOTSUPP or ENOSYS where the file system cannot.
int fallocate_pages(int fd, std::uint64_t offset, std::uint64_t length) {
  std::uint64_t end = (offset + length + kOsPageSize - 1) & ~std::uint64_t{kOsPageSize - 1};
  offset &= ~std::uint64_t{kOsPageSize - 1};
  while (fallocate(fd, 0, static_cast<off_t>(offset), static_cast<off_t>(end - offset)) != 0) {
    if (errno == EINTR) continue;
    return errno;
  }
  return 0;
}

bool cannot_fallocate(int err) { return err == EOPNOTSUPP || err == ENOSYS; }

}  // namespace

int reserve_file_range(int fd, std::uint64_t offset, std::uint64_t length) {
  // A store dirties its whole page, which then needs storage for all of it
  // (file system blocks may be smaller than a page).
  int err = fallocate_pages(fd, offset, length);
  return cannot_fallocate(err) ? 0 : err;
}

int allocate_file_range(int fd, std::uint64_t offset, std::uint64_t length) {
  int err = fallocate_pages(fd, offset, length);
  if (!cannot_fallocate(err)) return err;
  // Zeros written take storage on any file system; the sync makes one
  // that allocates only at write-back (NFS) say ENOSPC now.
  static const char zeros[64 << 10] = {};
  std::uint64_t at = offset & ~std::uint64_t{kOsPageSize - 1};
  const std::uint64_t end = (offset + length + kOsPageSize - 1) & ~std::uint64_t{kOsPageSize - 1};
  while (at < end) {
    ssize_t n = pwrite(fd, zeros, std::min<std::uint64_t>(sizeof zeros, end - at), static_cast<off_t>(at));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    at += static_cast<std::uint64_t>(n);
  }
  return fdatasync(fd) == 0 ? 0 : errno;
}

int hole_reads_take_storage(int fd, bool* out) {
  // From linux/magic.h: shmem and tmpfs, ramfs, hugetlbfs.
  constexpr unsigned long kTmpfsMagic = 0x01021994, kRamfsMagic = 0x858458f6, kHugetlbfsMagic = 0x958458f6;
  struct statfs fs;
  if (fstatfs(fd, &fs) != 0) return errno;
  auto type = static_cast<unsigned long>(fs.f_type);
  *out = type == kTmpfsMagic || type == kRamfsMagic || type == kHugetlbfsMagic;
  return 0;
}

int release_file_range(int fd, std::uint64_t offset, std::uint64_t length) {
  // Whole pages only: punching part of one would zero the rest of it.
  std::uint64_t start = (offset + kOsPageSize - 1) & ~std::uint64_t{kOsPageSize - 1};
  std::uint64_t end = (offset + length) & ~std::uint64_t{kOsPageSize - 1};
  if (end <= start) return 0;
  while (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(start),
                   static_cast<off_t>(end - start)) != 0) {
    if (errno == EINTR) continue;
    return errno == EOPNOTSUPP || errno == ENOSYS ? 0 : errno;
  }
  return 0;
}

int zero_file_range(int fd, std::uint64_t offset, std::uint64_t length) {
  std::uint64_t start = (offset + kOsPageSize - 1) & ~std::uint64_t{kOsPageSize - 1};
  const std::uint64_t end = (offset + length) & ~std::uint64_t{kOsPageSize - 1};
  if (end <= start) return 0;
  while (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(start),
                   static_cast<off_t>(end - start)) != 0) {
    if (errno == EINTR) continue;
    if (errno != EOPNOTSUPP && errno != ENOSYS) return errno;
    static const char zeros[64 * 1024] = {};
    for (; start < end; start += sizeof(zeros)) {
      const std::uint64_t n = end - start < sizeof(zeros) ? end - start : sizeof(zeros);
      if (int err = write_at(fd, zeros, static_cast<std::size_t>(n), start)) return err;
    }
    return 0;
  }
  return 0;
}

int grow_file(int fd, std::uint64_t size) {
  std::uint64_t current = 0;
  if (int err = file_size(fd, &current)) return err;
  if (current >= size) return 0;
  return ftruncate(fd, static_cast<off_t>(size)) == 0 ? 0 : errno;
}

int file_has_data(int fd, std::uint64_t offset, std::uint64_t length, bool* out) {
  off_t at = lseek(fd, static_cast<off_t>(offset), SEEK_DATA);
  if (at < 0) {
    if (errno == ENXIO) {  // no data at or after offset
      *out = false;
      return 0;
    }
    if (errno != EINVAL) return errno;
    *out = true;  // SEEK_DATA unknown here
    return 0;
  }
  *out = static_cast<std::uint64_t>(at) < offset + length;
  return 0;
}

int resident_pages(const void* addr, std::size_t size, unsigned char* out) {
  return mincore(const_cast<void*>(addr), size, out) == 0 ? 0 : errno;
}

int read_at(int fd, void* buffer, std::size_t length, std::uint64_t offset) {
  auto* out = static_cast<char*>(buffer);
  while (length > 0) {
    ssize_t n = pread(fd, out, length, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return ENODATA;
    out += n;
    length -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
  return 0;
}

int write_at(int fd, const void* buffer, std::size_t length, std::uint64_t offset) {
  const auto* in = static_cast<const char*>(buffer);
  while (length > 0) {
    ssize_t n = pwrite(fd, in, length, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    in += n;
    length -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
  return 0;
}

int sync_file(int fd) { return fdatasync(fd) == 0 ? 0 : errno; }

namespace {
// The writer lock: a write lock on the heap file's first byte.
struct flock writer_lock_range() {
  struct flock lock;
  std::memset(&lock, 0, sizeof(lock));
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  lock.l_start = 0;
  lock.l_len = 1;
  return lock;
}
}  // namespace

int lock_writer(int fd) {
  struct flock lock = writer_lock_range();
  if (fcntl(fd, F_OFD_SETLK, &lock) == 0) return 0;
  return (errno == EACCES || errno == EAGAIN) ? EAGAIN : errno;
}

int lock_writer_shared(int fd) {
  struct flock lock = writer_lock_range();
  lock.l_type = F_RDLCK;
  if (fcntl(fd, F_OFD_SETLK, &lock) == 0) return 0;
  return (errno == EACCES || errno == EAGAIN) ? EAGAIN : errno;
}

int lock_attach(int fd) {
  struct flock lock = writer_lock_range();
  lock.l_start = 1;
  for (;;) {
    if (fcntl(fd, F_OFD_SETLKW, &lock) == 0) return 0;
    if (errno != EINTR) return errno;
  }
}

int unlock_attach(int fd) {
  struct flock lock = writer_lock_range();
  lock.l_start = 1;
  lock.l_type = F_UNLCK;
  return fcntl(fd, F_OFD_SETLK, &lock) == 0 ? 0 : errno;
}

int writer_lock_holder(int fd, bool* read_lock, int* pid) {
  struct flock lock = writer_lock_range();
  // F_GETLK (not the OFD form) reports a process-associated lock's pid.
  if (fcntl(fd, F_GETLK, &lock) != 0) return errno;
  if (lock.l_type == F_UNLCK) return ENOENT;
  *read_lock = lock.l_type == F_RDLCK;
  *pid = lock.l_pid > 0 ? lock.l_pid : -1;
  return 0;
}

int for_each_directory_entry(const char* directory, const char* prefix, void (*fn)(const char* name, void* context),
                             void* context) {
  DIR* d = opendir(directory);
  if (d == nullptr) return errno;
  std::size_t length = std::strlen(prefix);
  while (struct dirent* e = readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    if (std::strncmp(e->d_name, prefix, length) == 0) fn(e->d_name, context);
  }
  closedir(d);
  return 0;
}

bool process_exists(int pid) { return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM); }

int at_fork(void (*prepare)(), void (*parent)(), void (*child)()) {
  return pthread_atfork(prepare, parent, child);
}

int thread_exit_key(void (*destructor)(void*), unsigned* key) {
  pthread_key_t k;
  int err = pthread_key_create(&k, destructor);
  if (err == 0) *key = static_cast<unsigned>(k);
  return err;
}

int thread_exit_key_set(unsigned key, void* value) {
  return pthread_setspecific(static_cast<pthread_key_t>(key), value);
}

std::uint64_t random64() {
  std::uint64_t value = 0;
  if (getrandom(&value, sizeof(value), GRND_NONBLOCK) == static_cast<ssize_t>(sizeof(value))) return value;
  return monotonic_ns() * 0x9E3779B97F4A7C15ull ^ static_cast<std::uint64_t>(getpid());
}

std::uint64_t monotonic_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

std::uint64_t realtime_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

int process_id() { return static_cast<int>(getpid()); }

void write_stderr(const char* text, std::size_t length) {
  while (length > 0) {
    ssize_t n = ::write(2, text, length);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    text += n;
    length -= static_cast<std::size_t>(n);
  }
}

const char* get_env(const char* name) {
  // getenv is fine once libc is initialised, but malloc may be called by
  // the dynamic loader before that; environ is set up by then either way.
  if (environ == nullptr) return nullptr;
  std::size_t length = std::strlen(name);
  for (char** entry = environ; *entry != nullptr; ++entry) {
    if (std::strncmp(*entry, name, length) == 0 && (*entry)[length] == '=') return *entry + length + 1;
  }
  return nullptr;
}

std::size_t resident_bytes() {
  int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buffer[128];
  ssize_t n = ::read(fd, buffer, sizeof(buffer) - 1);
  ::close(fd);
  if (n <= 0) return 0;
  buffer[n] = '\0';
  const char* p = buffer;
  while (*p != '\0' && *p != ' ') ++p;  // skip total size
  std::size_t pages = 0;
  for (++p; *p >= '0' && *p <= '9'; ++p) pages = pages * 10 + static_cast<std::size_t>(*p - '0');
  return pages * kOsPageSize;
}

std::size_t peak_resident_bytes() {
  struct rusage usage;
  if (getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  return static_cast<std::size_t>(usage.ru_maxrss) * 1024;
}

}  // namespace larder::port
