// A pool of a Ceph cluster, reached through librados: whole objects
// written, byte ranges read, objects stated, removed and listed by name
// prefix, one at a time or in batches that keep many requests in flight.
// Entry point: rados_pool::connect. The only place that includes librados
// (port/rados/rados_pool.cpp); built where librados is found
// (LARDER_TIER_RADOS), into the module liblarder_rados.so only
// (tiers/rados_module.hpp).
//
// No call waits forever: connecting gives up after connect_timeout_s, and
// every request after op_timeout_s, with errc::timed_out and a message that
// says the cluster did not answer. Every call is safe on several threads at
// once. librados never holds the caller's memory: a request that timed out
// may still be under way (a write mid-send, a late read reply), so writes
// go out from a copy and reads land in librados' own buffers.
#pragma once

#include <larder/status.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace larder::port {

// The most bytes one request may write or read: librados counts a
// request's bytes in 32 bits (a read's result is an int), and a Ceph
// object is far smaller anyway (osd_max_object_size, 128 MiB by default).
// A request for more fails with invalid_argument, never sent.
inline constexpr std::size_t kMaxRadosRequestBytes = std::size_t{1} << 30;

struct rados_options {
  // How long connect() waits for the cluster's monitor.
  unsigned connect_timeout_s = 5;
  // How long one request may take before it fails with timed_out (a
  // cluster stopped, an OSD gone). Large enough for a busy cluster to
  // write a few MiB.
  unsigned op_timeout_s = 30;
};

// One request of a batch: a whole object written, a byte range read, or an
// object removed.
struct rados_op {
  enum class kind { write_full, read, remove };
  kind what = kind::read;
  std::string object;
  // write_full: the object's new bytes (`length` of them).
  const void* data = nullptr;
  // read: where the bytes go, and where in the object they start.
  void* buffer = nullptr;
  std::uint64_t offset = 0;
  std::size_t length = 0;
  // Out: bytes read (fewer than `length` past the object's end).
  std::size_t transferred = 0;
  // Out: this request's result (not_found for an object that is not there).
  status result;
};

class rados_pool {
 public:
  // Connects with the configuration file at `conf_path` (empty: $CEPH_CONF
  // or Ceph's default places) as client.admin, and opens `pool`. Errors:
  // not_found (no such file or pool), invalid_argument (a file Ceph cannot
  // parse, a zero timeout), timed_out (no monitor answered), or librados'
  // errno value, each with a message naming the file or pool.
  static status connect(const std::string& conf_path, const std::string& pool, const rados_options& options,
                        std::unique_ptr<rados_pool>* out);
  ~rados_pool();
  rados_pool(const rados_pool&) = delete;
  rados_pool& operator=(const rados_pool&) = delete;

  // Replaces the object `object` (created if absent) with `length` bytes.
  status write_full(const std::string& object, const void* data, std::size_t length);
  // The same in one atomic step with a check: only while the object's
  // bytes from offset 0 are `expected` (nullptr: while there is no such
  // object). already_exists, the object left as it was, when they are not.
  status write_full_if(const std::string& object, const void* data, std::size_t length, const std::string* expected);
  // Reads up to `length` bytes from `offset`; *transferred says how many
  // (fewer past the end of the object).
  status read(const std::string& object, std::uint64_t offset, void* buffer, std::size_t length,
              std::size_t* transferred);
  // The object's size in bytes.
  status stat(const std::string& object, std::uint64_t* size);
  status remove(const std::string& object);
  // The names of every object in the pool that start with `prefix`.
  status list(const std::string& prefix, std::vector<std::string>* objects);

  // Runs every request, at most `in_flight` (>= 1) at once, in no
  // particular order; fills each one's result and transferred. Returns the
  // first failed request's status, or ok. Once a request has timed out,
  // those not sent yet fail at once with timed_out, so that a batch takes
  // at most about one timeout. Buffers must stay valid until it returns.
  status run(rados_op* ops, std::size_t count, unsigned in_flight);

  const std::string& pool_name() const { return pool_; }

 private:
  struct handles;
  rados_pool(std::unique_ptr<handles> h, std::string pool, const rados_options& options);
  status error(int err, const std::string& what) const;

  std::unique_ptr<handles> handles_;
  const std::string pool_;
  const rados_options options_;
};

}  // namespace larder::port
