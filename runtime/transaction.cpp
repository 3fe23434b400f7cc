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
#include <larder/transaction.hpp>

#include "allocator/alloc.hpp"
#include "allocator/metadata_log.hpp"
#include "allocator/page_ops.hpp"
#include "allocator/thread.hpp"
#include "port/write_tracker.hpp"
#include "recovery/undo_log.hpp"
#include "runtime/heap_impl.hpp"
#include "runtime/transaction_engine.hpp"

#include <errno.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <exception>
#include <map>
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
constexpr std::size_t kMaxCapturedPages = kCaptureLogBytes / (port::kOsPageSize + 64);

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
  std::vector<user_record> user_records;
  // Kept apart for the page-capture handler, which must not allocate:
  // reserved at begin and only ever appended to there.
  std::vector<user_record> captured_records;
  std::vector<recovery::persist_range> captured_ranges;
  std::size_t records_logged = 0;
  std::vector<recovery::persist_range> unsynced;  // log bytes written, not yet durable
  std::vector<recovery::persist_range> data;      // made durable at commit
  std::map<std::uintptr_t, std::uintptr_t> logged;  // start -> end of ranges logged
  std::vector<void*> allocated;
  std::vector<void*> to_free;
  bool sink_logs = true;  // false: the sink only collects ranges to persist (abort)
  int sink_error = 0;

  std::unique_ptr<port::write_tracker> capture_tracker;
  std::size_t captured_pages = 0;
  // Taken by every path that appends to the log while pages are captured:
  // the capture handler runs on whichever thread writes the heap. The
  // holder never writes a captured page, so it never faults while holding.
  std::atomic_flag log_lock = ATOMIC_FLAG_INIT;
  // Segment runs the log could not use (see grow_lane), given back at the end.
  std::vector<std::pair<alloc::segment*, std::size_t>> quarantined;

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
  int log_range(std::uintptr_t start, std::size_t size, bool user) noexcept;
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
    auto entries = reinterpret_cast<std::uintptr_t>(&meta->segments[first]);
    bool freed_here = false;
    for (std::size_t i = 0; i < count && !freed_here; ++i)
      freed_here = already_logged(entries + i * sizeof(meta->segments[0]), sizeof(meta->segments[0]));
    if (!freed_here) break;
    quarantined.emplace_back(s, count);
  }
  // A segment freed earlier may still start with its old segment header,
  // which recovery takes for a live segment whose entry was damaged: clear
  // those first, durably, then mark the run as log.
  std::vector<recovery::persist_range> headers;
  for (std::size_t i = 0; i < count; ++i) {
    auto* old = reinterpret_cast<alloc::segment*>(impl->region.base() + ((first + i) << layout::kSegmentShift));
    if (old->magic == 0) continue;
    old->magic = 0;
    headers.push_back({&old->magic, sizeof(old->magic)});
  }
  if (int err = impl->domain->persist(headers.data(), headers.size())) return err;
  // The table must say "log" durably before a lane points there, and a
  // crash between the two leaves a log segment no lane owns, which
  // recovery frees. segments_high lands first: entries past it must be
  // free, and one persist of both may land either half alone.
  if (int err = impl->domain->persist(&meta->segments_high, sizeof(meta->segments_high))) return err;
  if (int err = impl->domain->persist(&meta->segments[first], count * sizeof(meta->segments[0]))) return err;
  if (int err = writer.add_extent(layout::lane_extent(first, count), *impl->domain)) {
    impl->region.release(s, count);
    return err;
  }
  return 0;
}

int transaction_state::log_range(std::uintptr_t start, std::size_t size, bool user) noexcept {
  std::uintptr_t end = start + size;
  for (std::uintptr_t at = start; at < end;) {
    std::size_t piece = std::min<std::size_t>(end - at, recovery::kMaxRecordPayload);
    int err = writer.append_range(reinterpret_cast<const void*>(at), piece, &unsynced);
    if (err == ENOSPC) {
      if ((err = grow_lane(recovery::record_span(piece) * 2)) != 0) return err;
      continue;
    }
    if (err != 0) return err;
    if (user) {
      // The payload follows the header of the record just appended.
      const auto* header = static_cast<const std::uint8_t*>(unsynced[unsynced.size() - 1].address);
      user_records.push_back({at, header + sizeof(recovery::record_header), piece, records_logged++});
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
  return err;
}

void transaction_state::before_write(void* address, std::size_t size) noexcept {
  auto start = reinterpret_cast<std::uintptr_t>(address);
  if (!contains(start, size)) return;
  sink_scope no_sink(nullptr);  // our own bookkeeping allocates from the process heap
  data.push_back({address, size});
  if (sink_error != 0 || !sink_logs || already_logged(start, size)) return;
  lock_log();
  int err = log_range(start, size, false);
  if (err == 0) err = sync_log();
  unlock_log();
  sink_error = err;
}

void transaction_state::fresh(void* address, std::size_t size) noexcept {
  auto start = reinterpret_cast<std::uintptr_t>(address);
  if (!contains(start, size)) return;
  sink_scope no_sink(nullptr);
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
}

// ---- page capture ------------------------------------------------------------

namespace {

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
  if (tx->already_logged(page, port::kOsPageSize)) return;
  if (tx->captured_pages >= kMaxCapturedPages)
    fail_in_handler("larder: a transaction capturing pages wrote more pages than its log holds; stopping\n");
  ++tx->captured_pages;
  int err = tx->writer.append_range(reinterpret_cast<const void*>(page), port::kOsPageSize, &tx->unsynced);
  if (err != 0) fail_in_handler("larder: the log of a transaction capturing pages is full; stopping\n");
  const auto* header = static_cast<const std::uint8_t*>(tx->unsynced.back().address);
  tx->captured_records.push_back(
      {page, header + sizeof(recovery::record_header), port::kOsPageSize, tx->records_logged++});
  tx->captured_ranges.push_back({reinterpret_cast<const void*>(page), port::kOsPageSize});
  if (tx->sync_log() != 0) fail_in_handler("larder: cannot make a captured page durable; stopping\n");
}

status start_capture(transaction_state* tx) {
  std::unique_ptr<port::write_tracker> tracker;
  if (port::make_tracker(port::tracker_kind::mprotect, &tracker) != 0)
    return status(errc::unsupported, std::string("page capture needs the mprotect tracker: ") +
                                         port::probe_tracker(port::tracker_kind::mprotect).reason);
  if (tx->impl->tracker && tx->impl->tracker->kind() != port::tracker_kind::uffd_async)
    return status(errc::unsupported, "page capture cannot run while the heap is tracked by a signal-based backend");
  if (tx->writer.capacity() - tx->writer.used() < kCaptureLogBytes) {
    if (int err = tx->grow_lane(kCaptureLogBytes + tx->writer.used()))
      return status::from_errno(err, "growing the log for page capture");
  }
  tx->captured_records.reserve(kMaxCapturedPages);
  tx->captured_ranges.reserve(kMaxCapturedPages);
  // The handler appends one record at a time to `unsynced` and empties it.
  tx->unsynced.reserve(tx->unsynced.size() + 8);
  tracker->set_first_write(&capture_page, tx);
  // Every used segment but the log's own, whose writes are the log; the
  // metadata segment without the lane records (they hold the log's state).
  // The metadata segment and the segment headers are left out: the
  // allocator and the root and pod tables log their own changes, and an
  // abort must not rewind them under the live allocator. So is the log.
  const layout::heap_meta* meta = tx->impl->meta();
  std::uintptr_t base = tx->impl->region.base();
  for (std::size_t i = 1; i < meta->segments_high; ++i) {
    layout::segment_state st = layout::entry_state(meta->segments[i]);
    if (st == layout::kSegmentFree || st == layout::kSegmentLog) continue;
    std::uintptr_t start = base + (i << layout::kSegmentShift);
    if (st != layout::kSegmentHugeTail) start += alloc::kSegmentHeaderSize;
    if (int err = tracker->track(start, base + ((i + 1) << layout::kSegmentShift) - start, layout::entry_pod(meta->segments[i])))
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
  std::uint64_t seq = impl->next_seq[tx->lane];
  std::uint64_t committed = recovery::committed_seq(*rec);
  if (seq <= committed) seq = committed + 1;
  if (int err = recovery::reserve_seqs(rec, seq, *impl->domain))
    return status::from_errno(err, "reserving transaction numbers");
  impl->next_seq[tx->lane] = seq + 1;
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
      if (int err = tx->log_range(start, size, false)) return err;
    }
  }
  if (int err = tx->sync_log()) return err;
  sink_scope scope(tx);
  for (void* p : tx->to_free) alloc::free_generic(p);
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
  auto& records = tx->user_records;
  records.insert(records.end(), tx->captured_records.begin(), tx->captured_records.end());
  std::sort(records.begin(), records.end(), [](const auto& a, const auto& b) { return a.order > b.order; });
  for (const auto& r : records) std::memcpy(reinterpret_cast<void*>(r.address), r.image, r.size);
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
// transaction in a loop allocates nothing.
struct spare_state {
  transaction_state* state = nullptr;
  ~spare_state() { delete state; }
};
thread_local spare_state t_spare;

transaction_state* new_state() {
  if (transaction_state* tx = std::exchange(t_spare.state, nullptr)) return tx;
  return new transaction_state();
}

void release_state(transaction_state* tx) {
  if (t_spare.state == nullptr) {
    tx->outermost = nullptr;
    t_spare.state = tx;
  } else {
    delete tx;
  }
}

}  // namespace

// ---- the public class ------------------------------------------------------------

transaction::transaction(heap& h, capture mode)
    : heap_(&h), state_(nullptr), exceptions_at_begin_(std::uncaught_exceptions()) {
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
  std::unique_ptr<transaction_state> tx(new_state());
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
  if (!state_->active) throw error(status(errc::tx_aborted, "snapshot"));
  throw_if_error(transactional_snapshot(heap_->impl(), p, size));
}

void* transaction::allocate(std::size_t size, std::size_t alignment, pod in) {
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
  if (!state_->active) throw error(status(errc::tx_aborted, "free"));
  if (!heap_->contains(p)) throw error(status(errc::invalid_argument, "the block is not in the transaction's heap"));
  transactional_free(heap_->impl(), p);
}

status transaction::commit() {
  if (done_) return {};
  transaction_state* tx = state_;
  if (!tx->active) return status(errc::tx_aborted, "commit");
  done_ = true;
  if (tx->depth > 1) return {};
  return commit_outermost(tx);
}

void transaction::abort() noexcept {
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
  transaction_state* tx = t_tx;
  if (tx == nullptr || tx->impl != impl) return status(errc::invalid_argument, "no transaction is open on this heap");
  if (!tx->active) return status(errc::tx_aborted, "snapshot");
  if (size == 0) return {};
  auto start = reinterpret_cast<std::uintptr_t>(p);
  if (!tx->contains(start, size)) return status(errc::invalid_argument, "a snapshot must lie inside the heap");
  if (tx->already_logged(start, size)) return {};
  tx->lock_log();
  int err = tx->log_range(start, size, true);
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
  int err = 0;
  tx->lock_log();
  if (!tx->already_logged(descriptor, sizeof(alloc::page))) {
    err = tx->log_range(descriptor, sizeof(alloc::page), false);
    tx->data.push_back({pg, sizeof(alloc::page)});
  }
  if (err == 0 && b != nullptr && !tx->already_logged(reinterpret_cast<std::uintptr_t>(b), sizeof(alloc::block))) {
    // Popped blocks get overwritten; a rollback needs their links back.
    alloc::block* link = b;
    for (std::size_t i = 0; i < kLinksPerBatch && link != nullptr && err == 0; ++i, link = link->next) {
      auto at = reinterpret_cast<std::uintptr_t>(link);
      if (tx->already_logged(at, sizeof(alloc::block))) break;
      err = tx->log_range(at, sizeof(alloc::block), false);
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
    sink_scope scope(tx);
    p = alloc::allocate_logged(h, size, alignment);
    if (tx->sink_error != 0) {
      // A metadata write could not be logged; the allocation may be half
      // done in place, which only recovery can undo.
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
  for (std::uint32_t i = 0; i < layout::kMaxLanes; ++i) {
    layout::lane_record& lane = meta->lanes[i];
    if (lane.extent_count == 0 && lane.seq_limit == 0) continue;
    recovery::lane_scan scan;
    if (status s = recovery::scan_lane(lane, base, size, &scan); !s.ok())
      return status(errc::corrupt, "undo-log lane " + std::to_string(i) + ": " + s.message());
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
    if (scan.pending()) {
      if (!impl.writable)
        return status(errc::read_only, "undo-log lane " + std::to_string(i) +
                                           " holds an uncommitted transaction; open the heap for writing once to roll it back");
      if (status s = recovery::roll_back_lane(&lane, scan, *impl.domain); !s.ok()) return s;
    }
    impl.next_seq[i] = std::max({lane.seq_limit, scan.seq + 1, scan.committed + 1});
  }
  if (!impl.writable) return {};
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
