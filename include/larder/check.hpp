// larder::check_heap: verify a heap's on-media structures offline, and
// optionally repair what can be repaired without guessing user data.
// `larder check` (docs/tools/larder.md) is the command-line front end.
#pragma once

#include <larder/export.hpp>
#include <larder/heap.hpp>
#include <larder/status.hpp>

#include <cstddef>
#include <string>
#include <vector>

namespace larder {

// What a check found. Each problem and note names the exact place (copy,
// segment, page, slot, root, lane) and what is wrong there.
struct check_report {
  // Damage: the heap is not as the format requires (docs/format/heap.md).
  std::vector<std::string> problems;
  // Facts worth knowing that are not damage: a superblock copy one update
  // behind, an uncommitted transaction that the next writable open rolls
  // back, a newer minor format.
  std::vector<std::string> notes;
  // What repair mode changed, one line each.
  std::vector<std::string> repairs;

  std::size_t segments = 0;         // segments in use (not free), segment 0 excluded
  std::size_t pages = 0;            // heap pages in page segments
  std::size_t blocks_in_use = 0;    // blocks handed out (huge blocks count one)
  std::size_t bytes_in_use = 0;     // their block sizes (huge: the size asked for)
  std::size_t roots = 0;            // live roots
  std::size_t pods = 0;             // pods in use
  std::size_t lanes = 0;            // undo-log lanes in use
  std::size_t pending_transactions = 0;  // lanes holding an uncommitted transaction
  // Closes that a crash cut short during their write-back: their journal
  // (docs/persistence.md) is checked as applied, and the next writable
  // open applies it.
  std::size_t interrupted_closes = 0;

  bool clean() const noexcept { return problems.empty(); }
};

// Checks the heap in file `path` (kind file) or shm object `path` ("/name",
// kind shm) and fills `*out` (cleared first).
//
// Without `repair` nothing is written: the backing is opened read-only and
// read through a private mapping (a close journal that a crash left is
// applied there only). The check is exact only while no process has the
// heap open for writing.
//
// With `repair`: first rewrites a superblock copy that fails its checks
// from the other, valid one; rewrites a damaged commit slot on which an
// undo-log lane's transaction depends, treating that transaction as
// committed (its changes stay as they are: a slot damaged after its
// commit is what one flipped bit leaves; the repair says so); then opens
// the heap for writing through
// larder::heap, which runs recovery (rolls back uncommitted transactions,
// completes an interrupted close, rebuilds the allocator's process-local
// state); marks removed every root
// that points outside the heap; closes the heap (making it durable) and
// checks it again. `out` then holds the final state and the list of
// repairs. Nothing else is guessed: a structure that cannot be rebuilt
// from a good copy or by recovery stays a problem (a damaged log record of
// an uncommitted transaction, for one: recovery refuses that lane). The heap is not opened for
// writing when recovery would free an undo-log segment that still holds a
// segment header (it may be live blocks whose table entry is damaged).
//
// Returns OK when the check ran, whatever it found (see out->clean()).
// Errors: not_found (no such file or shm object), invalid_argument (bad
// kind or name), heap_busy (repair while another process has the heap
// open for writing), address_taken (repair: the heap's address range is in
// use in this process), or the errno value of a failed read or write.
LARDER_EXPORT status check_heap(backing kind, const std::string& path, bool repair, check_report* out);

inline status check_heap(const std::string& path, bool repair, check_report* out) {
  return check_heap(backing::file, path, repair, out);
}

}  // namespace larder
