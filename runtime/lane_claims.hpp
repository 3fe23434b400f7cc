// Which undo-log lane a transaction writes. Each transaction holds one lane
// of its own from begin to end, so transactions of different threads run
// side by side; a thread takes the lane it used last again when it is
// idle (its log storage is still reserved), else one no thread has used,
// else any idle one. With shared writers a client uses only its own lanes
// and claims one more (under the heap's client lock) when its threads
// hold every one.
#pragma once

#include <larder/status.hpp>

#include <cstdint>

namespace larder {

class heap_impl;

// Takes a lane for the calling thread's transaction: OK with *lane set,
// after waiting while every lane it may use is held (with shared writers,
// after claiming one more for the client where the heap has a free one).
// Fails only where claiming a lane fails otherwise than on a full table.
status take_lane(heap_impl& impl, std::uint32_t* lane);
// Gives the lane back once its transaction has ended.
void give_lane_back(heap_impl& impl, std::uint32_t lane) noexcept;

}  // namespace larder
