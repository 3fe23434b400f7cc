// rados_pool (port/rados.hpp) on librados' C API. Batches go out as
// asynchronous requests in a window of `in_flight`, the oldest awaited
// before the next is sent.
#include "port/rados.hpp"

#include <errno.h>
#include <rados/librados.h>

#include <ctime>
#include <deque>
#include <string_view>
#include <utility>

namespace larder::port {

struct rados_pool::handles {
  rados_t cluster = nullptr;
  rados_ioctx_t io = nullptr;
  ~handles() {
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
    if (r == -ENOENT || r == -EINVAL) {
      return status(errc::not_found, "rados: cannot read the configuration " + conf_name);
    }
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
  int r = rados_write_full(handles_->io, object.c_str(), static_cast<const char*>(data), length);
  return r < 0 ? error(-r, "write of " + object) : status();
}

status rados_pool::read(const std::string& object, std::uint64_t offset, void* buffer, std::size_t length,
                        std::size_t* transferred) {
  int r = rados_read(handles_->io, object.c_str(), static_cast<char*>(buffer), length, offset);
  if (r < 0) return error(-r, "read of " + object);
  *transferred = static_cast<std::size_t>(r);
  return {};
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

status rados_pool::run(rados_op* ops, std::size_t count, unsigned in_flight) {
  if (in_flight == 0) return status(errc::invalid_argument, "rados: a batch needs at least one request in flight");
  std::deque<std::pair<rados_op*, rados_completion_t>> pending;
  status first_failure;
  auto finish_oldest = [&] {
    auto [op, completion] = pending.front();
    pending.pop_front();
    rados_aio_wait_for_complete(completion);
    int r = rados_aio_get_return_value(completion);
    rados_aio_release(completion);
    static constexpr const char* kWhat[] = {"write of ", "read of ", "removal of "};
    if (r < 0) {
      op->result = error(-r, kWhat[static_cast<int>(op->what)] + op->object);
      if (first_failure.ok()) first_failure = op->result;
    } else {
      op->transferred = op->what == rados_op::kind::read ? static_cast<std::size_t>(r) : op->length;
    }
  };
  for (std::size_t i = 0; i < count; ++i) {
    rados_op& op = ops[i];
    op.result = status();
    op.transferred = 0;
    if (pending.size() >= in_flight) finish_oldest();
    // A cluster that let one request time out would let the rest time out
    // one window after another: they fail now instead.
    if (first_failure.is(errc::timed_out)) {
      op.result = status(errc::timed_out, "rados: request for " + op.object + " not sent: " + first_failure.message());
      continue;
    }
    rados_completion_t completion = nullptr;
    int r = rados_aio_create_completion2(nullptr, nullptr, &completion);
    if (r == 0) {
      const char* name = op.object.c_str();
      switch (op.what) {
        case rados_op::kind::write_full:
          r = rados_aio_write_full(handles_->io, name, completion, static_cast<const char*>(op.data), op.length);
          break;
        case rados_op::kind::read:
          r = rados_aio_read(handles_->io, name, completion, static_cast<char*>(op.buffer), op.length, op.offset);
          break;
        case rados_op::kind::remove:
          r = rados_aio_remove(handles_->io, name, completion);
          break;
      }
      if (r < 0) rados_aio_release(completion);
    }
    if (r < 0) {
      op.result = error(-r, "sending a request for " + op.object);
      if (first_failure.ok()) first_failure = op.result;
      continue;
    }
    pending.emplace_back(&op, completion);
  }
  while (!pending.empty()) finish_oldest();
  return first_failure;
}

}  // namespace larder::port
