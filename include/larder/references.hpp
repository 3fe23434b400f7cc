// References between pods (docs/references.md): which pods hold pointers
// into which, found by a conservative scan of the pods' pages; the pods an
// object reached from a root spans; and pinning those together so that
// migration (tiers.hpp) keeps them in memory as one. Checkpoints record the
// graph with each version, and pods_of_roots (versions.hpp) follows it.
// `larder pods HEAP --graph` prints it (docs/tools/larder.md).
#pragma once

#include <larder/export.hpp>
#include <larder/heap.hpp>
#include <larder/status.hpp>

#include <cstdint>
#include <string_view>
#include <vector>

namespace larder {

// One edge of the graph: `pages` 4 KiB pages of pod `from` each hold at
// least one 8-byte-aligned word whose value lies in a segment of pod `to`
// (a pages segment or a huge block of it). from != to: a pod's pointers
// into itself are no edge. The scan is conservative: an integer that
// happens to look like such an address counts, and so does a stale word
// in a freed block until it is overwritten.
struct pod_edge {
  std::uint32_t from;
  std::uint32_t to;
  std::uint64_t pages;
  friend bool operator==(const pod_edge&, const pod_edge&) = default;
};

// The heap's graph, sorted by (from, to). Where this process tracks the
// heap's writes (heap::start_tracking, a checkpoint, a migration policy),
// the first call reads every page of every pod and the graph is kept from
// then on by reading again, at each collect of the tracker
// (heap::collect_dirty, a checkpoint, a migration pass), the pages it
// reports: a call returns the graph as of the last collect, or of the
// first call where that came later. Elsewhere (read-only opens, untracked
// heaps) each call reads every page of every pod. Pages this process's
// migrator evicted are read from their tier, not faulted back; those
// another process evicted from a shm heap are left out. Thread-safe; a
// scan of every page holds off the heap's collects while it runs. Errors:
// invalid_argument (the heap is not open).
LARDER_EXPORT status pod_graph(const heap& h, std::vector<pod_edge>* out);

// The pod holding the object of root `root`, and every pod reachable from
// it over the edges of pod_graph, ascending. Errors: not_found (no such
// root), invalid_argument (the heap is not open, or the root's object lies
// in no pod's segment).
LARDER_EXPORT status pods_reached(const heap& h, std::string_view root, std::vector<std::uint32_t>* out);

// Pins (or unpins) every pod pods_reached gives for `root`, through pin_pod
// (tiers.hpp): a pinned pod is never evicted, so the object graph of a root
// stays in memory whole. Pods pinned before the first refusal stay pinned.
// Errors: pods_reached's, and pin_pod's (read_only).
LARDER_EXPORT status pin_reached(heap& h, std::string_view root, bool pinned);

}  // namespace larder
