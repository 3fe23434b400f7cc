// Recovery on open: every lane's uncommitted transaction rolled back, the
// segment table made to agree with the lanes. See transaction_engine.hpp.
#include "runtime/transaction_engine.hpp"

#include "allocator/segment.hpp"
#include "recovery/undo_log.hpp"
#include "runtime/heap_impl.hpp"
#include "runtime/shared_writers.hpp"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace larder {

namespace {

bool all_zero(const void* p, std::size_t size) noexcept {
  const auto* bytes = static_cast<const std::uint8_t*>(p);
  return std::all_of(bytes, bytes + size, [](std::uint8_t b) { return b == 0; });
}

}  // namespace

status recover_transactions(heap_impl& impl) {
  // The region is not set up yet: everything comes from the superblock.
  std::uintptr_t base = impl.superblock.base;
  auto* meta = reinterpret_cast<layout::heap_meta*>(base + layout::kMetaOffset);
  std::size_t size = impl.superblock.size;
  std::size_t segments = size / layout::kSegmentSize;
  // A rollback may lower segments_high; segments above the lowered value
  // can still hold the rolled-back bytes, and the allocator takes what
  // lies above it for zero. Keep the highest value seen.
  std::uint64_t high = meta->segments_high;
  std::vector<std::int32_t> owner(segments, -1);  // lane of each log segment
  // Every lane is read and judged before anything is written, so that a
  // heap refused for damage is left exactly as it was.
  std::vector<recovery::lane_scan> scans(layout::kMaxLanes);
  for (std::uint32_t i = 0; i < layout::kMaxLanes; ++i) {
    layout::lane_record& lane = meta->lanes[i];
    if (lane.extent_count == 0 && lane.seq_limit == 0 && all_zero(lane.commits, sizeof(lane.commits))) continue;
    recovery::lane_scan& scan = scans[i];
    if (status s = recovery::scan_lane(lane, base, size, &scan); !s.ok())
      return status(errc::corrupt, "undo-log lane " + std::to_string(i) + ": " + s.message());
    if (status s = recovery::lane_verdict(scan, i); !s.ok()) {
      // A reader may be looking at a live writer's lane mid-store; one
      // that is not settles it by recovering a private copy (writable).
      if (!impl.writable) return status(errc::read_only, s.message());
      return s;
    }
    for (std::uint32_t e = 0; e < lane.extent_count; ++e) {
      std::uint64_t first = layout::extent_first(lane.extents[e]);
      std::uint64_t count = layout::extent_count(lane.extents[e]);
      for (std::uint64_t k = first; k < first + count; ++k) {
        if (owner[k] >= 0)
          return status(errc::corrupt, "undo-log lanes " + std::to_string(owner[k]) + " and " + std::to_string(i) +
                                           " both claim segment " + std::to_string(k));
        owner[k] = static_cast<std::int32_t>(i);
      }
      high = std::max<std::uint64_t>(high, first + count);
    }
    if (scan.pending() && !impl.writable)
      return status(errc::read_only, "undo-log lane " + std::to_string(i) +
                                         " holds an uncommitted transaction; open the heap for writing once to roll it back");
    impl.next_seq[i] = std::max({lane.seq_limit, scan.seq + 1, scan.committed + 1});
  }
  if (!impl.writable) return {};
  std::vector<recovery::persist_range> changed;
  for (std::uint32_t i = 0; i < layout::kMaxLanes; ++i) {
    layout::lane_record& lane = meta->lanes[i];
    const recovery::lane_scan& scan = scans[i];
    // A shared writer's lane: see shared_lane_rollback.
    shared_lane_rollback shared(base, meta, lane.owner_client);
    bool shared_lane = lane.owner_client != layout::kNoClient;
    if (status s = recovery::roll_back_lane(&lane, scan, *impl.domain, shared_lane ? &shared : nullptr); !s.ok())
      return s;
    if (shared_lane) {
      // Its client is gone, and so is every other: the region is not set
      // up, so a huge block goes back the way region::release gives it.
      settle_after_commit_frees(base, meta, i, scan, nullptr, [&](alloc::segment* head) {
        std::size_t first = (reinterpret_cast<std::uintptr_t>(head) - base) >> layout::kSegmentShift;
        std::size_t end = std::min<std::size_t>(first + head->span, segments);
        for (std::size_t k = first; k < end; ++k) meta->segments[k] = layout::kSegmentFree;
        changed.push_back({&meta->segments[first], (end - first) * sizeof(meta->segments[0])});
        head->magic = 0;
        changed.push_back({&head->magic, sizeof(head->magic)});
      });
    }
    // A damaged slot that decided nothing (the other slot or the records
    // settle the lane) is rewritten as the rest of the lane implies.
    if (int err = recovery::repair_slots(&lane, scan, *impl.domain))
      return status::from_errno(err, "rewriting a damaged commit slot of undo-log lane " + std::to_string(i));
  }
  // The segment table must agree with the lanes: every log segment marked
  // as its lane's (a rollback may have restored an older entry), and none
  // marked "log" that no lane holds (a crash between claiming segments
  // and adding them to a lane).
  high = std::min<std::uint64_t>(high, segments);
  for (std::size_t k = 1; k < high; ++k) {
    std::uint32_t entry = meta->segments[k];
    layout::segment_state st = layout::entry_state(entry);
    if (owner[k] >= 0) {
      std::uint32_t want = layout::segment_entry(layout::kSegmentLog, static_cast<std::uint32_t>(owner[k]));
      if (entry == want) continue;
      if (st != layout::kSegmentFree && st != layout::kSegmentLog)
        return status(errc::corrupt, "segment " + std::to_string(k) + " is in use and also part of undo-log lane " +
                                         std::to_string(owner[k]));
      meta->segments[k] = want;
    } else if (st == layout::kSegmentLog) {
      // Log extents hold records from their first byte; one that starts
      // with a segment header is a live segment whose entry was damaged.
      if (alloc::holds_segment_header(reinterpret_cast<const void*>(base + (k << layout::kSegmentShift))))
        return status(errc::corrupt, "segment " + std::to_string(k) +
                                         " is marked as part of an undo log but holds a segment header");
      meta->segments[k] = layout::kSegmentFree;
    } else {
      continue;
    }
    changed.push_back({&meta->segments[k], sizeof(meta->segments[k])});
  }
  if (high > meta->segments_high) {
    meta->segments_high = high;
    changed.push_back({&meta->segments_high, sizeof(meta->segments_high)});
  }
  if (int err = impl.domain->persist(changed.data(), changed.size()))
    return status::from_errno(err, "repairing the segment table after recovery");
  return {};
}

}  // namespace larder
