// Linux implementation of port/uring.hpp: an io_uring ring (liburing) with a
// pread/pwrite fallback behind one io_queue.
#include "port/uring.hpp"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <unistd.h>

#include <new>

namespace larder::port {
namespace {

// Continues request `r` after `done` more bytes; true when it is complete
// (or ended: a read at the end of the file, or an error).
bool advance(io_request& r, std::int64_t done) {
  if (done < 0) {
    r.result = done;
    return true;
  }
  r.result += done;
  return done == 0 || static_cast<std::size_t>(r.result) == r.length;
}

class plain_queue final : public io_queue {
 public:
  bool uses_uring() const override { return false; }
  int read(io_request* requests, std::size_t count) override { return run(requests, count, false); }
  int write(io_request* requests, std::size_t count) override { return run(requests, count, true); }
  int start_writes(io_request* requests, std::size_t count) override { return run(requests, count, true); }
  int wait_writes() override { return 0; }

 private:
  static int run(io_request* requests, std::size_t count, bool writing) {
    for (std::size_t i = 0; i < count; ++i) {
      io_request& r = requests[i];
      r.result = 0;
      bool complete = false;
      while (!complete) {
        char* at = static_cast<char*>(r.buffer) + r.result;
        std::size_t left = r.length - static_cast<std::size_t>(r.result);
        auto offset = static_cast<off_t>(r.offset + static_cast<std::uint64_t>(r.result));
        ssize_t n = writing ? ::pwrite(r.fd, at, left, offset) : ::pread(r.fd, at, left, offset);
        if (n < 0 && errno == EINTR) continue;
        complete = advance(r, n < 0 ? -errno : n);
      }
    }
    return 0;
  }
};

class uring_queue final : public io_queue {
 public:
  explicit uring_queue(unsigned depth) : depth_(depth) {}
  ~uring_queue() override {
    (void)complete();  // the kernel must be done with the caller's buffers
    io_uring_queue_exit(&ring_);
  }
  int init() { return -io_uring_queue_init(depth_, &ring_, 0); }
  bool uses_uring() const override { return true; }
  int read(io_request* requests, std::size_t count) override { return run(requests, count, false); }
  int write(io_request* requests, std::size_t count) override { return run(requests, count, true); }
  int start_writes(io_request* requests, std::size_t count) override {
    if (int err = complete()) return err;
    begin(requests, count, true);
    return submit_ready();
  }
  int wait_writes() override { return complete(); }

 private:
  void prepare(io_request& r, std::size_t index, bool writing) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);  // never null: at most depth_ in flight
    char* at = static_cast<char*>(r.buffer) + r.result;
    auto left = static_cast<unsigned>(r.length - static_cast<std::size_t>(r.result));
    std::uint64_t offset = r.offset + static_cast<std::uint64_t>(r.result);
    if (writing) {
      io_uring_prep_write(sqe, r.fd, at, left, offset);
    } else {
      io_uring_prep_read(sqe, r.fd, at, left, offset);
    }
    io_uring_sqe_set_data64(sqe, index);
  }

  int run(io_request* requests, std::size_t count, bool writing) {
    if (int err = complete()) return err;
    begin(requests, count, writing);
    return complete();
  }

  void begin(io_request* requests, std::size_t count, bool writing) {
    for (std::size_t i = 0; i < count; ++i) requests[i].result = 0;
    batch_ = batch{requests, count, 0, 0, writing};
  }

  // Queues what the depth allows of the open batch and submits it.
  int submit_ready() {
    while (batch_.next < batch_.count && batch_.in_flight < depth_) {
      prepare(batch_.requests[batch_.next], batch_.next, batch_.writing);
      ++batch_.next;
      ++batch_.in_flight;
    }
    int submitted = io_uring_submit(&ring_);
    return submitted < 0 && submitted != -EINTR ? -submitted : 0;
  }

  // Runs the open batch to its end.
  int complete() {
    while (batch_.next < batch_.count || batch_.in_flight > 0) {
      if (int err = submit_ready()) return fail(err);
      io_uring_cqe* cqe = nullptr;
      int err = io_uring_wait_cqe(&ring_, &cqe);
      if (err == -EINTR) continue;
      if (err < 0) return fail(-err);
      unsigned seen = 0, head = 0;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        ++seen;
        std::size_t index = io_uring_cqe_get_data64(cqe);
        io_request& r = batch_.requests[index];
        if (cqe->res == -EINTR || cqe->res == -EAGAIN || !advance(r, cqe->res)) {
          prepare(r, index, batch_.writing);  // the rest of a short transfer, in the slot it frees
        } else {
          --batch_.in_flight;
        }
      }
      io_uring_cq_advance(&ring_, seen);
    }
    return 0;
  }

  // The ring failed: the batch is dropped (what was in flight may still
  // land, as after any failed write).
  int fail(int err) {
    batch_ = batch{};
    return err;
  }

  struct batch {
    io_request* requests = nullptr;
    std::size_t count = 0, next = 0, in_flight = 0;
    bool writing = false;
  };

  unsigned depth_;
  io_uring ring_{};
  batch batch_;
};

}  // namespace

int io_queue::create(unsigned depth, bool allow_uring, std::unique_ptr<io_queue>* out) {
  if (depth == 0) return EINVAL;
  if (allow_uring) {
    auto ring = std::unique_ptr<uring_queue>(new (std::nothrow) uring_queue(depth));
    if (!ring) return ENOMEM;
    if (ring->init() == 0) {
      *out = std::move(ring);
      return 0;
    }
  }
  out->reset(new (std::nothrow) plain_queue());
  return *out ? 0 : ENOMEM;
}

namespace {

int open_maybe_direct(const char* path, int flags, bool try_direct, int* fd, bool* direct) {
  *direct = false;
  if (try_direct) {
    int got = ::open(path, flags | O_DIRECT, 0600);
    if (got >= 0) {
      *fd = got;
      *direct = true;
      return 0;
    }
    if (errno != EINVAL) return errno;  // EINVAL: the file system refuses O_DIRECT
  }
  int got = ::open(path, flags, 0600);
  if (got < 0) return errno;
  *fd = got;
  return 0;
}

}  // namespace

int create_for_streaming(const char* path, bool try_direct, int* fd, bool* direct) {
  return open_maybe_direct(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, try_direct, fd, direct);
}

int open_scratch(const char* path, bool try_direct, int* fd, bool* direct) {
  return open_maybe_direct(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, try_direct, fd, direct);
}

int open_kept(const char* path, bool try_direct, int* fd, bool* direct) {
  return open_maybe_direct(path, O_RDWR | O_CREAT | O_CLOEXEC, try_direct, fd, direct);
}

}  // namespace larder::port
