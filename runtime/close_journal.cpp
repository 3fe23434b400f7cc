// The close journal and write-back; see close_journal.hpp.
#include "runtime/close_journal.hpp"

#include "allocator/durable_metadata.hpp"
#include "allocator/unsettled.hpp"
#include "port/options.hpp"
#include "port/os.hpp"
#include "recovery/undo_log.hpp"
#include "runtime/heap_impl.hpp"
#include "runtime/lane_space.hpp"
#include "runtime/transaction_memory.hpp"

#include <errno.h>

#include <algorithm>
#include <vector>

namespace larder {

namespace {

using recovery::kMaxRecordPayload;
using recovery::record_span;

// Ranges closer than a record header are cheaper in one record.
constexpr std::size_t kJoinGap = sizeof(recovery::record_header);

// Log bytes the journal of `ranges` takes, with room for one record that
// does not fit the rest of an extent and moves to the next.
std::size_t journal_bytes(const std::vector<alloc::metadata_range>& ranges) {
  std::size_t total = record_span(0);  // the end mark
  for (const auto& r : ranges) {
    std::size_t whole = r.size / kMaxRecordPayload;
    total += whole * record_span(kMaxRecordPayload);
    if (std::size_t rest = r.size % kMaxRecordPayload) total += record_span(rest);
  }
  return total + record_span(kMaxRecordPayload);
}

// The lane with the most log room: every lane is idle while a heap closes.
std::uint32_t roomiest_lane(heap_impl& impl) {
  std::uint32_t best = 0;
  std::size_t most = 0;
  for (std::uint32_t i = 0; i < layout::kMaxLanes; ++i) {
    std::size_t room = recovery::lane_writer(&impl.meta()->lanes[i], impl.region.base()).capacity();
    if (room > most) {
      best = i;
      most = room;
    }
  }
  return best;
}

// A new extent of at least `bytes` for the lane.
int add_log_room(heap_impl& impl, recovery::persist_domain& domain, recovery::lane_writer& writer, std::uint32_t lane,
                 std::size_t bytes) {
  std::size_t count = (bytes + layout::kSegmentSize - 1) >> layout::kSegmentShift;
  alloc::segment* run = nullptr;
  if (int err = claim_log_run(impl, lane, count, &run)) return err;
  return add_lane_extent(impl, domain, writer, run, count);
}

// Appends after-images of `ranges` and the end mark; `dirty` gets the log
// bytes written, joined across the padding between records. ENOBUFS when
// the log's extents are full, ENOSPC when the file system has no storage
// left for the log.
int append_journal(recovery::lane_writer& writer, std::uintptr_t base, const std::vector<alloc::metadata_range>& ranges,
                   engine_vector<recovery::persist_range>* dirty) {
  auto add = [&](const void* address, std::size_t size) -> int {
    recovery::persist_range written[recovery::lane_writer::kMaxDirtyRanges];
    std::size_t count = 0;
    if (int err = writer.append_range(address, size, written, &count, recovery::kRecordAfterImage)) return err;
    for (std::size_t i = 0; i < count; ++i) {
      if (!dirty->empty()) {
        recovery::persist_range& last = dirty->back();
        auto end = static_cast<const char*>(last.address) + last.size;
        auto next = static_cast<const char*>(written[i].address);
        if (next >= end && next - end < static_cast<std::ptrdiff_t>(recovery::kRecordAlign)) {
          last.size = static_cast<std::size_t>(next - static_cast<const char*>(last.address)) + written[i].size;
          continue;
        }
      }
      dirty->push_back(written[i]);
    }
    return 0;
  };
  for (const auto& r : ranges) {
    for (std::size_t done = 0; done < r.size;) {
      std::size_t piece = std::min(r.size - done, kMaxRecordPayload);
      if (int err = add(reinterpret_cast<const void*>(r.address + done), piece)) return err;
      done += piece;
    }
  }
  return add(reinterpret_cast<const void*>(base + layout::kMetaOffset), 0);
}

// Writes the journal and makes it durable: complete, it is in force.
// Until then every persist goes range by range, so that none starts the
// write-back. The segments are walked once: growing the lane changes
// only the segment table, which is collected again after each growth.
int write_journal(heap_impl& impl, std::uint32_t lane, std::vector<alloc::metadata_range>* journaled) {
  const std::uintptr_t base = impl.region.base();
  recovery::range_by_range_domain domain(*impl.domain);
  recovery::lane_writer writer = lane_writer_for(impl, lane);
  std::vector<alloc::metadata_range> segments, ranges;
  engine_vector<recovery::persist_range> dirty;
  std::uint64_t seq = 0;
  if (int err = take_lane_seq(impl, lane, &seq)) return err;
  alloc::collect_segment_metadata(impl.region.view(), kJoinGap, &segments);
  bool grow = false;  // the last try ran out of room at an extent's end
  for (int attempt = 0;; ++attempt) {
    if (attempt == 4) return ENOBUFS;
    ranges.clear();
    alloc::collect_segment_table(impl.region.view(), &ranges);
    ranges.insert(ranges.end(), segments.begin(), segments.end());
    std::size_t need = journal_bytes(ranges);
    std::size_t room = writer.capacity();
    if (room < need || grow) {
      if (int err = add_log_room(impl, domain, writer, lane, std::max(need - std::min(need, room), room))) return err;
      grow = false;
      continue;
    }
    writer.begin(seq);
    dirty.clear();
    int err = append_journal(writer, base, ranges, &dirty);
    if (err == 0) break;
    if (err != ENOBUFS) return err;
    grow = true;
  }
  if (int err = domain.persist(dirty.data(), dirty.size())) return err;
  journaled->swap(ranges);
  return 0;
}

// The heap's pages holding `ranges`, the metadata block and `pages`, as
// page runs in address order, joined where they touch or overlap.
std::vector<recovery::persist_range> pages_holding(std::uintptr_t base, std::vector<alloc::metadata_range> ranges,
                                                   const std::vector<recovery::persist_range>& pages) {
  ranges.push_back({base + layout::kMetaOffset, sizeof(layout::heap_meta)});
  for (const recovery::persist_range& r : pages) ranges.push_back({reinterpret_cast<std::uintptr_t>(r.address), r.size});
  std::sort(ranges.begin(), ranges.end(), [](const auto& a, const auto& b) { return a.address < b.address; });
  std::vector<recovery::persist_range> out;
  std::uintptr_t run_start = 0, run_end = 0;
  for (const alloc::metadata_range& r : ranges) {
    const std::uintptr_t lo = r.address & ~(port::kOsPageSize - 1);
    const std::uintptr_t hi = (r.address + r.size + port::kOsPageSize - 1) & ~(port::kOsPageSize - 1);
    if (run_end != 0 && lo <= run_end) {
      run_end = std::max(run_end, hi);
      continue;
    }
    if (run_end != 0) out.push_back({reinterpret_cast<const void*>(run_start), run_end - run_start});
    run_start = lo;
    run_end = hi;
  }
  if (run_end != 0) out.push_back({reinterpret_cast<const void*>(run_start), run_end - run_start});
  return out;
}

}  // namespace

status write_back(heap_impl& impl, const std::vector<recovery::persist_range>* only) {
  const std::uintptr_t base = impl.region.base();
  // Every allocator metadata range becomes durable here: nothing is left
  // to settle.
  alloc::clear_unsettled(impl.region);
  std::uint32_t lane = roomiest_lane(impl);
  std::vector<alloc::metadata_range> journaled;
  int journal = write_journal(impl, lane, &journaled);
  if (journal != 0) {
    port::verbose("writing %s back without a close journal (%s): a power failure during the write-back could leave "
                  "its allocator metadata half written",
                  impl.name.c_str(), larder::strerror(journal));
    if (only != nullptr) {
      alloc::collect_segment_table(impl.region.view(), &journaled);
      alloc::collect_segment_metadata(impl.region.view(), kJoinGap, &journaled);
    }
  }
  if (only == nullptr) {
    if (int err = impl.domain->persist(reinterpret_cast<void*>(base), impl.region.committed()))
      return status::from_errno(err, "making " + impl.name + " durable");
  } else {
    // One persist: on a file an msync per range costs a journal commit
    // each, where one fdatasync writes these with whatever else of the
    // file the program dirtied since it was last written back.
    const std::vector<recovery::persist_range> ranges = pages_holding(base, std::move(journaled), *only);
    if (int err = impl.domain->persist(ranges.data(), ranges.size()))
      return status::from_errno(err, "making " + impl.name + " durable");
  }
  // The close is complete. Retiring the journal and recording the time are
  // one persist: either may land alone, and both outcomes are sound (a
  // journal replayed again changes nothing).
  layout::heap_meta* meta = impl.meta();
  meta->last_close_ns = port::realtime_ns();
  recovery::persist_range done[2] = {{&meta->last_close_ns, sizeof(meta->last_close_ns)}};
  if (journal == 0) done[1] = recovery::retire_journal(&meta->lanes[lane], base);
  if (int err = impl.domain->persist(done, done[1].size != 0 ? 2 : 1))
    return status::from_errno(err, "recording the close of " + impl.name);
  recovery::lane_writer writer = lane_writer_for(impl, lane);
  trim_log_storage(writer);
  return {};
}

}  // namespace larder
