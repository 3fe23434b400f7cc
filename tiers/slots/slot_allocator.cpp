// First-fit over freed runs, then the tail of the storage (slot_allocator.hpp).
#include "tiers/slots/slot_allocator.hpp"

#include <algorithm>
#include <iterator>

namespace larder::tiers {

slot_run slot_allocator::take_from(std::map<std::uint64_t, std::uint64_t>::iterator free_run, std::uint64_t want) {
  slot_run run{free_run->first, std::min(want, free_run->second)};
  std::uint64_t left = free_run->second - run.count;
  free_.erase(free_run);
  if (left > 0) free_.emplace(run.first + run.count, left);
  used_ += run.count;
  return run;
}

slot_run slot_allocator::take(std::uint64_t want) {
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    if (it->second >= want) return take_from(it, want);
  }
  if (end_ < capacity_) {
    slot_run run{end_, std::min(want, capacity_ - end_)};
    end_ += run.count;
    used_ += run.count;
    return run;
  }
  if (!free_.empty()) return take_from(free_.begin(), want);
  return slot_run{0, 0};
}

void slot_allocator::adopt(const std::vector<std::uint64_t>& used) {
  free_.clear();
  used_ = used.size();
  end_ = used.empty() ? 0 : used.back() + 1;
  std::uint64_t next = 0;
  for (std::uint64_t slot : used) {
    if (slot > next) free_.emplace(next, slot - next);
    next = slot + 1;
  }
}

void slot_allocator::give_back(slot_run run) {
  if (run.count == 0) return;
  used_ -= run.count;
  auto next = free_.lower_bound(run.first);
  if (next != free_.end() && next->first == run.first + run.count) {
    run.count += next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {
    auto previous = std::prev(next);
    if (previous->first + previous->second == run.first) {
      run.first = previous->first;
      run.count += previous->second;
      free_.erase(previous);
    }
  }
  if (run.first + run.count == end_) {
    end_ = run.first;  // the tail is handed out again before any freed run is split
  } else {
    free_.emplace(run.first, run.count);
  }
}

}  // namespace larder::tiers
