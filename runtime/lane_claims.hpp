// Which undo-log lane a transaction writes. Each transaction holds one lane
// of its own from begin to end, so transactions of different threads run
// side by side; a thread takes the lane it used last again when it is
// idle (its log storage is still reserved), else one no thread has used,
// else any idle one. With shared writers a client uses only its own lanes
// and claims one more (under the heap's client lock) when its threads
// hold every one.
#pragma once

#include <larder/status.hpp>

#include <atomic>
#include <cstdint>

namespace larder {

class heap_impl;

// Who holds a lane of the heap in this process (heap_impl::lanes). A cache
// line each, so that threads claiming different lanes share none.
struct alignas(64) lane_slot {
  std::atomic<bool> busy{false};          // a transaction holds it
  std::atomic<std::uintptr_t> thread{0};  // the thread that took it last
};

// Takes a lane for the calling thread's transaction: OK with *lane set,
// after waiting while every lane it may use is held (with shared writers,
// after claiming one more for the client where the heap has a free one).
// Fails only where claiming a lane fails otherwise than on a full table.
status take_lane(heap_impl& impl, std::uint32_t* lane);
// Gives the lane back once its transaction has ended.
void give_lane_back(heap_impl& impl, std::uint32_t lane) noexcept;
// Whether a transaction holds a lane other than `mine`. Taking a lane is
// sequentially consistent, so a caller that set a flag before asking and a
// transaction that reads the flag after taking its lane see each other.
bool other_lanes_held(const heap_impl& impl, std::uint32_t mine) noexcept;

}  // namespace larder
