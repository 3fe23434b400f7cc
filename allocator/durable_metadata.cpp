// The allocator's durable metadata; see durable_metadata.hpp.
#include "allocator/durable_metadata.hpp"

#include <algorithm>

namespace larder::alloc {

namespace {

// The page descriptors end the part of a segment header that means
// anything on media; the rest of its 8 KiB is padding.
constexpr std::size_t kHeaderBytes = offsetof(segment, pages) + sizeof(page) * kSlicesPerSegment;

void add_list(const page& pg, const std::uint8_t* start, const block* b, std::size_t limit,
              std::vector<metadata_range>* out) {
  const std::uint8_t* end = start + std::size_t{pg.capacity} * pg.block_size;
  for (std::size_t n = 0; b != nullptr && n < limit; ++n) {
    auto at = reinterpret_cast<const std::uint8_t*>(b);
    if (at < start || at >= end) return;
    out->push_back({reinterpret_cast<std::uintptr_t>(b), sizeof(block)});
    b = b->next;
  }
}

void add_page_segment(segment* s, std::vector<metadata_range>* out) {
  for (std::size_t k = 0; k < kSlicesPerSegment; ++k) {
    const page& pg = s->pages[k];
    if (((s->free_slices >> k) & 1) || pg.slice_count == 0 || pg.block_size == 0) continue;
    const std::uint8_t* start = page_start(s, &pg);
    add_list(pg, start, pg.free, pg.capacity, out);
    std::uintptr_t remote = pg.xthread_free.load(std::memory_order_relaxed);
    add_list(pg, start, remote_list(remote), remote_count(remote), out);
  }
}

}  // namespace

void collect_durable_metadata(const region& r, std::size_t join_gap, std::vector<metadata_range>* out) {
  const std::size_t first = out->size();
  layout::heap_meta* meta = r.meta();
  const std::size_t high = meta->segments_high;
  out->push_back({reinterpret_cast<std::uintptr_t>(&meta->segments_high), sizeof(meta->segments_high)});
  out->push_back({reinterpret_cast<std::uintptr_t>(&meta->segments[0]), high * sizeof(meta->segments[0])});
  for (std::size_t i = 1; i < high; ++i) {
    layout::segment_state st = layout::entry_state(r.entry(i));
    if (st != layout::kSegmentPages && st != layout::kSegmentHugeHead) continue;
    auto* s = reinterpret_cast<segment*>(segment_index_to_address(r.base(), i));
    out->push_back({reinterpret_cast<std::uintptr_t>(s), kHeaderBytes});
    if (st == layout::kSegmentPages) add_page_segment(s, out);
  }
  auto begin = out->begin() + static_cast<std::ptrdiff_t>(first);
  std::sort(begin, out->end(), [](const metadata_range& a, const metadata_range& b) { return a.address < b.address; });
  auto joined = begin;
  for (auto it = begin; it != out->end(); ++it) {
    if (it->size == 0) continue;
    if (joined != begin) {
      metadata_range& last = *(joined - 1);
      if (it->address <= last.address + last.size + join_gap) {
        last.size = std::max(last.address + last.size, it->address + it->size) - last.address;
        continue;
      }
    }
    *joined++ = *it;
  }
  out->erase(joined, out->end());
}

}  // namespace larder::alloc
