// The heap checker behind larder::check_heap and `larder check`: walks every
// on-media structure of a heap (docs/format/heap.md) through a private
// mapping, which it changes only to complete a close that a crash cut
// short as the next writer open would, and reports each violation with
// its place. Repair mode opens the heap for writing (recovery) and fixes
// only what a good copy determines.
//
// The mapping is at the heap's recorded base when that range is free in
// this process, else anywhere: every address stored in the heap is then
// translated by the difference, and never dereferenced before it is known
// to lie inside the readable part of the file.
#include <larder/check.hpp>

#include "allocator/heap_map.hpp"
#include "allocator/heap_repair.hpp"
#include "allocator/heap_walk.hpp"
#include "allocator/segment.hpp"
#include "port/os.hpp"
#include "recovery/layout.hpp"
#include "recovery/records.hpp"
#include "recovery/superblock.hpp"
#include "recovery/undo_log.hpp"
#include "runtime/checkout_mark.hpp"
#include "runtime/heap_file.hpp"
#include "runtime/heap_impl.hpp"

#include <xxhash.h>

#include <errno.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <set>
#include <string_view>

namespace larder {

namespace {

using alloc::hex;

using alloc::kSegmentHeaderSize;
using layout::kSegmentShift;
using layout::kSegmentSize;

// A badly damaged metadata block could yield one problem per table entry;
// past this many, only a count is kept.
constexpr std::size_t kMaxMessages = 1000;
using recovery::kRootFree;
using recovery::kRootLive;
using recovery::kRootRemoved;

std::string segment_place(std::size_t i) { return alloc::walk_place{alloc::walk_place::segment, i, 0}.text(); }

// The name stored in a fixed-size field, or "" with *ok false when the
// field has no NUL.
std::string field_name(const char* field, std::size_t size, bool* ok) {
  std::size_t n = ::strnlen(field, size);
  *ok = n < size;
  return std::string(field, n);
}

void add_capped(std::vector<std::string>* list, std::size_t* dropped, std::string text) {
  if (list->size() < kMaxMessages) {
    list->push_back(std::move(text));
  } else {
    ++*dropped;
  }
}

// A lane whose commit slots repair mode rewrites before recovery runs: one
// whose transaction cannot be told committed or not (recovery refuses such
// a lane; the repair keeps the transaction's changes).
struct slot_repair {
  std::size_t lane = 0;
  layout::commit_slot seen[2]{};  // as the check read them
  layout::commit_slot want[2]{};
  std::string text;  // the repair, for the report
};

// What the superblock pass learned.
struct superblock_facts {
  layout::superblock copies[layout::kSuperblockCopies]{};
  bool present[layout::kSuperblockCopies] = {};  // inside the file
  bool sealed[layout::kSuperblockCopies] = {};   // magic and checksum good
  int current = -1;                              // the copy open uses
  int damaged = -1;  // the one copy that fails while the other is current and sound
};

class checker final : public alloc::walk_reporter {
 public:
  explicit checker(check_report* out) : out_(out) {}

  status run(backing kind, const std::string& path);
  const superblock_facts& superblocks() const noexcept { return sb_; }
  bool records_checksummed() const noexcept {
    return sb_.current >= 0 && recovery::records_checksummed(sb_.copies[sb_.current]);
  }
  // The superblock allowed the rest of the heap to be checked.
  bool heap_checked() const noexcept { return checked_; }
  // Orphaned log segments that still hold a segment header: recovery
  // would free them, and they may be live segments with a damaged entry.
  std::size_t suspect_orphans() const noexcept { return suspect_orphans_; }
  // The allocator walk's damage lines (segments and pages).
  const std::vector<std::string>& segment_problems() const noexcept { return segment_problems_; }
  // Lanes whose records or slots are damaged, or that hold an uncommitted
  // transaction: until recovery settles them, allocator metadata may be
  // what a rollback restores.
  bool lanes_settled() const noexcept { return out_->pending_transactions == 0 && lane_problems_ == 0; }
  const std::vector<slot_repair>& slot_repairs() const noexcept { return slot_repairs_; }

 private:
  void problem(std::string text) { add_capped(&out_->problems, &dropped_problems_, std::move(text)); }
  void note(std::string text) { add_capped(&out_->notes, &dropped_notes_, std::move(text)); }

  bool check_superblocks(const backing_file& file, backing kind);
  bool check_copy(int c);
  bool check_current(const backing_file& file, backing kind);
  void compare_copies();
  status map_heap(const backing_file& file);
  bool check_meta();
  void check_pods();
  void replay_close_journals();
  void check_lanes();
  void scan_lane_records(std::size_t n, const layout::lane_record& lane);
  void check_commit_slots(std::size_t n, const layout::lane_record& lane, const recovery::lane_scan* scan);
  void check_segments();
  void check_log_segments();
  std::string orphan_hint(std::size_t i);
  // The allocator walk's lines go into the report as they are.
  bool damage(const alloc::walk_place&, const std::string& message) override {
    segment_problems_.push_back(message);
    problem(message);
    return true;
  }
  void notice(const alloc::walk_place&, const std::string& message) override { note(message); }
  void check_roots();
  void check_root(std::size_t slot, const layout::root_record& rec, std::set<std::string>* names);
  void finish();

  // Bytes [offset, offset + size) of the heap, when the file holds them.
  const std::uint8_t* at(std::uint64_t offset, std::uint64_t size) const noexcept {
    if (offset > avail_ || size > avail_ - offset) return nullptr;
    return local_ + offset;
  }
  std::uint32_t entry(std::size_t i) const noexcept { return meta_->segments[i]; }

  check_report* out_;
  std::size_t dropped_problems_ = 0;
  std::size_t dropped_notes_ = 0;
  superblock_facts sb_;
  std::uint64_t heap_size_ = 0;  // bytes of the heap as open would use them
  heap_mapping mapping_;
  std::uint8_t* local_ = nullptr;
  std::uint64_t base_ = 0;   // recorded base
  std::uint64_t avail_ = 0;  // readable bytes from the base
  const layout::heap_meta* meta_ = nullptr;
  std::size_t high_ = 0;  // segments_high, clamped to what can be read
  std::vector<int> log_owner_;  // lane owning each segment's extent, or -1
  bool checked_ = false;
  std::size_t suspect_orphans_ = 0;
  std::vector<std::string> segment_problems_;
  std::size_t lane_problems_ = 0;
  std::vector<slot_repair> slot_repairs_;
};

// ---- superblocks ---------------------------------------------------------

bool checker::check_superblocks(const backing_file& file, backing kind) {
  if (file.size == 0) {
    problem("the file is empty (0 bytes): not a larder heap");
    return false;
  }
  bool any_magic = false;
  for (int c = 0; c < static_cast<int>(layout::kSuperblockCopies); ++c) {
    std::uint64_t magic = 0;
    std::uint64_t offset = static_cast<std::uint64_t>(c) * layout::kSuperblockSize;
    if (file.size >= offset + sizeof(magic) && port::read_at(file.fd, &magic, sizeof(magic), offset) == 0)
      any_magic |= magic == layout::kHeapMagic;
  }
  if (!any_magic) {
    problem(file.size < layout::kSuperblockSize
                ? "not a larder heap: " + std::to_string(file.size) + " bytes, shorter than a superblock"
                : "not a larder heap: neither superblock copy (offsets 0x0 and 0x1000) has the magic LRDRHEAP");
    return false;
  }
  for (int c = 0; c < static_cast<int>(layout::kSuperblockCopies); ++c) {
    std::uint64_t offset = static_cast<std::uint64_t>(c) * layout::kSuperblockSize;
    if (file.size < offset + layout::kSuperblockSize) {
      problem("superblock copy " + std::to_string(c) + " (offset " + hex(offset) + ") lies past the end of the file (" +
              std::to_string(file.size) + " bytes)");
      continue;
    }
    if (int err = port::read_at(file.fd, &sb_.copies[c], sizeof(layout::superblock), offset)) {
      problem("superblock copy " + std::to_string(c) + ": reading it failed: " + larder::strerror(err));
      continue;
    }
    sb_.present[c] = true;
    if (check_copy(c) && (sb_.current < 0 || sb_.copies[c].generation > sb_.copies[sb_.current].generation))
      sb_.current = c;
  }
  if (sb_.current < 0) {
    problem("no superblock copy is valid: the heap cannot be opened, and the rest of it is not checked");
    return false;
  }
  return check_current(file, kind);
}

// Magic and checksum of copy `c`; true when sealed.
bool checker::check_copy(int c) {
  const layout::superblock& sb = sb_.copies[c];
  std::string place = "superblock copy " + std::to_string(c) + " (offset " +
                      hex(static_cast<std::uint64_t>(c) * layout::kSuperblockSize) + ")";
  if (sb.magic != layout::kHeapMagic) {
    problem(place + ": bad magic " + hex(sb.magic) + " (expected " + hex(layout::kHeapMagic) + ", \"LRDRHEAP\")");
    return false;
  }
  if (!recovery::superblock_checksum_ok(sb)) {
    problem(place + ": the checksum " + hex(sb.checksum) + " does not match its contents (a torn or damaged write)");
    return false;
  }
  sb_.sealed[c] = true;
  return true;
}

// Format, layout and geometry of the copy that open uses, and its size
// against the file. False when nothing further can be checked.
bool checker::check_current(const backing_file& file, backing kind) {
  int c = sb_.current;
  const layout::superblock& sb = sb_.copies[c];
  std::string place = "superblock copy " + std::to_string(c) + " (current, generation " + std::to_string(sb.generation) + ")";
  compare_copies();
  if (sb.format_major > layout::kFormatMajor) {
    problem(place + ": format " + std::to_string(sb.format_major) + "." + std::to_string(sb.format_minor) +
            " is newer than this build reads (" + std::to_string(layout::kFormatMajor) + "); not checked further");
    return false;
  }
  if (sb.format_major == 0) problem(place + ": format major version 0 does not exist");
  if (sb.format_minor > layout::kFormatMinor)
    note("format 1." + std::to_string(sb.format_minor) + " is newer than this build's 1." +
         std::to_string(layout::kFormatMinor) + ": additions it made are not checked");
  if (sb.layout_signature != layout::kLayoutSignature) {
    problem(place + ": layout signature " + hex(sb.layout_signature) + " differs from this build's " +
            hex(layout::kLayoutSignature) + " (written by an incompatible build); not checked further");
    return false;
  }
  if (sb.reserve == 0 || sb.reserve > layout::kMaxReserve || sb.reserve % kSegmentSize != 0 ||
      sb.base % kSegmentSize != 0 || sb.base == 0 || sb.base >= layout::kAddressLimit ||
      sb.reserve > layout::kAddressLimit - sb.base ||
      sb.size < kSegmentSize || sb.size > sb.reserve) {
    problem(place + ": impossible geometry (base " + hex(sb.base) + ", reserve " + hex(sb.reserve) + ", size " +
            hex(sb.size) + "); not checked further");
    return false;
  }
  if (sb.backing > static_cast<std::uint32_t>(layout::backing_kind::file)) {
    problem(place + ": unknown backing kind " + std::to_string(sb.backing));
  } else if (sb.backing != static_cast<std::uint32_t>(kind == backing::shm ? layout::backing_kind::shm
                                                                             : layout::backing_kind::file)) {
    note("the superblock records backing kind " + std::to_string(sb.backing) + " but the heap is read from a " +
         (kind == backing::shm ? "shm object" : "file") + " (copied?)");
  }
  if (file.size < sb.size)
    problem("truncated: the file holds " + std::to_string(file.size) + " bytes but the superblock says the heap is " +
            std::to_string(sb.size) + " bytes");
  heap_size_ = sb.size;
  std::uint64_t usable = (file.size < sb.reserve ? file.size : sb.reserve) & ~std::uint64_t{kSegmentSize - 1};
  if (usable > heap_size_) {
    note("the file (" + std::to_string(file.size) + " bytes) is longer than the superblock's size " +
         std::to_string(sb.size) + " (an interrupted growth); open uses the file's length");
    heap_size_ = usable;
  }
  base_ = sb.base;
  return true;
}

void checker::compare_copies() {
  int c = sb_.current, o = 1 - sb_.current;
  const layout::superblock& cur = sb_.copies[c];
  const layout::superblock& other = sb_.copies[o];
  std::string other_place = "superblock copy " + std::to_string(o) + " (offset " +
                            hex(static_cast<std::uint64_t>(o) * layout::kSuperblockSize) + ")";
  if (!sb_.sealed[o]) {
    if (sb_.present[o]) {
      sb_.damaged = o;
      note(other_place + " is damaged; the heap opens from copy " + std::to_string(c) +
           " (repair rewrites the damaged copy from it)");
    }
    return;
  }
  if (std::memcmp(cur.uuid, other.uuid, sizeof(cur.uuid)) != 0 || cur.base != other.base ||
      cur.reserve != other.reserve || cur.created_ns != other.created_ns ||
      cur.layout_signature != other.layout_signature) {
    problem("the superblock copies describe different heaps (uuid, base, reserve or creation time differ)");
    return;
  }
  if (cur.generation == other.generation && std::memcmp(&cur, &other, sizeof(cur)) != 0) {
    problem("both superblock copies claim generation " + std::to_string(cur.generation) + " but differ");
    return;
  }
  if (other.size != cur.size)
    note(other_place + " (generation " + std::to_string(other.generation) + ") records size " +
         std::to_string(other.size) + ", the current copy " + std::to_string(cur.size) +
         ": an update was interrupted; harmless, open uses the current copy");
}

// ---- mapping -------------------------------------------------------------

status checker::map_heap(const backing_file& file) {
  const std::uint64_t reserve = sb_.copies[sb_.current].reserve;
  if (status s = map_heap_file(file, base_, reserve, true, true, false, &mapping_); !s.ok()) return s;
  local_ = mapping_.local;
  avail_ = mapping_.readable;
  return {};
}

// ---- metadata block ------------------------------------------------------

bool checker::check_meta() {
  const std::uint8_t* block = at(layout::kMetaOffset, sizeof(layout::heap_meta));
  if (block == nullptr) {
    problem("the file ends inside the metadata block (offset " + hex(layout::kMetaOffset) + ", " +
            std::to_string(sizeof(layout::heap_meta)) + " bytes); not checked further");
    return false;
  }
  meta_ = reinterpret_cast<const layout::heap_meta*>(block);
  if (meta_->magic != layout::kMetaMagic) {
    problem("metadata block (offset " + hex(layout::kMetaOffset) + "): bad magic " + hex(meta_->magic) +
            " (expected \"LRDRMETA\"); not checked further");
    return false;
  }
  replay_close_journals();
  // As the allocator walk clamps it (it reports a segments_high past the
  // heap's size).
  std::uint64_t limit = heap_size_ >> kSegmentShift;
  high_ = static_cast<std::size_t>(meta_->segments_high < limit ? meta_->segments_high : limit);
  if ((std::uint64_t{high_} << kSegmentShift) > avail_) high_ = static_cast<std::size_t>(avail_ >> kSegmentShift);
  return true;
}

void checker::check_pods() {
  std::set<std::string> names;
  for (std::size_t i = 0; i < layout::kMaxPods; ++i) {
    const layout::pod_record& p = meta_->pods[i];
    std::string place = "pod slot " + std::to_string(i);
    if (const char* why = recovery::pod_damage(p, static_cast<std::uint32_t>(i), records_checksummed());
        why != nullptr && (p.in_use == 0 || std::strcmp(why, "the record fails its checksum") == 0)) {
      problem(place + ": " + why);
      continue;
    }
    if (p.in_use == 0) continue;
    if (p.in_use != 1) {
      problem(place + ": invalid in_use value " + std::to_string(p.in_use));
      continue;
    }
    ++out_->pods;
    bool terminated = false;
    std::string name = field_name(p.name, sizeof(p.name), &terminated);
    if (!terminated) problem(place + ": the name has no terminating NUL");
    if (name.empty()) problem(place + ": the pod has an empty name");
    if (p.id != i) problem(place + " ('" + name + "'): records id " + std::to_string(p.id));
    if (!name.empty() && !names.insert(name).second) problem(place + ": a second pod named '" + name + "'");
  }
  if (meta_->pods[0].in_use != 1 || std::strncmp(meta_->pods[0].name, "default", sizeof(meta_->pods[0].name)) != 0)
    problem("pod slot 0 must be the pod 'default', in use");
}

// ---- undo-log lanes ------------------------------------------------------

// A complete close journal (recovery/undo_log.hpp) is part of the
// heap's state: the next writer open writes its after-images before
// anything reads the allocator's metadata. The check does the same in its
// private copy, so that it judges the heap as that open will find it; a
// journal it cannot read is left to check_lanes to report.
void checker::replay_close_journals() {
  if (reinterpret_cast<std::uintptr_t>(local_) != base_) return;  // records hold absolute addresses
  const std::size_t size = heap_size_ < avail_ ? heap_size_ : avail_;
  for (std::size_t n = 0; n < layout::kMaxLanes; ++n) {
    auto& lane = reinterpret_cast<layout::heap_meta*>(local_ + layout::kMetaOffset)->lanes[n];
    if (lane.extent_count == 0) continue;
    recovery::lane_scan scan;
    if (!recovery::scan_lane(lane, base_, size, &scan).ok() || !scan.journal || !scan.pending() ||
        !recovery::lane_verdict(scan, n).ok())
      continue;
    auto memory = recovery::make_memory_domain();
    if (!recovery::roll_back_lane(&lane, scan, *memory).ok()) continue;
    ++out_->interrupted_closes;
    note("lane " + std::to_string(n) + " holds the journal of a close that a crash cut short (" +
         std::to_string(scan.records.size()) + " records); checked as the next writer open completes it");
  }
}

void checker::check_lanes() {
  log_owner_.assign(high_, -1);
  for (std::size_t n = 0; n < layout::kMaxLanes; ++n) {
    const layout::lane_record& lane = meta_->lanes[n];
    std::string place = "lane " + std::to_string(n);
    // Recovery reads every lane with extents or a seq reservation, whatever
    // its state says; so does the check.
    layout::commit_slot empty[2]{};
    if (lane.state == 0 && lane.extent_count == 0 && lane.seq_limit == 0 &&
        std::memcmp(lane.commits, empty, sizeof(empty)) == 0)
      continue;
    if (lane.state != 0 && lane.state != layout::kLaneInUse) {
      problem(place + ": invalid state " + std::to_string(lane.state));
      continue;
    }
    if (lane.state == layout::kLaneInUse) ++out_->lanes;
    if (lane.extent_count > layout::kMaxLaneExtents) {
      problem(place + ": extent count " + std::to_string(lane.extent_count) + " exceeds " +
              std::to_string(layout::kMaxLaneExtents));
      continue;
    }
    bool extents_ok = true;
    for (std::size_t x = 0; x < lane.extent_count; ++x) {
      std::uint64_t first = layout::extent_first(lane.extents[x]), count = layout::extent_count(lane.extents[x]);
      std::string where = place + " extent " + std::to_string(x) + " (segments " + std::to_string(first) + ".." +
                          std::to_string(first + count) + ")";
      if (first == 0 || count == 0 || first + count > high_) {
        problem(where + ": lies outside the heap's used segments (1.." + std::to_string(high_) + ")");
        extents_ok = false;
        continue;
      }
      for (std::uint64_t j = first; j < first + count; ++j) {
        if (log_owner_[j] >= 0) {
          problem(where + ": segment " + std::to_string(j) + " is also in lane " + std::to_string(log_owner_[j]) + "'s log");
          extents_ok = false;
        } else if (entry(j) != layout::segment_entry(layout::kSegmentLog, static_cast<std::uint32_t>(n))) {
          problem(where + ": segment " + std::to_string(j) + " is marked " +
                  alloc::segment_state_name(layout::entry_state(entry(j))) +
                  " (entry " + hex(entry(j)) + "), not undo log of lane " + std::to_string(n));
          extents_ok = false;
        }
        log_owner_[j] = static_cast<int>(n);
      }
    }
    if (extents_ok) {
      scan_lane_records(n, lane);
    } else {
      check_commit_slots(n, lane, nullptr);
    }
  }
}

void checker::scan_lane_records(std::size_t n, const layout::lane_record& lane) {
  std::string place = "lane " + std::to_string(n);
  if (lane.extent_count == 0) return check_commit_slots(n, lane, nullptr);
  if (reinterpret_cast<std::uintptr_t>(local_) != base_) {
    note(place + ": records not scanned (the heap's address range is in use in this process)");
    return check_commit_slots(n, lane, nullptr);
  }
  recovery::lane_scan scan;
  status s = recovery::scan_lane(lane, base_, heap_size_ < avail_ ? heap_size_ : avail_, &scan);
  if (!s.ok()) {
    problem(place + ": " + s.message());
    return check_commit_slots(n, lane, nullptr);
  }
  check_commit_slots(n, lane, &scan);
  if (scan.record_damaged) {
    problem(place + ": the log record at offset " + hex(scan.damaged_record_offset) + " of uncommitted transaction " +
            std::to_string(scan.seq) +
            " fails its checksum, although later records of that transaction were written after it was durable: "
            "the log is damaged, and opening the heap for writing refuses rather than undo part of the "
            "transaction (not repairable)");
  }
  if (scan.pending()) {
    ++out_->pending_transactions;
    note(place + " holds an uncommitted transaction (" + std::to_string(scan.records.size()) +
         " records); opening the heap for writing rolls it back");
  }
}

// A slot that fails its checks is damage: a slot's deciding bytes lie in
// one 64-byte line, so no crash tears them (recovery/undo_log.hpp).
void checker::check_commit_slots(std::size_t n, const layout::lane_record& lane, const recovery::lane_scan* scan) {
  for (unsigned k = 0; k < 2; ++k) {
    recovery::slot_view v = recovery::read_slot(lane, k);
    if (v.state != recovery::slot_state::damaged && !v.stale_checksum) continue;
    std::string place = "lane " + std::to_string(n) + " commit slot " + std::to_string(k) + " (offset " +
                        hex(recovery::commit_slot_offset(n, k)) + ")";
    if (v.state == recovery::slot_state::valid) {
      problem(place + ": its checksum field does not match the slot, which records transaction " +
              std::to_string(v.seq) + " (damage, or a commit cut short in its last 8 bytes); opening the heap for "
              "writing rewrites it");
    } else if (scan == nullptr) {
      problem(place + " fails its checksum (damage); whether the lane's records need it was not checked");
    } else if (scan->undecidable && (scan->seq & 1) == k) {
      problem(place + " fails its checksum (damage), and the lane holds the records of transaction " +
              std::to_string(scan->seq) + ", whose commit that slot records: whether it committed cannot be "
              "told, and opening the heap for writing refuses; `--repair` keeps the transaction's changes "
              "(treats it as committed)");
      slot_repair fix;
      fix.lane = n;
      std::memcpy(fix.seen, lane.commits, sizeof(fix.seen));
      recovery::settled_slots(lane, *scan, true, fix.want);
      fix.text = "lane " + std::to_string(n) + " commit slot " + std::to_string(k) + " was damaged and transaction " +
                 std::to_string(scan->seq) + " could not be told committed or not: treated it as committed (kept "
                 "its changes as they are) and rewrote the slot";
      slot_repairs_.push_back(std::move(fix));
    } else {
      problem(place + " fails its checksum (damage); nothing depends on it (" +
              (scan->seq == 0 ? std::string("the lane holds no records")
                              : "transaction " + std::to_string(scan->seq) + " is settled by the lane's other slot") +
              "), and opening the heap for writing rewrites it");
    }
  }
}

// ---- segments and pages --------------------------------------------------

// The allocator's walk (allocator/heap_walk.hpp) checks the segment table,
// headers and pages, reporting to this checker.
void checker::check_segments() {
  alloc::heap_view view;
  view.local = local_;
  view.base = base_;
  view.size = heap_size_;
  view.readable = avail_;
  view.reserve = sb_.copies[sb_.current].reserve;
  alloc::walk_options full;
  full.full_lists = true;
  alloc::walk_totals totals = alloc::walk_heap(view, full, *this);
  out_->segments = totals.segments;
  out_->pages = totals.pages;
  out_->blocks_in_use = totals.blocks_in_use;
  out_->bytes_in_use = totals.bytes_in_use;
  out_->quarantined_pages = totals.quarantined_pages;
  out_->quarantined_bytes = totals.quarantined_bytes;
}

// Undo-log segments that no lane's extents hold: recovery frees them.
void checker::check_log_segments() {
  for (std::size_t i = 1; i < high_; ++i) {
    std::uint32_t e = entry(i);
    if (layout::entry_state(e) != layout::kSegmentLog || layout::entry_pod(e) >= layout::kMaxLanes ||
        log_owner_[i] >= 0)
      continue;
    std::string hint = orphan_hint(i);
    if (hint.empty())
      note(segment_place(i) + " is an undo-log segment of lane " + std::to_string(layout::entry_pod(e)) +
           " that no extent references (a crash between claiming it and adding it to the lane); opening the "
           "heap for writing frees it");
    else
      problem(segment_place(i) + " is marked as an undo-log segment of lane " + std::to_string(layout::entry_pod(e)) +
              " that no extent references, but" + hint + "; opening the heap refuses it");
  }
}

// An orphaned log segment that still holds a segment header may be a
// segment of blocks whose table entry was damaged: say so before recovery
// frees it.
std::string checker::orphan_hint(std::size_t i) {
  const auto* s = reinterpret_cast<const alloc::segment*>(at(std::uint64_t{i} << kSegmentShift, kSegmentHeaderSize));
  if (s == nullptr || s->magic != alloc::kSegmentMagic) return "";
  ++suspect_orphans_;
  return " it still holds a segment header of pod " + std::to_string(s->pod) +
         " (its table entry may be what is damaged)";
}

// ---- roots ---------------------------------------------------------------

void checker::check_roots() {
  std::set<std::string> names;
  for (std::size_t slot = 0; slot < layout::kMaxRoots; ++slot) {
    const layout::root_record& rec = meta_->roots[slot];
    // The same judgement as open's (recovery/records.hpp); the checks
    // below add what only a whole-table view sees.
    if (const char* why = recovery::root_damage(rec, base_, heap_size_, records_checksummed());
        why != nullptr && (rec.in_use != kRootLive || std::strcmp(why, "the record fails its checksum") == 0)) {
      problem("root slot " + std::to_string(slot) + ": " + why);
      continue;
    }
    if (rec.in_use == kRootFree || rec.in_use == kRootRemoved) continue;
    if (rec.in_use != kRootLive) {
      problem("root slot " + std::to_string(slot) + ": invalid state " + std::to_string(rec.in_use));
      continue;
    }
    ++out_->roots;
    check_root(slot, rec, &names);
  }
}

void checker::check_root(std::size_t slot, const layout::root_record& rec, std::set<std::string>* names) {
  bool terminated = false;
  std::string name = field_name(rec.name, sizeof(rec.name), &terminated);
  std::string place = "root '" + name + "' (slot " + std::to_string(slot) + ")";
  if (!terminated) problem(place + ": the name has no terminating NUL");
  if (name.empty()) problem("root slot " + std::to_string(slot) + ": live, with an empty name");
  if (!name.empty() && !names->insert(name).second) problem(place + ": a second live root of that name");
  auto hash = static_cast<std::uint32_t>(XXH3_64bits(name.data(), name.size()));
  if (rec.name_hash != hash) {
    problem(place + ": name hash " + hex(rec.name_hash) + " does not match the name (" + hex(hash) +
            "); find_root cannot find it");
  } else {
    // find_root probes from the hash and stops at the first free slot.
    for (std::size_t probe = hash % layout::kMaxRoots; probe != slot; probe = (probe + 1) % layout::kMaxRoots) {
      if (meta_->roots[probe].in_use == kRootFree) {
        problem(place + ": unreachable, free slot " + std::to_string(probe) + " breaks its probe chain");
        break;
      }
    }
  }
  std::uint64_t object = rec.object;
  if (object < base_ || object - base_ >= heap_size_) {
    problem(place + ": the object " + hex(object) + " lies outside the heap [" + hex(base_) + ", " +
            hex(base_ + heap_size_) + ")");
    return;
  }
  std::size_t i = static_cast<std::size_t>((object - base_) >> kSegmentShift);
  std::uint32_t st = i < high_ ? layout::entry_state(entry(i)) : layout::kSegmentFree;
  if (st != layout::kSegmentPages && st != layout::kSegmentHugeHead && st != layout::kSegmentHugeTail) {
    problem(place + ": the object " + hex(object) + " lies in " + segment_place(i) + ", which is " +
            alloc::segment_state_name(st) +
            ", not a segment of blocks");
    return;
  }
  if (rec.size > heap_size_ - (object - base_))
    note(place + ": its recorded size " + std::to_string(rec.size) + " runs past the end of the heap");
}

void checker::finish() {
  if (dropped_problems_ != 0) out_->problems.push_back("... and " + std::to_string(dropped_problems_) + " more problems");
  if (dropped_notes_ != 0) out_->notes.push_back("... and " + std::to_string(dropped_notes_) + " more notes");
}

status checker::run(backing kind, const std::string& path) {
  backing_file file;
  if (status s = open_backing(kind, path, false, &file); !s.ok()) return s;
  if (check_superblocks(file, kind)) {
    checked_ = true;
    if (status s = map_heap(file); !s.ok()) return s;
    const bool meta_sound = check_meta();
    if (meta_sound && meta_->migration.tier != layout::kNoTier) {
      // Reading an evicted page of a shm heap would give it zeros in the
      // object, under the process that migrates it (docs/tiers.md).
      std::string tier(meta_->migration.tier_path, strnlen(meta_->migration.tier_path, sizeof meta_->migration.tier_path));
      mapping_.unmap();
      return status(errc::unsupported, path + ": pages of it may be evicted to the tier " + tier +
                                           " by a migrating process; check it once that process closed it, or after a "
                                           "writer open, which brings them back");
    }
    if (meta_sound) {
      check_pods();
      std::size_t before_lanes = out_->problems.size();
      check_lanes();
      lane_problems_ = out_->problems.size() - before_lanes;
      check_segments();
      check_log_segments();
      check_roots();
    }
    mapping_.unmap();
  }
  finish();
  return {};
}

// ---- repair --------------------------------------------------------------

// Rewrites the damaged superblock copy from the current one, under the
// writer lock, after making sure neither changed since the check.
status rewrite_superblock(backing kind, const std::string& path, const superblock_facts& facts, check_report* out) {
  backing_file file;
  if (status s = open_backing(kind, path, true, &file); !s.ok()) return s;
  if (int err = port::lock_writer(file.fd))
    return err == EAGAIN ? status(errc::heap_busy, path) : status::from_errno(err, "locking " + path);
  layout::superblock now[layout::kSuperblockCopies];
  for (std::size_t c = 0; c < layout::kSuperblockCopies; ++c)
    if (int err = port::read_at(file.fd, &now[c], sizeof(now[c]), c * layout::kSuperblockSize))
      return status::from_errno(err, "reading the superblock of " + path);
  int good = facts.current, bad = facts.damaged;
  if (std::memcmp(&now[good], &facts.copies[good], sizeof(now[good])) != 0 ||
      std::memcmp(&now[bad], &facts.copies[bad], sizeof(now[bad])) != 0)
    return status(errc::heap_busy, path + ": the superblock changed while it was being checked");
  std::uint64_t offset = static_cast<std::uint64_t>(bad) * layout::kSuperblockSize;
  if (int err = port::write_at(file.fd, &now[good], sizeof(now[good]), offset))
    return status::from_errno(err, "rewriting superblock copy " + std::to_string(bad) + " of " + path);
  if (int err = port::sync_file(file.fd)) return status::from_errno(err, "making " + path + " durable");
  out->repairs.push_back("rewrote superblock copy " + std::to_string(bad) + " (offset " + hex(offset) + ") from copy " +
                         std::to_string(good) + " (generation " + std::to_string(now[good].generation) + ")");
  return {};
}

// Rewrites the commit slots of lanes whose transaction could not be told
// committed or not, as committed, under the writer lock, after making sure
// they did not change since the check.
status rewrite_commit_slots(backing kind, const std::string& path, const std::vector<slot_repair>& fixes,
                            check_report* out) {
  backing_file file;
  if (status s = open_backing(kind, path, true, &file); !s.ok()) return s;
  if (int err = port::lock_writer(file.fd))
    return err == EAGAIN ? status(errc::heap_busy, path) : status::from_errno(err, "locking " + path);
  for (const slot_repair& fix : fixes) {
    std::uint64_t offset = recovery::commit_slot_offset(fix.lane, 0);
    layout::commit_slot now[2];
    if (int err = port::read_at(file.fd, now, sizeof(now), offset))
      return status::from_errno(err, "reading the commit slots of lane " + std::to_string(fix.lane));
    if (std::memcmp(now, fix.seen, sizeof(now)) != 0)
      return status(errc::heap_busy, path + ": the commit slots of lane " + std::to_string(fix.lane) +
                                         " changed while the heap was being checked");
    if (int err = port::write_at(file.fd, fix.want, sizeof(fix.want), offset))
      return status::from_errno(err, "rewriting the commit slots of lane " + std::to_string(fix.lane));
  }
  if (int err = port::sync_file(file.fd)) return status::from_errno(err, "making " + path + " durable");
  for (const slot_repair& fix : fixes) out->repairs.push_back(fix.text);
  return {};
}

// Damaged root records become removed ones and damaged pod records get a
// name that says so, sealed, under the writer lock, before the heap is
// opened (open refuses damaged records). A root's object is never guessed.
status rewrite_damaged_records(backing kind, const std::string& path, const layout::superblock& sb,
                               check_report* out) {
  backing_file file;
  if (status s = open_backing(kind, path, true, &file); !s.ok()) return s;
  if (int err = port::lock_writer(file.fd))
    return err == EAGAIN ? status(errc::heap_busy, path) : status::from_errno(err, "locking " + path);
  bool checksummed = recovery::records_checksummed(sb);
  std::uint64_t pods_at = layout::kMetaOffset + offsetof(layout::heap_meta, pods);
  std::uint64_t roots_at = layout::kMetaOffset + offsetof(layout::heap_meta, roots);
  std::vector<layout::pod_record> pods(layout::kMaxPods);
  std::vector<layout::root_record> roots(layout::kMaxRoots);
  if (int err = port::read_at(file.fd, pods.data(), pods.size() * sizeof(pods[0]), pods_at))
    return status::from_errno(err, "reading the pod table of " + path);
  if (int err = port::read_at(file.fd, roots.data(), roots.size() * sizeof(roots[0]), roots_at))
    return status::from_errno(err, "reading the root table of " + path);
  bool changed = false;
  for (std::uint32_t i = 0; i < layout::kMaxPods; ++i) {
    const char* why = recovery::pod_damage(pods[i], i, checksummed);
    if (why == nullptr) continue;
    bool was_free = pods[i].in_use == recovery::kPodFree;
    std::string text = "pod slot " + std::to_string(i) + " (" + why + "): ";
    std::memset(&pods[i], 0, sizeof(pods[i]));
    if (!was_free) {
      std::snprintf(pods[i].name, sizeof(pods[i].name), "damaged-%u", i);
      pods[i].id = i;
      pods[i].in_use = recovery::kPodLive;
      recovery::seal(&pods[i]);
    }
    out->repairs.push_back(text + (was_free ? "cleared" : "renamed '" + std::string(pods[i].name) + "'"));
    changed = true;
  }
  for (std::size_t i = 0; i < roots.size(); ++i) {
    const char* why = recovery::root_damage(roots[i], sb.base, sb.reserve, checksummed);
    if (why == nullptr) continue;
    bool ok = false;
    std::string name = field_name(roots[i].name, sizeof(roots[i].name), &ok);
    if (roots[i].in_use == kRootLive)
      out->repairs.push_back("removed root '" + name + "' (slot " + std::to_string(i) + "): " + why);
    else
      out->repairs.push_back("root slot " + std::to_string(i) + " (" + why + "): marked removed");
    roots[i].in_use = kRootRemoved;
    recovery::seal(&roots[i]);
    changed = true;
  }
  if (!changed) return {};
  if (int err = port::write_at(file.fd, pods.data(), pods.size() * sizeof(pods[0]), pods_at))
    return status::from_errno(err, "rewriting the pod table of " + path);
  if (int err = port::write_at(file.fd, roots.data(), roots.size() * sizeof(roots[0]), roots_at))
    return status::from_errno(err, "rewriting the root table of " + path);
  if (int err = port::sync_file(file.fd)) return status::from_errno(err, "making " + path + " durable");
  return {};
}

// Marks removed the live roots of the open heap that point outside it, and
// slots with an invalid state. (A root into a free segment stays: its
// object's bytes may still be there, and a damaged table entry may be
// what freed it.)
void remove_dangling_roots(heap& h, check_report* out) {
  heap_impl* impl = h.impl();
  std::lock_guard guard(impl->meta_lock);
  layout::heap_meta* meta = impl->meta();
  std::uint64_t base = impl->region.base(), size = impl->region.committed();
  for (std::size_t slot = 0; slot < layout::kMaxRoots; ++slot) {
    layout::root_record& rec = meta->roots[slot];
    if (rec.in_use == kRootFree || rec.in_use == kRootRemoved) continue;
    bool ok = false;
    std::string name = field_name(rec.name, sizeof(rec.name), &ok);
    std::string place = "root '" + name + "' (slot " + std::to_string(slot) + ")";
    if (rec.in_use != kRootLive) {
      out->repairs.push_back("root slot " + std::to_string(slot) + ": invalid state " + std::to_string(rec.in_use) +
                             "; marked removed");
      rec.in_use = kRootRemoved;
      continue;
    }
    if (rec.object < base || rec.object - base >= size) {
      out->repairs.push_back("removed " + place + ": it pointed to " + hex(rec.object) + ", outside the heap");
      rec.in_use = kRootRemoved;
    }
  }
}

// Rebuilds what the allocator walk finds damaged in segment headers, pages
// and huge blocks (allocator/heap_repair.hpp), through a shared writable
// mapping, under the writer lock. Blocks reachable from a sound live root
// are never put on a free list.
status repair_allocator(backing kind, const std::string& path, check_report* out) {
  backing_file file;
  if (status s = open_backing(kind, path, true, &file); !s.ok()) return s;
  if (int err = port::lock_writer(file.fd))
    return err == EAGAIN ? status(errc::heap_busy, path) : status::from_errno(err, "locking " + path);
  // As the repairs and recovery before left it.
  layout::superblock sb;
  int copy = 0;
  if (status s = recovery::read_superblock(file.fd, file.size, &sb, &copy); !s.ok()) return {};
  heap_mapping mapping;
  if (status s = map_heap_file(file, sb.base, sb.reserve, true, false, false, &mapping); !s.ok()) return s;
  alloc::heap_view view;
  view.local = mapping.local;
  view.base = sb.base;
  view.readable = mapping.readable;
  view.reserve = sb.reserve;
  // As open sizes it: an interrupted growth leaves the file longer.
  view.size = std::max<std::uint64_t>(sb.size, mapping.readable & ~std::uint64_t{kSegmentSize - 1});
  if (view.at(layout::kMetaOffset, sizeof(layout::heap_meta)) == nullptr || view.meta()->magic != layout::kMetaMagic)
    return {};
  alloc::heap_map map;
  map.build(view);
  if (map.totals().damage == 0) return {};
  alloc::reach_marks reached = map.new_marks();
  const bool checksummed = recovery::records_checksummed(sb);
  for (const layout::root_record& rec : view.meta()->roots) {
    if (rec.in_use != kRootLive || recovery::root_damage(rec, sb.base, sb.reserve, checksummed) != nullptr) continue;
    alloc::heap_map::reach_result ignored;
    map.reach(rec.object, 1, true, &reached, &ignored);
  }
  alloc::repair_outcome done = alloc::repair_heap(map, reached, 1);
  if (done.lines.empty()) return {};
  if (int err = port::sync_file(file.fd)) return status::from_errno(err, "making " + path + " durable");
  for (std::string& line : done.lines) out->repairs.push_back(std::move(line));
  return {};
}

bool repaired_elsewhere(const std::string& problem, const std::vector<std::string>& by_allocator_repair) {
  return problem.rfind("superblock copy", 0) == 0 || problem.rfind("root ", 0) == 0 ||
         (problem.rfind("lane ", 0) == 0 && problem.find("cannot be told") != std::string::npos) ||
         std::find(by_allocator_repair.begin(), by_allocator_repair.end(), problem) != by_allocator_repair.end();
}

// Repairs after `first` found `before`: the superblock copy, commit slots
// and records, then recovery through a writable open, then the allocator's
// metadata, then the roots; `*out` receives the check made afterwards. On
// an error before that check, `*out` is `before`.
status repair(backing kind, const std::string& path, const checker& first, check_report before, check_report* out) {
  const superblock_facts& facts = first.superblocks();
  *out = check_report{};
  check_report done;
  auto fail = [&](status s) {
    *out = std::move(before);
    out->repairs = std::move(done.repairs);
    return s;
  };
  if (facts.damaged >= 0) {
    if (status s = rewrite_superblock(kind, path, facts, &done); !s.ok()) return fail(s);
  }
  if (!first.slot_repairs().empty()) {
    if (status s = rewrite_commit_slots(kind, path, first.slot_repairs(), &done); !s.ok()) return fail(s);
  }
  const layout::superblock& sb = facts.copies[facts.current];
  if (status s = rewrite_damaged_records(kind, path, sb, &done); !s.ok()) return fail(s);
  if (first.suspect_orphans() != 0) {
    // Recovery would free them: rather leave the heap as it is.
    checker again(out);
    if (status s = again.run(kind, path); !s.ok()) return s;
    out->repairs = std::move(done.repairs);
    out->notes.push_back("not opened for writing: recovery would free " + std::to_string(first.suspect_orphans()) +
                         " undo-log segment(s) that still hold a segment header (see above); resolve that first");
    return {};
  }
  heap_options options;
  options.kind = kind;
  options.name = path;
  options.mode = open_mode::open;
  heap h;
  status opened = heap::open(options, &h);
  std::vector<std::string> by_allocator_repair;
  if (!first.segment_problems().empty()) {
    // Recovery has run (a rollback stays done even when the open then
    // refused the allocator's metadata); a lane it could not settle may
    // still hold before-images of that metadata, which then stays as it is.
    if (opened.ok()) {
      if (status s = h.close(); !s.ok()) return fail(s);
    }
    check_report now;
    checker probe(&now);
    if (status s = probe.run(kind, path); !s.ok()) return fail(s);
    if (probe.lanes_settled()) {
      if (status s = repair_allocator(kind, path, &done); !s.ok()) return fail(s);
      by_allocator_repair = first.segment_problems();
    } else {
      done.notes.push_back("segments and pages not repaired: an undo-log lane is not settled (see above)");
    }
    opened = heap::open(options, &h);
  }
  if (opened.ok()) {
    remove_dangling_roots(h, &done);
    if (status s = h.close(); !s.ok()) return fail(s);
  }
  checker again(out);
  if (status s = again.run(kind, path); !s.ok()) return s;
  out->repairs = std::move(done.repairs);
  for (std::string& note : done.notes) out->notes.push_back(std::move(note));
  if (!opened.ok()) {
    if (!opened.is_corruption() && !opened.is(errc::newer_format) && !opened.is(errc::foreign_build)) return opened;
    out->notes.push_back("opening the heap for writing (recovery) failed: " + opened.to_string());
    return {};
  }
  if (before.interrupted_closes > out->interrupted_closes)
    out->repairs.push_back("recovery completed " + std::to_string(before.interrupted_closes - out->interrupted_closes) +
                           " close(s) that a crash cut short");
  if (before.pending_transactions > out->pending_transactions)
    out->repairs.push_back("recovery rolled back " +
                           std::to_string(before.pending_transactions - out->pending_transactions) +
                           " uncommitted transaction(s)");
  std::set<std::string> remaining(out->problems.begin(), out->problems.end());
  for (const std::string& p : before.problems)
    if (!remaining.count(p) && !repaired_elsewhere(p, by_allocator_repair))
      out->repairs.push_back("fixed by recovery: " + p);
  return {};
}

status check_or_repair(backing kind, const std::string& path, bool repair_mode, check_report* out) {
  checker first(out);
  if (status s = first.run(kind, path); !s.ok()) return s;
  if (!repair_mode) return {};
  if (out->clean() && out->pending_transactions == 0 && out->interrupted_closes == 0 &&
      first.superblocks().damaged < 0)
    return {};
  if (!first.heap_checked()) {
    out->notes.push_back("nothing was repaired: without a usable superblock copy there is nothing to repair from");
    return {};
  }
  return repair(kind, path, first, std::move(*out), out);
}

}  // namespace

status check_heap(backing kind, const std::string& path, bool repair_mode, check_report* out) {
  *out = check_report{};
  if (kind == backing::anonymous) return status(errc::invalid_argument, "an anonymous heap cannot be checked");
  if (path.empty()) return status(errc::invalid_argument, "a heap name is needed");
  if (kind == backing::shm && (path[0] != '/' || path.find('/', 1) != std::string::npos))
    return status(errc::invalid_argument, "a shm name looks like \"/name\" with no other slash");
  if (status s = check_or_repair(kind, path, repair_mode, out); !s.ok()) return s;
  // Its structures may all be sound and its data still part of two versions.
  if (kind == backing::file) {
    if (status marked = refuse_if_checkout_marked(path); !marked.ok()) out->problems.push_back(marked.message());
  }
  return {};
}

}  // namespace larder
