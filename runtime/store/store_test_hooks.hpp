// Test-only control of a store handle: stopping it at a kill point of its
// next operations as if its process were killed there, and abandoning it.
// What a stopped handle leaves is what a SIGKILL leaves once the heap has
// rolled back its lane: its transaction is rolled back, its stripe is left
// marked as held by it, nothing is released, its slot reads as dead.
#pragma once

#include <larder/store.hpp>

#include "runtime/store/store_impl.hpp"

namespace larder::store_test {

// The handle stops at the `steps`-th kill point from now (1: the first).
inline void stop_after(store& s, int steps) { s.impl()->steps_to_stop = steps; }
inline bool stopped(const store& s) { return s.impl()->stopped; }
// Leaves the handle now, holding what it holds, as a killed client would.
inline void abandon(store& s) {
  store_internal::guarded_operation guard(*s.impl());
  s.impl()->stopped = true;
  s.impl()->slot().state.store(store_layout::kAbandonedClient);
}
inline std::uint32_t client_of(const store& s) { return s.impl()->client; }

}  // namespace larder::store_test
