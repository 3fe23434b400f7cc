// Before a transaction makes allocator metadata durable, the segments that
// plain allocation changed since they were last durable are made durable
// as they are (allocator/unsettled.hpp explains why and in what order).
#pragma once

#include <cstddef>
#include <cstdint>

namespace larder {

class heap_impl;

// Settles the marked segments of pods[0, pod_count), unless nothing was
// marked in this process since a settle left no mark, the heap is
// read-only, or nothing of it survives a power failure anyway (shm,
// anonymous). 0 or an errno value.
int settle_plain_changes(heap_impl& impl, const std::uint32_t* pods, std::size_t pod_count) noexcept;

}  // namespace larder
