// Page capture: inside a transaction begun with capture::pages, the first
// write to each page of the heap logs the page's before-image, from the
// SIGSEGV handler of an mprotect tracker; an abort writes back only the
// blocks that were live when capture began and are live still
// (allocator/live_blocks.hpp). See transaction_state.hpp.
#include "runtime/transaction_state.hpp"

#include "allocator/live_blocks.hpp"

#include <algorithm>
#include <cstring>
#include <string>

namespace larder {

namespace {

[[noreturn]] void fail_in_handler(const char* text) {
  port::write_stderr(text, std::strlen(text));
  std::abort();
}

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
  if (tx->captured_pages >= tx->capture_page_limit)
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

// The blocks of the heap that this thread holds free outside their pages.
// Sorted.
void spare_blocks(const transaction_state& tx, engine_vector<std::uintptr_t>* out) {
  out->clear();
  alloc::for_each_spare_block(
      tx.impl->region,
      [](void* list, std::uintptr_t block) { static_cast<engine_vector<std::uintptr_t>*>(list)->push_back(block); },
      out);
  std::sort(out->begin(), out->end());
}

// The heap as it was when capture began: captured pages and segment-header
// pages from their images, everything else as it is now (never written
// since).
class begin_view final : public alloc::earlier_heap_bytes {
 public:
  explicit begin_view(const transaction_state& tx) {
    pages_.reserve(tx.captured_records.size() + tx.header_pages.size());
    for (const auto& r : tx.captured_records) pages_.push_back({r.address, r.image});
    for (std::size_t i = 0; i < tx.header_pages.size(); ++i)
      pages_.push_back({tx.header_pages[i], tx.header_images + i * port::kOsPageSize});
    std::sort(pages_.begin(), pages_.end());
  }
  const void* at(std::uintptr_t address) const noexcept override {
    std::uintptr_t page = address & ~(port::kOsPageSize - 1);
    auto it = std::lower_bound(pages_.begin(), pages_.end(), std::pair<std::uintptr_t, const std::uint8_t*>{page, nullptr});
    if (it != pages_.end() && it->first == page) return it->second + (address - page);
    return reinterpret_cast<const void*>(address);
  }

 private:
  engine_vector<std::pair<std::uintptr_t, const std::uint8_t*>> pages_;
};

// The part of segment `index` (table entry `entry`) that capture protects,
// or false for none: every used segment but the log's own, whose writes
// are the log, and the metadata segment (the root and pod tables log their
// own changes). Segment headers are protected but never logged: the
// allocator logs its changes there, and an abort must not rewind them
// under the live allocator; their first images tell the rollback which
// blocks were free at begin. A huge block's header is not protected.
bool protected_part(std::uintptr_t base, std::size_t index, std::uint32_t entry, std::uintptr_t* start,
                    std::uintptr_t* end) noexcept {
  layout::segment_state st = layout::entry_state(entry);
  if (index == 0 || st == layout::kSegmentFree || st == layout::kSegmentLog) return false;
  *start = base + (index << layout::kSegmentShift);
  *end = *start + layout::kSegmentSize;
  if (st == layout::kSegmentHugeHead) *start += alloc::kSegmentHeaderSize;
  return true;
}

// The most pages a capture that begins with `entries` can log: each page
// of the protected parts once, but the headers of pages segments.
std::size_t capturable_pages(const engine_vector<std::uint32_t>& entries) noexcept {
  std::size_t pages = 0;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    std::uintptr_t start = 0, end = 0;
    if (!protected_part(0, i, entries[i], &start, &end)) continue;
    pages += (end - start) / port::kOsPageSize;
    if (layout::entry_state(entries[i]) == layout::kSegmentPages) pages -= alloc::kSegmentHeaderSize / port::kOsPageSize;
  }
  return std::min(pages, kMaxCapturedPages);
}

status protect_heap(transaction_state* tx) {
  std::unique_ptr<port::write_tracker> tracker;
  if (port::make_tracker(port::tracker_kind::mprotect, &tracker) != 0)
    return status(errc::unsupported, std::string("page capture needs the mprotect tracker: ") +
                                         port::probe_tracker(port::tracker_kind::mprotect).reason);
  if (tx->impl->tracker && tx->impl->tracker->kind() != port::tracker_kind::uffd_async)
    return status(errc::unsupported, "page capture cannot run while the heap is tracked by a signal-based backend");
  const layout::heap_meta* meta = tx->impl->meta();
  tx->begin_entries.assign(meta->segments, meta->segments + meta->segments_high);
  // ensure_log_room adds the room of the pages capture may log.
  tx->capture_page_limit = capturable_pages(tx->begin_entries);
  if (int err = tx->ensure_log_room(kSinkHeadroom))
    return status::from_errno(err, "growing the log for page capture");
  tx->captured_records.reserve(tx->capture_page_limit);
  tx->captured_ranges.reserve(tx->capture_page_limit);
  // The handler appends one record at a time to `unsynced` and empties it.
  tx->unsynced.reserve(tx->unsynced.size() + 2 * recovery::lane_writer::kMaxDirtyRanges);
  std::size_t page_segments = static_cast<std::size_t>(
      std::count_if(tx->begin_entries.begin(), tx->begin_entries.end(),
                    [](std::uint32_t e) { return layout::entry_state(e) == layout::kSegmentPages; }));
  if (status s = reserve_header_images(tx, page_segments * (alloc::kSegmentHeaderSize / port::kOsPageSize)); !s.ok())
    return s;
  tx->header_pages.reserve(tx->header_capacity);
  spare_blocks(*tx, &tx->begin_spare_blocks);
  tracker->set_first_write(&capture_page, tx);
  std::uintptr_t base = tx->impl->region.base();
  for (std::size_t i = 0; i < tx->begin_entries.size(); ++i) {
    std::uintptr_t start = 0, end = 0;
    if (!protected_part(base, i, tx->begin_entries[i], &start, &end)) continue;
    if (int err = tracker->track(start, end - start, layout::entry_pod(tx->begin_entries[i])))
      return status::from_errno(err, "protecting the heap for page capture");
  }
  tx->capture_tracker = std::move(tracker);
  return {};
}

}  // namespace

status start_capture(transaction_state* tx) {
  // Protecting the heap's pages in this process would not see the other
  // processes' writes, nor stop them.
  if (tx->impl->shared_writers())
    return status(errc::unsupported, "page capture needs a heap with one writer; with shared writers, snapshot "
                                     "what the transaction changes");
  status s = protect_heap(tx);
  if (!s.ok()) tx->capture_page_limit = 0;
  return s;
}

void stop_capture(transaction_state* tx) noexcept {
  if (tx->capture_tracker) {
    tx->capture_tracker->untrack_all();
    tx->capture_tracker.reset();
  }
  tx->capture_page_limit = 0;
}

// An abort writes a captured page back only over the blocks that were live
// when capture began and are live still. A block handed out meanwhile
// outside the transaction (malloc or new inside a pod_scope of the heap: an
// exception on its way out, a temporary string) keeps what it holds, and a
// free block keeps its link, which the live allocator follows. (Recovery
// after a crash restores whole pages: then no process-local block matters.)
void captured_restore_pieces(const transaction_state& tx, engine_vector<restore_piece>* out) {
  if (tx.captured_records.empty()) return;
  begin_view view(tx);
  engine_vector<std::uintptr_t> spare_now;
  spare_blocks(tx, &spare_now);
  alloc::live_blocks live(tx.impl->region, view, tx.begin_spare_blocks.data(), tx.begin_spare_blocks.size(),
                          spare_now.data(), spare_now.size());
  engine_vector<transaction_state::user_record> by_address(tx.captured_records.begin(), tx.captured_records.end());
  std::sort(by_address.begin(), by_address.end(), [](const auto& a, const auto& b) { return a.address < b.address; });
  std::uintptr_t base = tx.impl->region.base();
  for (const auto& r : by_address) {
    std::size_t index = (r.address - base) >> layout::kSegmentShift;
    if (index >= tx.begin_entries.size() || layout::entry_state(tx.begin_entries[index]) != layout::kSegmentPages) {
      out->push_back({r.address, r.image, r.size, r.order});  // a huge block: live when capture began
      continue;
    }
    struct emit_context {
      const transaction_state::user_record& record;
      engine_vector<restore_piece>* out;
    } context{r, out};
    live.pieces(
        r.address, r.size,
        [](void* p, std::uintptr_t start, std::size_t size) {
          auto* c = static_cast<emit_context*>(p);
          c->out->push_back({start, c->record.image + (start - c->record.address), size, c->record.order});
        },
        &context);
  }
}

}  // namespace larder
