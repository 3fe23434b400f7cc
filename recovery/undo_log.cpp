// Undo-log lanes: record format, commit slots, scan, rollback and the
// writer; see undo_log.hpp.
#include "recovery/undo_log.hpp"

#include "port/os.hpp"

#include <xxhash.h>

#include <time.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>

namespace larder::recovery {

namespace {

constexpr std::size_t kHeaderFieldsSize = offsetof(record_header, checksum);

// Informational only, so the cheap coarse clock does.
std::uint64_t now_ns() noexcept {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME_COARSE, &t);
  return static_cast<std::uint64_t>(t.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(t.tv_nsec);
}

std::string hex(std::uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof(text), "0x%" PRIx64, value);
  return text;
}

bool all_zero(const void* p, std::size_t size) noexcept {
  const auto* bytes = static_cast<const std::uint8_t*>(p);
  for (std::size_t i = 0; i < size; ++i)
    if (bytes[i] != 0) return false;
  return true;
}

// Kind and size make sense and the record fits in the rest of its extent.
bool plausible(const record_header& h, std::size_t room) noexcept {
  bool marker_kind = h.kind == kRecordRemotePush || h.kind == kRecordHugeFree;
  return (h.kind == kRecordRange || h.kind == kRecordSkip || h.kind == kRecordAfterImage || marker_kind) &&
         h.size <= kMaxRecordPayload && (!marker_kind || h.size == 0) && record_span(h.size) <= room;
}

bool intact(const record_header& h, std::size_t room) noexcept {
  return plausible(h, room) && h.checksum == record_checksum(h, &h + 1) && h.seq != 0 && h.seq < kMaxSeq;
}

// Whether seq's transaction is over, from the slots alone; sets
// undecidable when seq's slot is damaged and the other slot does not tell.
void decide(std::uint64_t seq, lane_scan* out) noexcept {
  out->finished = true;
  out->undecidable = false;
  if (seq == 0) return;
  const slot_view& own = out->slots[seq & 1];
  const slot_view& other = out->slots[(seq & 1) ^ 1];
  // Transactions of a lane run one after another, and each writes its
  // slot when it ends: a later seq in the other slot means seq is over.
  if (other.state == slot_state::valid && other.seq > seq) return;
  switch (own.state) {
    case slot_state::valid: out->finished = own.seq >= seq; return;
    case slot_state::empty: out->finished = false; return;
    case slot_state::damaged: out->finished = false; out->undecidable = true; return;
  }
}

// Looks past a record that fails its checksum, at (extent `e`, `offset`),
// for an intact batch marker whose seq `want` accepts: one proves that the
// failing record's batch had been made durable. Its seq, or 0.
template <class Want>
std::uint64_t marker_after(const std::vector<extent_view>& extents, std::size_t e, std::size_t offset, Want&& want) {
  for (offset += kRecordAlign; e < extents.size(); ++e, offset = 0) {
    const extent_view& x = extents[e];
    for (; x.size - offset >= sizeof(record_header); offset += kRecordAlign) {
      const auto* h = reinterpret_cast<const record_header*>(x.start + offset);
      if (!is_batch_marker(*h) || !want(h->seq)) continue;
      if (intact(*h, x.size - offset)) return h->seq;
    }
  }
  return 0;
}

}  // namespace

std::uint64_t record_checksum(const record_header& h, const void* payload) noexcept {
  // The header's hash seeds the payload's, so both are covered.
  return XXH3_64bits_withSeed(payload, h.size, XXH3_64bits(&h, kHeaderFieldsSize));
}

// ---- commit slots ------------------------------------------------------------

std::uint64_t commit_slot_checksum(const layout::commit_slot& slot) noexcept {
  return XXH3_64bits(&slot, offsetof(layout::commit_slot, checksum));
}

std::uint64_t commit_slot_line_check(const layout::commit_slot& slot) noexcept {
  return XXH3_64bits(&slot, offsetof(layout::commit_slot, line_check)) | 1;
}

layout::commit_slot make_commit_slot(std::uint64_t seq, std::uint64_t time_ns) noexcept {
  layout::commit_slot slot{};
  if (seq == 0) return slot;
  slot.seq = seq;
  slot.time_ns = time_ns;
  slot.line_check = commit_slot_line_check(slot);
  slot.checksum = commit_slot_checksum(slot);
  return slot;
}

slot_view read_slot(const layout::lane_record& lane, unsigned k) noexcept {
  const layout::commit_slot slot = lane.commits[k];
  slot_view v;
  // Empty when its first line is: a crash in the slot's first commit may
  // leave the checksum field alone written.
  if (all_zero(&slot, offsetof(layout::commit_slot, checksum))) {
    v.stale_checksum = slot.checksum != 0;
    return v;
  }
  bool checksum_ok = slot.checksum == commit_slot_checksum(slot);
  bool ok = slot.line_check != 0 ? slot.line_check == commit_slot_line_check(slot) : checksum_ok;
  if (!ok || slot.seq == 0 || (slot.seq & 1) != k) {
    v.state = slot_state::damaged;
    return v;
  }
  v.state = slot_state::valid;
  v.seq = slot.seq;
  v.stale_checksum = !checksum_ok;
  return v;
}

std::uint64_t committed_seq(const layout::lane_record& lane) noexcept {
  std::uint64_t best = 0;
  for (unsigned k = 0; k < 2; ++k) {
    // read_slot without the stale-checksum test: one hash a slot.
    const layout::commit_slot& slot = lane.commits[k];
    if (slot.seq == 0 || (slot.seq & 1) != k || slot.seq <= best) continue;
    bool valid = slot.line_check != 0 ? slot.line_check == commit_slot_line_check(slot)
                                      : slot.checksum == commit_slot_checksum(slot);
    if (valid) best = slot.seq;
  }
  return best;
}

std::uint64_t commit_slot_offset(std::size_t lane_index, unsigned k) noexcept {
  return layout::kMetaOffset + offsetof(layout::heap_meta, lanes) + lane_index * sizeof(layout::lane_record) +
         offsetof(layout::lane_record, commits) + k * sizeof(layout::commit_slot);
}

status lane_extents(const layout::lane_record& lane, std::uintptr_t base, std::size_t heap_size,
                    std::vector<extent_view>* out) {
  out->clear();
  if (lane.extent_count > layout::kMaxLaneExtents)
    return status(errc::corrupt, "the lane lists " + std::to_string(lane.extent_count) + " extents");
  std::size_t segments = heap_size / layout::kSegmentSize;
  for (std::uint32_t i = 0; i < lane.extent_count; ++i) {
    std::uint64_t first = layout::extent_first(lane.extents[i]);
    std::uint64_t count = layout::extent_count(lane.extents[i]);
    if (first == 0 || count == 0 || first >= segments || count > segments - first)
      return status(errc::corrupt, "log extent " + std::to_string(i) + " (segments " + std::to_string(first) + "+" +
                                       std::to_string(count) + ") lies outside the heap");
    out->push_back({reinterpret_cast<std::uint8_t*>(base + (first << layout::kSegmentShift)),
                    static_cast<std::size_t>(count << layout::kSegmentShift)});
  }
  return {};
}

// ---- scan ----------------------------------------------------------------------

status scan_lane(const layout::lane_record& lane, std::uintptr_t base, std::size_t heap_size, lane_scan* out) {
  *out = lane_scan{};
  for (unsigned k = 0; k < 2; ++k) out->slots[k] = read_slot(lane, k);
  out->committed = committed_seq(lane);
  if (out->committed >= kMaxSeq || lane.seq_limit >= kMaxSeq)
    return status(errc::corrupt, "the lane's transaction numbers are out of range");
  // Records may cover the heap after the superblocks, but not the lanes.
  std::uintptr_t lanes_start = base + layout::kMetaOffset + offsetof(layout::heap_meta, lanes);
  std::uintptr_t lanes_end = lanes_start + sizeof(layout::heap_meta::lanes);
  std::vector<extent_view> extents;
  if (status s = lane_extents(lane, base, heap_size, &extents); !s.ok()) return s;
  if (!extents.empty()) out->log_start = extents[0].start;
  // The records of the first record's seq, up to one that fails.
  bool failed = false, ended = false;
  std::size_t failed_extent = 0, failed_offset = 0;
  for (std::size_t e = 0; e < extents.size() && !failed && !ended; ++e) {
    const extent_view& x = extents[e];
    for (std::size_t offset = 0; x.size - offset >= sizeof(record_header);) {
      const auto* h = reinterpret_cast<const record_header*>(x.start + offset);
      if (!intact(*h, x.size - offset)) {
        failed = true;
        failed_extent = e;
        failed_offset = offset;
        break;
      }
      if (out->seq == 0) {
        out->seq = h->seq;
        out->journal = h->kind == kRecordAfterImage;
      }
      if (h->seq != out->seq) {  // an older transaction's records
        ended = true;
        break;
      }
      out->bytes += record_span(h->size);
      if (h->kind == kRecordSkip) break;
      if ((h->kind == kRecordAfterImage) != out->journal)
        return status(errc::corrupt, "log record at offset " + std::to_string(offset) +
                                         " of a lane mixes a close journal's after-images with a transaction's "
                                         "before-images");
      std::uint64_t end = h->address + h->size;
      if (h->address < base + layout::kMetaOffset || end < h->address || end > base + heap_size ||
          (h->address < lanes_end && end > lanes_start))
        return status(errc::corrupt, "log record at offset " + std::to_string(offset) + " of a lane covers " +
                                         std::to_string(h->size) + " bytes outside what a transaction may change");
      if (is_journal_end(*h)) {
        out->journal_complete = true;
        ended = true;
        break;
      }
      if (!is_batch_marker(*h)) out->records.push_back({h, reinterpret_cast<const std::uint8_t*>(h + 1)});
      offset += record_span(h->size);
    }
  }
  if (out->journal) return {};  // no transaction to decide
  decide(out->seq, out);
  if (!failed) return {};
  std::uint64_t failed_at = reinterpret_cast<std::uintptr_t>(extents[failed_extent].start) + failed_offset - base;
  if (out->seq != 0) {
    // Only a transaction that is not known to be over needs its log whole.
    if (out->finished) return {};
    std::uint64_t seq = out->seq;
    if (marker_after(extents, failed_extent, failed_offset, [seq](std::uint64_t s) { return s == seq; }) != 0) {
      out->record_damaged = true;
      out->damaged_record_offset = failed_at;
    } else {
      out->torn_tail = true;
    }
    return {};
  }
  // The first record fails: a crash in the first batch of a transaction
  // (nothing written in place yet, nothing to do), unless a later batch of
  // a transaction that is not over follows it.
  std::uint64_t committed = out->committed;
  std::uint64_t later = marker_after(extents, failed_extent, failed_offset, [committed](std::uint64_t s) {
    return s > committed && s < kMaxSeq;
  });
  if (later == 0) return {};
  lane_scan probe;
  probe.slots[0] = out->slots[0];
  probe.slots[1] = out->slots[1];
  decide(later, &probe);
  if (probe.finished) return {};
  out->seq = later;
  out->finished = false;
  out->undecidable = probe.undecidable;
  out->record_damaged = true;
  out->damaged_record_offset = failed_at;
  return {};
}

status lane_verdict(const lane_scan& scan, std::size_t lane_index) {
  std::string lane = "undo-log lane " + std::to_string(lane_index);
  if (scan.undecidable) {
    unsigned k = static_cast<unsigned>(scan.seq & 1);
    return status(errc::corrupt, lane + " commit slot " + std::to_string(k) + " (heap offset " +
                                     hex(commit_slot_offset(lane_index, k)) +
                                     ") fails its checksum, and the lane holds the records of transaction " +
                                     std::to_string(scan.seq) +
                                     ", whose commit that slot records: whether it committed cannot be told "
                                     "(`larder check --repair` keeps its changes)");
  }
  if (scan.record_damaged) {
    return status(errc::corrupt, lane + ": the log record at heap offset " + hex(scan.damaged_record_offset) +
                                     " of uncommitted transaction " + std::to_string(scan.seq) +
                                     " fails its checksum although later records of it were written after it "
                                     "was durable: rolling back the rest would undo only part of the transaction");
  }
  return {};
}

void settled_slots(const layout::lane_record& lane, const lane_scan& scan, bool commit_undecided,
                   layout::commit_slot out[2]) noexcept {
  // Whether seq's own slot must record it: a rollback, or the repair that
  // keeps an undecidable transaction.
  bool closes_seq = scan.pending() || (scan.undecidable && commit_undecided);
  std::uint64_t newest = scan.committed;  // every seq up to it is over
  if (scan.seq != 0 && (scan.finished || closes_seq)) newest = std::max(newest, scan.seq);
  for (unsigned k = 0; k < 2; ++k) {
    out[k] = lane.commits[k];
    const slot_view& v = scan.slots[k];
    bool holds_seq = v.state == slot_state::valid && v.seq >= scan.seq;
    if (closes_seq && (scan.seq & 1) == k && !holds_seq) {
      out[k] = make_commit_slot(scan.seq, now_ns());
    } else if (v.state == slot_state::damaged) {
      std::uint64_t seq = (newest & 1) == k ? newest : newest - std::min<std::uint64_t>(newest, 1);
      out[k] = make_commit_slot(seq, now_ns());
    } else if (v.stale_checksum) {
      out[k] = v.state == slot_state::empty ? layout::commit_slot{} : out[k];
      if (v.state != slot_state::empty) out[k].checksum = commit_slot_checksum(out[k]);
    }
  }
}

int write_commit(layout::lane_record* lane, std::uint64_t seq, persist_domain& domain) noexcept {
  layout::commit_slot& slot = lane->commits[seq & 1];
  slot = make_commit_slot(seq, now_ns());
  return domain.persist(&slot, sizeof(slot));
}

namespace {

persist_range clear_first_record(std::uint8_t* log_start) noexcept {
  std::memset(log_start, 0, sizeof(record_header));
  return {log_start, sizeof(record_header)};
}

// The after-images in log order (a later one of the same bytes wins),
// durably, then the journal is retired.
status replay_journal(const lane_scan& scan, persist_domain& domain) {
  std::vector<persist_range> written;
  written.reserve(scan.records.size());
  for (const found_record& r : scan.records) {
    void* target = reinterpret_cast<void*>(r.header->address);
    std::memcpy(target, r.payload, r.header->size);
    written.push_back({target, r.header->size});
  }
  if (int err = domain.persist(written.data(), written.size()))
    return status::from_errno(err, "making the close journal's after-images durable");
  if (int err = domain.persist(clear_first_record(scan.log_start).address, sizeof(record_header)))
    return status::from_errno(err, "retiring the replayed close journal");
  return {};
}

}  // namespace

persist_range retire_journal(layout::lane_record* lane, std::uintptr_t base) noexcept {
  if (lane->extent_count == 0) return {nullptr, 0};
  return clear_first_record(
      reinterpret_cast<std::uint8_t*>(base + (layout::extent_first(lane->extents[0]) << layout::kSegmentShift)));
}

status roll_back_lane(layout::lane_record* lane, const lane_scan& scan, persist_domain& domain,
                      const shared_rollback* shared) {
  if (!scan.pending()) return {};
  if (scan.journal) return replay_journal(scan, domain);
  for (const found_record& r : scan.records)
    if (r.header->kind == kRecordRemotePush && shared == nullptr)
      return status(errc::corrupt, "a lane of a heap without shared writers records a push onto a remote list");
  std::vector<persist_range> restored;
  restored.reserve(scan.records.size());
  std::vector<shared_rollback::range> kept;
  for (auto it = scan.records.rbegin(); it != scan.records.rend(); ++it) {
    if (it->header->kind == kRecordHugeFree) continue;  // only a committed transaction frees it
    if (it->header->kind == kRecordRemotePush) {
      // Not on the list: the client died between logging the push and
      // making it.
      (void)shared->take_back_push(it->header->address, &restored);
      continue;
    }
    auto* target = reinterpret_cast<std::uint8_t*>(it->header->address);
    std::size_t size = it->header->size;
    kept.clear();
    if (shared != nullptr) shared->changed_since(it->header->address, it->payload, size, &kept);
    // The bytes between the kept pieces.
    std::size_t done = 0;
    for (const shared_rollback::range& piece : kept) {
      std::size_t at = piece.address - it->header->address;
      std::memcpy(target + done, it->payload + done, at - done);
      done = at + piece.size;
    }
    std::memcpy(target + done, it->payload + done, size - done);
    restored.push_back({target, size});
  }
  if (int err = domain.persist(restored.data(), restored.size()))
    return status::from_errno(err, "making the rolled-back data durable");
  // Finished, so that a later crash does not replay it over newer data.
  if (int err = write_commit(lane, scan.seq, domain)) return status::from_errno(err, "closing the rolled-back lane");
  return {};
}

int repair_slots(layout::lane_record* lane, const lane_scan& scan, persist_domain& domain) noexcept {
  // As the lane is now: a rollback has written seq's slot since the scan.
  lane_scan now;
  for (unsigned k = 0; k < 2; ++k) now.slots[k] = read_slot(*lane, k);
  if (!now.slots_need_repair()) return 0;
  now.committed = committed_seq(*lane);
  now.seq = scan.seq;
  now.finished = true;
  layout::commit_slot want[2];
  settled_slots(*lane, now, false, want);
  for (unsigned k = 0; k < 2; ++k) {
    if (std::memcmp(&want[k], &lane->commits[k], sizeof(want[k])) == 0) continue;
    lane->commits[k] = want[k];
    if (int err = domain.persist(&lane->commits[k], sizeof(want[k]))) return err;
  }
  return 0;
}

// ---- writer ---------------------------------------------------------------

void lane_writer::begin(std::uint64_t seq) noexcept {
  seq_ = seq;
  extent_ = 0;
  offset_ = 0;
  used_total_ = 0;
  batch_done_ = false;
}

std::size_t lane_writer::capacity() const noexcept {
  std::size_t total = 0;
  for (std::uint32_t i = 0; i < lane_->extent_count; ++i) total += extent_size(i);
  return total;
}

std::size_t lane_writer::extent_size(std::size_t e) const noexcept {
  return static_cast<std::size_t>(layout::extent_count(lane_->extents[e])) << layout::kSegmentShift;
}

std::uint8_t* lane_writer::extent_start(std::size_t e) const noexcept {
  return reinterpret_cast<std::uint8_t*>(base_ + (layout::extent_first(lane_->extents[e]) << layout::kSegmentShift));
}

void lane_writer::write_header(void* at, record_kind kind, std::uint64_t address, const void* payload,
                               std::size_t size) noexcept {
  auto* h = static_cast<record_header*>(at);
  h->kind = kind;
  h->size = static_cast<std::uint32_t>(size);
  h->seq = seq_;
  h->address = address;
  if (size != 0) std::memcpy(h + 1, payload, size);
  h->checksum = record_checksum(*h, h + 1);
}

namespace {

// Adds [at, at + size) to dirty[0, *count), joining it to the last range
// when they touch.
void add_dirty(persist_range* dirty, std::size_t* count, const std::uint8_t* at, std::size_t size) noexcept {
  if (*count != 0) {
    persist_range& last = dirty[*count - 1];
    if (static_cast<const std::uint8_t*>(last.address) + last.size == at) {
      last.size += size;
      return;
    }
  }
  dirty[(*count)++] = {at, size};
}

}  // namespace

int lane_writer::append_range(const void* address, std::size_t size, persist_range* dirty, std::size_t* count,
                              record_kind kind) noexcept {
  *count = 0;
  const std::size_t span = record_span(size);
  if (!batch_done_ && extent_ < lane_->extent_count && extent_size(extent_) - offset_ >= span) {
    if (int err = reserve(used_total_ + span)) return err;
    std::uint8_t* at = extent_start(extent_) + offset_;
    write_header(at, kind, reinterpret_cast<std::uintptr_t>(address), address, size);
    dirty[(*count)++] = {at, sizeof(record_header) + size};
    offset_ += span;
    used_total_ += span;
    return 0;
  }
  const std::size_t extents = lane_->extent_count;
  // Place everything before writing anything, so that a failure leaves the
  // log as it was.
  std::size_t e = extent_, offset = offset_;
  auto room = [&] { return extent_size(e) - offset; };
  std::uint8_t* marker = nullptr;
  if (batch_done_) {
    // The marker comes first in log order: nothing of the new batch may
    // lie before it.
    while (e < extents && room() < sizeof(record_header)) ++e, offset = 0;
    if (e >= extents) return ENOBUFS;
    marker = extent_start(e) + offset;
    offset += sizeof(record_header);
  }
  std::uint8_t* skip = nullptr;
  if (e < extents && room() < span) {
    if (room() >= sizeof(record_header)) skip = extent_start(e) + offset;
    ++e;
    offset = 0;
  }
  if (e >= extents || room() < span) return ENOBUFS;
  std::size_t used = offset + span;
  for (std::size_t i = 0; i < e; ++i) used += extent_size(i);
  if (int err = reserve(used)) return err;

  if (marker != nullptr) {
    write_header(marker, kRecordRange, base_ + layout::kMetaOffset, nullptr, 0);
    add_dirty(dirty, count, marker, sizeof(record_header));
    batch_done_ = false;
  }
  if (skip != nullptr) {
    write_header(skip, kRecordSkip, 0, nullptr, 0);
    add_dirty(dirty, count, skip, sizeof(record_header));
  }
  std::uint8_t* at = extent_start(e) + offset;
  write_header(at, kind, reinterpret_cast<std::uintptr_t>(address), address, size);
  add_dirty(dirty, count, at, sizeof(record_header) + size);
  // used() counts the tails of extents left behind.
  used_total_ = used;
  extent_ = e;
  offset_ = offset + span;
  return 0;
}

int lane_writer::add_extent(std::uint64_t extent, persist_domain& domain) noexcept {
  if (lane_->extent_count >= layout::kMaxLaneExtents) return EMLINK;
  // A scan that runs off the end of the previous extent must not read
  // whatever the new one held before.
  auto* start = reinterpret_cast<record_header*>(base_ + (layout::extent_first(extent) << layout::kSegmentShift));
  std::memset(start, 0, sizeof(*start));
  lane_->extents[lane_->extent_count] = extent;
  // The header and the extent are durable before the count that makes it
  // part of the lane.
  persist_range ranges[2] = {{start, sizeof(*start)}, {&lane_->extents[lane_->extent_count], sizeof(std::uint64_t)}};
  if (int err = domain.persist(ranges, 2)) return err;
  ++lane_->extent_count;
  lane_->state = layout::kLaneInUse;
  if (int err = domain.persist(lane_, 8)) {
    --lane_->extent_count;
    return err;
  }
  return 0;
}

template <class Fn>
int lane_writer::for_each_piece(std::size_t from, std::size_t to, Fn&& fn) const noexcept {
  std::size_t at = 0;
  for (std::uint32_t e = 0; e < lane_->extent_count && at < to; ++e) {
    const std::size_t size = extent_size(e);
    const std::size_t lo = std::max(from, at), hi = std::min(to, at + size);
    if (lo < hi) {
      auto offset = reinterpret_cast<std::uintptr_t>(extent_start(e)) - base_ + (lo - at);
      if (int err = fn(offset, hi - lo)) return err;
    }
    at += size;
  }
  return 0;
}

int lane_writer::reserve(std::size_t bytes) noexcept {
  if (storage_ == nullptr || storage_->fd < 0) return 0;
  const std::size_t limit = capacity();
  bytes = storage_->whole ? limit : std::min(bytes, limit);
  const std::size_t from = storage_->reserved;
  if (bytes <= from) return 0;
  const int fd = storage_->fd;
  auto reserve_piece = [fd](std::uintptr_t offset, std::size_t length) {
    return port::reserve_file_range(fd, offset, length);
  };
  // In steps, so that a log filling a little at a time costs few calls;
  // where a step does not fit on the file system, just what was asked.
  std::size_t target = std::min(limit, (std::max(bytes, from + kStorageStep) + kStorageStep - 1) & ~(kStorageStep - 1));
  int err = for_each_piece(from, target, reserve_piece);
  if (err != 0 && target > bytes) err = for_each_piece(from, target = bytes, reserve_piece);
  if (err != 0) return err;
  storage_->reserved = target;
  return 0;
}

void lane_writer::release_storage_past(std::size_t keep) noexcept {
  if (storage_ == nullptr || storage_->fd < 0 || storage_->whole) return;
  keep = (keep + kStorageStep - 1) & ~(kStorageStep - 1);
  if (keep >= storage_->reserved) return;
  const int fd = storage_->fd;
  (void)for_each_piece(keep, storage_->reserved, [fd](std::uintptr_t offset, std::size_t length) {
    (void)port::release_file_range(fd, offset, length);
    return 0;
  });
  storage_->reserved = keep;
}

int reserve_seqs(layout::lane_record* lane, std::uint64_t through, persist_domain& domain) noexcept {
  if (through < lane->seq_limit) return 0;
  lane->seq_limit = through + kSeqReservation;
  return domain.persist(&lane->seq_limit, sizeof(lane->seq_limit));
}

}  // namespace larder::recovery
