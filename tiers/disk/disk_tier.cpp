// disk_tier (disk_tier.hpp): transfers through a pool of io_queues, one
// per thread transferring.
#include "tiers/disk/disk_tier.hpp"

#include "port/directory.hpp"
#include "port/os.hpp"
#include "port/uring.hpp"

#include <errno.h>

#include <cstdint>
#include <string_view>
#include <utility>

namespace larder::tiers {

static_assert(kTierPageSize == port::kOsPageSize);

namespace {
// "LRDRTIDX": a kept tier's index file.
constexpr std::uint64_t kIndexMagic = 0x584449545244524cull;
constexpr const char* kIndexSuffix = ".index";
}  // namespace

status disk_tier::open(const std::string& path, const disk_tier_options& options, std::unique_ptr<disk_tier>* out) {
  if (options.capacity_bytes == 0 || options.capacity_bytes % kTierPageSize != 0 || options.max_request_bytes == 0 ||
      options.max_request_bytes % kTierPageSize != 0 || options.queue_depth == 0) {
    return status(errc::invalid_argument,
                  "disk tier: capacity and request size must be nonzero page multiples, queue depth nonzero");
  }
  int fd = -1;
  bool direct = false;
  int err = options.keep ? port::open_kept(path.c_str(), options.try_direct, &fd, &direct)
                         : port::open_scratch(path.c_str(), options.try_direct, &fd, &direct);
  if (err != 0) return status::from_errno(err, "disk tier: cannot open " + path);
  std::unique_ptr<disk_tier> made(new disk_tier(path, fd, direct, options));
  if (options.keep) {
    if (status s = made->read_index(); !s.ok()) return s;
  }
  std::unique_ptr<port::io_queue> queue;
  if (status s = made->take_queue(&queue); !s.ok()) return s;
  made->uses_uring_ = queue->uses_uring();
  made->return_queue(std::move(queue));
  *out = std::move(made);
  return {};
}

disk_tier::disk_tier(std::string path, int fd, bool direct, const disk_tier_options& options)
    : slotted_tier("disk tier " + path, options.capacity_bytes / kTierPageSize), path_(std::move(path)), fd_(fd),
      direct_(direct), options_(options) {}

disk_tier::~disk_tier() {
  idle_queues_.clear();  // each completes what it has in flight first
  (void)port::close_fd(fd_);
  if (!options_.keep) (void)port::remove_file(path_.c_str());
}

void disk_tier::remove(const std::string& path) {
  (void)port::remove_file((path + kIndexSuffix).c_str());
  (void)port::remove_file(path.c_str());
}

// The index file: kIndexMagic, the entry count, the entries (pod, page
// index, slot; u64 each, little-endian), kIndexMagic again. Written to a
// temporary name and renamed over the old one, so a reader finds one whole
// index or the one before.
status disk_tier::read_index() {
  const std::string name = path_ + kIndexSuffix;
  int fd = -1;
  bool created = false;
  int err = port::open_file(name.c_str(), false, false, false, &fd, &created);
  if (err == ENOENT) return {};
  if (err != 0) return status::from_errno(err, "disk tier: cannot open " + name);
  std::uint64_t size = 0;
  std::vector<std::uint64_t> words;
  err = port::file_size(fd, &size);
  if (err == 0 && size % 8 == 0 && size >= 24) {
    words.resize(size / 8);
    err = port::read_at(fd, words.data(), size, 0);
  }
  (void)port::close_fd(fd);
  if (err != 0) return status::from_errno(err, "disk tier: cannot read " + name);
  if (words.size() < 3 || words[0] != kIndexMagic || words.back() != kIndexMagic ||
      words[1] > words.size() / 3 || words[1] * 3 + 3 != words.size()) {
    return status(errc::corrupt, "disk tier: " + name + " is not a whole index");
  }
  std::vector<slot_entry> held(words[1]);
  for (std::size_t i = 0; i < held.size(); ++i) held[i] = {words[2 + 3 * i], words[3 + 3 * i], words[4 + 3 * i]};
  return adopt(held);
}

status disk_tier::write_index() const {
  std::vector<std::uint64_t> words{kIndexMagic, 0};
  for (const slot_entry& e : entries()) words.insert(words.end(), {e.pod, e.index, e.slot});
  words[1] = (words.size() - 2) / 3;
  words.push_back(kIndexMagic);
  const std::string name = path_ + kIndexSuffix, temporary = name + ".new";
  int fd = -1;
  bool created = false;
  (void)port::remove_file(temporary.c_str());
  int err = port::open_file(temporary.c_str(), true, true, true, &fd, &created);
  if (err == 0) {
    err = port::write_at(fd, words.data(), words.size() * 8, 0);
    if (err == 0 && options_.device_sync) err = port::sync_file(fd);
    (void)port::close_fd(fd);
  }
  if (err == 0) err = port::rename_file(temporary.c_str(), name.c_str(), true);
  if (err != 0) return status::from_errno(err, "disk tier: cannot write " + name);
  return {};
}

status disk_tier::sync() {
  if (options_.device_sync) {
    if (int err = port::sync_file(fd_)) return status::from_errno(err, "disk tier: cannot sync " + path_);
  }
  return options_.keep ? write_index() : status{};
}

std::vector<port::io_request> disk_tier::requests_for(const std::vector<page_ref>& pages,
                                                      const std::vector<std::uint64_t>& slots) const {
  std::vector<port::io_request> requests;
  for (std::size_t i = 0; i < pages.size(); ++i) {
    if (!requests.empty()) {
      port::io_request& last = requests.back();
      bool adjacent = slots[i] == slots[i - 1] + 1 &&
                      pages[i].address == static_cast<char*>(pages[i - 1].address) + kTierPageSize;
      if (adjacent && last.length + kTierPageSize <= options_.max_request_bytes) {
        last.length += kTierPageSize;
        continue;
      }
    }
    requests.push_back(port::io_request{fd_, pages[i].address, kTierPageSize, slots[i] * kTierPageSize, 0});
  }
  return requests;
}

status disk_tier::transfer(const std::vector<page_ref>& pages, const std::vector<std::uint64_t>& slots,
                           bool writing) {
  std::vector<port::io_request> requests = requests_for(pages, slots);
  std::unique_ptr<port::io_queue> queue;
  if (status s = take_queue(&queue); !s.ok()) return s;
  int err = writing ? queue->write(requests.data(), requests.size()) : queue->read(requests.data(), requests.size());
  return_queue(std::move(queue));
  if (err != 0) return transfer_error(err, writing);
  for (const port::io_request& r : requests) {
    if (r.result < 0) return transfer_error(static_cast<int>(-r.result), writing);
    if (static_cast<std::size_t>(r.result) != r.length) return transfer_error(EIO, writing);  // the file was cut
  }
  return {};
}

status disk_tier::take_queue(std::unique_ptr<port::io_queue>* queue) {
  {
    std::lock_guard lock(mutex_);
    if (!idle_queues_.empty()) {
      *queue = std::move(idle_queues_.back());
      idle_queues_.pop_back();
      return {};
    }
  }
  if (int err = port::io_queue::create(options_.queue_depth, true, queue)) {
    return status::from_errno(err, "disk tier: cannot set up an I/O queue");
  }
  return {};
}

void disk_tier::return_queue(std::unique_ptr<port::io_queue> queue) {
  std::lock_guard lock(mutex_);
  idle_queues_.push_back(std::move(queue));
}

status disk_tier::transfer_error(int err, bool writing) const {
  std::string_view what = writing ? "write to" : "read from";
  if (err == ENOSPC || err == EDQUOT) {
    return status(errc::out_of_space, "disk tier: the file system holding " + path_ + " is full (" +
                                          larder::strerror(err) + "); nothing held before was lost");
  }
  if (err == EFBIG) {
    return status(errc::out_of_space, "disk tier: " + path_ + " reached the largest file size allowed (" +
                                          larder::strerror(err) + "); nothing held before was lost");
  }
  return status::from_errno(err, "disk tier: cannot " + std::string(what) + " " + path_);
}

}  // namespace larder::tiers
