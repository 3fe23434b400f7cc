// Allocation and free inside a transaction, the allocator's side: the
// direct-page path, which logs ahead in batches through the metadata sink
// (allocator/metadata_log.hpp), and the metadata a free writes, which a
// transaction logs before it frees a batch of blocks. Everything else goes
// through allocate_logged and free_generic, which report each write.
#pragma once

#include "allocator/local_heap.hpp"
#include "allocator/metadata_log.hpp"
#include "allocator/region.hpp"

#include <cstddef>

namespace larder::alloc {

// A block of `size` bytes (size <= kDirectMax, alignment <= 16) from the
// direct page of its size: one from the page's free list, or a fresh one
// carved from it. The page descriptor is logged once per transaction and
// the free-list links of the next blocks in one batch, so most
// allocations make nothing durable until commit. nullptr with *err 0:
// the direct page has no block (take allocate_logged); nullptr with *err
// set: logging failed and nothing changed.
void* allocate_direct_logged(local_heap* h, std::size_t size, metadata_sink& sink, int* err) noexcept;

// The metadata a free of `p` writes in the common case, a block in a page
// of a pages segment of `r`: the page's descriptor and the block's link.
// Stores them in out[0, n) and returns n; 0 for any other block.
std::size_t free_writes(const region& r, void* p, metadata_range out[2]) noexcept;

}  // namespace larder::alloc
