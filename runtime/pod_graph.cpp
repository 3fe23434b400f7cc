// The reference graph between pods: the per-page state, its scans, and
// when a heap keeps it; see pod_graph.hpp.
#include "runtime/pod_graph.hpp"

#include "allocator/dirty_map.hpp"
#include "allocator/segment.hpp"
#include "port/os.hpp"
#include "runtime/heap_impl.hpp"
#include "runtime/migration_state.hpp"
#include "runtime/process_heap_scope.hpp"

#include <algorithm>
#include <memory>
#include <mutex>
#include <new>

namespace larder {

namespace {

constexpr std::size_t kWordsPerPage = port::kOsPageSize / sizeof(std::uint64_t);

std::uint64_t edge_key(std::uint32_t from, std::uint32_t to) { return std::uint64_t{from} << 32 | to; }

// The pods other than `from` that the words of one page point into,
// ascending. The words are read while the program may write them: each is
// read once, as it was at some moment of the scan.
void targets_of(const alloc::region& r, std::uint32_t from, const std::uint64_t* words, std::vector<std::uint32_t>* to) {
  to->clear();
  const std::uintptr_t base = r.base();
  const std::size_t reserve = r.reserve();
  std::size_t last_segment = ~std::size_t{0};
  for (std::size_t i = 0; i < kWordsPerPage; ++i) {
    const std::uint64_t offset = __atomic_load_n(&words[i], __ATOMIC_RELAXED) - base;
    if (offset >= reserve) continue;
    const std::size_t segment = offset >> layout::kSegmentShift;
    if (segment == last_segment) continue;
    last_segment = segment;
    const std::uint32_t pod = alloc::pod_of_address(r, base + offset);
    if (pod < layout::kMaxPods && pod != from) to->push_back(pod);
  }
  std::sort(to->begin(), to->end());
  to->erase(std::unique(to->begin(), to->end()), to->end());
}

// Pages as this process sees them, evicted ones included: a page this
// process's migrator evicted is read from its tier (reading it in place
// would fault it back), and one another process evicted from a shm heap,
// which a segment header marks, is not read at all (a fault here would
// give it storage that the other process's loader then cannot fill).
class heap_page_reader final : public page_reader {
 public:
  explicit heap_page_reader(heap_impl& impl) : impl_(impl) {
    migration_state* m = impl.migration.get();
    migration_ = m != nullptr && m->pid == port::process_id() ? m : nullptr;
  }

  const std::uint64_t* read(std::uintptr_t page, std::uint64_t* buffer) noexcept override {
    if (migration_ != nullptr) {
      // A tier that cannot give the page back leaves it to be read in
      // place, which faults it back: slower, never wrong.
      if (page_evicted(*migration_, page) && migration_->source.fill(&page, 1, buffer) == 0) return buffer;
    } else if (evicted_elsewhere(page)) {
      return nullptr;
    }
    return reinterpret_cast<const std::uint64_t*>(page);
  }

 private:
  bool evicted_elsewhere(std::uintptr_t page) const noexcept {
    if (impl_.kind != backing::shm) return false;
    const std::size_t index = (page - impl_.region.base()) >> layout::kSegmentShift;
    if (layout::entry_state(impl_.region.entry(index)) != layout::kSegmentPages) return false;
    alloc::segment* s = alloc::segment_of(reinterpret_cast<const void*>(page));
    return alloc::is_evicted(s, (page - reinterpret_cast<std::uintptr_t>(s)) / port::kOsPageSize);
  }

  heap_impl& impl_;
  migration_state* migration_;
};

// The state impl keeps, brought up to date: made (a scan of every page)
// when there is none or it belongs to another tracker, revalidated
// otherwise; nullptr when this process does not track the heap. Under
// collect_lock.
pod_graph_state* kept_state(heap_impl& impl, page_reader& reader) {
  const port::write_tracker* tracker = impl.tracker.get();
  if (tracker == nullptr) {
    impl.references.reset();
    return nullptr;
  }
  if (impl.references && impl.references->tracker() == tracker && !impl.references->stale()) {
    try {
      impl.references->revalidate(impl.region, reader);
    } catch (...) {
      impl.references.reset();
      throw;
    }
    return impl.references.get();
  }
  impl.references.reset();
  // Made whole before it is kept: no collect runs meanwhile (collect_lock),
  // so none of its pages can be missed.
  auto fresh = std::make_unique<pod_graph_state>(tracker);
  fresh->scan_all(impl.region, reader);
  impl.references = std::move(fresh);
  return impl.references.get();
}

}  // namespace

// ---- pod_graph_state -------------------------------------------------------

void pod_graph_state::scan_all(const alloc::region& r, page_reader& reader) {
  // Below what the backing holds: a file heap's table may run ahead of it.
  const std::size_t high = std::min<std::size_t>(__atomic_load_n(&r.meta()->segments_high, __ATOMIC_ACQUIRE),
                                                 r.committed() >> layout::kSegmentShift);
  for (std::size_t k = 1; k < high; ++k) {
    switch (layout::entry_state(r.entry(k))) {
      case layout::kSegmentPages:
      case layout::kSegmentHugeHead:
      case layout::kSegmentHugeTail: break;
      default: continue;
    }
    const std::uintptr_t start = alloc::segment_index_to_address(r.base(), k);
    for (std::size_t p = 0; p < alloc::kOsPagesPerSegment; ++p) scan_page(r, start + p * port::kOsPageSize, &reader);
  }
}

void pod_graph_state::rescan(const alloc::region& r, const std::vector<port::written_run>& written) noexcept {
  if (stale_) return;
  try {
    for (const port::written_run& run : written) {
      for (std::size_t i = 0; i < run.pages; ++i) {
        const std::uintptr_t page = run.start + i * port::kOsPageSize;
        if (page - r.base() < r.reserve()) scan_page(r, page, nullptr);
      }
    }
  } catch (...) {
    stale_ = true;
  }
}

void pod_graph_state::revalidate(const alloc::region& r, page_reader& reader) {
  std::vector<std::uintptr_t> changed;
  for (const auto& [page, refs] : pages_)
    if (alloc::pod_of_object_page(r, page) != refs.from) changed.push_back(page);
  try {
    for (std::uintptr_t page : changed) scan_page(r, page, &reader);
  } catch (...) {
    stale_ = true;
    throw;
  }
}

std::vector<pod_edge> pod_graph_state::edges() const {
  std::vector<pod_edge> out;
  out.reserve(edges_.size());
  for (const auto& [key, pages] : edges_)
    out.push_back({static_cast<std::uint32_t>(key >> 32), static_cast<std::uint32_t>(key), pages});
  return out;
}

void pod_graph_state::scan_page(const alloc::region& r, std::uintptr_t page, page_reader* reader) {
  const std::uint32_t from = alloc::pod_of_object_page(r, page);
  targets_.clear();
  if (from < layout::kMaxPods) {
    // Page-aligned: a tier may read into it with O_DIRECT.
    alignas(port::kOsPageSize) std::uint64_t buffer[kWordsPerPage];
    const std::uint64_t* words = reader != nullptr ? reader->read(page, buffer) : reinterpret_cast<const std::uint64_t*>(page);
    if (words != nullptr) targets_of(r, from, words, &targets_);
  }
  set_page(page, from, targets_);
}

void pod_graph_state::set_page(std::uintptr_t page, std::uint32_t from, const std::vector<std::uint32_t>& to) {
  auto it = pages_.find(page);
  if (it == pages_.end()) {
    if (to.empty()) return;
    it = pages_.emplace(page, page_refs{from, to}).first;
  } else {
    for (std::uint32_t old : it->second.to) drop_edge(it->second.from, old);
    if (to.empty()) {
      pages_.erase(it);
      return;
    }
    it->second.from = from;
    it->second.to = to;
  }
  for (std::uint32_t t : to) ++edges_[edge_key(from, t)];
}

void pod_graph_state::drop_edge(std::uint32_t from, std::uint32_t to) noexcept {
  auto it = edges_.find(edge_key(from, to));
  if (it != edges_.end() && --it->second == 0) edges_.erase(it);
}

// ---- a heap's graph --------------------------------------------------------

status pod_graph_edges(heap_impl& impl, std::vector<pod_edge>* out) {
  process_heap_scope scope;
  impl.reset_tracking_locks_after_fork();
  heap_page_reader reader(impl);
  std::lock_guard guard(impl.collect_lock);
  if (pod_graph_state* kept = kept_state(impl, reader)) {
    *out = kept->edges();
    return {};
  }
  pod_graph_state once(nullptr);
  once.scan_all(impl.region, reader);
  *out = once.edges();
  return {};
}

bool pod_graph_kept(heap_impl& impl) noexcept {
  impl.reset_tracking_locks_after_fork();
  std::lock_guard guard(impl.collect_lock);
  return impl.references != nullptr && impl.tracker != nullptr && !impl.references->stale();
}

void forget_pod_graph(heap_impl& impl) noexcept {
  process_heap_scope scope;
  impl.reset_tracking_locks_after_fork();
  std::lock_guard guard(impl.collect_lock);
  impl.references.reset();
}

std::vector<std::uint32_t> pods_reachable(const std::vector<pod_edge>& edges, std::vector<std::uint32_t> from) {
  std::vector<std::uint32_t> reached;
  while (!from.empty()) {
    const std::uint32_t pod = from.back();
    from.pop_back();
    auto at = std::lower_bound(reached.begin(), reached.end(), pod);
    if (at != reached.end() && *at == pod) continue;
    reached.insert(at, pod);
    auto e = std::lower_bound(edges.begin(), edges.end(), pod, [](const pod_edge& x, std::uint32_t p) { return x.from < p; });
    for (; e != edges.end() && e->from == pod; ++e) from.push_back(e->to);
  }
  return reached;
}

}  // namespace larder
