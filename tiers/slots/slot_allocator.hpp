// The page slots of a tier's storage (a file, a mapping, device memory):
// which are free, kept as runs of adjacent slots so that a pod's pages get
// adjacent slots and move in few large transfers. Entry points:
// slot_allocator::take and give_back. Not thread-safe: slotted_tier holds
// its lock around every call.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

namespace larder::tiers {

struct slot_run {
  std::uint64_t first;
  std::uint64_t count;  // 0: nothing was free
};

class slot_allocator {
 public:
  explicit slot_allocator(std::uint64_t capacity) : capacity_(capacity) {}

  // Up to `want` (> 0) adjacent free slots: the first freed run that holds
  // them all, else slots past every slot handed out so far (the storage
  // grows), else the first freed run, shorter than asked.
  slot_run take(std::uint64_t want);
  // Starts over with exactly `used` (ascending, distinct, below capacity)
  // handed out: a tier's index read back.
  void adopt(const std::vector<std::uint64_t>& used);
  // Frees a run that take() handed out; freed neighbours merge with it.
  void give_back(slot_run run);

  std::uint64_t capacity() const { return capacity_; }
  std::uint64_t used() const { return used_; }
  // Slots below this are handed out or freed runs: the storage's extent.
  std::uint64_t end() const { return end_; }

 private:
  slot_run take_from(std::map<std::uint64_t, std::uint64_t>::iterator free_run, std::uint64_t want);

  std::map<std::uint64_t, std::uint64_t> free_;  // first slot -> count, all below end_
  std::uint64_t capacity_;
  std::uint64_t end_ = 0;
  std::uint64_t used_ = 0;
};

}  // namespace larder::tiers
