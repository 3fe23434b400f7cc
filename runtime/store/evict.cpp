// Eviction: when a create does not fit, sealed objects that no client
// references are removed, least recently used first (Plasma's LRU). An
// object's last use is the store clock when it was sealed or last
// released, a word written under its stripe lock, so gets and releases
// touch no shared list; eviction pays instead, with one pass over the
// index per round.
#include "runtime/store/store_impl.hpp"

#include <algorithm>
#include <vector>

namespace larder::store_internal {

std::uint64_t bytes_in_store(const store_header* h) noexcept {
  std::uint64_t bytes = 0;
  for (const index_stripe& stripe : h->stripes) bytes += __atomic_load_n(&stripe.bytes, __ATOMIC_RELAXED);
  return bytes;
}

status evict(store_impl& s, std::uint64_t bytes, std::uint64_t* freed) noexcept {
  *freed = 0;
  struct candidate {
    std::uint64_t last_use;
    object_header* object;
    std::uint64_t hash;
  };
  std::vector<candidate> candidates;
  for (index_stripe& stripe : s.header->stripes) {
    stripe_lock lock(s, stripe);
    if (!lock.result().ok()) return lock.result();
    for_each_object(stripe, [&](std::uintptr_t*, object_header* o) {
      if (o->state.load(std::memory_order_relaxed) == kSealed && o->refcount.load(std::memory_order_relaxed) == 0)
        candidates.push_back({o->last_use.load(std::memory_order_relaxed), o, o->hash});
    });
  }
  std::sort(candidates.begin(), candidates.end(),
            [](const candidate& a, const candidate& b) { return a.last_use < b.last_use; });
  for (const candidate& c : candidates) {
    if (*freed >= bytes) break;
    index_stripe& stripe = stripe_of(s.header, c.hash);
    stripe_lock lock(s, stripe);
    if (!lock.result().ok()) return lock.result();
    // It may have been got, deleted or replaced since the pass.
    for (std::uint64_t i = 0; i < stripe.capacity; ++i) {
      if (stripe.slots[i] <= kTombstone || slot_object(stripe.slots[i]) != c.object) continue;
      object_header* o = c.object;
      if (o->state.load(std::memory_order_relaxed) != kSealed || o->refcount.load(std::memory_order_relaxed) != 0)
        break;
      std::uint64_t size = o->data_size + o->metadata_size;
      if (status st = remove_object(s, stripe, &stripe.slots[i]); !st.ok()) return st;
      *freed += size == 0 ? 1 : size;
      s.evictions += 1;
      break;
    }
  }
  return {};
}

}  // namespace larder::store_internal
