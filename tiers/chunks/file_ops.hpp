// Every change a chunk store makes to its directory goes through a
// file_ops: creating, writing, syncing and closing files, renaming and
// removing them, making and syncing directories. Production uses
// real_file_ops(); crash sweeps use fault_file_ops (fault_file_ops.hpp),
// which sees every persistence point and can drop what was not durable.
// Reads and the lock files (which hold no state) do not go through it.
// Every function returns 0 or an errno value, as port/ does.
#pragma once

#include <cstddef>
#include <cstdint>

namespace larder::port {
class io_queue;
struct io_request;
}  // namespace larder::port

namespace larder::chunks {

class file_ops {
 public:
  virtual ~file_ops() = default;
  // Creates `path` exclusively (mode 0600) for writing, with O_DIRECT when
  // `try_direct` and both the implementation and the file system allow it
  // (*direct tells).
  virtual int create(const char* path, bool try_direct, int* fd, bool* direct) = 0;
  // Starts `requests` on files from create(), through `queue` (several in
  // flight, finishing while the caller goes on) where the implementation
  // allows; finish_writes(queue) completes them and fills each result as
  // io_queue::write does. Until then the requests and buffers stay as they
  // are.
  virtual int start_write(port::io_queue& queue, port::io_request* requests, std::size_t count) = 0;
  virtual int finish_writes(port::io_queue& queue) = 0;
  virtual int write_at(int fd, const void* bytes, std::size_t length, std::uint64_t offset) = 0;
  // A persistence point: the file's bytes are durable once this returns 0.
  virtual int sync(int fd) = 0;
  virtual int close(int fd) = 0;
  // Within one directory. Without `replace`, EEXIST when `to` exists. Not
  // durable before sync_directory.
  virtual int rename(const char* from, const char* to, bool replace) = 0;
  // Not durable before sync_directory.
  virtual int remove(const char* path) = 0;
  // 0 also when it exists (*created says which). Not durable before
  // sync_directory of its parent.
  virtual int make_directory(const char* path, bool* created) = 0;
  // A persistence point: the directory's entries are durable once this
  // returns 0.
  virtual int sync_directory(const char* path) = 0;
};

// The operations themselves, through port/ (writes through the io_queue
// given, io_uring where it was set up). Shared, stateless.
file_ops& real_file_ops();

// What a store uses when its options name none: real_file_ops(), or, in
// a process under the heap crash harness (LARDER_CRASH_AT set,
// recovery/persist.hpp), one fault_file_ops for the whole process whose
// persistence points are counted with the heap's and whose power failure
// is the heap's: one failure instant cuts heap and store alike
// (docs/crashtest.md).
file_ops& process_file_ops();

}  // namespace larder::chunks
