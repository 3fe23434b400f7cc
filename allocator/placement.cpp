#include "allocator/placement.hpp"

#include "allocator/alloc.hpp"
#include "allocator/region.hpp"
#include "allocator/thread.hpp"

#include <cerrno>

namespace larder::alloc {

namespace {

inline std::uint64_t mix(std::uint64_t x) noexcept {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x;
}

}  // namespace

void placement_table::init(placement_mode mode, std::uint32_t first, std::uint32_t count) noexcept {
  mode_ = mode;
  first_ = first;
  count_ = count == 0 ? 1 : count;
}

std::uint32_t placement_table::claim_spare() noexcept {
  for (auto& spare : spares_) {
    std::uint32_t pod = spare.load(std::memory_order_acquire);
    if (pod != 0 && spare.compare_exchange_strong(pod, 0, std::memory_order_acq_rel)) return pod;
  }
  return 0;
}

std::uint32_t placement_table::take_spare() noexcept {
  std::uint32_t pod = claim_spare();
  return pod != 0 ? pod : first_;
}

bool placement_table::offer_spare(std::uint32_t pod) noexcept {
  for (auto& spare : spares_) {
    std::uint32_t empty = 0;
    if (spare.compare_exchange_strong(empty, pod, std::memory_order_acq_rel)) return true;
  }
  return false;
}

std::size_t placement_table::spares() const noexcept {
  std::size_t n = 0;
  for (const auto& spare : spares_) n += spare.load(std::memory_order_relaxed) != 0;
  return n;
}

std::uint32_t placement_table::pod_for(std::uint64_t key) noexcept {
  const std::uint64_t hash = mix(key);
  if (mode_ == placement_mode::hashed) return first_ + static_cast<std::uint32_t>(hash % count_);
  // Open addressing; a slot's key, once set, never changes. The table is
  // kept at most 3/4 full, so a probe meets an empty slot soon.
  for (std::size_t probe = 0; probe < kSites; ++probe) {
    slot& s = slots_[(hash + probe) & (kSites - 1)];
    std::uint64_t seen = s.key.load(std::memory_order_acquire);
    if (seen == 0) {
      if (recorded_.load(std::memory_order_relaxed) >= kSites * 3 / 4) return first_;
      if (s.key.compare_exchange_strong(seen, key, std::memory_order_acq_rel)) {
        recorded_.fetch_add(1, std::memory_order_relaxed);
        std::uint32_t pod = take_spare();
        s.pod.store(pod, std::memory_order_release);
        return pod;
      }
      // Another thread took the slot; `seen` now holds its key.
    }
    if (seen != key) continue;
    // Its inserter is choosing a pod; that takes a few instructions.
    std::uint32_t pod;
    while ((pod = s.pod.load(std::memory_order_acquire)) == 0) {
    }
    return pod;
  }
  return first_;
}

bool placement_table::preset(std::uint64_t key, std::uint32_t pod) noexcept {
  const std::uint64_t hash = mix(key);
  for (std::size_t probe = 0; probe < kSites; ++probe) {
    slot& s = slots_[(hash + probe) & (kSites - 1)];
    std::uint64_t seen = s.key.load(std::memory_order_acquire);
    if (seen == key) return false;
    if (seen != 0) continue;
    if (recorded_.load(std::memory_order_relaxed) >= kSites * 3 / 4) return false;
    if (!s.key.compare_exchange_strong(seen, key, std::memory_order_acq_rel)) return false;
    recorded_.fetch_add(1, std::memory_order_relaxed);
    s.pod.store(pod, std::memory_order_release);
    return true;
  }
  return false;
}

void placement_table::assign(std::uint64_t key, std::uint32_t pod) noexcept {
  const std::uint64_t hash = mix(key);
  for (std::size_t probe = 0; probe < kSites; ++probe) {
    slot& s = slots_[(hash + probe) & (kSites - 1)];
    std::uint64_t seen = s.key.load(std::memory_order_acquire);
    if (seen == 0) return;
    if (seen == key) {
      s.pod.store(pod, std::memory_order_release);
      return;
    }
  }
}

local_heap* route_target(local_heap* router, std::size_t size, const void* site) noexcept {
  region* r = router->owner_region.load(std::memory_order_acquire);
  placement_table* table = r != nullptr ? r->placement() : nullptr;
  if (table == nullptr) return nullptr;
  route_cache* rc = router->routes;
  const std::uint64_t key = site_key(site, size);
  const std::size_t slot = route_slot(key);
  const std::uint64_t generation = table->generation.load(std::memory_order_acquire);
  local_heap* target = rc->entries[slot].key == key && rc->generations[slot] == generation
                           ? rc->entries[slot].target
                           : local_heap_for(r, table->pod_for(key));
  if (target == nullptr) return nullptr;
  rc->entries[slot] = {key, target};
  rc->generations[slot] = generation;
  return target;
}

void* routed_malloc(local_heap* router, std::size_t size, const void* site) noexcept {
  local_heap* target = route_target(router, size, site);
  if (target == nullptr) {
    region* r = router->owner_region.load(std::memory_order_relaxed);
    errno = r != nullptr && r->writable() ? ENOMEM : EROFS;
    return nullptr;
  }
  return heap_malloc(target, size);
}

std::uint32_t placed_pod(region* r, std::size_t size, const void* site) noexcept {
  placement_table* table = r->placement();
  return table != nullptr ? table->pod_for(site_key(site, size)) : 0;
}

}  // namespace larder::alloc
