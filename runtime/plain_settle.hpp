// Before a transaction makes allocator metadata durable, the segments that
// plain allocation changed since they were last durable are made durable
// as they are (allocator/unsettled.hpp explains why and in what order).
#pragma once

#include <cstddef>
#include <cstdint>

namespace larder {

class heap_impl;

// Whether settle_plain_changes has anything to do: something was marked
// in this process since a settle left no mark, and the heap is writable
// and durable. Lock-free.
bool plain_changes_pending(const heap_impl& impl) noexcept;
// Settles the marked segments of pods[0, pod_count) when
// plain_changes_pending. The caller holds the heap's tx_alloc_lock: the
// walk reads the segment table, which lanes growing and transactions
// allocating change. 0 or an errno value.
int settle_plain_changes(heap_impl& impl, const std::uint32_t* pods, std::size_t pod_count) noexcept;

}  // namespace larder
