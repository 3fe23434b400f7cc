// Automatic pod placement, the allocator's half. In a region with a
// placement table, each thread's local heap of pod 0 is a router: it owns
// no pages, so every allocation misses its fast path, and the miss sends
// it to the pod the table names for its site (the caller's return address)
// and size class. Named pods never route, so placement by hand is never
// overridden. Which pod a site gets is the runtime's business
// (runtime/placement.cpp): the table here only holds the answers, reads
// them without locks, and counts a generation that tells each thread's
// route cache when an answer changed.
#pragma once

#include "allocator/local_heap.hpp"
#include "allocator/size_class.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace larder::alloc {

class region;

// Sites are told apart by size class too, so that each of a site's pages
// holds one class: a page's pod and bin then name the sites it serves.
// Huge blocks (above kLargeMax) are one group.
inline constexpr std::uint32_t kHugeGroup = 0xFF;
inline constexpr std::uint32_t size_group(std::size_t size) noexcept {
  // The table the fast path reads anyway, where it covers the size.
  if (size <= kDirectMax) return kCache.slot_bin[(size + 15) >> 4];
  return size <= kLargeMax ? static_cast<std::uint32_t>(bin_of(size)) : kHugeGroup;
}
// The top bit keeps every key off 0, which marks an empty slot (an unknown
// site, nullptr, with a request of 0 bytes would otherwise be 0).
inline constexpr std::uint64_t kKeyMark = std::uint64_t{1} << 63;
inline std::uint64_t site_key(const void* site, std::size_t size) noexcept {
  return kKeyMark | (static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(site)) << 8) | size_group(size);
}
inline const void* key_site(std::uint64_t key) noexcept {
  return reinterpret_cast<const void*>((key & ~kKeyMark) >> 8);
}
inline std::uint32_t key_group(std::uint64_t key) noexcept { return static_cast<std::uint32_t>(key & 0xFF); }

// Where a site's allocations go. `hashed`: a fixed spread of the sites
// over pods first..first+count-1, with no learning (the process heap);
// `learned`: each new site takes a spare pod of its own, which the runtime
// keeps supplied and later regroups by write rate.
enum class placement_mode : std::uint8_t { hashed, learned };

class placement_table {
 public:
  static constexpr std::size_t kSites = 4096;  // power of two
  static constexpr std::size_t kSpares = 64;

  constexpr placement_table() noexcept = default;
  // Before any allocation in the region: `first`..`first + count - 1` are
  // the pods hashed sites spread over, or (learned) `first` is where new
  // sites go when no spare pod is left or the table is full.
  void init(placement_mode mode, std::uint32_t first, std::uint32_t count) noexcept;
  placement_mode mode() const noexcept { return mode_; }

  // The pod for `key`: its recorded one, or for a site seen the first time
  // a spare (learned) or its hash (hashed). Never 0. Lock-free.
  std::uint32_t pod_for(std::uint64_t key) noexcept;

  // --- for the runtime ----------------------------------------------------
  // Hands a pod to new sites; false when the spare list is full.
  bool offer_spare(std::uint32_t pod) noexcept;
  // Takes a spare pod back (for a site that went to the overflow pod); 0
  // when none is left.
  std::uint32_t claim_spare() noexcept;
  std::size_t spares() const noexcept;
  // Sends `key`'s new allocations to `pod` (a site already in the table).
  void assign(std::uint64_t key, std::uint32_t pod) noexcept;
  // Records `key` with `pod` before the site first allocates (a decision
  // an earlier run made); false when the key is there already or the
  // table is full.
  bool preset(std::uint64_t key, std::uint32_t pod) noexcept;
  // Makes every thread's route cache look the table up again.
  void publish() noexcept { generation.fetch_add(1, std::memory_order_acq_rel); }
  // Calls f(key, pod) for each site recorded so far.
  template <class F>
  void for_each_site(F&& f) const {
    for (const slot& s : slots_) {
      std::uint64_t key = s.key.load(std::memory_order_acquire);
      if (key == 0) continue;
      std::uint32_t pod = s.pod.load(std::memory_order_acquire);
      if (pod != 0) f(key, pod);
    }
  }
  std::uint32_t overflow_pod() const noexcept { return first_; }

  std::atomic<std::uint64_t> generation{1};

 private:
  struct slot {
    std::atomic<std::uint64_t> key{0};
    std::atomic<std::uint32_t> pod{0};  // 0 while the inserting thread picks one
  };
  std::uint32_t take_spare() noexcept;
  // The slot holding `key`; with `claim`, an empty one is taken for it
  // (*claimed) unless the table is 3/4 full. nullptr when neither.
  slot* find(std::uint64_t key, bool claim, bool* claimed) noexcept;

  placement_mode mode_ = placement_mode::hashed;
  std::uint32_t first_ = 1;
  std::uint32_t count_ = 1;
  std::atomic<std::uint32_t> spares_[kSpares] = {};
  // Sites recorded; past kSites * 3 / 4 new sites are not recorded (they go
  // to the overflow pod), so that a probe stays short.
  std::atomic<std::uint32_t> recorded_{0};
  slot slots_[kSites] = {};
};

// A router's cache of recent answers, one per thread and region: 256
// entries by (site, size group). The fast path trusts a match; only when
// the target's own page runs out does it check the generation the answer
// was filled at against the table's. So a decision reaches a site at its
// next page on each thread.
struct route_cache {
  struct entry {
    std::uint64_t key = 0;
    local_heap* target = nullptr;
  };
  static constexpr std::size_t kEntries = 256;
  entry entries[kEntries] = {};
  std::uint64_t generations[kEntries] = {};  // the table's, when each entry was filled
  const std::atomic<std::uint64_t>* table_generation = nullptr;
};

inline std::size_t route_slot(std::uint64_t key) noexcept {
  // Fibonacci hashing: the top bits of the product depend on every bit of
  // the site and the size group (one site asks for many groups).
  static_assert(route_cache::kEntries == 256);
  return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ULL) >> 56);
}

// The routed fast path: the target the cache holds for (site, size), or
// nullptr; *filled then points at the generation it was filled at
// (route_is_current compares it with the table's).
inline local_heap* cached_route(local_heap* router, std::size_t size, const void* site,
                                const std::uint64_t** filled) noexcept {
  route_cache* rc = router->routes;
  const std::uint64_t key = site_key(site, size);
  const std::size_t slot = route_slot(key);
  *filled = &rc->generations[slot];
  return rc->entries[slot].key == key ? rc->entries[slot].target : nullptr;
}
inline bool route_is_current(const local_heap* router, const std::uint64_t* filled) noexcept {
  return *filled == router->routes->table_generation->load(std::memory_order_relaxed);
}

// The calling thread's local heap for the pod `router`'s table names for
// (`site`, `size`); nullptr when none can be set up (ENOMEM).
local_heap* route_target(local_heap* router, std::size_t size, const void* site) noexcept;
void* routed_malloc(local_heap* router, std::size_t size, const void* site) noexcept;
// The pod an allocation of `size` at `site` in pod 0 of `r` goes to: 0
// without placement (transactions ask this before they allocate).
std::uint32_t placed_pod(region* r, std::size_t size, const void* site) noexcept;

}  // namespace larder::alloc
