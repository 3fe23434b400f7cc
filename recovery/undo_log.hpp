// Undo-log lanes: the records a transaction writes before it changes the
// heap in place, and the replay that rolls an uncommitted one back.
//
// A lane (layout::lane_record) owns a chain of extents. A transaction with
// number `seq` writes its records from the start of extent 0, each
//   record_header (32 bytes) + payload, padded to 16 bytes,
// with the XXH3-64 of the header fields and the payload in `checksum`. A
// record that does not fit in the rest of an extent goes to the start of
// the next one (a skip record marks the jump when 32 bytes are left).
//
// Protocol (per transaction): records durable -> in-place writes -> data
// durable -> commit slot (seq & 1) durable. Recovery reads the lane's
// newest valid commit slot (committed seq c) and the records of the first
// record's seq s: if s > c they are rolled back, newest first; otherwise
// the transaction committed and nothing is done. A scan stops at the first
// record whose checksum fails or whose seq differs, since a torn persist
// lands records in no particular order only after the last complete one
// (whose in-place writes had not started).
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
std::uint64_t commit_slot_checksum(const layout::commit_slot& slot) noexcept;
// The newest commit slot that passes its checksum: its seq, or 0.
std::uint64_t committed_seq(const layout::lane_record& lane) noexcept;

// A lane's extents as addresses in the mapped heap.
struct extent_view {
  std::uint8_t* start;
  std::size_t size;
};
// Fails with corrupt when an extent lies outside [base + one segment,
// base + heap_size) or the extent count is out of range.
status lane_extents(const layout::lane_record& lane, std::uintptr_t base, std::size_t heap_size,
                    std::vector<extent_view>* out);

// One record found by a scan.
struct found_record {
  const record_header* header;
  const std::uint8_t* payload;
};
struct lane_scan {
  std::uint64_t committed = 0;  // newest committed seq
  std::uint64_t seq = 0;        // seq of the records found (0: none)
  std::vector<found_record> records;
  std::size_t bytes = 0;  // log bytes the records span
  bool pending() const noexcept { return seq != 0 && seq > committed; }
};
// Reads a lane without changing anything. Range records must lie inside
// [base, base + heap_size); one that does not fails the scan with corrupt.
status scan_lane(const layout::lane_record& lane, std::uintptr_t base, std::size_t heap_size, lane_scan* out);
// Writes back the before-images of a pending scan, newest first, makes
// them durable, then records the rollback by writing commit slots that
// mark seq as finished (so it is never replayed again). The caller has
// the lane to itself.
status roll_back_lane(layout::lane_record* lane, const lane_scan& scan, persist_domain& domain);
// Seqs are handed out below lane->seq_limit, which is raised (durably) by
// kSeqReservation at a time: makes sure `through` is below it.
inline constexpr std::uint64_t kSeqReservation = 1024;
// Seqs at or above this mean a damaged lane.
inline constexpr std::uint64_t kMaxSeq = std::uint64_t{1} << 62;
int reserve_seqs(layout::lane_record* lane, std::uint64_t through, persist_domain& domain) noexcept;
// Marks `seq` finished in the lane's commit slot of its parity and makes
// the slot durable: the commit point of a transaction.
int write_commit(layout::lane_record* lane, std::uint64_t seq, persist_domain& domain) noexcept;

// Appends records to a lane for one transaction. Not thread-safe: a lane
// belongs to one transaction at a time.
class lane_writer {
 public:
  lane_writer(layout::lane_record* lane, std::uintptr_t base) noexcept : lane_(lane), base_(base) {}
  // Starts transaction `seq` at the start of the log.
  void begin(std::uint64_t seq) noexcept;
  // Appends a range record holding the current bytes of [address, +size)
  // (size <= kMaxRecordPayload) and adds the bytes written to `dirty`.
  // ENOSPC when the extents are full (add_extent, then retry).
  int append_range(const void* address, std::size_t size, std::vector<persist_range>* dirty) noexcept;
  // Makes `extent` (first segment index | count << 32, already claimed as
  // kSegmentLog) the lane's next extent, durably. EMLINK when the lane has
  // kMaxLaneExtents already.
  int add_extent(std::uint64_t extent, persist_domain& domain) noexcept;
  std::size_t capacity() const noexcept;
  std::size_t used() const noexcept { return used_total_; }
  std::uint64_t seq() const noexcept { return seq_; }
  layout::lane_record* lane() const noexcept { return lane_; }

 private:
  layout::lane_record* lane_;
  std::uintptr_t base_;
  std::uint64_t seq_ = 0;
  std::size_t extent_ = 0;    // current extent index
  std::size_t offset_ = 0;    // write offset in it
  std::size_t used_total_ = 0;
};

}  // namespace larder::recovery
