// Cascades between the tiers below DRAM (docs/tiers.md, "Several tiers"):
// when a tier fills, the evicted pages of its coldest pods move one tier
// down. A page's copy is the one in the topmost tier that holds it (the
// loader looks top down), so a move writes the tier below first and only
// then forgets the page above, under `moving` held exclusively; a copy a
// lower tier keeps of a page that was faulted back, or that a tier above
// holds again, is stale and forgotten here too. Cascades run under
// m.lock, so no eviction writes a tier meanwhile. Several tiers are for
// anonymous heaps only, which a crash ends with their process: nothing
// here needs to be durable.
#include "runtime/migration_state.hpp"

#include "allocator/dirty_map.hpp"
#include "runtime/heap_impl.hpp"

#include <algorithm>
#include <map>

namespace larder {
namespace {

constexpr std::size_t kPage = port::kOsPageSize;
// Pages moved down at once: bounds the buffer and how long the loader
// waits on `moving`.
constexpr std::size_t kMoveBatch = 256;

status forget(migration_state& m, std::size_t level, const std::vector<std::uint64_t>& pages) {
  if (pages.empty()) return {};
  std::unique_lock guard(m.moving);
  return m.chain[level]->drop_pages(kTierPod, pages.data(), pages.size());
}

// Moves `pages` (held by tier `level`, their current copies) one tier down.
status move_down(migration_state& m, std::size_t level, const std::vector<std::uint64_t>& pages) {
  struct alignas(kPage) batch_buffer {
    char bytes[kMoveBatch * kPage];
  };
  auto buffer = std::make_unique<batch_buffer>();
  for (std::size_t i = 0; i < pages.size(); i += kMoveBatch) {
    const std::size_t n = std::min(kMoveBatch, pages.size() - i);
    std::vector<tiers::page_ref> refs(n);
    for (std::size_t k = 0; k < n; ++k) refs[k] = {pages[i + k], buffer->bytes + k * kPage};
    if (status s = m.chain[level]->read(kTierPod, refs.data(), n); !s.ok()) return s;
    if (status s = make_room(m, level + 1, n); !s.ok()) return s;
    if (status s = m.chain[level + 1]->write(kTierPod, refs.data(), n); !s.ok()) return s;
    if (status s = forget(m, level, std::vector<std::uint64_t>(pages.begin() + i, pages.begin() + i + n)); !s.ok())
      return s;
  }
  return {};
}

}  // namespace

status make_room(migration_state& m, std::size_t level, std::uint64_t pages) {
  if (level >= m.chain.size()) return {};
  tiers::tier& tier = *m.chain[level];
  const tiers::tier_usage before = tier.usage();
  const std::uint64_t capacity = before.capacity_pages;
  const bool full = before.used_pages + pages > capacity;
  if (!full && before.used_pages <= capacity - capacity / 8) return {};

  // The pages this tier holds the current copy of, by pod; the rest are
  // stale.
  heap_impl& impl = m.impl;
  std::vector<std::uint64_t> stale;
  std::map<std::uint32_t, std::vector<std::uint64_t>> current;
  for (std::uint64_t index : tier.held_pages(kTierPod)) {
    bool above = false;
    for (std::size_t k = 0; k < level && !above; ++k) above = m.chain[k]->holds(kTierPod, index);
    if (above || !page_evicted(m, impl.region.base() + index * kPage)) {
      stale.push_back(index);
      continue;
    }
    current[alloc::pod_of_address(impl.region, impl.region.base() + index * kPage)].push_back(index);
  }
  if (status s = forget(m, level, stale); !s.ok()) return s;
  if (level + 1 == m.chain.size()) return {};

  const std::uint64_t target = std::min(capacity - capacity / 4, capacity - std::min(capacity, pages));
  std::vector<std::pair<std::uint64_t, std::uint32_t>> coldest;  // (last touch, pod)
  for (const auto& entry : current) {
    const std::uint32_t pod = entry.first;
    coldest.emplace_back(pod < layout::kMaxPods ? m.last_touch_ns[pod].load(std::memory_order_relaxed) : 0, pod);
  }
  std::sort(coldest.begin(), coldest.end());
  for (const auto& entry : coldest) {
    if (tier.usage().used_pages <= target) break;
    if (status s = move_down(m, level, current[entry.second]); !s.ok()) return s;
  }
  return {};
}

}  // namespace larder
