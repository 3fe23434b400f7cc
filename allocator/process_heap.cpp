// The process heap: the anonymous region behind malloc, set up on the first
// allocation of the process (possibly before any constructor has run).
#include "allocator/alloc.hpp"
#include "allocator/options.hpp"
#include "allocator/placement.hpp"
#include "allocator/stats.hpp"
#include "allocator/thread.hpp"
#include "port/os.hpp"

#include <sched.h>
#include <stdlib.h>

#include <atomic>

namespace larder::alloc {

region* g_process_region = nullptr;
std::uintptr_t g_process_base = 0;
std::size_t g_process_size = 0;

namespace {

constinit region g_process_region_storage;
// Sites spread over pods 1..16 (LARDER_PLACEMENT=sites): the process heap
// is not tracked, so there is nothing to learn from.
constinit placement_table g_process_placement;
constexpr std::uint32_t kProcessPlacementPods = 16;
constexpr std::uint64_t kPlacementSites = 1;  // the word's index in the option row
std::atomic<int> g_process_state{0};  // 0 none, 1 setting up, 2 ready, 3 failed

bool map_process_heap() {
  read_options();
  auto reserve = static_cast<std::size_t>(option_value(option::process_reserve));
  if (reserve > layout::kMaxReserve) reserve = layout::kMaxReserve;
  reserve &= ~(kSegmentSize - 1);
  if (reserve < 4 * kSegmentSize) reserve = 4 * kSegmentSize;
  // Halve the request while the address space limit (RLIMIT_AS) refuses it.
  void* base = nullptr;
  while (port::map_aligned(reserve, kSegmentSize, &base) != 0) {
    if (reserve <= 4 * kSegmentSize) return false;
    reserve /= 2;
  }
  g_process_region_storage.init(reinterpret_cast<std::uintptr_t>(base), reserve, reserve, false, true, {});
  g_process_region_storage.allow_memory_moves();
  if (option_value(option::placement) == kPlacementSites) {
    g_process_placement.init(placement_mode::hashed, 1, kProcessPlacementPods);
    g_process_region_storage.set_placement(&g_process_placement);
  }
  auto* meta = g_process_region_storage.meta();
  meta->magic = layout::kMetaMagic;
  meta->segments_high = 1;
  meta->segments[0] = layout::segment_entry(layout::kSegmentMeta, 0);
  meta->pods[0].in_use = 1;
  if (register_region(&g_process_region_storage) != 0) return false;
  return true;
}

}  // namespace

region* process_region() noexcept {
  int state = g_process_state.load(std::memory_order_acquire);
  if (state == 2) return g_process_region;
  int expected = 0;
  if (g_process_state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
    bool ok = map_process_heap();
    if (ok) {
      g_process_base = g_process_region_storage.base();
      g_process_size = g_process_region_storage.reserve();
      g_process_region = &g_process_region_storage;
    }
    g_process_state.store(ok ? 2 : 3, std::memory_order_release);
    if (!ok) warning("cannot reserve address space for the process heap");
    return g_process_region;
  }
  while ((state = g_process_state.load(std::memory_order_acquire)) == 1) sched_yield();
  return state == 2 ? g_process_region : nullptr;
}

namespace {

void print_stats_at_exit() {
  if (option_value(option::show_stats) != 0) print_stats();
}

// Runs when the library is loaded, after libc is set up: registers what
// cannot be registered from inside the first malloc.
__attribute__((constructor(101))) void on_library_load() {
  read_options();
  process_region();
  install_thread_handlers();
  atexit(print_stats_at_exit);
}

}  // namespace

}  // namespace larder::alloc
