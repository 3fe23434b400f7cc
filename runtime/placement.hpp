// Automatic pod placement, the runtime's half (docs/placement.md): the pods
// placed allocations go to, what the tracker says of them each epoch, the
// decisions the cost model (runtime/placement_model.hpp) makes from that,
// and the record of them in the heap that `larder pods` reads. The
// allocator's half, which routes each allocation, is allocator/placement.hpp.
#pragma once

#include <larder/status.hpp>
#include <larder/tracking.hpp>

#include <vector>

namespace larder {

class heap;
class heap_impl;

struct placement_state;
struct placement_state_deleter {
  void operator()(placement_state* state) const noexcept;
};

// At open with heap_options::placement: makes the overflow pod, the first
// spare pods and the record, then turns the default pod into a router.
status start_placement(heap& h);

// After a checkout, which may have taken away the pods placement used:
// starts placement over (no other thread may use the heap meanwhile). On
// failure the heap goes on without placement.
status restart_placement(heap& h);

// Adds the pages a tracker collect found written, by pod, to the current
// epoch's counts (tracking.cpp calls it under the collect lock).
void placement_note_written(heap_impl& impl, const std::vector<dirty_run>& runs) noexcept;

// Ends an epoch: measures each probing site's rate, regroups the measured
// sites when it is time, supplies spare pods and records the decisions.
// heap::collect_dirty calls it, and a checkpoint where the program does
// not collect itself. Placement is advice: what fails here is reported
// (LARDER_VERBOSE) and never fails the collect or the checkpoint.
void placement_end_epoch(heap& h) noexcept;

}  // namespace larder
