// Allocator statistics, printed without allocating.
#pragma once

namespace larder::alloc {

// Writes per-heap and per-pod usage and the process's memory to stderr.
void print_stats() noexcept;

}  // namespace larder::alloc
