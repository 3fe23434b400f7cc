// The allocator's durable metadata: every byte range of a region that the
// allocator reads back when the heap is opened again. A close journals
// these ranges before it writes the heap back (runtime/close_journal.cpp),
// so that a power failure in the middle of the write-back, which can land
// any subset of the heap's cache lines, is completed on the next open
// rather than leaving half-old, half-new metadata.
#pragma once

#include "allocator/heap_walk.hpp"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace larder::alloc {

struct metadata_range {
  std::uintptr_t address;
  std::size_t size;
};

// Ranges are heap addresses (a region's view: where it is mapped).

// Appends segments_high and the segment table up to it: all that changes
// when free segments change hands (a close that gives its journal's lane
// more log changes nothing else). Both lie in the metadata segment, below
// every range collect_segment_metadata finds.
void collect_segment_table(const heap_view& view, std::vector<metadata_range>* out);

// Appends, in address order and with ranges that lie within `join_gap`
// bytes of each other joined (one record covers both), the header (segment
// fields and page descriptors) of every used segment of blocks and huge
// block, and the link word of every block on a page's free and remote-free
// lists, as far as the one walker (heap_walk.hpp, full lists) follows
// them. Reads every free block. The heap must be quiescent: no thread
// allocates or frees in it meanwhile.
void collect_segment_metadata(const heap_view& view, std::size_t join_gap, std::vector<metadata_range>* out);

}  // namespace larder::alloc
