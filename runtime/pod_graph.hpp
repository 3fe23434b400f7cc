// The reference graph between a heap's pods (larder/references.hpp,
// docs/references.md): per page of a pod, the other pods it points into,
// and per edge the pages that hold it, so that a collect of page-write
// tracking reads only the pages it reports (pod_graph_state::rescan).
// pod_graph_edges is the way in: the kept graph, or a scan of every page
// where this process does not track the heap.
#pragma once

#include "allocator/region.hpp"
#include "port/write_tracker.hpp"

#include <larder/references.hpp>
#include <larder/status.hpp>

#include <cstdint>
#include <map>
#include <unordered_map>
#include <vector>

namespace larder {

class heap_impl;

// Gives a scan the words of one OS page of the heap.
class page_reader {
 public:
  // The page's words (kOsPageSize / 8): in place, or copied into `buffer`
  // (room for as many, page-aligned); nullptr when the page must not be
  // read.
  virtual const std::uint64_t* read(std::uintptr_t page, std::uint64_t* buffer) noexcept = 0;

 protected:
  ~page_reader() = default;
};

// What the pages of one heap's pods point to. A page counts toward edge
// (from, to) when one of its aligned words lies in a segment of pod `to`;
// `from` is the pod of the page's own segment. Only pages that may hold
// objects are read (alloc::pod_of_object_page). Not thread-safe: the
// heap's collect_lock guards the one a heap keeps.
class pod_graph_state {
 public:
  explicit pod_graph_state(const port::write_tracker* tracker) noexcept : tracker_(tracker) {}

  // Reads every page of every pod.
  void scan_all(const alloc::region& r, page_reader& reader);
  // Reads again, in place, the pages of `written` (runs as a tracker
  // reports them, whose pages are resident since they were just written).
  // Each collect of the heap's tracker calls it, so it must not throw: out
  // of memory leaves the state stale(), for the next user to scan again.
  void rescan(const alloc::region& r, const std::vector<port::written_run>& written) noexcept;
  // Reads again, or drops, the pages kept whose segment changed hands or
  // that no longer hold objects: a segment given back or a slice purged
  // is no write that every tracker reports.
  void revalidate(const alloc::region& r, page_reader& reader);
  // Sorted by (from, to).
  std::vector<pod_edge> edges() const;

  // The tracker whose collects keep this state.
  const port::write_tracker* tracker() const noexcept { return tracker_; }
  bool stale() const noexcept { return stale_; }

 private:
  struct page_refs {
    std::uint32_t from;
    std::vector<std::uint32_t> to;  // ascending, never `from`
  };
  // reader nullptr: in place.
  void scan_page(const alloc::region& r, std::uintptr_t page, page_reader* reader);
  void set_page(std::uintptr_t page, std::uint32_t from, const std::vector<std::uint32_t>& to);
  void drop_edge(std::uint32_t from, std::uint32_t to) noexcept;

  const port::write_tracker* tracker_;
  bool stale_ = false;
  // Pages with at least one edge; the others are not kept.
  std::unordered_map<std::uintptr_t, page_refs> pages_;
  // from << 32 | to: pages holding the edge.
  std::map<std::uint64_t, std::uint64_t> edges_;
  std::vector<std::uint32_t> targets_;  // scan_page's, kept for its capacity
};

// The heap's graph, sorted by (from, to): kept in impl.references from
// the first call while this process tracks the heap (a scan of every page
// then, and again when the tracker changed), else scanned now. Takes
// collect_lock.
status pod_graph_edges(heap_impl& impl, std::vector<pod_edge>* out);

// Whether this process keeps the graph (a pod_graph_edges call while it
// tracked the heap started it, and nothing dropped it since). Takes
// collect_lock.
bool pod_graph_kept(heap_impl& impl) noexcept;

// Drops the kept graph: the heap's pages are about to change in ways the
// tracker does not report (a checkout). The next pod_graph_edges scans
// every page. Takes collect_lock.
void forget_pod_graph(heap_impl& impl) noexcept;

// `from` and every pod reachable from them over `edges` (sorted by from),
// ascending.
std::vector<std::uint32_t> pods_reachable(const std::vector<pod_edge>& edges, std::vector<std::uint32_t> from);

}  // namespace larder
