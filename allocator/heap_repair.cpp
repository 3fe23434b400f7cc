// Repair of the allocator's metadata; see heap_repair.hpp.
#include "allocator/heap_repair.hpp"

#include "allocator/size_class.hpp"

#include <cstring>

namespace larder::alloc {

namespace {

std::string num(std::uint64_t value) { return std::to_string(value); }

void clear_process_local(page* pg) noexcept {
  pg->owner_tid.store(0, std::memory_order_relaxed);
  pg->xthread_free.store(kNoDelayed, std::memory_order_relaxed);
  pg->heap.store(nullptr, std::memory_order_relaxed);
  pg->next = pg->prev = nullptr;
}

void describe_continuations(segment* s, std::size_t k, std::size_t slices) noexcept {
  for (std::size_t j = 1; j < slices; ++j) {
    page* cont = &s->pages[k + j];
    cont->owner_tid.store(0, std::memory_order_relaxed);
    cont->slice_count = 0;
    cont->slice_offset = static_cast<std::uint8_t>(j);
  }
}

std::string page_place(std::size_t i, std::size_t k) { return walk_place{walk_place::page, i, k}.text(); }

// A pages segment's header as the segment table and its pages say.
void repair_pages_header(const heap_view& view, const pages_segment_facts& f, repair_outcome* out) {
  segment* s = view.segment_at(f.segment);
  std::string changed;
  auto note = [&](const char* field) { changed += changed.empty() ? field : std::string(", ") + field; };
  if (s->magic != kSegmentMagic) note("magic");
  if (s->pod != f.pod) note("pod");
  if (s->span != 1) note("span");
  if (s->free_slices != f.free_slices) note("free slices");
  if ((s->unpurged & ~f.free_slices) != 0) note("unpurged slices");
  if (changed.empty()) return;
  s->magic = kSegmentMagic;
  s->pod = f.pod;
  s->span = 1;
  s->free_slices = f.free_slices;
  s->unpurged &= f.free_slices;
  out->lines.push_back(walk_place{walk_place::header, f.segment, 0}.text() + ": rewrote " + changed +
                       " from the segment table and the segment's pages");
}

void repair_page(const heap_map& map, const map_unit& u, const reach_marks& reached, std::uint32_t stamp,
                 repair_outcome* out) {
  const page_facts& p = u.page_info;
  segment* s = map.view().segment_at(p.segment);
  const std::string place = page_place(p.segment, p.slice);
  if (p.state == page_state::unreadable) {
    quarantine_page(s, p.slice, p.slices);
    ++out->quarantined_pages;
    out->quarantined_bytes += run_area(p.slice, p.slices);
    out->lines.push_back(place + ": quarantined " + num(p.slices) + " slice(s) (" + num(run_area(p.slice, p.slices)) +
                         " bytes): which blocks the page holds cannot be told; none is handed out or freed again");
    return;
  }
  if (p.state != page_state::lists_damaged) return;
  const page_geometry& g = p.geometry;
  auto is_reached = [&](std::size_t index) { return reached.stamp[u.first_mark + index] == stamp; };
  // Carved: as recorded, and at least every block a list names or a root
  // reaches (a `reserved` damaged low must not let page_extend carve a
  // live block a second time).
  std::size_t reserved = p.reserved;
  for (std::size_t index = 0; index < g.capacity; ++index)
    if ((p.listed[index] || is_reached(index)) && index + 1 > reserved) reserved = index + 1;
  std::vector<bool> in_use(g.capacity, false);
  std::size_t free_blocks = 0, reached_listed = 0;
  for (std::size_t index = 0; index < reserved; ++index) {
    bool free = p.listed[index] && !is_reached(index);
    if (p.listed[index] && !free) ++reached_listed;
    in_use[index] = !free;
    if (free) ++free_blocks;
  }
  const std::size_t used = reserved - free_blocks;
  const std::uint64_t address = map.view().base + (std::uint64_t{p.segment} << kSegmentShift);
  write_page(s, address, p.slice, g, reserved, (p.flags & kPageHasAligned) != 0, in_use);
  ++out->pages_rebuilt;
  std::string line = place + ": rebuilt as a page of size class " + num(g.bin) + " (" + num(g.block_size) +
                     "-byte blocks" + (p.geometry_recovered ? ", from the fields that agree" : "") +
                     "): " + num(reserved) + " carved, " + num(free_blocks) + " on a new free list, " + num(used) +
                     " in use";
  if (used != p.used) line += " (it recorded " + num(p.used) + ")";
  if (reached_listed != 0)
    line += "; " + num(reached_listed) + " block(s) its lists named free are reached from a root and stay in use";
  out->lines.push_back(line);
}

void repair_huge(const heap_view& view, const huge_facts& h, repair_outcome* out) {
  if (h.state == huge_state::sound || h.state == huge_state::quarantined) return;
  segment* s = view.segment_at(h.segment);
  const std::uint64_t bytes = std::uint64_t{h.span} << kSegmentShift;
  const bool quarantine = h.state == huge_state::unreadable;
  s->magic = kSegmentMagic;
  s->pod = h.pod;
  s->span = static_cast<std::uint32_t>(h.span);
  s->free_slices = 0;
  s->unpurged = 0;
  if (quarantine) {
    s->huge_offset = static_cast<std::uint32_t>(kSliceSize);
    s->huge_size = bytes - kSliceSize;
  } else {
    s->huge_offset = static_cast<std::uint32_t>(h.offset);
    s->huge_size = h.size;
  }
  page* pg = &s->pages[0];
  clear_process_local(pg);
  pg->free = nullptr;
  pg->capacity = 1;
  pg->used = 1;
  pg->reserved = 0;
  pg->slice_count = static_cast<std::uint8_t>(kSlicesPerSegment);
  pg->slice_offset = 0;
  pg->flags.store(quarantine ? kPageHuge | kPageQuarantined : kPageHuge, std::memory_order_relaxed);
  const std::string place = walk_place{walk_place::segment, h.segment, 0}.text() + " (huge block)";
  if (quarantine) {
    ++out->quarantined_pages;
    out->quarantined_bytes += bytes;
    out->lines.push_back(place + ": quarantined (" + num(bytes) +
                         " bytes): where the block starts cannot be told; it is never freed or handed out again");
  } else {
    out->lines.push_back(place + ": rewrote its header from the segment table and its run of " + num(h.span) +
                         " segment(s) (block of " + num(h.size) + " bytes at offset " + num(h.offset) + ")");
  }
}

}  // namespace

void write_page(segment* s, std::uint64_t address, std::size_t k, const page_geometry& g, std::size_t reserved,
                bool aligned, const std::vector<bool>& in_use) noexcept {
  page* pg = &s->pages[k];
  std::uint8_t* local = page_start(s, pg);
  const std::uint64_t start = address + (k == 0 ? kSegmentHeaderSize : k << kSliceShift);
  // Linked from the highest block down, so the list runs in address order.
  std::uint64_t next = 0;
  std::size_t used = 0;
  for (std::size_t index = reserved; index-- > 0;) {
    if (in_use[index]) {
      ++used;
      continue;
    }
    std::memcpy(local + index * g.block_size, &next, sizeof(next));
    next = start + index * g.block_size;
  }
  clear_process_local(pg);
  pg->free = reinterpret_cast<block*>(next);
  pg->used = static_cast<std::uint16_t>(used);
  pg->reserved = static_cast<std::uint16_t>(reserved);
  pg->capacity = static_cast<std::uint16_t>(g.capacity);
  pg->block_size = static_cast<std::uint32_t>(g.block_size);
  pg->slice_count = static_cast<std::uint8_t>(g.slices);
  pg->slice_offset = 0;
  pg->bin = static_cast<std::uint8_t>(g.bin);
  pg->folding.store(0, std::memory_order_relaxed);
  pg->cache_bin = aligned || g.bin >= kCachedBins ? kNoCacheBin : static_cast<std::uint8_t>(g.bin);
  pg->flags.store(aligned ? kPageHasAligned : 0, std::memory_order_relaxed);
  describe_continuations(s, k, g.slices);
}

void quarantine_page(segment* s, std::size_t k, std::size_t slices) noexcept {
  page* pg = &s->pages[k];
  clear_process_local(pg);
  pg->free = nullptr;
  pg->used = 1;
  pg->reserved = 1;
  pg->capacity = 1;
  pg->block_size = static_cast<std::uint32_t>(run_area(k, slices));
  pg->slice_count = static_cast<std::uint8_t>(slices);
  pg->slice_offset = 0;
  pg->bin = 0;
  pg->folding.store(0, std::memory_order_relaxed);
  pg->cache_bin = kNoCacheBin;
  pg->flags.store(kPageQuarantined, std::memory_order_relaxed);
  describe_continuations(s, k, slices);
}

repair_outcome repair_heap(const heap_map& map, const reach_marks& reached, std::uint32_t stamp) {
  repair_outcome out;
  for (const map_unit& u : map.units()) {
    if (u.kind == map_unit::page)
      repair_page(map, u, reached, stamp, &out);
    else
      repair_huge(map.view(), u.huge_info, &out);
  }
  // Headers last: a page found in a slice marked free is one again.
  for (const pages_segment_facts& f : map.pages_segments()) repair_pages_header(map.view(), f, &out);
  return out;
}

}  // namespace larder::alloc
