// pmem_tier (pmem_tier.hpp): the file grows under slotted_tier's lock
// (provide), copies run outside it into what is mapped, which never moves.
#include "tiers/pmem/pmem_tier.hpp"

#include "port/options.hpp"
#include "port/os.hpp"
#include "port/pmem_file.hpp"
#include "port/uring.hpp"

#include <errno.h>

#include <algorithm>
#include <cstring>
#include <utility>

namespace larder::tiers {
namespace {

std::uint64_t round_up(std::uint64_t n, std::uint64_t multiple) { return (n + multiple - 1) / multiple * multiple; }

}  // namespace

status pmem_tier::open(const std::string& path, const pmem_tier_options& options, std::unique_ptr<pmem_tier>* out) {
  if (options.capacity_bytes == 0 || options.capacity_bytes % kTierPageSize != 0 || options.growth_bytes == 0 ||
      options.growth_bytes % kTierPageSize != 0) {
    return status(errc::invalid_argument, "pmem tier: capacity and growth must be nonzero page multiples");
  }
  int fd = -1;
  bool direct = false;
  if (int err = port::open_scratch(path.c_str(), false, &fd, &direct)) {
    return status::from_errno(err, "pmem tier: cannot open " + path);
  }
  std::unique_ptr<port::pmem_file> file;
  const char* detail = nullptr;
  if (int err = port::pmem_file::open(fd, options.capacity_bytes, &file, &detail)) {
    (void)port::close_fd(fd);
    (void)port::remove_file(path.c_str());
    std::string what = "pmem tier: cannot map " + path + (detail != nullptr ? std::string(": ") + detail : "");
    return err == ENOTSUP ? status(errc::unsupported, what) : status::from_errno(err, what);
  }
  std::unique_ptr<pmem_tier> made(new pmem_tier(path, fd, std::move(file), options));
  // The mode is known only once something is mapped: the smallest mapping.
  if (int err = made->file_->grow(made->file_->alignment(), &detail)) {
    return made->grow_error(err, detail, made->file_->alignment());
  }
  if (made->is_dax()) {
    port::verbose("pmem tier %s: on a DAX file system (persistent memory)", path.c_str());
  } else {
    port::warning("pmem tier %s: not on a DAX file system; persistent memory is emulated (libpmem2 persists with msync)",
                  path.c_str());
  }
  *out = std::move(made);
  return {};
}

pmem_tier::pmem_tier(std::string path, int fd, std::unique_ptr<port::pmem_file> file,
                     const pmem_tier_options& options)
    : slotted_tier("pmem tier " + path, options.capacity_bytes / kTierPageSize), path_(std::move(path)), fd_(fd),
      file_(std::move(file)), options_(options) {}

pmem_tier::~pmem_tier() {
  file_.reset();  // unmapped before the file goes
  (void)port::close_fd(fd_);
  (void)port::remove_file(path_.c_str());
}

bool pmem_tier::is_dax() const { return file_->is_dax(); }

const char* pmem_tier::mode() const { return is_dax() ? "dax" : "emulated (msync)"; }

status pmem_tier::provide(std::uint64_t end) {
  std::uint64_t needed = end * kTierPageSize;
  if (needed <= file_->size()) return {};
  std::uint64_t alignment = file_->alignment();
  std::uint64_t most = round_up(options_.capacity_bytes, alignment);
  std::uint64_t exact = round_up(needed, alignment);
  std::uint64_t step = std::min(most, round_up(std::max(needed, file_->size() + options_.growth_bytes), alignment));
  const char* detail = nullptr;
  int err = file_->grow(step, &detail);
  if ((err == ENOSPC || err == EDQUOT || err == EFBIG) && step > exact) {
    err = file_->grow(exact, &detail);  // a whole step did not fit; what is needed now may
    step = exact;
  }
  return err == 0 ? status() : grow_error(err, detail, step);
}

status pmem_tier::transfer(const std::vector<page_ref>& pages, const std::vector<std::uint64_t>& slots,
                           bool writing) {
  std::size_t i = 0;
  while (i < pages.size()) {
    std::size_t run = 1;
    while (i + run < pages.size() && slots[i + run] == slots[i] + run &&
           pages[i + run].address == static_cast<char*>(pages[i].address) + run * kTierPageSize) {
      ++run;
    }
    char* stored = file_->base() + slots[i] * kTierPageSize;
    if (writing) {
      file_->copy(stored, pages[i].address, run * kTierPageSize);
    } else {
      std::memcpy(pages[i].address, stored, run * kTierPageSize);
    }
    i += run;
  }
  if (writing) file_->drain();
  return {};
}

status pmem_tier::grow_error(int err, const char* detail, std::uint64_t length) const {
  std::string size = std::to_string(length >> 10) + " KiB";
  if (err == ENOSPC || err == EDQUOT) {
    return status(errc::out_of_space, "pmem tier: the file system holding " + path_ + " is full (" +
                                          larder::strerror(err) + ") growing it to " + size +
                                          "; nothing held before was lost");
  }
  if (err == EFBIG) {
    return status(errc::out_of_space, "pmem tier: " + path_ + " reached the largest file size allowed (" +
                                          larder::strerror(err) + ") growing it to " + size +
                                          "; nothing held before was lost");
  }
  return status::from_errno(err, "pmem tier: cannot grow " + path_ + " to " + size +
                                      (detail != nullptr ? std::string(": ") + detail : ""));
}

}  // namespace larder::tiers
