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

placement_table::slot* placement_table::find(std::uint64_t key, bool claim, bool* claimed) noexcept {
  *claimed = false;
  const std::uint64_t hash = mix(key);
  // Open addressing; a slot's key, once set, never changes. The table is
  // kept at most 3/4 full, so a probe meets an empty slot soon.
  for (std::size_t probe = 0; probe < kSites; ++probe) {
    slot& s = slots_[(hash + probe) & (kSites - 1)];
    std::uint64_t seen = s.key.load(std::memory_order_acquire);
    if (seen == 0) {
      if (!claim || recorded_.load(std::memory_order_relaxed) >= kSites * 3 / 4) return nullptr;
      if (s.key.compare_exchange_strong(seen, key, std::memory_order_acq_rel)) {
        recorded_.fetch_add(1, std::memory_order_relaxed);
        *claimed = true;
        return &s;
      }
      // Another thread took the slot; `seen` now holds its key.
    }
    if (seen == key) return &s;
  }
  return nullptr;
}

std::uint32_t placement_table::pod_for(std::uint64_t key) noexcept {
  if (mode_ == placement_mode::hashed) return first_ + static_cast<std::uint32_t>(mix(key) % count_);
  bool claimed = false;
  slot* s = find(key, true, &claimed);
  if (s == nullptr) return first_;
  if (claimed) {
    std::uint32_t pod = take_spare();
    s->pod.store(pod, std::memory_order_release);
    return pod;
  }
  // Its inserter is choosing a pod; that takes a few instructions.
  std::uint32_t pod;
  while ((pod = s->pod.load(std::memory_order_acquire)) == 0) {
  }
  return pod;
}

bool placement_table::preset(std::uint64_t key, std::uint32_t pod) noexcept {
  bool claimed = false;
  slot* s = find(key, true, &claimed);
  if (s == nullptr || !claimed) return false;
  s->pod.store(pod, std::memory_order_release);
  return true;
}

void placement_table::assign(std::uint64_t key, std::uint32_t pod) noexcept {
  bool claimed = false;
  if (slot* s = find(key, false, &claimed)) s->pod.store(pod, std::memory_order_release);
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
