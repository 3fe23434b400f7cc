// The undo-log lanes as `larder info` shows them (larder::heap::lanes):
// each lane read the way recovery reads it (recovery/undo_log.hpp), and
// nothing changed.
#pragma once

#include "recovery/layout.hpp"

#include <larder/heap.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace larder {

// The lanes of the heap mapped at `base` whose backing holds `heap_size`
// bytes, leaving out unused ones.
std::vector<lane_info> describe_lanes(const layout::heap_meta& meta, std::uintptr_t base, std::size_t heap_size);

}  // namespace larder
