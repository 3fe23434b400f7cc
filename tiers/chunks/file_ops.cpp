// The real file operations of a chunk store: port/ calls, nothing else.
#include "tiers/chunks/file_ops.hpp"

#include "port/directory.hpp"
#include "port/os.hpp"
#include "port/uring.hpp"

namespace larder::chunks {
namespace {

class real_ops final : public file_ops {
 public:
  int create(const char* path, bool try_direct, int* fd, bool* direct) override {
    return port::create_for_streaming(path, try_direct, fd, direct);
  }
  int start_write(port::io_queue& queue, port::io_request* requests, std::size_t count) override {
    return queue.start_writes(requests, count);
  }
  int finish_writes(port::io_queue& queue) override { return queue.wait_writes(); }
  int write_at(int fd, const void* bytes, std::size_t length, std::uint64_t offset) override {
    return port::write_at(fd, bytes, length, offset);
  }
  int sync(int fd) override { return port::sync_file(fd); }
  int close(int fd) override { return port::close_fd(fd); }
  int rename(const char* from, const char* to, bool replace) override { return port::rename_file(from, to, replace); }
  int remove(const char* path) override { return port::remove_file(path); }
  int make_directory(const char* path, bool* created) override { return port::make_directory(path, created); }
  int sync_directory(const char* path) override { return port::sync_directory(path); }
};

}  // namespace

file_ops& real_file_ops() {
  static real_ops ops;
  return ops;
}

}  // namespace larder::chunks
