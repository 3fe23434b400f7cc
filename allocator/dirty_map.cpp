#include "allocator/dirty_map.hpp"

#include "allocator/segment.hpp"

#include <algorithm>

namespace larder::alloc {

std::uint32_t pod_of_address(const region& r, std::uintptr_t address) noexcept {
  std::size_t index = (address - r.base()) >> kSegmentShift;
  const std::uint32_t entry = r.entry(index);
  switch (layout::entry_state(entry)) {
    case layout::kSegmentMeta:
    case layout::kSegmentLog: return kMetadataPod;
    case layout::kSegmentPages:
    case layout::kSegmentHugeHead:
    case layout::kSegmentHugeTail: return layout::entry_pod(entry);
    default: return index == 0 ? kMetadataPod : kUnownedPod;
  }
}

std::uint32_t pod_of_object_page(const region& r, std::uintptr_t page) noexcept {
  const std::size_t index = (page - r.base()) >> kSegmentShift;
  const std::uint32_t entry = r.entry(index);
  const std::size_t os_page = (page & (kSegmentSize - 1)) / port::kOsPageSize;
  switch (layout::entry_state(entry)) {
    case layout::kSegmentHugeTail: return layout::entry_pod(entry);
    case layout::kSegmentHugeHead: return os_page < kHeaderOsPages ? kUnownedPod : layout::entry_pod(entry);
    case layout::kSegmentPages: break;
    default: return kUnownedPod;
  }
  if (os_page < kHeaderOsPages) return kUnownedPod;
  const auto* s = reinterpret_cast<const segment*>(page & ~(kSegmentSize - 1));
  const std::uint64_t slice = std::uint64_t{1} << ((os_page * port::kOsPageSize) >> kSliceShift);
  // Read while the pod's threads change them: a slice handed out or freed
  // meanwhile is scanned or not, as it would be a moment earlier or later.
  const std::uint64_t free = __atomic_load_n(&s->free_slices, __ATOMIC_ACQUIRE);
  const std::uint64_t unpurged = __atomic_load_n(&s->unpurged, __ATOMIC_ACQUIRE);
  const std::uint64_t holes = __atomic_load_n(&s->holes, __ATOMIC_ACQUIRE);
  if ((holes & slice) != 0 || ((free & slice) != 0 && (unpurged & slice) == 0)) return kUnownedPod;
  return layout::entry_pod(entry);
}

void attribute_to_pods(const region& r, const std::vector<port::written_run>& written, std::vector<dirty_run>* out) {
  const std::uintptr_t lo = r.base();
  const std::uintptr_t hi = r.base() + r.reserve();
  out->reserve(out->size() + written.size());
  std::uintptr_t cached_segment = ~std::uintptr_t{0};
  std::uint32_t cached_pod = 0;
  for (const port::written_run& run : written) {
    std::uintptr_t start = std::max(run.start, lo);
    std::uintptr_t end = std::min(run.start + run.pages * port::kOsPageSize, hi);
    while (start < end) {
      std::uintptr_t segment = (start - lo) >> kSegmentShift;
      std::uintptr_t segment_end = lo + ((segment + 1) << kSegmentShift);
      std::uintptr_t piece_end = std::min(end, segment_end);
      if (segment != cached_segment) {
        cached_segment = segment;
        cached_pod = pod_of_address(r, start);
      }
      std::uint32_t pod = cached_pod;
      auto pages = static_cast<std::uint32_t>((piece_end - start) / port::kOsPageSize);
      if (!out->empty() && out->back().pod == pod &&
          out->back().start + std::uintptr_t{out->back().pages} * port::kOsPageSize == start)
        out->back().pages += pages;
      else
        out->push_back({start, pages, pod});
      start = piece_end;
    }
  }
}

}  // namespace larder::alloc
