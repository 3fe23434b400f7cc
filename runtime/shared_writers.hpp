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
#include <functional>
#include <vector>

namespace larder {

namespace alloc {
struct segment;
class region;
}

class heap_impl;

// What other clients change, while a dead client's lane is rolled back, in
// what that lane logged, which the rollback leaves as it is (its logged
// image is stale):
// - the remote-free lists of the pages (pushed to by atomic exchange; the
//   dead client's own transactions never take from them, see page_collect);
// - segments_high, which only grows;
// - a segment-table entry that no longer holds its logged image, unless it
//   names a segment of the dead client: the dead client logged it, under
//   the region lock, to take a free segment, and died before it did; the
//   next holder of the lock took the segment (for its pages, a huge block
//   or an undo log). A transaction never gives a segment back to the table
//   before its commit (pod_arena::release_slices), so a changed entry that
//   names no client was never the dead client's to restore.
// What the transaction pushed onto remote lists it takes back off.
class shared_lane_rollback final : public recovery::shared_rollback {
 public:
  // `client`: whose lane is rolled back.
  shared_lane_rollback(std::uintptr_t base, layout::heap_meta* meta, std::uint32_t client)
      : base_(base), meta_(meta), client_(client) {}
  void changed_since(std::uintptr_t start, const std::uint8_t* before, std::size_t size,
                     std::vector<range>* out) const override;
  bool take_back_push(std::uintptr_t block, std::vector<recovery::persist_range>* written) const override;
  // The pages segment holding `address`, or nullptr.
  alloc::segment* pages_segment(std::uintptr_t address) const noexcept;

 private:
  // The client whose segment entry `index` now names (kNoClient: none).
  std::uint32_t entry_client(std::size_t index) const noexcept;
  std::uintptr_t base_;
  layout::heap_meta* meta_;
  std::uint32_t client_;
};

// Once a lane of a client that is gone has been rolled back (or found
// committed): lets owners fold in what its last transaction pushed onto
// their remote lists again (telling them through `owners`, when clients
// run), and frees the huge blocks it freed at its commit that are still
// marked with its lane (free_huge: the segment table's way of freeing a
// head segment and its tails).
void settle_after_commit_frees(std::uintptr_t base, layout::heap_meta* meta, std::uint32_t lane,
                               const recovery::lane_scan& scan, alloc::region* owners,
                               const std::function<void(alloc::segment*)>& free_huge);

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
