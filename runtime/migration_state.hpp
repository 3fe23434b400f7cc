// What the migrator keeps for one open heap (runtime/migration.cpp): the
// policy, the tier, the page source that serves evicted pages back, pins,
// when each pod was last touched, and the counters of migration_info.
// Shared by migration.cpp (passes, evictions, the thread) and
// migration_api.cpp (the public calls).
#pragma once

#include "port/write_hold.hpp"
#include "port/write_tracker.hpp"
#include "recovery/layout.hpp"
#include "tiers/tier.hpp"

#include <larder/tiers.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace larder {

class heap_impl;
struct migration_state;

// The tier holds a heap's evicted pages under this one pod, each under its
// page number in the heap: a copy never depends on which pod the page's
// segment belongs to by the time it is read back.
inline constexpr std::uint64_t kTierPod = 0;

// The most tiers a policy names, top to bottom.
inline constexpr std::size_t kMaxTiers = 4;

// Serves evicted pages back from the tier; runs on the tracker's loader
// thread, so it takes no lock a pass holds (a pass may itself touch an
// evicted page and wait for this).
class tier_source final : public port::page_source {
 public:
  explicit tier_source(migration_state& m) : m_(m) {}
  int fill(const std::uintptr_t* pages, std::size_t count, void* out) noexcept override;
  void installed(const std::uintptr_t* pages, std::size_t count, bool touched) noexcept override;
  // When the pages fit under the budget with what came back since the
  // last pass.
  bool may_prefetch(std::size_t pages) noexcept override;
  void lost(std::uintptr_t page, int error) noexcept override;

 private:
  migration_state& m_;
};

struct migration_state {
  migration_state(heap_impl& heap, int process) : impl(heap), pid(process) {}

  heap_impl& impl;
  tier_source source{*this};

  // Guards what follows up to the counters: the policy, the tiers, pins;
  // held through each pass, eviction and cascade.
  std::mutex lock;
  migration_policy policy;
  // policy.tiers' backends, top to bottom. A page's copy is in the
  // topmost tier that holds it; lower ones may hold stale copies, which
  // cascades forget.
  std::vector<std::unique_ptr<tiers::tier>> chain;
  // `chain` for the loader's thread, which takes no lock `lock` guards:
  // replaced only while no page is evicted, so never while one is loaded.
  std::atomic<tiers::tier*> serving[kMaxTiers] = {};
  // Taken shared by the loader while it finds and reads pages, and
  // exclusively by a cascade while it drops pages from the tier they left:
  // the loader never finds a page gone, nor reads a slot handed on.
  std::shared_mutex moving;
  bool pinned[layout::kMaxPods] = {};
  port::write_hold hold;

  // The thread that runs passes while a budget is set.
  std::thread thread;
  // The process the state belongs to: a forked child has a copy it does
  // not use (runtime/migration_api.cpp, own_state).
  const int pid;
  std::condition_variable wake;
  bool stopping = false;
  // Passes run, and their end, for threads held by hold_for_budget.
  std::uint64_t passes = 0;
  std::condition_variable pass_done;

  // Written by passes and by the loader's thread (tier_source).
  std::atomic<std::uint64_t> last_touch_ns[layout::kMaxPods] = {};
  std::atomic<std::uint64_t> evictions{0};
  std::atomic<std::uint64_t> faults{0};
  std::atomic<std::uint64_t> prefetched_pages{0};
  std::atomic<std::uint64_t> lost_pages{0};
  std::atomic<std::uint64_t> budget{0};  // policy.dram_budget, for the loader's thread
  // Resident pod bytes at the last pass, and pages loaded since: a pass
  // starts early when they pass the budget.
  std::atomic<std::uint64_t> resident_at_pass{0};
  std::atomic<std::uint64_t> loaded_since_pass{0};
  // Bytes of segments acquired since the last pass (hold_for_budget).
  std::atomic<std::uint64_t> acquired_since_pass{0};

  // What this process knows to be evicted: each page not back yet, with
  // the evictions of it outstanding (a page the loader installed may be
  // evicted again before the loader reports it installed). Kept here, not
  // read from the heap: segments change kind under evicted pages (a freed
  // huge block, a segment taken again), and the loader's thread must
  // never touch heap memory, which only it could fault back. A leaf lock,
  // which the loader's thread takes too.
  std::mutex evicted_lock;
  std::unordered_map<std::uintptr_t, std::uint32_t> evicted;
  // Pages of a shm heap back since the last pass, whose bits in their
  // segment headers (which an open after a crash reads) a pass clears.
  std::vector<std::uintptr_t> came_back;
};

// Evicted pages (migration.cpp): whether a page is, the count of them,
// and clearing the header bits of pages come back (under m.lock, on a
// thread that may fault).
bool page_evicted(migration_state& m, std::uintptr_t page);
std::uint64_t evicted_page_count(migration_state& m);
void clear_bits_of_pages_back(migration_state& m);

// Passes and evictions (migration.cpp), under m.lock. *pages_moved (where
// given): the pages the eviction dropped.
status evict_one_pod(migration_state& m, std::uint32_t pod, std::uint64_t* pages_moved = nullptr);
status migration_pass(migration_state& m);
// Makes sure the heap is tracked by the uffd tracker, starting it if the
// heap is not tracked: `unsupported` where pages cannot be served on touch.
status ensure_migration_tracking(heap_impl& impl);
// Bytes of pod pages resident now (mincore of every pod segment), per pod
// into per_pod[kMaxPods] where given.
std::uint64_t resident_pod_bytes(heap_impl& impl, std::uint64_t* per_pod);
// Evicted pages: as the migrating process knows them, or as a shm heap's
// segment headers record them (another process, a forked child).
std::uint64_t evicted_pages_recorded(heap_impl& impl);
void start_migrator_thread(migration_state& m);
void stop_migrator_thread(migration_state& m) noexcept;
// Cascades (migration_cascade.cpp), under m.lock. Makes room in tier
// `level` for `pages` more: forgets its stale copies, and while it holds
// more than seven eighths of its capacity (or too much for `pages`), moves
// the evicted pages of its coldest pods to the tier below, until it holds
// three quarters. The bottom tier only forgets stale copies.
status make_room(migration_state& m, std::size_t level, std::uint64_t pages);

// The tiers the migrator can move pods to (migration_tiers.cpp): opens
// `config` (kept across processes for a shm heap: `keep`; `heap_id` names
// a remote tier's objects), or removes the files of a kept one.
status open_migration_tier(const tier_config& config, bool keep, const std::string& heap_id,
                           std::unique_ptr<tiers::tier>* out);
void remove_migration_tier(const tier_config& config) noexcept;

// A steady clock, for last_touch_ns.
std::uint64_t migration_now_ns() noexcept;

}  // namespace larder
