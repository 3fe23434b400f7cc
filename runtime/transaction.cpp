// Undo-log transactions (include/larder/transaction.hpp): begin, commit,
// abort, allocation and free inside a transaction, and the engine's entry
// points for the rest of the runtime (transaction_engine.hpp). The lane is
// transaction_log.cpp, page capture page_capture.cpp, recovery on open
// transaction_recovery.cpp; the log format and replay are in
// recovery/undo_log.
//
// Order of durability in a transaction (each arrow one persist):
//   before-images in the lane -> (program writes in place) ->
//   data: snapshotted ranges, captured pages, new blocks, allocator
//   metadata -> commit slot.
// A crash before the commit slot is durable leaves records that recovery
// rolls back; the data they cover was not yet written in place when each
// record became durable.
//
// Transactions of different threads run at once, each on its own lane
// (lane_claims.hpp) and holding the heap's tx_lock shared; on a file heap
// their persists share syncs (sync_group.hpp). They do not isolate one
// another: programs lock what they share.
#include <larder/transaction.hpp>

#include "allocator/alloc.hpp"
#include "allocator/logged_alloc.hpp"
#include "runtime/lane_claims.hpp"
#include "runtime/lane_space.hpp"
#include "runtime/plain_settle.hpp"
#include "runtime/transaction_engine.hpp"
#include "runtime/transaction_state.hpp"

#include <errno.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <utility>

namespace larder {

namespace {

// Initial-exec: read on every allocation and free in a heap.
constinit thread_local transaction_state* t_tx __attribute__((tls_model("initial-exec"))) = nullptr;

status failure(const heap_impl& impl) {
  return status(errc::invalid_argument, "an earlier transaction on " + impl.name +
                                            " could not be made durable (" + impl.tx_failure.text() +
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

// Holds the heap and a lane for a transaction: tx_lock shared, or
// exclusive for one that captures pages. A shared holder waits while a
// nested transaction starts capture (capture_alone). Lane claims and
// capture_upgrading are sequentially consistent: of a transaction
// beginning and one upgrading at once, at least one sees the other.
status enter(heap_impl& impl, bool exclusive, std::uint32_t* lane) {
  for (;;) {
    if (exclusive) {
      impl.tx_lock.lock();
    } else {
      impl.tx_lock.lock_shared();
    }
    status s = impl.tx_failure.empty() ? take_lane(impl, lane) : failure(impl);
    if (s.ok() && (exclusive || !impl.capture_upgrading.load())) return s;
    if (s.ok()) give_lane_back(impl, *lane);
    if (exclusive) {
      impl.tx_lock.unlock();
    } else {
      impl.tx_lock.unlock_shared();
    }
    if (!s.ok()) return s;
    while (impl.capture_upgrading.load()) std::this_thread::yield();
  }
}

void leave(heap_impl& impl, bool exclusive, std::uint32_t lane) noexcept {
  give_lane_back(impl, lane);
  if (exclusive) {
    impl.tx_lock.unlock();
  } else {
    impl.tx_lock.unlock_shared();
  }
}

// A nested transaction asking for page capture in a transaction begun
// without: capture needs the heap to itself, which a holder of tx_lock
// shared cannot wait for (the others may wait for it), so it refuses
// while other transactions are open.
status capture_alone(transaction_state* tx) {
  if (tx->exclusive || tx->upgraded) return {};
  heap_impl& impl = *tx->impl;
  bool expected = false;
  if (impl.capture_upgrading.compare_exchange_strong(expected, true)) {
    if (!other_lanes_held(impl, tx->lane)) {
      tx->upgraded = true;
      return {};
    }
    impl.capture_upgrading.store(false);
  }
  return status(errc::invalid_argument,
                "page capture in a nested transaction needs the heap alone, and other threads have transactions "
                "open; begin the outermost transaction with capture::pages");
}

status begin(transaction_state* tx, heap_impl* impl, capture mode) {
  // What other clients freed into this client's pages is folded in before
  // the sink is set: a transaction on a heap with shared writers never
  // folds (page_collect), so a program that allocates only in
  // transactions would otherwise never reuse those blocks.
  alloc::collect_foreign_frees(&impl->region);
  impl->sync_committed();
  tx->impl = impl;
  tx->mode = capture::snapshots;
  layout::lane_record* rec = &impl->meta()->lanes[tx->lane];
  tx->writer = lane_writer_for(*impl, tx->lane);
  std::uint64_t seq = 0;
  if (int err = take_lane_seq(*impl, tx->lane, &seq)) return status::from_errno(err, "reserving transaction numbers");
  tx->writer.begin(seq);
  tx->active = true;
  if (rec->extent_count == 0) {
    if (int err = tx->grow_lane(0)) return status::from_errno(err, "making the transaction log");
  }
  if (mode == capture::pages) {
    if (status s = capture_alone(tx); !s.ok()) return s;
    if (status s = start_capture(tx); !s.ok()) return s;
    tx->mode = capture::pages;
  }
  return {};
}

// With shared writers, how a free is made that writes what another client
// may write meanwhile, so that rolling this client's lane back while the
// others go on would undo their changes too:
// - a block of a page of another client's segment, or of this client's
//   whose page no thread of this process holds as its own, is pushed onto
//   the page's remote list inside the transaction, its owner kept from
//   folding it in until the end (alloc::push_in_transaction), and a
//   rollback takes it back off (kRecordRemotePush);
// - a huge block (its segment-table entries) is marked with the lane and
//   freed after the commit; a client dying in between leaves the free to
//   whoever recovers it (kRecordHugeFree).
enum class shared_free { logged, pushed, after_commit };

shared_free how_to_free(heap_impl& impl, void* p) {
  if (!impl.shared_writers()) return shared_free::logged;
  std::uint32_t entry = impl.region.entry(impl.region.segment_index(p));
  if (layout::entry_state(entry) != layout::kSegmentPages ||
      (reinterpret_cast<std::uintptr_t>(p) & (layout::kSegmentSize - 1)) == 0)
    return shared_free::after_commit;
  alloc::segment* s = alloc::segment_of(p);
  if (!impl.region.owns(s)) return shared_free::pushed;
  const alloc::page* pg = alloc::page_of(s, p);
  return pg->owner_tid.load(std::memory_order_relaxed) != impl.region.owner_tag(alloc::current_tid())
             ? shared_free::pushed
             : shared_free::logged;
}

// Logs what the frees of a transaction of a heap with shared writers that
// are not plain logged frees need, and takes them out of to_free.
int log_shared_frees(transaction_state* tx) {
  std::erase_if(tx->to_free, [tx](void* p) {
    switch (how_to_free(*tx->impl, p)) {
      case shared_free::logged: return false;
      case shared_free::pushed: tx->pushed.push_back(alloc::pushed_block(p)); return true;
      case shared_free::after_commit: tx->free_after_commit.push_back(p); return true;
    }
    return false;
  });
  for (void* b : tx->pushed) {
    // The push writes the block's link over the program's bytes there.
    if (int err = tx->log_range(reinterpret_cast<std::uintptr_t>(b), sizeof(void*), false, true)) return err;
    if (int err = tx->log_intent(recovery::kRecordRemotePush, b)) return err;
  }
  for (void* p : tx->free_after_commit) {
    alloc::segment* head = tx->impl->region.head_segment(p);
    auto mark = reinterpret_cast<std::uintptr_t>(&head->freeing_lane);
    if (int err = tx->log_range(mark, sizeof(head->freeing_lane), false, true)) return err;
    if (int err = tx->log_intent(recovery::kRecordHugeFree, head)) return err;
  }
  return 0;
}

// The pushes and marks log_shared_frees logged, once the log is durable;
// made durable with the transaction's data.
void make_shared_frees(transaction_state* tx) {
  for (void* p : tx->free_after_commit) {
    alloc::segment* head = tx->impl->region.head_segment(p);
    head->freeing_lane = tx->lane + 1;
    tx->data.push_back({&head->freeing_lane, sizeof(head->freeing_lane)});
  }
  for (void* b : tx->pushed) {
    alloc::push_in_transaction(&tx->impl->region, b, tx->lane);
    tx->data.push_back({b, sizeof(void*)});
    tx->data.push_back({alloc::page_of(alloc::segment_of(b), b), sizeof(alloc::page)});
  }
}

// After the commit: frees the huge blocks, durably before the lane (and
// its kRecordHugeFree records) can serve another transaction, and lets
// the owners of the pages pushed to fold them in.
void finish_shared_frees(transaction_state* tx) {
  heap_impl& impl = *tx->impl;
  engine_vector<recovery::persist_range> entries;
  for (void* p : tx->free_after_commit) {
    alloc::segment* head = impl.region.head_segment(p);
    std::size_t first = impl.region.segment_index(head);
    std::size_t span = head->span;
    alloc::free_generic(p);
    entries.push_back({&impl.meta()->segments[first], span * sizeof(impl.meta()->segments[0])});
  }
  // A failure leaves the block to whoever recovers the lane after a crash.
  if (!entries.empty()) (void)impl.domain->persist(entries.data(), entries.size());
  for (void* b : tx->pushed) alloc::end_pushes(&impl.region, b, tx->lane);
}

// Frees run at commit, as part of the transaction: their metadata writes
// are logged like any other.
int apply_frees(transaction_state* tx) {
  if (tx->to_free.empty()) return 0;
  if (tx->impl->shared_writers()) {
    if (int err = log_shared_frees(tx)) return err;
  }
  if (int err = settle_plain_changes(*tx->impl, tx->pods_allocating.data(), tx->pods_allocating.size())) return err;
  // Log the common case (a block in a page of the heap) in one batch.
  for (void* p : tx->to_free) {
    alloc::metadata_range writes[2];
    std::size_t count = alloc::free_writes(tx->impl->region, p, writes);
    for (std::size_t i = 0; i < count; ++i) {
      auto start = reinterpret_cast<std::uintptr_t>(writes[i].address);
      if (tx->already_logged(start, writes[i].size)) continue;
      if (int err = tx->log_range(start, writes[i].size, false, true)) return err;
    }
  }
  if (int err = tx->sync_log()) return err;
  make_shared_frees(tx);
  for (void* p : tx->to_free) {
    if (int err = tx->ensure_log_room(sink_room(alloc::usable_size(p)))) return err;
    alloc::metadata_sink_scope scope(tx);
    alloc::free_generic(p);
  }
  return tx->sink_error;
}

// A failure after writing in place: nothing more may change the heap in
// this process (allocation fails with EROFS, frees are ignored) so that
// reopening, which rolls the transaction back, finds it as it was.
status fail_heap(heap_impl* impl, int err, const std::string& what) {
  impl->tx_failure.set(what + ": " + larder::strerror(err));
  impl->region.forbid_writes();
  return status::from_errno(err, what);
}

status finish_durably(transaction_state* tx, const char* what) {
  heap_impl* impl = tx->impl;
  tx->data.insert(tx->data.end(), tx->captured_ranges.begin(), tx->captured_ranges.end());
  // Plain allocation may have changed the segments it allocated in since.
  if (plain_changes_pending(*impl)) tx->hold_allocator();
  int err = settle_plain_changes(*impl, tx->pods_allocating.data(), tx->pods_allocating.size());
  if (err == 0) err = impl->transaction_domain.persist(tx->data.data(), tx->data.size());
  if (err == 0) err = recovery::write_commit(tx->writer.lane(), tx->writer.seq(), impl->transaction_domain);
  if (err != 0) return fail_heap(impl, err, what);
  return {};
}

void end(transaction_state* tx) noexcept {
  heap_impl* impl = tx->impl;
  if (t_tx == tx) t_tx = nullptr;
  if (tx->holds_tables) {
    tx->holds_tables = false;
    impl->meta_lock_holder.store(0, std::memory_order_relaxed);
    impl->meta_lock.unlock();
  }
  for (auto [s, count] : tx->quarantined) impl->region.release(s, count);
  tx->quarantined.clear();
  trim_log_storage(tx->writer);
  bool exclusive = tx->exclusive;
  std::uint32_t lane = tx->lane;
  if (tx->upgraded) impl->capture_upgrading.store(false);
  if (tx->allocating) impl->tx_alloc_lock.unlock();
  tx->reset();
  leave(*impl, exclusive, lane);
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
  if (result.ok()) finish_shared_frees(tx);
  end(tx);
  return result;
}

void abort_outermost(transaction_state* tx) noexcept {
  stop_capture(tx);
  // The program's own writes go back to their before-images, newest first.
  engine_vector<restore_piece> pieces;
  pieces.reserve(tx->user_records.size() + tx->captured_records.size());
  for (const auto& r : tx->user_records) pieces.push_back({r.address, r.image, r.size, r.order});
  captured_restore_pieces(*tx, &pieces);
  std::sort(pieces.begin(), pieces.end(), [](const auto& a, const auto& b) { return a.order > b.order; });
  for (const auto& r : pieces) std::memcpy(reinterpret_cast<void*>(r.address), r.image, r.size);
  auto& records = tx->user_records;
  records.insert(records.end(), tx->captured_records.begin(), tx->captured_records.end());
  // Allocations are undone by freeing them through the live allocator,
  // whose in-memory state (thread caches, queues) a byte-wise restore would
  // contradict. The sink only collects what to make durable.
  tx->sink_logs = false;
  {
    alloc::metadata_sink_scope scope(tx);
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
      throw_if_error(capture_alone(tx));
      throw_if_error(start_capture(tx));
      tx->mode = capture::pages;
    }
    ++tx->depth;
    state_ = tx;
    return;
  }
  if (!impl->can_write()) throw error(status(errc::read_only, "cannot begin a transaction"));
  bool exclusive = mode == capture::pages;
  std::uint32_t lane = 0;
  throw_if_error(enter(*impl, exclusive, &lane));
  transaction_state* fresh = nullptr;
  try {
    fresh = new_state();
  } catch (...) {
    leave(*impl, exclusive, lane);
    throw;
  }
  std::unique_ptr<transaction_state, state_deleter> tx(fresh);
  // end() gives the lane back and leaves the heap from here on.
  tx->impl = impl;
  tx->lane = lane;
  tx->exclusive = exclusive;
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
  void* p = transactional_allocate(heap_->impl(), pod_id, size, alignment, __builtin_return_address(0));
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

void hold_tables_to_end(heap_impl* impl) noexcept {
  transaction_state* tx = t_tx;
  if (tx == nullptr || tx->impl != impl || tx->holds_tables) return;
  std::uintptr_t me = alloc::current_tid();
  if (impl->meta_lock_holder.load(std::memory_order_relaxed) == me) return;
  impl->meta_lock.lock();
  impl->meta_lock_holder.store(me, std::memory_order_relaxed);
  tx->holds_tables = true;
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

void* transactional_allocate(heap_impl* impl, std::uint32_t pod, std::size_t size, std::size_t alignment,
                             const void* site) noexcept {
  transaction_state* tx = t_tx;
  if (pod == 0 && impl->placement) pod = alloc::placed_pod(&impl->region, size, site);
  tx->hold_allocator();
  tx->note_pod(pod);
  // Settling allocates for itself: from the process heap, not from the
  // pod_scope the program may be in (pod::allocate and heap::allocate
  // reach here without the scope transaction::allocate takes).
  process_malloc_scope messages;
  if (int err = settle_plain_changes(*impl, &pod, 1)) {
    errno = err;
    return nullptr;
  }
  alloc::local_heap* h = alloc::local_heap_for(&impl->region, pod);
  if (h == nullptr) {
    errno = impl->region.writable() ? ENOMEM : EROFS;
    return nullptr;
  }
  if (size == 0) size = 1;
  void* p = nullptr;
  if (alignment <= 16 && size <= alloc::kDirectMax) {
    int err = tx->ensure_log_room(kSinkHeadroom);
    if (err == 0) p = alloc::allocate_direct_logged(h, size, *tx, &err);
    if (err != 0) {
      errno = err;
      return nullptr;
    }
  }
  if (p == nullptr) {
    if (int err = tx->ensure_log_room(sink_room(size + alignment))) {
      errno = err;
      return nullptr;
    }
    {
      alloc::metadata_sink_scope scope(tx);
      p = alloc::allocate_logged(h, size, alignment);
    }
    if (tx->sink_error != 0) {
      // A metadata write could not be logged; the allocation may be half
      // done in place, which only recovery can undo.
      process_malloc_scope messages;
      impl->tx_failure.set(std::string("logging allocator metadata: ") + larder::strerror(tx->sink_error));
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
  t_tx->hold_allocator();
  t_tx->to_free.push_back(p);
  std::size_t index = impl->region.segment_index(p);
  if (index < layout::kMaxSegments) t_tx->note_pod(impl->region.entry(index) >> 16);
}

}  // namespace larder
