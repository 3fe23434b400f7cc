// Rebuilding a heap's allocator metadata from what its intact parts
// determine (`larder check --repair`, docs/tools/larder.md "check"), and
// writing heap pages whose blocks are known, which salvage uses to build
// its new heap's pages.
//
// What is rebuilt, and from what:
//   segment header   magic, pod and span from the segment table (which says
//                    who owns a segment: its entry changes last when a
//                    segment changes hands); free slices from the pages
//   size class       from the descriptor's fields that agree (heap_walk.hpp)
//   lists, counts    a block goes on the new free list only when the old
//                    lists named it free and no root reaches it; every other
//                    carved block counts as in use (a leak at worst, never a
//                    live block handed out twice)
//   huge block       its header from the segment table and its run; a size
//                    past its segments becomes what they hold
// What cannot be told is set aside: a page whose blocks cannot be told apart
// (or a huge block whose start cannot) is quarantined (kPageQuarantined):
// kept, never handed out or freed again, counted by `larder check`.
#pragma once

#include "allocator/heap_map.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace larder::alloc {

// Describes the page at slice k of segment `s` (mapped here; its heap
// address is `address`) as a sound page of class `g` whose first
// `reserved` blocks are carved: those `in_use` marks are handed out, the
// other carved ones go on a new free list (their first word becomes the
// link). `aligned`: it holds interior pointers (kPageHasAligned). The
// caller clears the slices' free bits.
void write_page(segment* s, std::uint64_t address, std::size_t k, const page_geometry& g, std::size_t reserved,
                bool aligned, const std::vector<bool>& in_use) noexcept;

// Sets the `slices` slices from slice k aside for good: the page becomes one
// quarantined block, so nothing is handed out or freed there again.
void quarantine_page(segment* s, std::size_t k, std::size_t slices) noexcept;

struct repair_outcome {
  std::vector<std::string> lines;  // one per change, naming its place
  std::size_t pages_rebuilt = 0;
  std::size_t quarantined_pages = 0;  // pages and huge blocks
  std::size_t quarantined_bytes = 0;
};

// Repairs, through the map's view (a writable mapping), every segment
// header, page and huge block the map's walk found damaged. `reached`
// holds, with `stamp`, the blocks the heap's roots reach (heap_map::reach
// through damage): they are never put on a free list.
repair_outcome repair_heap(const heap_map& map, const reach_marks& reached, std::uint32_t stamp);

}  // namespace larder::alloc
