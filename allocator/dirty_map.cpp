#include "allocator/dirty_map.hpp"

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
