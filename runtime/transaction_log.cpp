// A transaction's lane: appending before-images, making them durable in
// batches, growing the log, and the allocator's metadata sink
// (allocator/metadata_log.hpp). See transaction_state.hpp.
#include "runtime/lane_space.hpp"
#include "runtime/transaction_state.hpp"

#include <errno.h>

#include <algorithm>

namespace larder {

namespace {

// Lanes start with one segment and double as they fill.
constexpr std::size_t kFirstExtentSegments = 1;

}  // namespace

int transaction_state::grow_lane(std::size_t at_least) noexcept {
  std::size_t have = writer.capacity();
  std::size_t want = have == 0 ? kFirstExtentSegments << layout::kSegmentShift : have;
  if (want < at_least) want = at_least;
  std::size_t count = (want + layout::kSegmentSize - 1) >> layout::kSegmentShift;
  // A run another transaction freed holds data its rollback needs until
  // it ends: claim runs only while no other transaction holds
  // tx_alloc_lock (the claim itself is not logged, and needs it no longer).
  std::unique_lock<std::mutex> claiming;
  if (!allocating) claiming = std::unique_lock(impl->tx_alloc_lock);
  // The log's own segments are not part of any transaction.
  alloc::metadata_sink_scope no_sink(nullptr);
  layout::heap_meta* meta = impl->meta();
  alloc::segment* s = nullptr;
  for (;;) {
    if (int err = claim_log_run(*impl, lane, count, &s)) return err;
    std::size_t first = impl->region.segment_index(s);
    // A run this transaction freed (its table entries are logged) still
    // holds data a rollback brings back: the log must not write there.
    // Keep it aside until the transaction ends.
    // So must a run page capture protects (in use when it began, freed
    // since outside the transaction): the log is written under log_lock,
    // which the capture handler takes.
    auto entries = reinterpret_cast<std::uintptr_t>(&meta->segments[first]);
    bool freed_here = false;
    for (std::size_t i = 0; i < count && !freed_here; ++i) {
      freed_here = already_logged(entries + i * sizeof(meta->segments[0]), sizeof(meta->segments[0])) ||
                   (first + i < begin_entries.size() && layout::entry_state(begin_entries[first + i]) != layout::kSegmentFree);
    }
    if (!freed_here) break;
    quarantined.emplace_back(s, count);
  }
  return add_lane_extent(*impl, *impl->domain, writer, s, count);
}

// Grows the log, if need be, so that `bytes` more fit beside what page
// capture still has reserved, and gives it storage ahead. Called without
// log_lock: growing may write segment headers that capture protects, and
// the handler takes log_lock.
int transaction_state::ensure_log_room(std::size_t bytes) noexcept {
  if (capture_page_limit != 0)
    bytes += (capture_page_limit - std::min(captured_pages, capture_page_limit)) * kCapturedPageSpan;
  if (writer.capacity() - writer.used() < bytes) {
    if (int err = grow_lane(writer.used() + bytes)) return err;
  }
  // All of it while pages are captured: the capture handler cannot reserve.
  return writer.reserve(writer.used() + (capture_page_limit != 0 ? bytes : std::min(bytes, kStorageAhead)));
}

// Appends one record (size <= kMaxRecordPayload) and queues its bytes for
// sync_log. Allocates nothing once `unsynced` has room (page capture
// reserves it).
int transaction_state::append(std::uintptr_t start, std::size_t size, recovery::record_kind kind) noexcept {
  recovery::persist_range dirty[recovery::lane_writer::kMaxDirtyRanges];
  std::size_t count = 0;
  int err = writer.append_range(reinterpret_cast<const void*>(start), size, dirty, &count, kind);
  if (err != 0) return err;
  for (std::size_t i = 0; i < count; ++i) unsynced.push_back(dirty[i]);
  return 0;
}

int transaction_state::log_range(std::uintptr_t start, std::size_t size, bool user, bool may_grow) noexcept {
  std::uintptr_t end = start + size;
  for (std::uintptr_t at = start; at < end;) {
    std::size_t piece = std::min<std::size_t>(end - at, recovery::kMaxRecordPayload);
    int err = append(at, piece);
    if (err == ENOBUFS && may_grow) {
      if ((err = grow_lane(writer.used() + (recovery::record_span(piece) + sizeof(recovery::record_header)) * 2)) != 0)
        return err;
      continue;
    }
    // A log that cannot take more is out of space to the caller.
    if (err != 0) return err == ENOBUFS ? ENOSPC : err;
    if (user) {
      // The record just appended ends the last range queued.
      const recovery::persist_range& last = unsynced.back();
      const auto* payload = static_cast<const std::uint8_t*>(last.address) + last.size - piece;
      user_records.push_back({at, payload, piece, records_logged++});
    }
    at += piece;
  }
  // Keep `logged_ranges` coalesced enough for the containment test.
  auto [it, inserted] = logged_ranges.emplace(start, end);
  if (!inserted && it->second < end) it->second = end;
  return 0;
}

int transaction_state::log_intent(recovery::record_kind kind, const void* address) noexcept {
  for (;;) {
    int err = append(reinterpret_cast<std::uintptr_t>(address), 0, kind);
    if (err != ENOBUFS) return err;
    if ((err = grow_lane(writer.used() + recovery::record_span(0) * 3)) != 0) return err;
  }
}

int transaction_state::sync_log() noexcept {
  if (unsynced.empty()) return 0;
  // A transaction capturing pages runs alone, and syncs from the capture
  // handler too, where the group's lock must not be taken.
  recovery::persist_domain& domain = capture_tracker ? *impl->domain : impl->transaction_domain;
  int err = domain.persist(unsynced.data(), unsynced.size());
  unsynced.clear();
  // A marker starts the next batch only after this one is durable.
  if (err == 0) writer.end_batch();
  return err;
}

void transaction_state::before_write(void* address, std::size_t size) noexcept {
  auto start = reinterpret_cast<std::uintptr_t>(address);
  if (!contains(start, size)) return;
  data.push_back({address, size});
  if (sink_error != 0 || !sink_logs || already_logged(start, size)) return;
  lock_log();
  // The caller made room (ensure_log_room): the region's lock may be held.
  int err = log_range(start, size, false, false);
  if (err == 0) err = sync_log();
  unlock_log();
  sink_error = err;
}

void transaction_state::fresh(void* address, std::size_t size) noexcept {
  auto start = reinterpret_cast<std::uintptr_t>(address);
  if (!contains(start, size)) return;
  data.push_back({address, size});
}

int transaction_state::log_batch(const alloc::metadata_range* ranges, std::size_t count,
                                 std::size_t changing) noexcept {
  lock_log();
  // The caller made room (ensure_log_room).
  int err = 0;
  for (std::size_t i = 0; i < count && err == 0; ++i)
    err = log_range(reinterpret_cast<std::uintptr_t>(ranges[i].address), ranges[i].size, false, false);
  if (err == 0) err = sync_log();
  unlock_log();
  if (err != 0) return err;
  for (std::size_t i = 0; i < changing; ++i) data.push_back({ranges[i].address, ranges[i].size});
  return 0;
}

void transaction_state::reset() noexcept {
  active = false;
  exclusive = false;
  upgraded = false;
  allocating = false;
  user_records.clear();
  captured_records.clear();
  captured_ranges.clear();
  records_logged = 0;
  unsynced.clear();
  data.clear();
  logged_ranges.clear();
  allocated.clear();
  to_free.clear();
  pushed.clear();
  free_after_commit.clear();
  sink_logs = true;
  sink_error = 0;
  pods_allocating.clear();
  captured_pages = 0;
  capture_page_limit = 0;
  begin_entries.clear();
  begin_spare_blocks.clear();
  header_pages.clear();
}

}  // namespace larder
