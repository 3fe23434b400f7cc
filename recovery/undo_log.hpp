// Undo-log lanes: the records a transaction writes before it changes the
// heap in place, and the replay that rolls an uncommitted one back.
//
// A lane (layout::lane_record) owns a chain of extents. A transaction with
// number `seq` writes its records from the start of extent 0, each
//   record_header (32 bytes) + payload, padded to 16 bytes,
// with the XXH3-64 of the header fields and the payload in `checksum`. A
// record that does not fit in the rest of an extent goes to the start of
// the next one (a skip record marks the jump when 32 bytes are left).
// Records are made durable in batches (one persist each); every batch but
// the first starts with a marker (a range record of 0 bytes), so a reader
// knows that whatever lies before a marker was durable before anything
// after it was written.
//
// Protocol (per transaction): records durable -> in-place writes -> data
// durable -> commit slot (seq & 1) durable. Recovery reads the records of
// the first record's seq s and the lane's commit slots: s committed (or was
// rolled back already) when slot s & 1 holds s or more, or the other slot
// a later seq; otherwise its records are rolled back, newest first. A slot
// or record that fails its checksum is damage, never "not committed": a
// slot's deciding bytes lie in one 64-byte line, so no crash tears them,
// and a crash can only tear the last batch of records (whose in-place
// writes had not started). So a damaged slot that the decision needs, or
// a damaged record followed by a later batch of the same transaction,
// makes the lane unrecoverable (errc::corrupt) rather than roll back part
// of it or nothing.
//
// A lane may instead hold a close journal (format 1.4): after-images of the
// allocator's metadata, written by a close before its write-back of the
// whole heap (runtime/close_journal.cpp), so that a power failure in the
// middle of that write-back can be completed rather than rolled back. Its
// records are kRecordAfterImage, all of one seq, the last one of 0 bytes
// (the end mark). The commit slots do not decide it: a complete journal
// (every record through the end mark intact) is replayed, its after-images
// written in order, and then retired by clearing its first record; an
// incomplete one was cut short while it was written, before the
// write-back began, and is ignored. Replaying a complete journal whose
// write-back had not begun is as sound: the metadata is then the close's
// and the blocks hold what they held before.
#pragma once

#include "recovery/layout.hpp"
#include "recovery/persist.hpp"

#include <larder/status.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace larder::recovery {

enum record_kind : std::uint32_t {
  kRecordRange = 1,  // payload: the before-image of [address, address + size)
  kRecordSkip = 2,   // the rest of this extent is unused; go on in the next
  kRecordAfterImage = 3,  // payload: what [address, address + size) holds after a close (format 1.4)
  // No payload (format 1.7, heaps with shared writers). The transaction
  // pushed the freed block at `address` onto its page's remote list, which
  // a rollback takes back off (shared_rollback::take_back_push).
  kRecordRemotePush = 4,
  // No payload (format 1.7). The transaction frees the huge block whose
  // head segment starts at `address` once it has committed; what recovers
  // a lane whose client died in between frees it then.
  kRecordHugeFree = 5,
};

struct record_header {
  std::uint32_t kind;
  std::uint32_t size;  // payload bytes
  std::uint64_t seq;
  std::uint64_t address;
  std::uint64_t checksum;
};
static_assert(sizeof(record_header) == 32);

inline constexpr std::size_t kRecordAlign = 16;
// Longest payload of one record: larger snapshots are split.
inline constexpr std::size_t kMaxRecordPayload = std::size_t{1} << 20;

inline std::size_t record_span(std::size_t payload) noexcept {
  return (sizeof(record_header) + payload + kRecordAlign - 1) & ~(kRecordAlign - 1);
}

std::uint64_t record_checksum(const record_header& h, const void* payload) noexcept;
// A batch marker: a range record of no bytes at the metadata block's start
// (a record older readers accept and replay as nothing).
inline bool is_batch_marker(const record_header& h) noexcept { return h.kind == kRecordRange && h.size == 0; }
// The last record of a close journal.
inline bool is_journal_end(const record_header& h) noexcept { return h.kind == kRecordAfterImage && h.size == 0; }

// ---- commit slots ----------------------------------------------------------

// XXH3-64 of the 24 bytes before `checksum` (what every reader checks).
std::uint64_t commit_slot_checksum(const layout::commit_slot& slot) noexcept;
// XXH3-64 of seq and time_ns with bit 0 set: the `line_check` field.
std::uint64_t commit_slot_line_check(const layout::commit_slot& slot) noexcept;
// A slot recording `seq` finished (0: the empty slot, all zero bytes).
layout::commit_slot make_commit_slot(std::uint64_t seq, std::uint64_t time_ns) noexcept;

enum class slot_state : std::uint8_t {
  empty,    // seq, time_ns and line_check zero: nothing of its parity ever finished
  valid,    // records `seq`
  damaged,  // fails its checks: what it recorded is unknown
};
struct slot_view {
  slot_state state = slot_state::empty;
  std::uint64_t seq = 0;        // when valid
  // Valid by its line check (or empty), but `checksum` does not match.
  bool stale_checksum = false;
};
// Reads slot `k` of a lane. A slot with a line check is valid when the
// line check holds (seq, time_ns and line_check share one 64-byte line,
// so a crash never tears them); one without (written before line checks)
// when its checksum holds. Either way seq must be nonzero and of parity k.
slot_view read_slot(const layout::lane_record& lane, unsigned k) noexcept;
// The newest seq a valid commit slot records, or 0.
std::uint64_t committed_seq(const layout::lane_record& lane) noexcept;
// Where slot `k` of lane `lane_index` lies, as an offset in the heap.
std::uint64_t commit_slot_offset(std::size_t lane_index, unsigned k) noexcept;

// A lane's extents as addresses in the mapped heap.
struct extent_view {
  std::uint8_t* start;
  std::size_t size;
};
// Fails with corrupt when an extent lies outside [base + one segment,
// base + heap_size) or the extent count is out of range.
status lane_extents(const layout::lane_record& lane, std::uintptr_t base, std::size_t heap_size,
                    std::vector<extent_view>* out);

// ---- scan ------------------------------------------------------------------

// One record found by a scan.
struct found_record {
  const record_header* header;
  const std::uint8_t* payload;
};
struct lane_scan {
  std::uint64_t committed = 0;  // newest seq a valid slot records
  std::uint64_t seq = 0;        // seq of the records found (0: none)
  std::vector<found_record> records;
  std::size_t bytes = 0;  // log bytes the records span
  slot_view slots[2];
  // seq's transaction is over (committed, aborted or rolled back): its
  // slot holds seq or more, or the other slot a later seq.
  bool finished = true;
  // seq's own slot is damaged and the other slot does not settle it:
  // whether seq committed cannot be told.
  bool undecidable = false;
  // A record of the pending transaction fails its checksum and a later
  // batch of it follows: that record was durable, so the log is damaged.
  bool record_damaged = false;
  std::uint64_t damaged_record_offset = 0;  // heap offset of that record
  // The scan stopped at a record that fails its checksum with no later
  // batch after it: a batch cut short by a crash (or damage that cannot be
  // told from one). The valid records before it are rolled back.
  bool torn_tail = false;
  // The records are a close journal (after-images), and its end mark was
  // found (an incomplete journal is ignored).
  bool journal = false;
  bool journal_complete = false;
  std::uint8_t* log_start = nullptr;  // the first record's place (extent 0), when the lane has extents

  // Recovery has work: roll seq back, or replay its complete journal.
  bool pending() const noexcept {
    return seq != 0 && !undecidable && !record_damaged && (journal ? journal_complete : !finished);
  }
  // A slot needs rewriting (damaged, or a stale checksum).
  bool slots_need_repair() const noexcept {
    for (const slot_view& v : slots)
      if (v.state == slot_state::damaged || v.stale_checksum) return true;
    return false;
  }
};
// Reads a lane without changing anything. Range records must lie inside
// [base, base + heap_size); one that does not fails the scan with corrupt.
// Damage (undecidable, record_damaged) is reported in `out`, not as an
// error: lane_verdict turns it into one.
status scan_lane(const layout::lane_record& lane, std::uintptr_t base, std::size_t heap_size, lane_scan* out);
// corrupt, naming the lane (`lane_index`) and the damaged slot or record,
// when the lane cannot be recovered without guessing; else OK.
status lane_verdict(const lane_scan& scan, std::size_t lane_index);
// The slots a lane should hold once its transaction is settled: as a
// rollback or scan left them, with damaged slots and stale checksums
// rewritten. With `commit_undecided`, an undecidable transaction counts as
// committed (the repair `larder check --repair` makes: a slot damaged
// after its transaction committed is what one flipped bit leaves; its
// records are then not needed, damaged or not). A damaged slot k
// gets the newest seq of parity k at or below the newest finished seq
// (every seq below a finished one is over), or the empty slot.
void settled_slots(const layout::lane_record& lane, const lane_scan& scan, bool commit_undecided,
                   layout::commit_slot out[2]) noexcept;
// Settles a pending scan; the caller has the lane to itself. An undo log:
// writes back the before-images, newest first, makes them durable, then
// records the rollback by writing the commit slot of seq (so it is never
// replayed again). A complete close journal: writes the after-images in
// order, makes them durable, then retires the journal.
// What a rollback of a lane of a heap with shared writers must know of the
// other processes, which go on writing while it runs.
struct shared_rollback {
  struct range {
    std::uintptr_t address;
    std::size_t size;
  };
  // What the others changed since the lane logged it: a rollback leaves
  // it as it is (its before-image is stale). Lists, in address order, the
  // pieces of [start, start + size), logged with the before-image
  // `before`, to leave.
  virtual void changed_since(std::uintptr_t start, const std::uint8_t* before, std::size_t size,
                             std::vector<range>* out) const = 0;
  // Undoes a kRecordRemotePush, adding what it wrote to `written` (made
  // durable with the rest of the rollback); false when the block is not
  // on the list.
  virtual bool take_back_push(std::uintptr_t block, std::vector<persist_range>* written) const = 0;

 protected:
  ~shared_rollback() = default;
};
// A lane holding kRecordRemotePush records needs `shared` (corrupt without).
status roll_back_lane(layout::lane_record* lane, const lane_scan& scan, persist_domain& domain,
                      const shared_rollback* shared = nullptr);
// Clears the first record of the lane's log, so that a close journal
// whose after-images are all in place is never replayed again, and
// returns the bytes the caller makes durable (none when the lane has no
// log).
persist_range retire_journal(layout::lane_record* lane, std::uintptr_t base) noexcept;
// On a lane that lane_verdict accepts, once its transaction is settled
// (after roll_back_lane, or when nothing was pending): rewrites damaged
// slots and stale checksums as settled_slots(..., false) says, durably.
int repair_slots(layout::lane_record* lane, const lane_scan& scan, persist_domain& domain) noexcept;

// Seqs are handed out below lane->seq_limit, which is raised (durably) by
// kSeqReservation at a time: makes sure `through` is below it.
inline constexpr std::uint64_t kSeqReservation = 1024;
// Seqs at or above this mean a damaged lane.
inline constexpr std::uint64_t kMaxSeq = std::uint64_t{1} << 62;
int reserve_seqs(layout::lane_record* lane, std::uint64_t through, persist_domain& domain) noexcept;
// Marks `seq` finished in the lane's commit slot of its parity and makes
// the slot durable: the commit point of a transaction.
int write_commit(layout::lane_record* lane, std::uint64_t seq, persist_domain& domain) noexcept;

// ---- writer ----------------------------------------------------------------

// The storage of a lane's log in a file or shm heap. A store through the
// mapping into a hole of the file needs storage, and on a full file system
// dies by SIGBUS, so the log's bytes get storage before they are written:
// a prefix of the log, in log order, grown in steps as it fills.
// Process-local, one per lane of an open heap; lasts across transactions.
struct log_storage {
  int fd = -1;  // the heap's backing; -1: nothing to reserve (anonymous heaps)
  // Reading a hole takes storage on this backing (port::
  // hole_reads_take_storage), and recovery reads a log past its records:
  // the log gets storage for all its extents, and keeps it.
  bool whole = false;
  std::size_t reserved = 0;  // the log's first `reserved` bytes have storage
};

// Appends records to a lane for one transaction. Not thread-safe: a lane
// belongs to one transaction at a time. Allocates nothing.
class lane_writer {
 public:
  // At most this many ranges per append: a batch marker, a skip record and
  // the record.
  static constexpr std::size_t kMaxDirtyRanges = 3;
  // Storage is reserved this much at a time, at least.
  static constexpr std::size_t kStorageStep = std::size_t{64} << 10;

  // `storage` (nullptr: none to reserve) must outlive the writer.
  lane_writer(layout::lane_record* lane, std::uintptr_t base, log_storage* storage = nullptr) noexcept
      : lane_(lane), base_(base), storage_(storage) {}
  // Starts transaction `seq` at the start of the log.
  void begin(std::uint64_t seq) noexcept;
  // Appends a record of `kind` (a range or an after-image) holding the
  // current bytes of [address, +size) (size <= kMaxRecordPayload; 0 only
  // for a journal's end mark), preceded by a batch marker when a batch was
  // made durable since the last append. Stores the log bytes written in
  // dirty[0, *count) (at most kMaxDirtyRanges). With nothing written:
  // ENOBUFS when the extents are full (add_extent, then retry), ENOSPC when
  // the file system has no storage left for the record.
  int append_range(const void* address, std::size_t size, persist_range* dirty, std::size_t* count,
                   record_kind kind = kRecordRange) noexcept;
  // Everything appended so far is durable: the next append starts a batch.
  void end_batch() noexcept { batch_done_ = used_total_ != 0; }
  // Makes `extent` (first segment index | count << 32, already claimed as
  // kSegmentLog, its first page with storage) the lane's next extent,
  // durably. EMLINK when the lane has kMaxLaneExtents already.
  int add_extent(std::uint64_t extent, persist_domain& domain) noexcept;
  std::size_t capacity() const noexcept;
  std::size_t used() const noexcept { return used_total_; }
  // Gives the log's first `bytes` (at most its capacity) storage, if they
  // have none yet. 0, or ENOSPC (the file system is full) or another errno
  // value, with the storage as it was. Appends reserve what they write
  // themselves; a caller that must not fail later (a signal handler)
  // reserves ahead.
  int reserve(std::size_t bytes) noexcept;
  // Gives back the storage of the log past its first `keep` bytes (rounded
  // up to kStorageStep), for a lane whose transaction is over.
  void release_storage_past(std::size_t keep) noexcept;
  std::size_t reserved() const noexcept { return storage_ != nullptr ? storage_->reserved : 0; }
  std::uint64_t seq() const noexcept { return seq_; }
  layout::lane_record* lane() const noexcept { return lane_; }

 private:
  std::size_t extent_size(std::size_t e) const noexcept;
  std::uint8_t* extent_start(std::size_t e) const noexcept;
  void write_header(void* at, record_kind kind, std::uint64_t address, const void* payload, std::size_t size) noexcept;
  // Calls fn(file offset, length) for each piece of the log's bytes [from,
  // to) in its extents; stops at the first nonzero result and returns it.
  template <class Fn>
  int for_each_piece(std::size_t from, std::size_t to, Fn&& fn) const noexcept;

  layout::lane_record* lane_;
  std::uintptr_t base_;
  log_storage* storage_;
  std::uint64_t seq_ = 0;
  std::size_t extent_ = 0;    // current extent index
  std::size_t offset_ = 0;    // write offset in it
  std::size_t used_total_ = 0;
  bool batch_done_ = false;   // a marker is due before the next record
};

}  // namespace larder::recovery
