// Tiers below DRAM (docs/tiers.md): a heap given a DRAM budget smaller than
// what it holds keeps its pods' pages resident up to that budget; the
// migrator writes the coldest pods to a lower tier and drops their pages,
// and touching an evicted page brings it back transparently (userfaultfd
// missing faults), with the rest of its pod when that pays. Anonymous and
// shm heaps; a file heap is refused with `unsupported`. `larder stat` and
// `larder info` show the policy and the tier's usage.
#pragma once

#include <larder/export.hpp>
#include <larder/heap.hpp>
#include <larder/pod.hpp>
#include <larder/status.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace larder {

enum class tier_kind : std::uint8_t { disk, pmem, gpu, remote };
// "disk", "pmem", "gpu", "remote".
LARDER_EXPORT const char* to_string(tier_kind kind) noexcept;

struct tier_config {
  tier_kind kind = tier_kind::disk;
  // Where the tier is. disk: its file (its index goes beside it,
  // "<path>.index"); pmem: a file on a DAX file system (libpmem2 emulates
  // one on any other file); remote: "POOL[@CONF]", a Ceph pool and the
  // cluster's ceph.conf (default: $CEPH_CONF or Ceph's own places); gpu:
  // the CUDA device index ("0", "1", ...; empty: 0).
  std::string path;
  // Bytes the tier may hold (its budget); 0: 1 GiB.
  std::size_t capacity = 0;
};

struct migration_policy {
  // Bytes of the heap's pod pages kept resident; 0: no budget (the
  // migrator stops; evicted pages still come back on touch).
  std::size_t dram_budget = 0;
  // Below DRAM, top to bottom, at most four. Evicted pods go to the first;
  // when a tier holds more than seven eighths of its capacity, the evicted
  // pages of its coldest pods move to the next, until it holds three
  // quarters. A touched page comes back to DRAM from whichever tier holds
  // it. An anonymous heap takes any chain of disk, pmem, remote and GPU
  // tiers; a shm heap one disk tier (its evicted pages must outlive its
  // process, and an open after a crash restores them from the tier its
  // record names). A GPU tier is device memory through the module
  // liblarder_gpu_tier.so, loaded when a policy names it (docs/tiers.md
  // says where it is looked for); where no CUDA device or driver is
  // present, the policy is refused naming the CUDA error. A remote tier
  // comes likewise from the module liblarder_rados.so.
  std::vector<tier_config> tiers;
  // A second fault in an evicted pod soon after its first brings the rest
  // of the pod back with it.
  bool prefetch_pod = true;
};

// Sets the heap's policy: with a budget, a thread of the heap's own evicts
// the coldest unpinned pods whenever the resident pod pages pass it, until
// they are an eighth below it, cascading tiers as they fill. Starts page-write tracking (uffd) if the
// heap is not tracked. Errors: unsupported (a file heap, a heap with
// shared writers, a kernel without userfaultfd missing faults, a heap
// tracked with mprotect or pkeys, a tier kind not built or not movable to,
// several tiers for a shm heap), invalid_argument (a budget without a
// tier, a tier without a path or named twice, more than four tiers, other
// tiers while pages are evicted to the current ones), read_only, or a
// tier's own error when it cannot be opened (a full disk, a cluster that
// does not answer); the heap is then left with no tiers and no budget.
LARDER_EXPORT status set_migration_policy(heap& h, const migration_policy& p);
// The policy in force (a default one before any was set).
LARDER_EXPORT migration_policy migration_policy_of(const heap& h);
// A pinned pod is never evicted; pinning does not bring it back.
LARDER_EXPORT status pin_pod(heap& h, pod p, bool pinned);
// Moves one pod to the tier now, whatever the budget (pinned: refused with
// invalid_argument; no policy with a tier: invalid_argument).
LARDER_EXPORT status evict_pod(heap& h, pod p);
// One pass now: evicts the coldest unpinned pods until the resident pod
// pages are under the budget (nothing without a budget).
LARDER_EXPORT status migrate(heap& h);

struct tier_usage_info {
  tier_kind kind = tier_kind::disk;
  std::string path;
  std::uint64_t capacity_bytes = 0;
  std::uint64_t used_bytes = 0;  // copies held, stale ones of pages touched since included
};

struct migration_stats {
  std::size_t resident_bytes = 0;  // pod pages in memory (mincore of the heap's pod segments)
  std::size_t evicted_bytes = 0;   // pod pages whose only copy is in a tier
  std::uint64_t evictions = 0;     // pods moved down, counted once per move
  std::uint64_t faults = 0;        // touches of evicted pages served
  std::uint64_t prefetched_pages = 0;  // pages brought back with a touched one
  std::uint64_t lost_pages = 0;    // pages that could not be read back: they read as zeros
  std::vector<tier_usage_info> tiers;
};
// The heap as it is (resident and evicted bytes, the policy's tiers as the
// heap records them, for a heap another process migrates too), and this
// process's counters and tier usage (zero where it set no policy).
LARDER_EXPORT migration_stats migration_info(const heap& h);

}  // namespace larder
