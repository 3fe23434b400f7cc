// What transactions and close journals share about undo-log lanes: a
// writer with the lane's log storage and how much of it a lane keeps, the
// next transaction number of a lane, and a run of segments made a lane's
// next extent in the order that keeps every crash recoverable.
#pragma once

#include "allocator/segment.hpp"
#include "recovery/undo_log.hpp"

#include <cstddef>
#include <cstdint>

namespace larder {

class heap_impl;

// A writer for lane `lane` whose appends reserve the log's storage in the
// heap's backing (recovery::log_storage). The caller has the lane to
// itself.
recovery::lane_writer lane_writer_for(heap_impl& impl, std::uint32_t lane) noexcept;

// Log storage a lane keeps between transactions (and journals). One that
// needed far more (page capture reserves for every page it may capture, a
// close journal holds the metadata of the whole heap) gives the rest back
// when it ends.
inline constexpr std::size_t kLogStorageKept = std::size_t{256} << 10;

// Gives back the log storage of the writer's lane past what its finished
// transaction or journal wrote (at least kLogStorageKept), when it holds
// far more: past it, the log holds nothing a recovery needs.
void trim_log_storage(recovery::lane_writer& writer) noexcept;

// The number lane `lane` gives its next transaction (or journal), never
// one it gave before: above the committed one and below the lane's
// reserved limit, which is raised durably when reached. 0 or an errno
// value.
int take_lane_seq(heap_impl& impl, std::uint32_t lane, std::uint64_t* seq) noexcept;

// Claims `count` free segments as kSegmentLog of lane `lane` and gives
// them the storage read or written before the first append (the first
// page, or all of them where reading a hole takes storage). 0 with *run
// set, or an errno value with nothing claimed.
int claim_log_run(heap_impl& impl, std::uint32_t lane, std::size_t count, alloc::segment** run) noexcept;

// Makes `count` segments at `run` (claim_log_run) the writer's lane's
// next extent: old segment headers there are cleared, the segment table
// is made durable, then the lane records the extent, each step through
// `domain` (the heap's, or one that must not sync the whole file). On
// failure the run is given back. 0 or an errno value.
int add_lane_extent(heap_impl& impl, recovery::persist_domain& domain, recovery::lane_writer& writer,
                    alloc::segment* run, std::size_t count) noexcept;

}  // namespace larder
