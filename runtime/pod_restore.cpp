// Restoring some pods of a version; see pod_restore.hpp.
#include "runtime/pod_restore.hpp"

#include "allocator/segment.hpp"
#include "port/os.hpp"
#include "recovery/records.hpp"
#include "runtime/heap_impl.hpp"
#include "runtime/pod_graph.hpp"
#include "runtime/process_heap_scope.hpp"

#include <larder/versions.hpp>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>

namespace larder {

namespace {

constexpr std::size_t kPagesPerSegment = layout::kSegmentSize / port::kOsPageSize;

constexpr std::int64_t kNoOwner = -1;  // free
constexpr std::int64_t kLogOwner = -2;  // an undo-log lane's extent

// Owner (pod id, kNoOwner or kLogOwner) of each segment below `high` of a
// segment table.
std::vector<std::int64_t> owners(const std::uint32_t* table, std::size_t high) {
  std::vector<std::int64_t> out(high, kNoOwner);
  std::int64_t huge = kNoOwner;
  for (std::size_t k = 1; k < high; ++k) {
    const std::uint32_t e = table[k];
    switch (layout::entry_state(e)) {
      case layout::kSegmentPages: out[k] = layout::entry_pod(e); break;
      case layout::kSegmentHugeHead: out[k] = huge = layout::entry_pod(e); break;
      case layout::kSegmentHugeTail: out[k] = huge; break;
      case layout::kSegmentLog: out[k] = kLogOwner; break;
      default: break;
    }
  }
  return out;
}

}  // namespace

status plan_pod_restore(const heap_impl& impl, const layout::heap_meta& target_meta,
                        const std::vector<chunks::page_entry>& table, const std::vector<std::uint32_t>& pods,
                        pod_restore* out) {
  auto chosen = [&](std::int64_t pod) {
    return pod >= 0 && std::find(pods.begin(), pods.end(), static_cast<std::uint32_t>(pod)) != pods.end();
  };
  for (std::uint32_t pod : pods)
    if (pod >= layout::kMaxPods) return status(errc::invalid_argument, "no pod " + std::to_string(pod));
  const std::size_t live_high = impl.meta()->segments_high;
  const std::size_t target_high = std::min<std::size_t>(target_meta.segments_high, layout::kMaxSegments);
  const std::vector<std::int64_t> live = owners(impl.meta()->segments, live_high);
  const std::vector<std::int64_t> then = owners(target_meta.segments, target_high);
  out->high = live_high;
  for (std::size_t k = 1; k < std::max(live_high, target_high); ++k) {
    const std::int64_t now_owner = k < live_high ? live[k] : kNoOwner;
    const std::int64_t then_owner = k < target_high ? then[k] : kNoOwner;
    const bool take = chosen(then_owner);
    if (!take && !chosen(now_owner)) continue;
    if (take && now_owner != kNoOwner && !chosen(now_owner))
      return status(errc::invalid_argument,
                    "segment " + std::to_string(k) + " holds pod " + std::to_string(then_owner) +
                        " in the version but " +
                        (now_owner == kLogOwner ? std::string("an undo-log lane") : "pod " + std::to_string(now_owner)) +
                        " now: restore that pod too, or the whole heap");
    out->segments.push_back(k);
    out->entries.push_back(take ? target_meta.segments[k] : layout::segment_entry(layout::kSegmentFree, 0));
    if (take) out->high = std::max(out->high, k + 1);
  }
  for (const chunks::page_entry& e : table) {
    const std::size_t k = e.page / kPagesPerSegment;
    if (std::binary_search(out->segments.begin(), out->segments.end(), k) && k < target_high && chosen(then[k]))
      out->pages.push_back(e.page);
  }
  std::memcpy(out->pods, target_meta.pods, sizeof(out->pods));
  out->pod_ids = pods;
  return {};
}

status read_target_meta(versions_state& v, const std::vector<chunks::page_entry>& table, layout::heap_meta* out) {
  const std::size_t first = layout::kMetaOffset / port::kOsPageSize;
  const std::size_t end = (layout::kMetaOffset + sizeof(layout::heap_meta) + port::kOsPageSize - 1) / port::kOsPageSize;
  std::vector<std::size_t> pages;
  for (std::size_t p = first; p < end; ++p) pages.push_back(p);
  std::vector<char> bytes(pages.size() * port::kOsPageSize);
  if (status s = read_pages(*v.store, table, pages.data(), pages.size(), bytes.data()); !s.ok()) return s;
  std::memcpy(out, bytes.data() + (layout::kMetaOffset - first * port::kOsPageSize), sizeof(*out));
  if (out->magic != layout::kMetaMagic) return status(errc::corrupt, "the version's metadata block is not one");
  return {};
}

void restore_pod_metadata(heap_impl& impl, const pod_restore& r) {
  layout::heap_meta* meta = impl.meta();
  for (std::size_t i = 0; i < r.segments.size(); ++i) {
    const std::size_t k = r.segments[i];
    void* at = reinterpret_cast<void*>(impl.region.base() + (k << layout::kSegmentShift));
    if (k < meta->segments_high) (void)port::decommit(at, layout::kSegmentSize, impl.fd >= 0);
    meta->segments[k] = r.entries[i];
  }
  for (std::uint32_t pod : r.pod_ids) meta->pods[pod] = r.pods[pod];
  meta->segments_high = std::max<std::uint64_t>(meta->segments_high, r.high);
}

status pods_of_roots(heap& h, std::string_view version, const std::vector<std::string>& names,
                     std::vector<std::uint32_t>* out) {
  out->clear();
  heap_impl* impl = h.impl();
  if (impl == nullptr) return status(errc::invalid_argument, "the heap is not open");
  process_heap_scope scope;
  versions_state* v = nullptr;
  if (status s = open_versions(*impl, &v, impl->can_write()); !s.ok()) return s;
  chunks::version_id id;
  std::string branch;
  chunks::version_record target;
  if (status s = read_named_version(*v->store, version, &id, &branch, &target); !s.ok()) return s;
  if (status s = version_of_this_heap(*impl, id, target); !s.ok()) return s;
  auto meta = std::make_unique<layout::heap_meta>();
  if (status s = read_target_meta(*v, target.pages, meta.get()); !s.ok()) return s;
  const std::size_t high = std::min<std::size_t>(meta->segments_high, layout::kMaxSegments);
  const std::vector<std::int64_t> owner = owners(meta->segments, high);
  for (const std::string& name : names) {
    const layout::root_record* found = nullptr;
    for (const layout::root_record& r : meta->roots)
      if (r.in_use == recovery::kRootLive && name == std::string(r.name, strnlen(r.name, sizeof r.name))) found = &r;
    if (found == nullptr) return status(errc::not_found, "version " + id.hex() + " has no root \"" + name + "\"");
    const std::size_t k = (found->object - impl->region.base()) >> layout::kSegmentShift;
    if (k >= high || owner[k] < 0)
      return status(errc::invalid_argument, "root \"" + name + "\" lies in no pod's segment in version " + id.hex());
    const auto pod = static_cast<std::uint32_t>(owner[k]);
    if (std::find(out->begin(), out->end(), pod) == out->end()) out->push_back(pod);
  }
  // Then the pods those reach over the version's reference graph; a
  // version that records none gives the roots' pods alone.
  std::vector<pod_edge> edges;
  if (!recorded_edges(target.metadata, &edges)) return {};
  for (std::uint32_t pod : pods_reachable(edges, *out))
    if (std::find(out->begin(), out->end(), pod) == out->end()) out->push_back(pod);
  return {};
}

}  // namespace larder
