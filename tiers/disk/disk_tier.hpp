// The disk tier: pods' pages in page slots of one file, moved with
// io_uring (port/uring.hpp) in large requests, O_DIRECT where the file
// system takes it. Entry point: disk_tier::open. By default the file is
// scratch: its slots mean something only to the disk_tier that wrote them,
// so open creates or empties it and the destructor removes it. A kept tier
// (disk_tier_options::keep) outlives its process: sync() also writes the
// index (pod, page, slot) to `<path>.index` atomically, and open reads
// the file and that index back.
#pragma once

#include "tiers/slots/slotted_tier.hpp"

#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace larder::port {
class io_queue;
struct io_request;
}  // namespace larder::port

namespace larder::tiers {

struct disk_tier_options {
  // The most the tier holds; writes past it fail with out_of_space.
  std::uint64_t capacity_bytes = std::uint64_t{1} << 30;
  // O_DIRECT where the file system takes it: the pages bypass the page
  // cache, which the heap's own memory already is.
  bool try_direct = true;
  // Requests in flight at once per calling thread: enough to keep an NVMe
  // device's queues busy with large requests.
  unsigned queue_depth = 32;
  // Adjacent pages (in memory and in the file) go out as one request of
  // up to this many bytes (a multiple of kTierPageSize); several such
  // requests are in flight at once.
  std::size_t max_request_bytes = std::size_t{1} << 20;
  // Keep the file and its index across processes (see above); remove()
  // deletes both.
  bool keep = false;
  // Whether sync() makes the data and the index durable on the device
  // (fdatasync, fsync). Without, sync() of a kept tier only writes the
  // index: what a later process needs after this one is killed, not after
  // the machine stops (the copies of a shm heap, which no restart keeps).
  bool device_sync = true;
};

class disk_tier final : public slotted_tier {
 public:
  // Creates (or empties) the file at `path`. invalid_argument for a
  // capacity or request size that is no page multiple or zero, or a zero
  // queue depth; errno values of open or io_uring setup.
  // A kept tier's index that cannot be read is `corrupt`.
  static status open(const std::string& path, const disk_tier_options& options, std::unique_ptr<disk_tier>* out);
  // Removes a kept tier's file and index (fine when there is none).
  static void remove(const std::string& path);
  ~disk_tier() override;

  status sync() override;

  // Whether the file was opened with O_DIRECT; false where the file system
  // refused it and the tier fell back to buffered I/O (or when not asked).
  bool direct() const { return direct_; }
  // Whether transfers go through io_uring; false where the kernel refused
  // to set a ring up and they are plain pread/pwrite.
  bool uses_uring() const { return uses_uring_; }
  const std::string& path() const { return path_; }

 private:
  disk_tier(std::string path, int fd, bool direct, const disk_tier_options& options);
  status read_index();
  status write_index() const;
  // The file grows as it is written.
  status provide(std::uint64_t) override { return {}; }
  // Adjacent pages in one request.
  status transfer(const std::vector<page_ref>& pages, const std::vector<std::uint64_t>& slots,
                  bool writing) override;
  std::vector<port::io_request> requests_for(const std::vector<page_ref>& pages,
                                             const std::vector<std::uint64_t>& slots) const;
  status take_queue(std::unique_ptr<port::io_queue>* queue);
  void return_queue(std::unique_ptr<port::io_queue> queue);
  status transfer_error(int err, bool writing) const;

  const std::string path_;
  const int fd_;
  const bool direct_;
  bool uses_uring_ = false;
  const disk_tier_options options_;

  std::mutex mutex_;  // guards what follows
  std::vector<std::unique_ptr<port::io_queue>> idle_queues_;  // one per thread that has transferred at once
};

}  // namespace larder::tiers
