// Batched file I/O at offsets: io_uring where the kernel lets it be set up,
// plain pread/pwrite otherwise (or when asked). Entry point: io_queue::create.
// Also the opening of files for large sequential writes (O_DIRECT where the
// file system takes it). Every function returns 0 or an errno value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace larder::port {

struct io_request {
  int fd;
  void* buffer;          // for O_DIRECT files: 4 KiB aligned, as are length and offset
  std::size_t length;
  std::uint64_t offset;
  // Out: bytes transferred (== length unless a read met the end of the
  // file), or a negative errno value.
  std::int64_t result;
};

class io_queue {
 public:
  // `depth`: how many requests may be in flight at once (>= 1). With
  // `allow_uring` false, or where io_uring cannot be set up (old kernel,
  // seccomp, memlock limit), the queue does plain pread/pwrite one at a
  // time; uses_uring() tells which.
  static int create(unsigned depth, bool allow_uring, std::unique_ptr<io_queue>* out);
  virtual ~io_queue() = default;
  virtual bool uses_uring() const = 0;
  // Performs every request, up to `depth` at a time, and fills each
  // `result`; short transfers are continued until done or the end of the
  // file. Returns 0 when every request ran (see each result), or an errno
  // value when the queue itself failed.
  // Both first complete the writes start_writes left in flight.
  virtual int read(io_request* requests, std::size_t count) = 0;
  virtual int write(io_request* requests, std::size_t count) = 0;
  // Starts the writes and returns without waiting for them (the plain
  // queue performs them here), so that the caller can prepare the next
  // ones meanwhile. The requests and their buffers must stay untouched
  // until wait_writes() returns. Starting more first completes these.
  virtual int start_writes(io_request* requests, std::size_t count) = 0;
  // Completes the writes started last and fills each result as write()
  // does; 0 when every request ran (or none was in flight), or an errno
  // value when the queue itself failed.
  virtual int wait_writes() = 0;
};

// Creates `path` (exclusively, mode 0600) for writing, with O_DIRECT when
// `try_direct` and the file system accepts it; *direct says which.
int create_for_streaming(const char* path, bool try_direct, int* fd, bool* direct);
// Opens `path` read-write, created (mode 0600) or cut to zero bytes, with
// O_DIRECT when `try_direct` and the file system accepts it (tmpfs does
// not); *direct says which. For files whose bytes mean nothing to anyone
// but their opener (a disk tier's slot file).
int open_scratch(const char* path, bool try_direct, int* fd, bool* direct);
// The same, keeping what the file holds (created if missing).
int open_kept(const char* path, bool try_direct, int* fd, bool* direct);

}  // namespace larder::port
