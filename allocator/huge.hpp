// Huge blocks (above kLargeMax): each takes a run of whole segments of its
// own. The block starts 64 KiB into the first segment (or further, for a
// large alignment); the head segment's page 0 describes it.
#pragma once

#include "allocator/local_heap.hpp"
#include "allocator/region.hpp"

#include <cstddef>

namespace larder::alloc {

// What a huge block's head segment records (size asked for, alignment at
// least a slice), written by region::acquire before the block exists.
struct huge_request {
  std::size_t size;
  std::size_t alignment;
};
void init_huge_header(segment* s, const huge_request& request) noexcept;

// `alignment` 0 means the default. `*zeroed` (if given) tells whether the
// block is known to read as zero.
void* huge_alloc(local_heap* h, std::size_t size, std::size_t alignment, bool* zeroed) noexcept;
void huge_free(region* r, segment* head) noexcept;
std::size_t huge_usable(segment* head, const void* p) noexcept;
// Grows or shrinks the block at `p` without moving it, if it can.
bool huge_resize_in_place(region* r, segment* head, void* p, std::size_t size) noexcept;

}  // namespace larder::alloc
