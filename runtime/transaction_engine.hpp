// The transaction engine's entry points for the rest of the runtime (the
// public class is include/larder/transaction.hpp).
#pragma once

#include <larder/status.hpp>

#include <cstddef>
#include <cstdint>

namespace larder {

class heap_impl;

// On open, before the allocator adopts the heap: rolls back every lane's
// uncommitted transaction, makes that durable, gives back log segments no
// lane references, and sets each lane's next transaction number. Takes
// time proportional to the logs, not to the heap.
status recover_transactions(heap_impl& impl);

// The calling thread's open transaction on `impl`'s heap, if any: heap
// and pod allocation, deallocation and root changes join it.
bool in_transaction(const heap_impl* impl) noexcept;
// Holds the heap's root and pod tables lock (heap_impl::meta_lock) until
// the calling thread's transaction on `impl` ends (in_transaction must be
// true): with shared writers, what it changes there stays out of other
// clients' reach until it has committed or rolled back.
void hold_tables_to_end(heap_impl* impl) noexcept;
// Allocation and deferred free inside the calling thread's transaction on
// `impl` (in_transaction must be true). nullptr and errno on failure.
// Pod 0 of a heap with automatic placement stands for the pod placement
// chooses for `site` (allocator/placement.hpp).
void* transactional_allocate(heap_impl* impl, std::uint32_t pod, std::size_t size, std::size_t alignment,
                             const void* site = nullptr) noexcept;
void transactional_free(heap_impl* impl, void* p) noexcept;
// Logs [p, p + size) in the calling thread's transaction on `impl`.
status transactional_snapshot(heap_impl* impl, const void* p, std::size_t size) noexcept;
// The heap holding `p` when the calling thread has a transaction open on
// it, else nullptr.
heap_impl* transaction_heap_of(const void* p) noexcept;

}  // namespace larder
