// rados_pool (port/rados.hpp) on librados' C API, and its C++ API for
// reads and writes, one or a batch: those go out as asynchronous requests
// in a window of `in_flight` slots, each refilled as soon as its request
// completes. Their bytes are always in librados-owned bufferlists (a copy
// of a write's, a read's own), never the caller's memory lent by
// buffer::create_static: a timed-out request can outlive run().
#include "port/rados.hpp"

#include <errno.h>
#include <rados/librados.hpp>

#include <algorithm>
#include <condition_variable>
#include <ctime>
#include <mutex>
#include <string_view>
#include <utility>
#include <vector>

namespace larder::port {

struct rados_pool::handles {
  rados_t cluster = nullptr;
  rados_ioctx_t io = nullptr;
  librados::IoCtx batch_io;  // `io` seen through the C++ API
  ~handles() {
    batch_io.close();
    if (io != nullptr) rados_ioctx_destroy(io);
    if (cluster != nullptr) rados_shutdown(cluster);
  }
};

namespace {

// librados' error for `what`: timed_out and not_found are larder's own
// codes, as callers test for them.
status rados_error(int err, const std::string& what, unsigned timeout_s) {
  if (err == ETIMEDOUT) {
    return status(errc::timed_out,
                  what + ": the cluster did not answer within " + std::to_string(timeout_s) + " s (is it running?)");
  }
  if (err == ENOENT) return status(errc::not_found, what + ": no such object");
  return status::from_errno(err, what);
}

// A request librados cannot count the bytes of: refused, never sent.
status too_large(const std::string& object, std::size_t length) {
  return status(errc::invalid_argument, "rados: a request for " + std::to_string(length) + " bytes of " + object +
                                            " is larger than the most librados takes (" +
                                            std::to_string(kMaxRadosRequestBytes) + ")");
}

}  // namespace

status rados_pool::connect(const std::string& conf_path, const std::string& pool, const rados_options& options,
                           std::unique_ptr<rados_pool>* out) {
  if (options.connect_timeout_s == 0 || options.op_timeout_s == 0) {
    return status(errc::invalid_argument, "rados: timeouts must be at least one second");
  }
  auto h = std::make_unique<handles>();
  if (int r = rados_create(&h->cluster, nullptr); r < 0) {
    h->cluster = nullptr;
    return status::from_errno(-r, "rados: cannot create a cluster handle");
  }
  const std::string conf_name = conf_path.empty() ? "Ceph's default configuration" : conf_path;
  if (int r = rados_conf_read_file(h->cluster, conf_path.empty() ? nullptr : conf_path.c_str()); r < 0) {
    if (r == -ENOENT) return status(errc::not_found, "rados: no configuration file " + conf_name);
    if (r == -EINVAL) return status(errc::invalid_argument, "rados: cannot parse the configuration " + conf_name);
    return status::from_errno(-r, "rados: cannot read the configuration " + conf_name);
  }
  const std::string connect_timeout = std::to_string(options.connect_timeout_s);
  const std::string op_timeout = std::to_string(options.op_timeout_s);
  const std::pair<const char*, const char*> settings[] = {
      {"client_mount_timeout", connect_timeout.c_str()},
      {"rados_mon_op_timeout", connect_timeout.c_str()},
      {"rados_osd_op_timeout", op_timeout.c_str()},
  };
  for (const auto& [name, value] : settings) {
    if (int r = rados_conf_set(h->cluster, name, value); r < 0) {
      return status::from_errno(-r, std::string("rados: cannot set ") + name);
    }
  }
  if (int r = rados_connect(h->cluster); r < 0) {
    // A failed connect leaves a handle that must still be shut down.
    if (r == -ETIMEDOUT || r == -ENOTCONN) {
      return status(errc::timed_out, "rados: no monitor of " + conf_name + " answered within " + connect_timeout +
                                         " s (is the cluster running?)");
    }
    return status::from_errno(-r, "rados: cannot connect to the cluster of " + conf_name);
  }
  if (int r = rados_ioctx_create(h->cluster, pool.c_str(), &h->io); r < 0) {
    h->io = nullptr;
    if (r == -ENOENT) return status(errc::not_found, "rados: the cluster of " + conf_name + " has no pool " + pool);
    return status::from_errno(-r, "rados: cannot open pool " + pool);
  }
  librados::IoCtx::from_rados_ioctx_t(h->io, h->batch_io);
  out->reset(new rados_pool(std::move(h), pool, options));
  return {};
}

rados_pool::rados_pool(std::unique_ptr<handles> h, std::string pool, const rados_options& options)
    : handles_(std::move(h)), pool_(std::move(pool)), options_(options) {}

rados_pool::~rados_pool() = default;

status rados_pool::error(int err, const std::string& what) const {
  return rados_error(err, "rados: " + what + " in pool " + pool_, options_.op_timeout_s);
}

status rados_pool::write_full(const std::string& object, const void* data, std::size_t length) {
  rados_op op;
  op.what = rados_op::kind::write_full;
  op.object = object;
  op.data = data;
  op.length = length;
  return run(&op, 1, 1);
}

status rados_pool::write_full_if(const std::string& object, const void* data, std::size_t length,
                                 const std::string* expected) {
  if (length > kMaxRadosRequestBytes) return too_large(object, length);
  // One compound operation, which the OSD applies whole or not at all.
  librados::ObjectWriteOperation op;
  if (expected == nullptr) {
    op.create(true);
  } else {
    librados::bufferlist now;
    now.append(*expected);
    op.cmpext(0, now, nullptr);
  }
  librados::bufferlist bytes;
  bytes.push_back(ceph::buffer::copy(static_cast<const char*>(data), static_cast<unsigned>(length)));
  op.write_full(bytes);
  int r = handles_->batch_io.operate(object, &op);
  // cmpext's mismatch is -(4095 + its offset), below every errno value.
  constexpr int kMaxErrno = 4095;
  const bool moved = expected == nullptr ? r == -EEXIST : r == -ENOENT || r <= -kMaxErrno;
  if (moved) {
    return status(errc::already_exists,
                  "rados: " + object + (expected == nullptr ? " exists already" : " no longer holds what was expected"));
  }
  return r < 0 ? error(-r, "write of " + object) : status();
}

status rados_pool::read(const std::string& object, std::uint64_t offset, void* buffer, std::size_t length,
                        std::size_t* transferred) {
  rados_op op;
  op.object = object;
  op.buffer = buffer;
  op.offset = offset;
  op.length = length;
  status s = run(&op, 1, 1);
  *transferred = op.transferred;
  return s;
}

status rados_pool::stat(const std::string& object, std::uint64_t* size) {
  std::time_t modified = 0;
  int r = rados_stat(handles_->io, object.c_str(), size, &modified);
  return r < 0 ? error(-r, "stat of " + object) : status();
}

status rados_pool::remove(const std::string& object) {
  int r = rados_remove(handles_->io, object.c_str());
  return r < 0 ? error(-r, "removal of " + object) : status();
}

status rados_pool::list(const std::string& prefix, std::vector<std::string>* objects) {
  objects->clear();
  rados_list_ctx_t listing = nullptr;
  if (int r = rados_nobjects_list_open(handles_->io, &listing); r < 0) return error(-r, "listing");
  int r = 0;
  for (;;) {
    const char* name = nullptr;
    r = rados_nobjects_list_next(listing, &name, nullptr, nullptr);
    if (r < 0) break;
    if (std::string_view(name).substr(0, prefix.size()) == prefix) objects->emplace_back(name);
  }
  rados_nobjects_list_close(listing);
  return r == -ENOENT ? status() : error(-r, "listing");
}

namespace {

// The requests of one batch in flight: a slot each, and a signal when one
// completes. librados completes requests out of order (the OSD spreads
// them over its shards), so the batch refills whichever slot is done
// first.
struct batch_slot;
struct batch_window {
  std::mutex mutex;
  std::condition_variable completed;
};
struct batch_slot {
  batch_window* window = nullptr;
  rados_op* op = nullptr;  // nullptr: the slot is free
  librados::AioCompletion* completion = nullptr;
  librados::bufferlist bytes;  // a read's bytes, in librados' buffers
  bool done = false;           // guarded by window->mutex
};

void on_complete(rados_completion_t, void* arg) {
  auto* slot = static_cast<batch_slot*>(arg);
  // Notified under the lock: run() cannot see `done` and return (ending
  // the window) before notify_one has finished with it.
  std::lock_guard lock(slot->window->mutex);
  slot->done = true;
  slot->window->completed.notify_one();
}

}  // namespace

status rados_pool::run(rados_op* ops, std::size_t count, unsigned in_flight) {
  if (in_flight == 0) return status(errc::invalid_argument, "rados: a batch needs at least one request in flight");
  batch_window window;
  std::vector<batch_slot> slots(std::min<std::size_t>(in_flight, count));
  std::vector<batch_slot*> idle;
  for (batch_slot& slot : slots) {
    slot.window = &window;
    idle.push_back(&slot);
  }
  status first_failure;
  auto finish = [&](batch_slot& slot) {
    rados_op& op = *slot.op;
    slot.completion->wait_for_complete();
    int r = slot.completion->get_return_value();
    slot.completion->release();
    static constexpr const char* kWhat[] = {"write of ", "read of ", "removal of "};
    if (r < 0) {
      op.result = error(-r, kWhat[static_cast<int>(op.what)] + op.object);
      if (first_failure.ok()) first_failure = op.result;
    } else if (op.what == rados_op::kind::read) {
      op.transferred = std::min<std::size_t>(slot.bytes.length(), op.length);
      slot.bytes.begin().copy(op.transferred, static_cast<char*>(op.buffer));
    } else {
      op.transferred = op.length;
    }
    slot.op = nullptr;
    slot.bytes.clear();
    idle.push_back(&slot);
  };
  // Waits until at least one request in flight is done, and finishes
  // every one that is.
  auto finish_some = [&] {
    std::vector<batch_slot*> done;
    {
      std::unique_lock lock(window.mutex);
      window.completed.wait(lock, [&] {
        for (batch_slot& slot : slots) {
          if (slot.op != nullptr && slot.done) done.push_back(&slot);
        }
        return !done.empty();
      });
      for (batch_slot* slot : done) slot->done = false;
    }
    for (batch_slot* slot : done) finish(*slot);
  };

  for (std::size_t i = 0; i < count; ++i) {
    rados_op& op = ops[i];
    op.result = status();
    op.transferred = 0;
    if (idle.empty()) finish_some();
    // A cluster that let one request time out would let the rest time out
    // one window after another: they fail now instead.
    if (first_failure.is(errc::timed_out)) {
      op.result = status(errc::timed_out, "rados: request for " + op.object + " not sent: " + first_failure.message());
      continue;
    }
    if (op.what != rados_op::kind::remove && op.length > kMaxRadosRequestBytes) {
      op.result = too_large(op.object, op.length);
      if (first_failure.ok()) first_failure = op.result;
      continue;
    }
    batch_slot& slot = *idle.back();
    idle.pop_back();
    slot.op = &op;
    slot.completion = librados::Rados::aio_create_completion(&slot, on_complete);
    int r = 0;
    switch (op.what) {
      case rados_op::kind::write_full: {
        librados::bufferlist bytes;  // one buffer of its own, the bytes copied in
        bytes.push_back(ceph::buffer::copy(static_cast<const char*>(op.data), static_cast<unsigned>(op.length)));
        r = handles_->batch_io.aio_write_full(op.object, slot.completion, bytes);
        break;
      }
      case rados_op::kind::read:
        r = handles_->batch_io.aio_read(op.object, slot.completion, &slot.bytes, op.length, op.offset);
        break;
      case rados_op::kind::remove:
        r = handles_->batch_io.aio_remove(op.object, slot.completion);
        break;
    }
    if (r < 0) {
      slot.completion->release();
      slot.op = nullptr;
      slot.bytes.clear();
      idle.push_back(&slot);
      op.result = error(-r, "sending a request for " + op.object);
      if (first_failure.ok()) first_failure = op.result;
    }
  }
  while (idle.size() < slots.size()) finish_some();
  return first_failure;
}

}  // namespace larder::port
