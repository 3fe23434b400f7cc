// The transaction engine's state, shared by the files that implement it:
// transaction_log.cpp (the lane: logging ranges, growing the log, the
// allocator's metadata sink), page_capture.cpp (capturing pages and
// rolling them back), transaction.cpp (begin, commit, abort, the public
// class) and transaction_recovery.cpp (rollback on open).
//
// The engine's own bookkeeping never comes from malloc (runtime/
// transaction_memory.hpp): the metadata sink runs with the allocator's
// locks held and the capture handler inside SIGSEGV, and with
// liblarder_malloc inside a pod_scope malloc would re-enter that allocator
// or land in the very pages being captured.
#pragma once

#include <algorithm>
#include <larder/transaction.hpp>

#include "allocator/internal_pool.hpp"
#include "allocator/metadata_log.hpp"
#include "allocator/segment.hpp"
#include "port/os.hpp"
#include "port/write_tracker.hpp"
#include "recovery/undo_log.hpp"
#include "runtime/heap_impl.hpp"
#include "runtime/transaction_memory.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

namespace larder {

// A transaction capturing pages logs them from a signal handler, where the
// log can neither grow nor get storage: it gets room and storage up front
// for every page it may capture (each page of the segments in use when
// capture begins, once), and for at most this many pages.
inline constexpr std::size_t kCaptureLogBytes = std::size_t{64} << 20;
// (Each captured page is one batch: a marker and the page's record.)
inline constexpr std::size_t kCapturedPageSpan = port::kOsPageSize + 64;
inline constexpr std::size_t kMaxCapturedPages = kCaptureLogBytes / kCapturedPageSpan;
// Room kept free in the log whenever the allocator may run with a
// transaction's sink: the sink cannot grow the log, since it may be called
// with the region's lock held, which growing takes. One allocation or free
// logs a few pages' descriptors and links, a segment header (8 KiB) and
// segment-table entries; folding a page's remote frees logs each block.
inline constexpr std::size_t kSinkHeadroom = std::size_t{2} << 20;
// Log storage (file and shm heaps) kept ahead of what the log holds,
// outside page capture: about what one allocation logs. The log reserves
// more as it is written; where the sink then meets a full file system the
// transaction fails for good, like any metadata write the sink cannot log.
inline constexpr std::size_t kStorageAhead = std::size_t{64} << 10;

// Log room for one allocation or free of `size` bytes with the sink set:
// the headroom plus the segment-table entries of a huge block.
inline std::size_t sink_room(std::size_t size) noexcept {
  return kSinkHeadroom + 2 * ((size >> layout::kSegmentShift) + 2) * sizeof(std::uint32_t);
}

// An outermost transaction and the nested ones that joined it.
struct transaction_state final : alloc::metadata_sink {
  heap_impl* impl = nullptr;
  std::size_t depth = 0;     // transaction objects alive
  bool active = false;       // begun and neither committed nor aborted
  transaction* outermost = nullptr;
  capture mode = capture::snapshots;
  // How it holds the heap (heap_impl::tx_lock): exclusive when begun with
  // capture::pages; `upgraded` when a nested transaction started capture
  // while no other was open (capture_upgrading keeps others out).
  bool exclusive = false;
  bool upgraded = false;
  // Holds heap_impl::tx_alloc_lock: it allocated, freed, or settled plain
  // allocation's changes.
  bool allocating = false;
  std::uint32_t lane = 0;
  recovery::lane_writer writer{nullptr, 0};

  // A before-image the program's rollback restores (allocator records are
  // only for recovery; see abort).
  struct user_record {
    std::uintptr_t address;
    const std::uint8_t* image;
    std::size_t size;
    std::size_t order;  // when it was logged: rollback goes newest first
  };
  engine_vector<user_record> user_records;
  // Kept apart for the page-capture handler, which must not allocate:
  // reserved at begin and only ever appended to there.
  engine_vector<user_record> captured_records;
  engine_vector<recovery::persist_range> captured_ranges;
  std::size_t records_logged = 0;
  engine_vector<recovery::persist_range> unsynced;  // log bytes written, not yet durable
  engine_vector<recovery::persist_range> data;      // made durable at commit
  engine_block_cache node_cache;  // for `logged_ranges`, which it outlives
  engine_map<std::uintptr_t, std::uintptr_t> logged_ranges{engine_allocator<std::pair<const std::uintptr_t, std::uintptr_t>>(&node_cache)};  // start -> end of ranges logged
  engine_vector<void*> allocated;
  engine_vector<void*> to_free;
  // With shared writers (see apply_frees): blocks pushed onto remote lists
  // of pages no thread of this process owns, whose segments' owners wait
  // for the end of the transaction to fold them in; huge blocks freed once
  // it has committed.
  engine_vector<void*> pushed;
  engine_vector<void*> free_after_commit;
  bool sink_logs = true;  // false: the sink only collects ranges to persist (abort)
  // The pods it allocated or frees in: plain allocation's changes there are
  // settled before it makes allocator metadata durable (runtime/
  // plain_settle.hpp).
  engine_vector<std::uint32_t> pods_allocating;
  void note_pod(std::uint32_t pod) {
    if (std::find(pods_allocating.begin(), pods_allocating.end(), pod) == pods_allocating.end())
      pods_allocating.push_back(pod);
  }
  int sink_error = 0;
  bool holds_tables = false;  // hold_tables_to_end

  std::unique_ptr<port::write_tracker> capture_tracker;
  std::size_t captured_pages = 0;
  std::size_t capture_page_limit = 0;  // pages capture may log; 0 when not capturing
  // What the allocator looked like when capture began, so that an abort
  // rewinds only the blocks that were live then (page_capture.cpp).
  engine_vector<std::uint32_t> begin_entries;        // the segment table
  engine_vector<std::uintptr_t> begin_spare_blocks;  // this thread's cached and delayed blocks, sorted
  // Segment-header pages written since capture began, and their images
  // from before (first write). Never logged nor restored: the allocator
  // logs its own changes; they only tell the rollback which blocks were
  // free at begin. The images are mapped up front: the handler fills them.
  engine_vector<std::uintptr_t> header_pages;
  std::uint8_t* header_images = nullptr;
  std::size_t header_capacity = 0;  // pages header_images holds
  // Taken by every path that appends to the log while pages are captured:
  // the capture handler runs on whichever thread writes the heap. The
  // holder never writes a captured page, so it never faults while holding.
  std::atomic_flag log_lock = ATOMIC_FLAG_INIT;
  // Segment runs the log could not use (see grow_lane), given back at the end.
  engine_vector<std::pair<alloc::segment*, std::size_t>> quarantined;

  transaction_state() = default;
  transaction_state(const transaction_state&) = delete;
  transaction_state& operator=(const transaction_state&) = delete;
  ~transaction_state() {
    if (header_images != nullptr) alloc::internal_free(header_images, header_capacity * port::kOsPageSize);
  }

  // The allocator's metadata sink.
  void before_write(void* address, std::size_t size) noexcept override;
  void fresh(void* address, std::size_t size) noexcept override;
  bool logged(const void* address, std::size_t size) const noexcept override {
    return already_logged(reinterpret_cast<std::uintptr_t>(address), size);
  }
  int log_batch(const alloc::metadata_range* ranges, std::size_t count, std::size_t changing) noexcept override;

  bool contains(std::uintptr_t start, std::size_t size) const noexcept {
    std::uintptr_t base = impl->region.base();
    return start >= base && size <= impl->region.committed() && start - base <= impl->region.committed() - size;
  }
  bool already_logged(std::uintptr_t start, std::size_t size) const noexcept {
    auto it = logged_ranges.upper_bound(start);
    if (it == logged_ranges.begin()) return false;
    --it;
    return it->first <= start && start + size <= it->second;
  }
  void lock_log() noexcept {
    if (capture_tracker)
      while (log_lock.test_and_set(std::memory_order_acquire)) {
      }
  }
  void unlock_log() noexcept {
    if (capture_tracker) log_lock.clear(std::memory_order_release);
  }
  // Takes tx_alloc_lock, once, until the transaction ends: from its first
  // allocation, free or settle.
  void hold_allocator() noexcept {
    if (allocating) return;
    impl->tx_alloc_lock.lock();
    allocating = true;
  }
  int grow_lane(std::size_t at_least) noexcept;
  int ensure_log_room(std::size_t bytes) noexcept;
  int append(std::uintptr_t start, std::size_t size, recovery::record_kind kind = recovery::kRecordRange) noexcept;
  // Appends a record of `kind` with no payload (a push or a huge free),
  // growing the log when full.
  int log_intent(recovery::record_kind kind, const void* address) noexcept;
  // Appends records of [start, +size); grows the log when full if
  // `may_grow` (never under log_lock or the allocator's locks: callers
  // that hold them made room first with ensure_log_room).
  int log_range(std::uintptr_t start, std::size_t size, bool user, bool may_grow) noexcept;
  int sync_log() noexcept;
  void reset() noexcept;
};

// A piece of a before-image that a rollback writes back.
struct restore_piece {
  std::uintptr_t address;
  const std::uint8_t* image;
  std::size_t size;
  std::size_t order;
};

// page_capture.cpp: from the first write to each page of the heap (but the
// log's and the metadata block's), `tx` logs the page's before-image.
status start_capture(transaction_state* tx);
void stop_capture(transaction_state* tx) noexcept;
// Appends to `out` the parts of the captured pages that an abort writes
// back. Called after stop_capture.
void captured_restore_pieces(const transaction_state& tx, engine_vector<restore_piece>* out);

}  // namespace larder
