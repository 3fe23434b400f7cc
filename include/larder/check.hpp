// larder::check_heap: verify a heap's on-media structures offline, and
// optionally repair what can be repaired without guessing user data;
// larder::salvage_heap: copy what is intact out of a damaged heap.
// `larder check` and `larder salvage` (docs/tools/larder.md) are the
// command-line front ends.
#pragma once

#include <larder/export.hpp>
#include <larder/heap.hpp>
#include <larder/status.hpp>

#include <cstddef>
#include <cstdint>
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
  // Pages (and huge blocks) a repair set aside because which blocks they
  // held could not be told: never handed out or freed again.
  std::size_t quarantined_pages = 0;
  std::size_t quarantined_bytes = 0;
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
// commit is what one flipped bit leaves; the repair says so); marks
// damaged root records removed and renames damaged pod records; then opens
// the heap for writing through larder::heap, which runs recovery (rolls
// back uncommitted transactions, completes an interrupted close, rebuilds
// the allocator's process-local state). Where the allocator's metadata is
// damaged it then rebuilds what the rest of the heap determines: segment
// headers from the segment table, a page's size class from the fields that
// agree, free lists and counts (a block goes on a free list only when the
// old lists named it free and no root reaches it), huge-block headers; a
// page whose blocks cannot be told apart is quarantined (never handed out
// or freed again; counted in quarantined_pages). Then it marks removed
// every root that points outside the heap, closes the heap (making it
// durable) and checks it again. `out` then holds the final state and the
// list of repairs. Nothing about user data is guessed: what cannot be
// rebuilt stays a problem (a damaged log record of an uncommitted
// transaction, for one: recovery refuses that lane, and the allocator's
// metadata is then left as it is). The heap is not opened for writing when
// recovery would free an undo-log segment that still holds a segment
// header (it may be live blocks whose table entry is damaged).
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

// What salvage_heap did with one root.
struct salvaged_root {
  std::string name;  // as recorded ("slot N" when the record holds no name)
  bool salvaged = false;
  std::size_t blocks = 0;  // blocks of its object graph (a block two roots share counts for each)
  std::size_t bytes = 0;
  std::string lost_because;  // when not salvaged: why, naming the damaged place
};

struct salvage_report {
  std::vector<salvaged_root> roots;  // every live or damaged root record, in slot order
  // What the reader should know: a crashed transaction rolled back in a
  // private copy, a lane that could not be read, ...
  std::vector<std::string> notes;
  std::size_t blocks = 0;  // blocks copied, each once
  std::size_t bytes = 0;
  std::size_t pods = 0;    // pods the new heap holds blocks of
  std::size_t pointers_relocated = 0;  // words rewritten to the new addresses

  std::size_t lost() const noexcept {
    std::size_t n = 0;
    for (const salvaged_root& r : roots) n += r.salvaged ? 0 : 1;
    return n;
  }
};

// Copies every root of the heap in file `path` (or shm object, kind shm)
// whose object graph is intact into a new file heap `out_path`, and says
// per root what it did (docs/tools/larder.md, "salvage"). The heap is only
// read: mapped privately at its own address, where a transaction a crash
// left uncommitted is rolled back, and a close a crash cut short is
// completed, in this process's copy.
//
// A root's graph is what it reaches conservatively: every 8-byte-aligned
// word inside a block reached whose value lies inside a block that may be
// live. It is intact unless it reaches a page whose blocks cannot be told
// apart (a damaged or quarantined page descriptor) or a block past the end
// of the file; a root whose record is damaged is lost too. Each block kept
// goes to the pod of the same name in the new heap (a pod whose record is
// damaged: `damaged-N`), under the same root names and sizes.
//
// The new heap has a base address of its own, so pointers move: every word
// of a kept block whose value lies inside a kept block, or just past one,
// is rewritten. An integer that happens to hold such a value is rewritten
// too (the price of a copy that can be opened beside its original).
//
// Returns OK when the new heap was written, whatever was lost (see
// out->lost()). Errors: not_found, not_a_heap, corrupt (no sound
// superblock or metadata block), truncated, newer_format, foreign_build,
// address_taken (the heap's range is in use in this process), already_exists
// (`out_path` exists), or the errno value of a failed call; `out_path` is
// then not left behind.
LARDER_EXPORT status salvage_heap(backing kind, const std::string& path, const std::string& out_path,
                                  salvage_report* out);

// A word of a heap object, reachable from a root, that holds an address
// of this process outside every open larder heap: a pointer that means
// nothing after a restart (a std::string or std::vector with the default
// allocator, a const char* to a literal, a vtable, a std::function).
struct outside_pointer {
  std::string root;          // the root whose object graph holds it
  const void* block;         // the heap block holding the word
  std::size_t offset;        // the word's offset in the block
  std::uintptr_t value;      // the address the word holds
  std::string target;        // what is mapped there: a file, "[heap]", "[stack]",
                             // "anonymous memory", "the process heap (liblarder_malloc)"
};

// A debug aid: walks every block reachable from `h`'s roots (conservatively,
// every aligned word that points into a block is followed, as salvage
// does) and lists the words that hold an address mapped in this process
// outside every open larder heap, at most `limit` of them. Addresses into
// another open heap are not listed (they stay valid while both are open).
// An integer that happens to equal such an address is listed too. Exact
// only while no thread writes the heap. Errors: invalid_argument (`h` is
// not open), the errno value of reading the process's mappings.
LARDER_EXPORT status find_outside_pointers(const heap& h, std::vector<outside_pointer>* out,
                                           std::size_t limit = 1000);

}  // namespace larder
