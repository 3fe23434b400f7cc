// What transactions and close journals share about undo-log lanes: the
// next transaction number of a lane, and a run of segments made a lane's
// next extent in the order that keeps every crash recoverable.
#pragma once

#include "allocator/segment.hpp"
#include "recovery/undo_log.hpp"

#include <cstddef>
#include <cstdint>

namespace larder {

class heap_impl;

// The number lane `lane` gives its next transaction (or journal), never
// one it gave before: above the committed one and below the lane's
// reserved limit, which is raised durably when reached. 0 or an errno
// value.
int take_lane_seq(heap_impl& impl, std::uint32_t lane, std::uint64_t* seq) noexcept;

// Makes `count` segments at `run`, just claimed as kSegmentLog of the
// writer's lane (region::acquire), the lane's next extent: old segment
// headers there are cleared, the segment table is made durable, then the
// lane records the extent. On failure the run is given back. 0 or an
// errno value.
int add_lane_extent(heap_impl& impl, recovery::lane_writer& writer, alloc::segment* run, std::size_t count) noexcept;

}  // namespace larder
