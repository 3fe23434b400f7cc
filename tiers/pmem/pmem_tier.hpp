// The persistent-memory tier: pods' pages in page slots of one file mapped
// through libpmem2 (port/pmem_file.hpp), copied in with non-temporal
// stores and made durable with libpmem2's flush and drain. On a DAX file
// system that is real persistent memory; on any other file libpmem2
// emulates it (its flushes become msync), which is_dax() and the message
// at open say. Entry point: pmem_tier::open. The file is scratch, as the
// disk tier's is: open creates or empties it and the destructor removes
// it.
#pragma once

#include "tiers/slots/slotted_tier.hpp"

#include <memory>
#include <string>

namespace larder::port {
class pmem_file;
}  // namespace larder::port

namespace larder::tiers {

struct pmem_tier_options {
  // The most the tier holds; writes past it fail with out_of_space. Its
  // address space is reserved at open, its storage taken as it fills.
  std::uint64_t capacity_bytes = std::uint64_t{1} << 30;
  // The file and its mapping grow by at least this much at a time (a
  // multiple of kTierPageSize), so that few growths (fallocate, map) are
  // needed; less where the file system has no room for a whole step.
  std::uint64_t growth_bytes = std::uint64_t{64} << 20;
};

class pmem_tier final : public slotted_tier {
 public:
  // Creates (or empties) the file at `path`. invalid_argument for a
  // capacity or growth that is no page multiple or zero; unsupported where
  // libpmem2 is not installed; errno values of open and of mapping, with
  // libpmem2's own text in the message.
  static status open(const std::string& path, const pmem_tier_options& options, std::unique_ptr<pmem_tier>* out);
  ~pmem_tier() override;

  // Every write() is durable when it returns: its copies were flushed and
  // drained on the writing thread. Nothing is left to do here.
  status sync() override { return {}; }

  // Whether the file is on a DAX file system (real persistent memory);
  // false where libpmem2 emulates it on an ordinary file with msync.
  bool is_dax() const;
  // "dax" or "emulated (msync)".
  const char* mode() const;
  const std::string& path() const { return path_; }

 private:
  pmem_tier(std::string path, int fd, std::unique_ptr<port::pmem_file> file, const pmem_tier_options& options);
  status provide(std::uint64_t end) override;
  // Adjacent pages go to adjacent slots in one copy.
  status transfer(const std::vector<page_ref>& pages, const std::vector<std::uint64_t>& slots,
                  bool writing) override;
  status grow_error(int err, const char* detail, std::uint64_t length) const;

  const std::string path_;
  const int fd_;
  std::unique_ptr<port::pmem_file> file_;
  const pmem_tier_options options_;
};

}  // namespace larder::tiers
