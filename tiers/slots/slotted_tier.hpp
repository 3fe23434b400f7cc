// The part every tier backend shares: pods' pages kept in numbered page
// slots of the backend's storage (a file, a mapping, device memory), the
// index pod -> page -> slot in memory, and the rules of tier.hpp that hold
// whatever the storage is (validation, all-or-nothing writes, messages).
// A backend supplies the storage (provide) and the copies (transfer).
// Entry points: the tier calls, implemented here once.
#pragma once

#include "tiers/slots/slot_allocator.hpp"
#include "tiers/tier.hpp"

#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace larder::tiers {

class slotted_tier : public tier {
 public:
  status write(std::uint64_t pod, const page_ref* pages, std::size_t count) final;
  status read(std::uint64_t pod, const page_ref* pages, std::size_t count) final;
  status drop(std::uint64_t pod) final;
  status drop_pages(std::uint64_t pod, const std::uint64_t* indexes, std::size_t count) final;
  bool holds(std::uint64_t pod, std::uint64_t index) const final;
  std::vector<std::uint64_t> held_pages(std::uint64_t pod) const final;
  tier_usage usage() const final;

  // One page held: what a backend whose copies outlive it records.
  struct slot_entry {
    std::uint64_t pod, index, slot;
  };
  // Every page held (a snapshot).
  std::vector<slot_entry> entries() const;

 protected:
  // Starts over holding exactly `held` (an index a backend read back):
  // corrupt for a slot past the capacity or given twice.
  status adopt(const std::vector<slot_entry>& held);

  // `name` starts every message ("disk tier /var/tmp/t", "GPU tier on
  // device 0"); `capacity_pages` is the most slots handed out at once.
  slotted_tier(std::string name, std::uint64_t capacity_pages);
  const std::string& name() const { return name_; }

  // Makes every slot below `end` usable before a transfer touches it.
  // Called under the index's lock (so one at a time), with an `end` that
  // may be below one seen before (freed slots at the tail); what was
  // provided stays. out_of_space (with what is full) when the storage
  // cannot grow; the slots asked for are then given back.
  virtual status provide(std::uint64_t end) = 0;
  // Copies each page's memory to (writing) or from slot `slots[i]`. Pages
  // are sorted by index and slots handed out in runs, so adjacent pages
  // mostly have adjacent slots. Runs outside the lock, on the calling
  // thread, possibly on several threads at once for different slots.
  virtual status transfer(const std::vector<page_ref>& pages, const std::vector<std::uint64_t>& slots,
                          bool writing) = 0;

 private:
  using page_slots = std::unordered_map<std::uint64_t, std::uint64_t>;  // page index -> slot

  status take_slots(std::size_t count, std::vector<std::uint64_t>* slots);
  void give_back_slots(const std::vector<std::uint64_t>& slots);

  const std::string name_;
  mutable std::mutex mutex_;  // guards what follows
  slot_allocator slots_;
  std::unordered_map<std::uint64_t, page_slots> pods_;
};

}  // namespace larder::tiers
