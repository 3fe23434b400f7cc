// Undo-log transactions (include/larder/transaction.hpp) and recovery on
// open. The log format and replay are in recovery/undo_log; this file
// drives them: lanes, snapshots, page capture, allocation and free inside
// a transaction, commit, abort.
//
// Order of durability in a transaction (each arrow one persist):
//   before-images in the lane -> (program writes in place) ->
//   data: snapshotted ranges, captured pages, new blocks, allocator
//   metadata -> commit slot.
// A crash before the commit slot is durable leaves records that recovery
// rolls back; the data they cover was not yet written in place when each
// record became durable.
//
// The engine's own bookkeeping never comes from malloc (runtime/
// transaction_memory.hpp): the metadata sink runs with the allocator's
// locks held and the capture handler inside SIGSEGV, and with
// liblarder_malloc inside a pod_scope malloc would re-enter that allocator
// or land in the very pages being captured.
#include <larder/transaction.hpp>

#include "allocator/alloc.hpp"
#include "allocator/metadata_log.hpp"
#include "allocator/page_ops.hpp"
#include "allocator/thread.hpp"
#include "port/write_tracker.hpp"
#include "recovery/undo_log.hpp"
#include "runtime/heap_impl.hpp"
#include "runtime/lane_space.hpp"
#include "runtime/transaction_engine.hpp"
#include "runtime/transaction_memory.hpp"

#include <errno.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace larder {

namespace {

// Lanes start with one segment and double as they fill.
constexpr std::size_t kFirstExtentSegments = 1;
// A transaction capturing pages logs them from a signal handler, where the
// log cannot grow: it gets this much room up front, and at most this many
// pages.
constexpr std::size_t kCaptureLogBytes = std::size_t{64} << 20;
// (Each captured page is one batch: a marker and the page's record.)
constexpr std::size_t kCapturedPageSpan = port::kOsPageSize + 64;
constexpr std::size_t kMaxCapturedPages = kCaptureLogBytes / kCapturedPageSpan;
// Room kept free in the log whenever the allocator may run with a
// transaction's sink: the sink cannot grow the log, since it may be called
// with the region's lock held, which growing takes. One allocation or free
// logs a few pages' descriptors and links, a segment header (8 KiB) and
// segment-table entries; folding a page's remote frees logs each block.
constexpr std::size_t kSinkHeadroom = std::size_t{2} << 20;

// Log room for one allocation or free of `size` bytes with the sink set:
// the headroom plus the segment-table entries of a huge block.
std::size_t sink_room(std::size_t size) noexcept {
  return kSinkHeadroom + 2 * ((size >> layout::kSegmentShift) + 2) * sizeof(std::uint32_t);
}

bool all_zero(const void* p, std::size_t size) noexcept {
  const auto* bytes = static_cast<const std::uint8_t*>(p);
  return std::all_of(bytes, bytes + size, [](std::uint8_t b) { return b == 0; });
}

[[noreturn]] void fail_in_handler(const char* text) {
  port::write_stderr(text, std::strlen(text));
  std::abort();
}

}  // namespace

// An outermost transaction and the nested ones that joined it.
struct transaction_state final : alloc::metadata_sink {
  heap_impl* impl = nullptr;
  std::size_t depth = 0;     // transaction objects alive
  bool active = false;       // begun and neither committed nor aborted
  transaction* outermost = nullptr;
  capture mode = capture::snapshots;
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
  engine_block_cache node_cache;  // for `logged`, which it outlives
  engine_map<std::uintptr_t, std::uintptr_t> logged{engine_allocator<std::pair<const std::uintptr_t, std::uintptr_t>>(&node_cache)};  // start -> end of ranges logged
  engine_vector<void*> allocated;
  engine_vector<void*> to_free;
  bool sink_logs = true;  // false: the sink only collects ranges to persist (abort)
  int sink_error = 0;

  std::unique_ptr<port::write_tracker> capture_tracker;
  std::size_t captured_pages = 0;
  // What the allocator looked like when capture began, so that an abort
  // rewinds only the blocks that were live then (restore_captured).
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

  void before_write(void* address, std::size_t size) noexcept override;
  void fresh(void* address, std::size_t size) noexcept override;

  bool contains(std::uintptr_t start, std::size_t size) const noexcept {
    std::uintptr_t base = impl->region.base();
    return start >= base && size <= impl->region.committed() && start - base <= impl->region.committed() - size;
  }
  bool already_logged(std::uintptr_t start, std::size_t size) const noexcept {
    auto it = logged.upper_bound(start);
    if (it == logged.begin()) return false;
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
  int grow_lane(std::size_t at_least) noexcept;
  int ensure_log_room(std::size_t bytes) noexcept;
  int append(std::uintptr_t start, std::size_t size) noexcept;
  // Appends records of [start, +size); grows the log when full if
  // `may_grow` (never under log_lock or the allocator's locks: callers
  // that hold them made room first with ensure_log_room).
  int log_range(std::uintptr_t start, std::size_t size, bool user, bool may_grow) noexcept;
  int sync_log() noexcept;
  void reset() noexcept;
};

namespace {

// Initial-exec: read on every allocation and free in a heap.
constinit thread_local transaction_state* t_tx __attribute__((tls_model("initial-exec"))) = nullptr;

status failure(const heap_impl& impl) {
  return status(errc::invalid_argument, "an earlier transaction on " + impl.name +
                                            " could not be made durable (" + impl.tx_failure +
                                            "); reopen the heap to recover it");
}

// malloc of the engine's messages and exceptions goes to the process heap
// even inside a pod_scope of the heap: such blocks are the process's, and
// in pages a transaction captures an abort would rewind them.
class process_malloc_scope {
 public:
  process_malloc_scope() noexcept : previous_(alloc::tls_heap) {
    if (alloc::thread_data* td = alloc::current_thread(); td != nullptr && td->process_default != nullptr)
      alloc::tls_heap = td->process_default;
  }
  // Nothing can close a heap while the engine runs on this thread, so the
  // previous target is still live.
  ~process_malloc_scope() { alloc::tls_heap = previous_; }
  process_malloc_scope(const process_malloc_scope&) = delete;
  process_malloc_scope& operator=(const process_malloc_scope&) = delete;

 private:
  alloc::local_heap* previous_;
};

// Runs the allocator with `state` receiving its metadata writes.
struct sink_scope {
  explicit sink_scope(alloc::metadata_sink* sink) noexcept : previous(alloc::t_metadata_sink) {
    alloc::t_metadata_sink = sink;
  }
  ~sink_scope() { alloc::t_metadata_sink = previous; }
  alloc::metadata_sink* previous;
};

}  // namespace

// ---- logging ------------------------------------------------------------

int transaction_state::grow_lane(std::size_t at_least) noexcept {
  std::size_t have = writer.capacity();
  std::size_t want = have == 0 ? kFirstExtentSegments << layout::kSegmentShift : have;
  if (want < at_least) want = at_least;
  std::size_t count = (want + layout::kSegmentSize - 1) >> layout::kSegmentShift;
  // The log's own segments are not part of any transaction.
  sink_scope no_sink(nullptr);
  layout::heap_meta* meta = impl->meta();
  alloc::segment* s = nullptr;
  std::size_t first = 0;
  for (;;) {
    bool zeroed = false;
    s = impl->region.acquire(count, lane, layout::kSegmentLog, &zeroed);
    if (s == nullptr) return errno != 0 ? errno : ENOMEM;
    first = impl->region.segment_index(s);
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
  return add_lane_extent(*impl, writer, s, count);
}

// Grows the log, if need be, so that `bytes` more fit beside what page
// capture still has reserved. Called without log_lock: growing may write
// segment headers that capture protects, and the handler takes log_lock.
int transaction_state::ensure_log_room(std::size_t bytes) noexcept {
  if (capture_tracker) {
    std::size_t pages = captured_pages;
    bytes += (kMaxCapturedPages - std::min(pages, kMaxCapturedPages)) * kCapturedPageSpan;
  }
  if (writer.capacity() - writer.used() >= bytes) return 0;
  return grow_lane(writer.used() + bytes);
}

// Appends one record (size <= kMaxRecordPayload) and queues its bytes for
// sync_log. Allocates nothing once `unsynced` has room (page capture
// reserves it).
int transaction_state::append(std::uintptr_t start, std::size_t size) noexcept {
  recovery::persist_range dirty[recovery::lane_writer::kMaxDirtyRanges];
  std::size_t count = 0;
  int err = writer.append_range(reinterpret_cast<const void*>(start), size, dirty, &count);
  if (err != 0) return err;
  for (std::size_t i = 0; i < count; ++i) unsynced.push_back(dirty[i]);
  return 0;
}

int transaction_state::log_range(std::uintptr_t start, std::size_t size, bool user, bool may_grow) noexcept {
  std::uintptr_t end = start + size;
  for (std::uintptr_t at = start; at < end;) {
    std::size_t piece = std::min<std::size_t>(end - at, recovery::kMaxRecordPayload);
    int err = append(at, piece);
    if (err == ENOSPC && may_grow) {
      if ((err = grow_lane(writer.used() + (recovery::record_span(piece) + sizeof(recovery::record_header)) * 2)) != 0)
        return err;
      continue;
    }
    if (err != 0) return err;
    if (user) {
      // The record just appended ends the last range queued.
      const recovery::persist_range& last = unsynced.back();
      const auto* payload = static_cast<const std::uint8_t*>(last.address) + last.size - piece;
      user_records.push_back({at, payload, piece, records_logged++});
    }
    at += piece;
  }
  // Keep `logged` coalesced enough for the containment test.
  auto [it, inserted] = logged.emplace(start, end);
  if (!inserted && it->second < end) it->second = end;
  return 0;
}

int transaction_state::sync_log() noexcept {
  if (unsynced.empty()) return 0;
  int err = impl->domain->persist(unsynced.data(), unsynced.size());
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

void transaction_state::reset() noexcept {
  active = false;
  user_records.clear();
  captured_records.clear();
  captured_ranges.clear();
  records_logged = 0;
  unsynced.clear();
  data.clear();
  logged.clear();
  allocated.clear();
  to_free.clear();
  sink_logs = true;
  sink_error = 0;
  captured_pages = 0;
  begin_entries.clear();
  begin_spare_blocks.clear();
  header_pages.clear();
}

// ---- page capture ------------------------------------------------------------

namespace {

// A page of the header of a segment that held heap pages when capture
// began.
bool is_header_page(const transaction_state& tx, std::uintptr_t page) noexcept {
  std::uintptr_t offset = page - tx.impl->region.base();
  std::size_t index = offset >> layout::kSegmentShift;
  return index < tx.begin_entries.size() && layout::entry_state(tx.begin_entries[index]) == layout::kSegmentPages &&
         (offset & (layout::kSegmentSize - 1)) < alloc::kSegmentHeaderSize;
}

void save_header_image(transaction_state* tx, std::uintptr_t page) noexcept {
  if (tx->header_pages.size() >= tx->header_capacity)
    fail_in_handler("larder: a transaction capturing pages wrote more segment headers than it has room for; stopping\n");
  std::memcpy(tx->header_images + tx->header_pages.size() * port::kOsPageSize, reinterpret_cast<const void*>(page),
              port::kOsPageSize);
  tx->header_pages.push_back(page);
}

// In the SIGSEGV handler: only memcpy, hashing and the persist system call
// (the vectors were reserved at begin).
void capture_page(void* context, std::uintptr_t page) {
  auto* tx = static_cast<transaction_state*>(context);
  while (tx->log_lock.test_and_set(std::memory_order_acquire)) {
  }
  struct unlock_at_end {
    transaction_state* tx;
    ~unlock_at_end() { tx->log_lock.clear(std::memory_order_release); }
  } unlock{tx};
  if (is_header_page(*tx, page)) {
    save_header_image(tx, page);
    return;
  }
  if (tx->already_logged(page, port::kOsPageSize)) return;
  if (tx->captured_pages >= kMaxCapturedPages)
    fail_in_handler("larder: a transaction capturing pages wrote more pages than its log holds; stopping\n");
  ++tx->captured_pages;
  int err = tx->append(page, port::kOsPageSize);
  if (err != 0) fail_in_handler("larder: the log of a transaction capturing pages is full; stopping\n");
  const recovery::persist_range& last = tx->unsynced.back();
  const auto* payload = static_cast<const std::uint8_t*>(last.address) + last.size - port::kOsPageSize;
  tx->captured_records.push_back({page, payload, port::kOsPageSize, tx->records_logged++});
  tx->captured_ranges.push_back({reinterpret_cast<const void*>(page), port::kOsPageSize});
  if (tx->sync_log() != 0) fail_in_handler("larder: cannot make a captured page durable; stopping\n");
}

status reserve_header_images(transaction_state* tx, std::size_t pages) {
  if (pages <= tx->header_capacity) return {};
  if (tx->header_images != nullptr) alloc::internal_free(tx->header_images, tx->header_capacity * port::kOsPageSize);
  tx->header_capacity = 0;
  // Mapped from the OS: only the pages the handler fills take memory.
  tx->header_images = static_cast<std::uint8_t*>(alloc::internal_alloc(pages * port::kOsPageSize));
  if (tx->header_images == nullptr) return status::from_errno(ENOMEM, "page capture");
  tx->header_capacity = pages;
  return {};
}

// The blocks of the heap that this thread holds free outside their pages:
// in its caches and on its delayed-free lists. Sorted.
void spare_blocks(const transaction_state& tx, engine_vector<std::uintptr_t>* out) {
  out->clear();
  alloc::thread_data* td = alloc::current_thread();
  if (td == nullptr) return;
  for (alloc::local_heap* h = td->heaps; h != nullptr; h = h->next_in_thread) {
    if (h->owner_region.load(std::memory_order_acquire) != &tx.impl->region) continue;
    auto add_list = [&](const alloc::block* b, std::size_t limit) {
      for (std::size_t n = 0; b != nullptr && n < limit && tx.contains(reinterpret_cast<std::uintptr_t>(b), 16); ++n) {
        out->push_back(reinterpret_cast<std::uintptr_t>(b));
        b = b->next;
      }
    };
    for (std::size_t bin = 0; bin < alloc::kCachedBins; ++bin) add_list(h->cache[bin], alloc::kCache.limit[bin] + 1u);
    // Other threads push at its head; the blocks behind a head stay put.
    add_list(h->delayed_free.load(std::memory_order_acquire), std::size_t{1} << 20);
  }
  std::sort(out->begin(), out->end());
}

status start_capture(transaction_state* tx) {
  std::unique_ptr<port::write_tracker> tracker;
  if (port::make_tracker(port::tracker_kind::mprotect, &tracker) != 0)
    return status(errc::unsupported, std::string("page capture needs the mprotect tracker: ") +
                                         port::probe_tracker(port::tracker_kind::mprotect).reason);
  if (tx->impl->tracker && tx->impl->tracker->kind() != port::tracker_kind::uffd_async)
    return status(errc::unsupported, "page capture cannot run while the heap is tracked by a signal-based backend");
  if (int err = tx->ensure_log_room(kCaptureLogBytes + kSinkHeadroom))
    return status::from_errno(err, "growing the log for page capture");
  tx->captured_records.reserve(kMaxCapturedPages);
  tx->captured_ranges.reserve(kMaxCapturedPages);
  // The handler appends one record at a time to `unsynced` and empties it.
  tx->unsynced.reserve(tx->unsynced.size() + 2 * recovery::lane_writer::kMaxDirtyRanges);
  const layout::heap_meta* meta = tx->impl->meta();
  tx->begin_entries.assign(meta->segments, meta->segments + meta->segments_high);
  std::size_t page_segments = static_cast<std::size_t>(
      std::count_if(tx->begin_entries.begin(), tx->begin_entries.end(),
                    [](std::uint32_t e) { return layout::entry_state(e) == layout::kSegmentPages; }));
  if (status s = reserve_header_images(tx, page_segments * (alloc::kSegmentHeaderSize / port::kOsPageSize)); !s.ok())
    return s;
  tx->header_pages.reserve(tx->header_capacity);
  spare_blocks(*tx, &tx->begin_spare_blocks);
  tracker->set_first_write(&capture_page, tx);
  // Every used segment but the log's own, whose writes are the log. The
  // metadata segment is left out: the root and pod tables log their own
  // changes. Segment headers are protected but never logged: the
  // allocator logs its changes there, and an abort must not rewind them
  // under the live allocator; their first images tell the rollback which
  // blocks were free at begin.
  std::uintptr_t base = tx->impl->region.base();
  for (std::size_t i = 1; i < tx->begin_entries.size(); ++i) {
    layout::segment_state st = layout::entry_state(tx->begin_entries[i]);
    if (st == layout::kSegmentFree || st == layout::kSegmentLog) continue;
    std::uintptr_t start = base + (i << layout::kSegmentShift);
    if (st == layout::kSegmentHugeHead) start += alloc::kSegmentHeaderSize;
    if (int err = tracker->track(start, base + ((i + 1) << layout::kSegmentShift) - start,
                                 layout::entry_pod(tx->begin_entries[i])))
      return status::from_errno(err, "protecting the heap for page capture");
  }
  tx->capture_tracker = std::move(tracker);
  return {};
}

void stop_capture(transaction_state* tx) noexcept {
  if (!tx->capture_tracker) return;
  tx->capture_tracker->untrack_all();
  tx->capture_tracker.reset();
}

// ---- rolling back captured pages -----------------------------------------------
//
// An abort writes a captured page back only over the blocks that were live
// when capture began and are live still. A block handed out meanwhile
// outside the transaction (malloc or new inside a pod_scope of the heap: an
// exception on its way out, a temporary string) keeps what it holds, and a
// free block keeps its link, which the live allocator follows. (Recovery
// after a crash restores whole pages: then no process-local block matters.)

// The heap as it was when capture began: captured pages and segment-header
// pages from their images, everything else as it is now (never written
// since).
class begin_view {
 public:
  explicit begin_view(const transaction_state& tx) : tx_(tx) {
    pages_.reserve(tx.captured_records.size());
    for (const auto& r : tx.captured_records) pages_.push_back({r.address, r.image});
    for (std::size_t i = 0; i < tx.header_pages.size(); ++i)
      pages_.push_back({tx.header_pages[i], tx.header_images + i * port::kOsPageSize});
    std::sort(pages_.begin(), pages_.end());
  }
  // The bytes at `address` as they were; valid to the end of its OS page.
  const void* at(std::uintptr_t address) const noexcept {
    std::uintptr_t page = address & ~(port::kOsPageSize - 1);
    auto it = std::lower_bound(pages_.begin(), pages_.end(), std::pair<std::uintptr_t, const std::uint8_t*>{page, nullptr});
    if (it != pages_.end() && it->first == page) return it->second + (address - page);
    return reinterpret_cast<const void*>(address);
  }
  const transaction_state& tx() const noexcept { return tx_; }

 private:
  const transaction_state& tx_;
  engine_vector<std::pair<std::uintptr_t, const std::uint8_t*>> pages_;
};

// The blocks of one heap page, and which of them are free.
struct page_blocks {
  std::size_t head = 0;  // slice of its descriptor
  std::uintptr_t start = 0;
  std::size_t block_size = 0;
  std::size_t capacity = 0;
  engine_vector<std::uint64_t> free;  // bit i: block i is free

  std::uintptr_t end() const noexcept { return start + capacity * block_size; }
  bool is_free(std::size_t i) const noexcept { return (free[i >> 6] >> (i & 63)) & 1; }
  void mark(std::uintptr_t b) noexcept {
    if (b < start || b >= end() || (b - start) % block_size != 0) return;
    std::size_t i = (b - start) / block_size;
    free[i >> 6] |= std::uint64_t{1} << (i & 63);
  }
};

// Reads the heap page holding slice `k` of `s` through `read` (the bytes
// at an address, as of some moment): false when the slice was free. Free
// blocks: those never carved, those on the page's free and remote-free
// lists, and `spare` ones (held by this thread's caches).
template <class Read>
bool read_page_blocks(Read&& read, const transaction_state& tx, alloc::segment* s, std::size_t k,
                      const engine_vector<std::uintptr_t>& spare, page_blocks* out) {
  const auto* seg = static_cast<const alloc::segment*>(read(reinterpret_cast<std::uintptr_t>(s)));
  if ((seg->free_slices >> k) & 1) return false;
  const auto* slice = static_cast<const alloc::page*>(read(reinterpret_cast<std::uintptr_t>(&s->pages[k])));
  if (slice->slice_offset > k) return false;
  std::size_t head = k - slice->slice_offset;
  const auto* pg = static_cast<const alloc::page*>(read(reinterpret_cast<std::uintptr_t>(&s->pages[head])));
  if (pg->slice_count == 0 || pg->block_size == 0 || head + pg->slice_count <= k) return false;
  out->head = head;
  out->start = reinterpret_cast<std::uintptr_t>(alloc::page_start(s, &s->pages[head]));
  out->block_size = pg->block_size;
  out->capacity = pg->capacity;
  out->free.assign((out->capacity + 63) / 64, 0);
  for (std::size_t i = pg->reserved; i < out->capacity; ++i) out->free[i >> 6] |= std::uint64_t{1} << (i & 63);
  auto walk = [&](const alloc::block* b) {
    for (std::size_t n = 0; b != nullptr && n < out->capacity; ++n) {
      auto at = reinterpret_cast<std::uintptr_t>(b);
      if (at < out->start || at >= out->end() || !tx.contains(at, sizeof(alloc::block))) return;
      out->mark(at);
      b = static_cast<const alloc::block*>(read(at))->next;
    }
  };
  walk(pg->free);
  walk(alloc::remote_list(pg->xthread_free.load(std::memory_order_acquire)));
  for (auto it = std::lower_bound(spare.begin(), spare.end(), out->start); it != spare.end() && *it < out->end(); ++it)
    out->mark(*it);
  return true;
}

struct restore_piece {
  std::uintptr_t address;
  const std::uint8_t* image;
  std::size_t size;
  std::size_t order;
};

// The heap page that captured_restore_pieces read last.
struct page_cache {
  alloc::segment* segment = nullptr;
  std::size_t head = 0;
  bool live = false;  // it is still there, holding the blocks `then` lists
  page_blocks then;   // as it was when capture began
  page_blocks now;
};

// Appends to `out` the parts of captured page `r` that an abort writes
// back.
void captured_restore_pieces(const begin_view& view, const engine_vector<std::uintptr_t>& spare_now,
                             const transaction_state::user_record& r, page_cache* cache,
                             engine_vector<restore_piece>* out) {
  const transaction_state& tx = view.tx();
  std::uintptr_t base = tx.impl->region.base();
  std::size_t index = (r.address - base) >> layout::kSegmentShift;
  if (index >= tx.begin_entries.size() || layout::entry_state(tx.begin_entries[index]) != layout::kSegmentPages) {
    out->push_back({r.address, r.image, r.size, r.order});  // a huge block: live when capture began
    return;
  }
  auto* s = reinterpret_cast<alloc::segment*>(base + (index << layout::kSegmentShift));
  std::size_t k = alloc::slice_index(s, reinterpret_cast<void*>(r.address));
  auto then_bytes = [&](std::uintptr_t a) { return view.at(a); };
  auto now_bytes = [](std::uintptr_t a) { return reinterpret_cast<const void*>(a); };
  const auto* seg = static_cast<const alloc::segment*>(view.at(reinterpret_cast<std::uintptr_t>(s)));
  const auto* slice = static_cast<const alloc::page*>(view.at(reinterpret_cast<std::uintptr_t>(&s->pages[k])));
  // A slice free when capture began holds only blocks made since.
  if (((seg->free_slices >> k) & 1) || slice->slice_offset > k) return;
  std::size_t head = k - slice->slice_offset;
  if (cache->segment != s || cache->head != head) {
    cache->segment = s;
    cache->head = head;
    // The same page must still be there; if not, all its blocks were freed
    // (outside the transaction) and what lies there now is newer.
    cache->live = read_page_blocks(then_bytes, tx, s, k, tx.begin_spare_blocks, &cache->then) &&
                  read_page_blocks(now_bytes, tx, s, k, spare_now, &cache->now) &&
                  cache->now.head == cache->then.head && cache->now.start == cache->then.start &&
                  cache->now.block_size == cache->then.block_size && cache->now.capacity == cache->then.capacity;
  }
  if (!cache->live) return;
  const page_blocks& then = cache->then;
  // Everything but the blocks free then or now.
  std::uintptr_t at = r.address, end = r.address + r.size, piece = at;
  auto flush = [&](std::uintptr_t upto) {
    if (upto > piece) out->push_back({piece, r.image + (piece - r.address), upto - piece, r.order});
  };
  while (at < end) {
    if (at < then.start || at >= then.end()) {
      at = at < then.start ? std::min(end, then.start) : end;
      continue;
    }
    std::size_t i = (at - then.start) / then.block_size;
    std::uintptr_t block_end = std::min(end, then.start + (i + 1) * then.block_size);
    if (then.is_free(i) || cache->now.is_free(i)) {
      flush(at);
      piece = block_end;
    }
    at = block_end;
  }
  flush(end);
}

// ---- begin / commit / abort ----------------------------------------------------

std::uint32_t choose_lane(heap_impl& impl) {
  std::uintptr_t me = alloc::current_tid();
  std::uint32_t free_lane = layout::kMaxLanes;
  for (std::uint32_t i = 0; i < layout::kMaxLanes; ++i) {
    if (impl.lane_thread[i] == me) return i;
    if (impl.lane_thread[i] == 0 && free_lane == layout::kMaxLanes) free_lane = i;
  }
  // Transactions run one at a time, so when every lane has been handed out
  // any of them is idle; reuse the first.
  if (free_lane == layout::kMaxLanes) free_lane = 0;
  impl.lane_thread[free_lane] = me;
  return free_lane;
}

status begin(transaction_state* tx, heap_impl* impl, capture mode) {
  tx->impl = impl;
  tx->mode = capture::snapshots;
  tx->lane = choose_lane(*impl);
  layout::lane_record* rec = &impl->meta()->lanes[tx->lane];
  tx->writer = recovery::lane_writer(rec, impl->region.base());
  std::uint64_t seq = 0;
  if (int err = take_lane_seq(*impl, tx->lane, &seq)) return status::from_errno(err, "reserving transaction numbers");
  tx->writer.begin(seq);
  tx->active = true;
  if (rec->extent_count == 0) {
    if (int err = tx->grow_lane(0)) return status::from_errno(err, "making the transaction log");
  }
  if (mode == capture::pages) {
    if (status s = start_capture(tx); !s.ok()) return s;
    tx->mode = capture::pages;
  }
  return {};
}

// Frees run at commit, as part of the transaction: their metadata writes
// are logged like any other.
int apply_frees(transaction_state* tx) {
  if (tx->to_free.empty()) return 0;
  // Log the common case (a block in a page of the heap) in one batch.
  for (void* p : tx->to_free) {
    if ((reinterpret_cast<std::uintptr_t>(p) & (alloc::kSegmentSize - 1)) == 0) continue;
    alloc::segment* s = alloc::segment_of(p);
    if (layout::entry_state(tx->impl->meta()->segments[tx->impl->region.segment_index(p)]) != layout::kSegmentPages)
      continue;
    alloc::page* pg = alloc::page_of(s, p);
    for (auto [start, size] : {std::pair{reinterpret_cast<std::uintptr_t>(pg), sizeof(alloc::page)},
                               std::pair{reinterpret_cast<std::uintptr_t>(p), sizeof(alloc::block)}}) {
      if (tx->already_logged(start, size)) continue;
      if (int err = tx->log_range(start, size, false, true)) return err;
    }
  }
  if (int err = tx->sync_log()) return err;
  for (void* p : tx->to_free) {
    if (int err = tx->ensure_log_room(sink_room(alloc::usable_size(p)))) return err;
    sink_scope scope(tx);
    alloc::free_generic(p);
  }
  return tx->sink_error;
}

// A failure after writing in place: nothing more may change the heap in
// this process (allocation fails with EROFS, frees are ignored) so that
// reopening, which rolls the transaction back, finds it as it was.
status fail_heap(heap_impl* impl, int err, const std::string& what) {
  impl->tx_failure = what + ": " + larder::strerror(err);
  impl->region.forbid_writes();
  return status::from_errno(err, what);
}

status finish_durably(transaction_state* tx, const char* what) {
  heap_impl* impl = tx->impl;
  tx->data.insert(tx->data.end(), tx->captured_ranges.begin(), tx->captured_ranges.end());
  int err = impl->domain->persist(tx->data.data(), tx->data.size());
  if (err == 0) err = recovery::write_commit(tx->writer.lane(), tx->writer.seq(), *impl->domain);
  if (err != 0) return fail_heap(impl, err, what);
  return {};
}

void end(transaction_state* tx) noexcept {
  heap_impl* impl = tx->impl;
  if (t_tx == tx) t_tx = nullptr;
  for (auto [s, count] : tx->quarantined) impl->region.release(s, count);
  tx->quarantined.clear();
  tx->reset();
  impl->tx_lock.unlock();
}

void abort_outermost(transaction_state* tx) noexcept;

status commit_outermost(transaction_state* tx) {
  stop_capture(tx);
  if (tx->sink_error != 0) {
    // Some allocator metadata could not be logged: committing would make
    // an unlogged change permanent.
    int err = tx->sink_error;
    abort_outermost(tx);
    return status::from_errno(err, "logging allocator metadata; the transaction was rolled back");
  }
  status result;
  if (int err = apply_frees(tx)) {
    result = fail_heap(tx->impl, err, "freeing at commit");
  } else {
    result = finish_durably(tx, "committing a transaction");
  }
  end(tx);
  return result;
}

void abort_outermost(transaction_state* tx) noexcept {
  stop_capture(tx);
  // The program's own writes go back to their before-images, newest first.
  engine_vector<restore_piece> pieces;
  pieces.reserve(tx->user_records.size() + tx->captured_records.size());
  for (const auto& r : tx->user_records) pieces.push_back({r.address, r.image, r.size, r.order});
  if (!tx->captured_records.empty()) {
    begin_view view(*tx);
    engine_vector<std::uintptr_t> spare_now;
    spare_blocks(*tx, &spare_now);
    engine_vector<transaction_state::user_record> by_address(tx->captured_records.begin(), tx->captured_records.end());
    std::sort(by_address.begin(), by_address.end(), [](const auto& a, const auto& b) { return a.address < b.address; });
    page_cache cache;
    for (const auto& r : by_address) captured_restore_pieces(view, spare_now, r, &cache, &pieces);
  }
  std::sort(pieces.begin(), pieces.end(), [](const auto& a, const auto& b) { return a.order > b.order; });
  for (const auto& r : pieces) std::memcpy(reinterpret_cast<void*>(r.address), r.image, r.size);
  auto& records = tx->user_records;
  records.insert(records.end(), tx->captured_records.begin(), tx->captured_records.end());
  // Allocations are undone by freeing them through the live allocator,
  // whose in-memory state (thread caches, queues) a byte-wise restore would
  // contradict. The sink only collects what to make durable.
  tx->sink_logs = false;
  {
    sink_scope scope(tx);
    for (void* p : tx->allocated) alloc::free_generic(p);
  }
  for (const auto& r : tx->user_records) tx->data.push_back({reinterpret_cast<const void*>(r.address), r.size});
  // Durable before the lane is closed, or a crash could keep the
  // transaction's in-place writes with no log to undo them.
  (void)finish_durably(tx, "making an aborted transaction durable");
  end(tx);
}

// One state per outermost transaction; the thread keeps a spare so that a
// transaction in a loop allocates nothing. The capture handler writes the
// state, so it never lies in a heap (transaction_memory.hpp).
struct spare_state {
  transaction_state* state = nullptr;
  ~spare_state() { alloc::internal_delete(state); }
};
thread_local spare_state t_spare;

transaction_state* new_state() {
  if (transaction_state* tx = std::exchange(t_spare.state, nullptr)) return tx;
  transaction_state* tx = alloc::internal_new<transaction_state>();
  if (tx == nullptr) throw std::bad_alloc();
  return tx;
}

void release_state(transaction_state* tx) {
  if (t_spare.state == nullptr) {
    tx->outermost = nullptr;
    t_spare.state = tx;
  } else {
    alloc::internal_delete(tx);
  }
}

struct state_deleter {
  void operator()(transaction_state* tx) const noexcept { release_state(tx); }
};

}  // namespace

// ---- the public class ------------------------------------------------------------

transaction::transaction(heap& h, capture mode)
    : heap_(&h), state_(nullptr), exceptions_at_begin_(std::uncaught_exceptions()) {
  process_malloc_scope messages;
  heap_impl* impl = h.impl();
  if (impl == nullptr) throw error(status(errc::invalid_argument, "the heap is not open"));
  if (transaction_state* tx = t_tx) {
    if (tx->impl != impl)
      throw error(status(errc::invalid_argument, "this thread has a transaction open on another heap"));
    if (mode == capture::pages && tx->mode != capture::pages) {
      throw_if_error(start_capture(tx));
      tx->mode = capture::pages;
    }
    ++tx->depth;
    state_ = tx;
    return;
  }
  if (!impl->can_write()) throw error(status(errc::read_only, "cannot begin a transaction"));
  std::unique_lock<std::mutex> lock(impl->tx_lock);
  if (!impl->tx_failure.empty()) throw error(failure(*impl));
  std::unique_ptr<transaction_state, state_deleter> tx(new_state());
  lock.release();  // end() unlocks from here on
  status s = begin(tx.get(), impl, mode);
  if (!s.ok()) {
    // Nothing was written in place: closing the lane is all it takes.
    abort_outermost(tx.get());
    throw error(s);
  }
  tx->depth = 1;
  tx->outermost = this;
  t_tx = tx.get();
  state_ = tx.release();
}

transaction::~transaction() noexcept(false) {
  process_malloc_scope messages;
  transaction_state* tx = state_;
  status failed;
  if (!done_ && tx->active) {
    if (std::uncaught_exceptions() > exceptions_at_begin_) {
      abort_outermost(tx);
    } else if (tx->depth == 1) {
      failed = commit_outermost(tx);
    }
  }
  if (--tx->depth == 0) release_state(tx);
  if (!failed.ok() && std::uncaught_exceptions() == exceptions_at_begin_) throw error(std::move(failed));
}

void transaction::snapshot(const void* p, std::size_t size) {
  process_malloc_scope messages;
  if (!state_->active) throw error(status(errc::tx_aborted, "snapshot"));
  throw_if_error(transactional_snapshot(heap_->impl(), p, size));
}

void* transaction::allocate(std::size_t size, std::size_t alignment, pod in) {
  process_malloc_scope messages;
  if (!state_->active) throw error(status(errc::tx_aborted, "allocate"));
  std::uint32_t pod_id = 0;
  if (in.valid()) {
    if (!heap_->contains(in.record())) throw error(status(errc::invalid_argument, "the pod belongs to another heap"));
    pod_id = in.id();
  }
  void* p = transactional_allocate(heap_->impl(), pod_id, size, alignment);
  if (p == nullptr) throw error(status(errno == EIO ? static_cast<errc>(EIO) : errc::out_of_space, "allocating in a transaction"));
  return p;
}

void transaction::free(void* p) {
  if (p == nullptr) return;
  process_malloc_scope messages;
  if (!state_->active) throw error(status(errc::tx_aborted, "free"));
  if (!heap_->contains(p)) throw error(status(errc::invalid_argument, "the block is not in the transaction's heap"));
  transactional_free(heap_->impl(), p);
}

status transaction::commit() {
  if (done_) return {};
  process_malloc_scope messages;
  transaction_state* tx = state_;
  if (!tx->active) return status(errc::tx_aborted, "commit");
  done_ = true;
  if (tx->depth > 1) return {};
  return commit_outermost(tx);
}

void transaction::abort() noexcept {
  process_malloc_scope messages;
  done_ = true;
  if (state_->active) abort_outermost(state_);
}

std::size_t transaction::depth() const noexcept { return state_->depth; }

transaction* current_transaction(const heap& h) noexcept {
  transaction_state* tx = t_tx;
  if (tx == nullptr || !tx->active || tx->impl != h.impl()) return nullptr;
  return tx->outermost;
}

// ---- engine entry points ------------------------------------------------------------

bool in_transaction(const heap_impl* impl) noexcept {
  transaction_state* tx = t_tx;
  return tx != nullptr && tx->active && tx->impl == impl;
}

heap_impl* transaction_heap_of(const void* p) noexcept {
  transaction_state* tx = t_tx;
  if (tx == nullptr || !tx->active || !tx->impl->region.contains(p)) return nullptr;
  return tx->impl;
}

status transactional_snapshot(heap_impl* impl, const void* p, std::size_t size) noexcept {
  process_malloc_scope messages;
  transaction_state* tx = t_tx;
  if (tx == nullptr || tx->impl != impl) return status(errc::invalid_argument, "no transaction is open on this heap");
  if (!tx->active) return status(errc::tx_aborted, "snapshot");
  if (size == 0) return {};
  auto start = reinterpret_cast<std::uintptr_t>(p);
  if (!tx->contains(start, size)) return status(errc::invalid_argument, "a snapshot must lie inside the heap");
  if (tx->already_logged(start, size)) return {};
  // Each piece of at most kMaxRecordPayload: a record and a batch marker.
  std::size_t pieces = size / recovery::kMaxRecordPayload + 1;
  if (int err = tx->ensure_log_room(size + pieces * 2 * sizeof(recovery::record_header) + recovery::kRecordAlign))
    return status::from_errno(err, "logging a snapshot");
  tx->lock_log();
  int err = tx->log_range(start, size, true, false);
  if (err == 0) err = tx->sync_log();
  tx->unlock_log();
  if (err != 0) return status::from_errno(err, "logging a snapshot");
  tx->data.push_back({p, size});
  return {};
}

namespace {

// The common cases without the generic path: a block from the direct
// page's free list, or a fresh one carved from it. The page descriptor is
// logged once per transaction, and the free-list links of the next blocks
// in one batch, so most allocations persist nothing until commit. Returns
// nullptr to send the caller to the generic path, or -1 (errno set).
void* allocate_from_direct_page(transaction_state* tx, alloc::local_heap* h, std::size_t size) noexcept {
  constexpr std::size_t kLinksPerBatch = 64;
  alloc::page* pg = h->direct[(size + 15) >> 4];
  alloc::block* b = pg->free;
  if (b == nullptr && pg->reserved >= pg->capacity) return nullptr;
  auto fail = [](int err) {
    errno = err;
    return reinterpret_cast<void*>(-1);
  };
  auto descriptor = reinterpret_cast<std::uintptr_t>(pg);
  int err = tx->ensure_log_room(kSinkHeadroom);
  if (err != 0) return fail(err);
  tx->lock_log();
  if (!tx->already_logged(descriptor, sizeof(alloc::page))) {
    err = tx->log_range(descriptor, sizeof(alloc::page), false, false);
    tx->data.push_back({pg, sizeof(alloc::page)});
  }
  if (err == 0 && b != nullptr && !tx->already_logged(reinterpret_cast<std::uintptr_t>(b), sizeof(alloc::block))) {
    // Popped blocks get overwritten; a rollback needs their links back.
    alloc::block* link = b;
    for (std::size_t i = 0; i < kLinksPerBatch && link != nullptr && err == 0; ++i, link = link->next) {
      auto at = reinterpret_cast<std::uintptr_t>(link);
      if (tx->already_logged(at, sizeof(alloc::block))) break;
      err = tx->log_range(at, sizeof(alloc::block), false, false);
    }
  }
  if (err == 0) err = tx->sync_log();
  tx->unlock_log();
  if (err != 0) return fail(err);
  ++pg->used;
  if (b != nullptr) {
    pg->free = b->next;
    return b;
  }
  // Carve the next fresh block without linking it anywhere.
  alloc::segment* s = alloc::segment_of(pg);
  void* fresh = alloc::page_start(s, pg) + std::size_t{pg->reserved} * pg->block_size;
  ++pg->reserved;
  return fresh;
}

}  // namespace

void* transactional_allocate(heap_impl* impl, std::uint32_t pod, std::size_t size, std::size_t alignment) noexcept {
  transaction_state* tx = t_tx;
  alloc::local_heap* h = alloc::local_heap_for(&impl->region, pod);
  if (h == nullptr) {
    errno = impl->region.writable() ? ENOMEM : EROFS;
    return nullptr;
  }
  if (size == 0) size = 1;
  void* p = nullptr;
  if (alignment <= 16 && size <= alloc::kDirectMax) p = allocate_from_direct_page(tx, h, size);
  if (p == reinterpret_cast<void*>(-1)) return nullptr;  // errno set
  if (p == nullptr) {
    if (int err = tx->ensure_log_room(sink_room(size + alignment))) {
      errno = err;
      return nullptr;
    }
    {
      sink_scope scope(tx);
      p = alloc::allocate_logged(h, size, alignment);
    }
    if (tx->sink_error != 0) {
      // A metadata write could not be logged; the allocation may be half
      // done in place, which only recovery can undo.
      process_malloc_scope messages;
      impl->tx_failure = std::string("logging allocator metadata: ") + larder::strerror(tx->sink_error);
      errno = tx->sink_error;
      return nullptr;
    }
  }
  if (p == nullptr) return nullptr;
  tx->allocated.push_back(p);
  tx->data.push_back({p, size});
  return p;
}

void transactional_free(heap_impl* impl, void* p) noexcept {
  (void)impl;
  t_tx->to_free.push_back(p);
}

// ---- recovery on open ------------------------------------------------------------

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
  for (std::uint32_t i = 0; i < layout::kMaxLanes; ++i) {
    layout::lane_record& lane = meta->lanes[i];
    const recovery::lane_scan& scan = scans[i];
    if (status s = recovery::roll_back_lane(&lane, scan, *impl.domain); !s.ok()) return s;
    // A damaged slot that decided nothing (the other slot or the records
    // settle the lane) is rewritten as the rest of the lane implies.
    if (int err = recovery::repair_slots(&lane, scan, *impl.domain))
      return status::from_errno(err, "rewriting a damaged commit slot of undo-log lane " + std::to_string(i));
  }
  // The segment table must agree with the lanes: every log segment marked
  // as its lane's (a rollback may have restored an older entry), and none
  // marked "log" that no lane holds (a crash between claiming segments
  // and adding them to a lane).
  std::vector<recovery::persist_range> changed;
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
      if (reinterpret_cast<const alloc::segment*>(base + (k << layout::kSegmentShift))->magic == alloc::kSegmentMagic)
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
