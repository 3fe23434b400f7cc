// Lanes for transactions; see lane_claims.hpp.
#include "runtime/lane_claims.hpp"

#include "allocator/thread.hpp"
#include "runtime/heap_impl.hpp"
#include "runtime/shared_writers.hpp"

#include <mutex>
#include <thread>

namespace larder {

namespace {

bool may_use(const heap_impl& impl, std::uint32_t lane) noexcept {
  return !impl.shared_writers() || impl.client_lanes[lane].load(std::memory_order_acquire);
}

// Pairs with give_lane_back's release: the lane's record, storage and
// next number as the last holder left them.
bool try_take(heap_impl& impl, std::uint32_t lane, std::uintptr_t me) noexcept {
  bool idle = false;
  if (!impl.lanes[lane].busy.compare_exchange_strong(idle, true)) return false;
  impl.lanes[lane].thread.store(me, std::memory_order_relaxed);
  return true;
}

bool take_idle_lane(heap_impl& impl, std::uintptr_t me, std::uint32_t* lane) noexcept {
  // The thread's own lane first, then one no thread has used, then any.
  for (std::uintptr_t wanted : {me, std::uintptr_t{0}}) {
    for (std::uint32_t i = 0; i < layout::kMaxLanes; ++i) {
      if (impl.lanes[i].thread.load(std::memory_order_relaxed) != wanted || !may_use(impl, i)) continue;
      if (try_take(impl, i, me)) {
        *lane = i;
        return true;
      }
    }
  }
  for (std::uint32_t i = 0; i < layout::kMaxLanes; ++i) {
    if (impl.lanes[i].busy.load(std::memory_order_relaxed) || !may_use(impl, i)) continue;
    if (try_take(impl, i, me)) {
      *lane = i;
      return true;
    }
  }
  return false;
}

}  // namespace

status take_lane(heap_impl& impl, std::uint32_t* lane) {
  std::uintptr_t me = alloc::current_tid();
  for (;;) {
    if (take_idle_lane(impl, me, lane)) return {};
    if (impl.shared_writers()) {
      std::uint32_t added = 0;
      status s;
      {
        std::lock_guard guard(impl.clients_lock);
        s = claim_client_lane(impl, &added);
      }
      if (s.ok() && try_take(impl, added, me)) {
        *lane = added;
        return {};
      }
      // A full table: wait for one of the client's own lanes.
      if (!s.ok() && !s.is(errc::table_full)) return s;
    }
    std::this_thread::yield();
  }
}

void give_lane_back(heap_impl& impl, std::uint32_t lane) noexcept {
  impl.lanes[lane].busy.store(false, std::memory_order_release);
}

bool other_lanes_held(const heap_impl& impl, std::uint32_t mine) noexcept {
  for (std::uint32_t i = 0; i < layout::kMaxLanes; ++i)
    if (i != mine && impl.lanes[i].busy.load()) return true;
  return false;
}

}  // namespace larder
