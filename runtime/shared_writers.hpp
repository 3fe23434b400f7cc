// Several processes writing one shm or file heap at once (heap_options::
// shared_writers; docs/shared_writers.md). Each process is a client with a
// slot in the heap (layout::shared_writers_record), an undo-log lane of its
// own that names it, and the segments it allocates from. A client that
// dies is found by its identity (port::identity_alive) and recovered by
// whichever client looks next: its lane rolled back, its segments left for
// others to adopt. What else it left (the object store's references)
// is its owner's to settle, after this.
#pragma once

#include "port/shared_sync.hpp"
#include "recovery/layout.hpp"
#include "recovery/undo_log.hpp"

#include <larder/status.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace larder {

class heap_impl;

// What other clients change, while a dead client's lane is rolled back, in
// what that lane logged: the remote-free lists of its pages (pushed to by
// atomic exchange; its own transactions never take from them, see
// page_collect) and segments_high, which only grows. A rollback leaves
// them as they are: their logged images are stale.
class shared_lane_words final : public recovery::live_words {
 public:
  shared_lane_words(std::uintptr_t base, layout::heap_meta* meta) : base_(base), meta_(meta) {}
  void in(std::uintptr_t start, std::size_t size, std::vector<std::uintptr_t>* out) const override;

 private:
  std::uintptr_t base_;
  layout::heap_meta* meta_;
};

// What makes two builds disagree about the shared record: its version,
// its size, the lock's layout in this C library, the heap layout.
std::uint64_t shared_build_signature() noexcept;

// With the attach lock held (port::lock_attach) and the writer lock taken
// shared or, for the first client, exclusive: takes a client slot and a
// lane. The first client (`first`: no other is attached; the heap was
// recovered and adopted as a lone writer's open does) initialises the
// shared record and owns every segment; a later one checks that the
// record is of its own build (foreign_build otherwise) and recovers the
// clients that died.
status attach_client(heap_impl& impl, bool first);
// With the client lock held: claims a free lane for this client, its
// owner fields recording the client and its process (a dead client's
// lanes are found by them); *lane is its index. table_full when every
// lane belongs to a client.
status claim_client_lane(heap_impl& impl, std::uint32_t* lane);
// Gives this client's lanes, slot and segments back (after forget_region:
// no thread allocates here any more).
void detach_client(heap_impl& impl) noexcept;
// A lone writer's open, after recovering every lane: the clients that had
// the heap open before are all gone, and their slots and lanes are free.
void forget_clients(heap_impl& impl) noexcept;
// Recovers every client that died; *recovered counts them.
status recover_dead_clients(heap_impl& impl, std::size_t* recovered);

}  // namespace larder
