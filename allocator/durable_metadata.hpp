// The allocator's durable metadata: every byte range of a region that the
// allocator reads back when the heap is opened again. A close journals
// these ranges before it writes the heap back (runtime/close_journal.cpp),
// so that a power failure in the middle of the write-back, which can land
// any subset of the heap's cache lines, is completed on the next open
// rather than leaving half-old, half-new metadata.
#pragma once

#include "allocator/region.hpp"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace larder::alloc {

struct metadata_range {
  std::uintptr_t address;
  std::size_t size;
};

// Appends to `out`, in address order and with ranges that lie within
// `join_gap` bytes of each other joined (one record covers both): the
// segment table up to segments_high and segments_high itself, the header
// (segment fields and page descriptors) of every used segment of blocks,
// and the link word of every block on a page's free and remote-free lists.
// Free lists are followed as far as the page holds blocks. The region must
// be quiescent: no thread allocates or frees in it meanwhile.
void collect_durable_metadata(const region& r, std::size_t join_gap, std::vector<metadata_range>* out);

}  // namespace larder::alloc
