// slotted_tier (slotted_tier.hpp): the index under one lock; transfers,
// the backend's, outside it.
#include "tiers/slots/slotted_tier.hpp"

#include "tiers/page_refs.hpp"

#include <algorithm>
#include <cstdint>
#include <utility>

namespace larder::tiers {

slotted_tier::slotted_tier(std::string name, std::uint64_t capacity_pages)
    : name_(std::move(name)), slots_(capacity_pages) {}

status slotted_tier::write(std::uint64_t pod, const page_ref* pages, std::size_t count) {
  if (count == 0) return {};
  std::vector<page_ref> sorted;
  if (status s = sorted_pages(pages, count, &sorted); !s.ok()) return s;
  std::vector<std::uint64_t> slots;
  if (status s = take_slots(count, &slots); !s.ok()) return s;
  if (status s = transfer(sorted, slots, true); !s.ok()) {
    std::lock_guard lock(mutex_);
    give_back_slots(slots);
    return s;
  }
  // Copies go to fresh slots and replace the old ones only now, so that a
  // failed write leaves every page held before intact.
  std::lock_guard lock(mutex_);
  page_slots& held = pods_[pod];
  for (std::size_t i = 0; i < count; ++i) {
    auto [it, added] = held.try_emplace(sorted[i].index, slots[i]);
    if (!added) {
      slots_.give_back(slot_run{it->second, 1});
      it->second = slots[i];
    }
  }
  return {};
}

status slotted_tier::read(std::uint64_t pod, const page_ref* pages, std::size_t count) {
  std::vector<page_ref> sorted;
  if (status s = sorted_pages(pages, count, &sorted); !s.ok()) return s;
  std::vector<std::uint64_t> slots(count);
  {
    std::lock_guard lock(mutex_);
    static const page_slots kNothing;
    auto found = pods_.find(pod);
    const page_slots& held = found == pods_.end() ? kNothing : found->second;
    for (std::size_t i = 0; i < count; ++i) {
      auto slot = held.find(sorted[i].index);
      if (slot == held.end()) {
        return status(errc::not_found, name_ + " holds no copy of page " + std::to_string(sorted[i].index) +
                                           " of pod " + std::to_string(pod));
      }
      slots[i] = slot->second;
    }
  }
  return transfer(sorted, slots, false);
}

status slotted_tier::drop(std::uint64_t pod) {
  std::lock_guard lock(mutex_);
  auto held = pods_.find(pod);
  if (held == pods_.end()) return {};
  for (const auto& [index, slot] : held->second) slots_.give_back(slot_run{slot, 1});
  pods_.erase(held);
  return {};
}

status slotted_tier::drop_pages(std::uint64_t pod, const std::uint64_t* indexes, std::size_t count) {
  std::lock_guard lock(mutex_);
  auto held = pods_.find(pod);
  if (held == pods_.end()) return {};
  for (std::size_t i = 0; i < count; ++i) {
    auto page = held->second.find(indexes[i]);
    if (page == held->second.end()) continue;
    slots_.give_back(slot_run{page->second, 1});
    held->second.erase(page);
  }
  if (held->second.empty()) pods_.erase(held);
  return {};
}

std::vector<std::uint64_t> slotted_tier::held_pages(std::uint64_t pod) const {
  std::lock_guard lock(mutex_);
  return held_indexes(pods_, pod);
}

bool slotted_tier::holds(std::uint64_t pod, std::uint64_t index) const {
  std::lock_guard lock(mutex_);
  auto held = pods_.find(pod);
  return held != pods_.end() && held->second.count(index) != 0;
}

tier_usage slotted_tier::usage() const {
  std::lock_guard lock(mutex_);
  return tier_usage{slots_.capacity(), slots_.used()};
}

std::vector<slotted_tier::slot_entry> slotted_tier::entries() const {
  std::lock_guard lock(mutex_);
  std::vector<slot_entry> out;
  for (const auto& [pod, pages] : pods_) {
    for (const auto& [index, slot] : pages) out.push_back({pod, index, slot});
  }
  return out;
}

status slotted_tier::adopt(const std::vector<slot_entry>& held) {
  std::vector<std::uint64_t> used;
  std::unordered_map<std::uint64_t, page_slots> pods;
  for (const slot_entry& e : held) {
    if (e.slot >= slots_.capacity()) return status(errc::corrupt, name_ + ": its index names a slot past its capacity");
    if (!pods[e.pod].try_emplace(e.index, e.slot).second)
      return status(errc::corrupt, name_ + ": its index gives one page twice");
    used.push_back(e.slot);
  }
  std::sort(used.begin(), used.end());
  if (std::adjacent_find(used.begin(), used.end()) != used.end())
    return status(errc::corrupt, name_ + ": its index gives one slot twice");
  std::lock_guard lock(mutex_);
  if (!used.empty()) {
    if (status s = provide(used.back() + 1); !s.ok()) return s;
  }
  slots_.adopt(used);
  pods_ = std::move(pods);
  return {};
}

status slotted_tier::take_slots(std::size_t count, std::vector<std::uint64_t>* slots) {
  std::lock_guard lock(mutex_);
  slots->reserve(count);
  while (slots->size() < count) {
    slot_run run = slots_.take(count - slots->size());
    if (run.count == 0) {
      give_back_slots(*slots);
      return status(errc::out_of_space, name_ + " is full: " + std::to_string(slots_.used()) + " of " +
                                            std::to_string(slots_.capacity()) + " pages held, " +
                                            std::to_string(count) + " more asked");
    }
    for (std::uint64_t s = run.first; s < run.first + run.count; ++s) slots->push_back(s);
  }
  if (status s = provide(slots_.end()); !s.ok()) {
    give_back_slots(*slots);
    return s;
  }
  return {};
}

void slotted_tier::give_back_slots(const std::vector<std::uint64_t>& slots) {
  for (std::uint64_t slot : slots) slots_.give_back(slot_run{slot, 1});
}

}  // namespace larder::tiers
