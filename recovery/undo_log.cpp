// Undo-log lanes: record format, scan, rollback and the writer; see
// undo_log.hpp.
#include "recovery/undo_log.hpp"

#include <xxhash.h>

#include <time.h>

#include <algorithm>
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

bool slot_valid(const layout::commit_slot& slot) noexcept {
  return slot.seq != 0 && slot.checksum == commit_slot_checksum(slot);
}

}  // namespace

std::uint64_t record_checksum(const record_header& h, const void* payload) noexcept {
  // The header's hash seeds the payload's, so both are covered.
  return XXH3_64bits_withSeed(payload, h.size, XXH3_64bits(&h, kHeaderFieldsSize));
}

std::uint64_t commit_slot_checksum(const layout::commit_slot& slot) noexcept {
  return XXH3_64bits(&slot, offsetof(layout::commit_slot, checksum));
}

std::uint64_t committed_seq(const layout::lane_record& lane) noexcept {
  std::uint64_t best = 0;
  for (const auto& slot : lane.commits) {
    if (slot_valid(slot) && slot.seq > best) best = slot.seq;
  }
  return best;
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

status scan_lane(const layout::lane_record& lane, std::uintptr_t base, std::size_t heap_size, lane_scan* out) {
  *out = lane_scan{};
  out->committed = committed_seq(lane);
  if (out->committed >= kMaxSeq || lane.seq_limit >= kMaxSeq)
    return status(errc::corrupt, "the lane's transaction numbers are out of range");
  // Records may cover the heap after the superblocks, but not the lanes.
  std::uintptr_t lanes_start = base + layout::kMetaOffset + offsetof(layout::heap_meta, lanes);
  std::uintptr_t lanes_end = lanes_start + sizeof(layout::heap_meta::lanes);
  std::vector<extent_view> extents;
  if (status s = lane_extents(lane, base, heap_size, &extents); !s.ok()) return s;
  for (const extent_view& e : extents) {
    std::size_t offset = 0;
    for (;;) {
      if (e.size - offset < sizeof(record_header)) break;  // go on in the next extent
      const auto* h = reinterpret_cast<const record_header*>(e.start + offset);
      if ((h->kind != kRecordRange && h->kind != kRecordSkip) || h->size > kMaxRecordPayload ||
          record_span(h->size) > e.size - offset)
        return {};
      const std::uint8_t* payload = e.start + offset + sizeof(record_header);
      if (h->checksum != record_checksum(*h, payload)) return {};
      if (h->seq == 0 || h->seq >= kMaxSeq) return {};
      if (out->seq == 0) out->seq = h->seq;
      if (h->seq != out->seq) return {};
      out->bytes += record_span(h->size);
      if (h->kind == kRecordSkip) break;
      std::uint64_t end = h->address + h->size;
      if (h->address < base + layout::kMetaOffset || end < h->address || end > base + heap_size ||
          (h->address < lanes_end && end > lanes_start))
        return status(errc::corrupt, "log record at offset " + std::to_string(offset) + " of a lane covers " +
                                         std::to_string(h->size) + " bytes outside what a transaction may change");
      out->records.push_back({h, payload});
      offset += record_span(h->size);
    }
  }
  return {};
}

int write_commit(layout::lane_record* lane, std::uint64_t seq, persist_domain& domain) noexcept {
  layout::commit_slot& slot = lane->commits[seq & 1];
  layout::commit_slot next{};
  next.seq = seq;
  next.time_ns = now_ns();
  next.checksum = commit_slot_checksum(next);
  slot = next;
  return domain.persist(&slot, sizeof(slot));
}

status roll_back_lane(layout::lane_record* lane, const lane_scan& scan, persist_domain& domain) {
  if (!scan.pending()) return {};
  std::vector<persist_range> restored;
  restored.reserve(scan.records.size());
  for (auto it = scan.records.rbegin(); it != scan.records.rend(); ++it) {
    void* target = reinterpret_cast<void*>(it->header->address);
    std::memcpy(target, it->payload, it->header->size);
    restored.push_back({target, it->header->size});
  }
  if (int err = domain.persist(restored.data(), restored.size()))
    return status::from_errno(err, "making the rolled-back data durable");
  // Finished, so that a later crash does not replay it over newer data.
  if (int err = write_commit(lane, scan.seq, domain)) return status::from_errno(err, "closing the rolled-back lane");
  return {};
}

// ---- writer ---------------------------------------------------------------

void lane_writer::begin(std::uint64_t seq) noexcept {
  seq_ = seq;
  extent_ = 0;
  offset_ = 0;
  used_total_ = 0;
}

std::size_t lane_writer::capacity() const noexcept {
  std::size_t total = 0;
  for (std::uint32_t i = 0; i < lane_->extent_count; ++i) total += layout::extent_count(lane_->extents[i]) << layout::kSegmentShift;
  return total;
}

int lane_writer::append_range(const void* address, std::size_t size, std::vector<persist_range>* dirty) noexcept {
  std::size_t span = record_span(size);
  for (;;) {
    if (extent_ >= lane_->extent_count) return ENOSPC;
    std::size_t extent_size = layout::extent_count(lane_->extents[extent_]) << layout::kSegmentShift;
    auto* start = reinterpret_cast<std::uint8_t*>(base_ + (layout::extent_first(lane_->extents[extent_]) << layout::kSegmentShift));
    if (extent_size - offset_ >= span) {
      auto* h = reinterpret_cast<record_header*>(start + offset_);
      h->kind = kRecordRange;
      h->size = static_cast<std::uint32_t>(size);
      h->seq = seq_;
      h->address = reinterpret_cast<std::uintptr_t>(address);
      std::memcpy(h + 1, address, size);
      h->checksum = record_checksum(*h, h + 1);
      dirty->push_back({h, sizeof(record_header) + size});
      offset_ += span;
      used_total_ += span;
      return 0;
    }
    // Does not fit: mark the jump (when a header fits) and go on in the next extent.
    if (extent_size - offset_ >= sizeof(record_header)) {
      auto* h = reinterpret_cast<record_header*>(start + offset_);
      h->kind = kRecordSkip;
      h->size = 0;
      h->seq = seq_;
      h->address = 0;
      h->checksum = record_checksum(*h, nullptr);
      dirty->push_back({h, sizeof(record_header)});
    }
    used_total_ += extent_size - offset_;
    ++extent_;
    offset_ = 0;
  }
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

int reserve_seqs(layout::lane_record* lane, std::uint64_t through, persist_domain& domain) noexcept {
  if (through < lane->seq_limit) return 0;
  lane->seq_limit = through + kSeqReservation;
  return domain.persist(&lane->seq_limit, sizeof(lane->seq_limit));
}

}  // namespace larder::recovery
