// larder::transaction: failure-atomic updates of a heap (docs/transactions.md).
//
// A transaction logs the before-image of every range it is about to change
// in the calling thread's lane of the undo log, makes the log durable, lets
// the program write in place, and at commit makes the changed ranges and a
// commit record durable together. If the process or the machine stops
// before the commit record is durable, opening the heap again rolls the
// transaction back; after commit returns, it survives.
//
//   larder::transaction tx(heap);
//   tx.snapshot(&account->balance);   // before the first write to it
//   account->balance -= 10;
//   Node* n = tx.make<Node>(42);       // allocation: undone on rollback
//   tx.free(old);                      // free: happens only at commit
//   // scope end commits; an exception leaving the scope rolls back
//
// Before-images come from explicit snapshots (object granularity) or, with
// capture::pages, automatically: the first write to each page of the heap
// inside the transaction copies the page into the log (through the
// synchronous page-write tracker), so code that was not written for larder
// becomes failure-atomic. An abort writes captured pages back only over
// blocks that were live when capture began and still are: blocks that
// plain malloc or new handed out meanwhile (inside a pod_scope of the heap
// with liblarder_malloc: an exception being thrown, a temporary) keep
// their bytes.
//
// Nesting is flat: a transaction object made while the thread already has
// one open on the same heap joins it; only the outermost commits, and an
// abort anywhere rolls back the whole. Transactions of different threads
// run at the same time on a heap, each on a lane of its own, so recovery
// finds each thread's uncommitted work; they do not isolate one another:
// lock what threads share around the whole transaction. Those that
// allocate or free take turns from their first allocation to their end,
// and one begun with capture::pages runs alone (docs/transactions.md,
// "Concurrency"). A thread may have one heap's transaction open at a time.
#pragma once

#include <larder/export.hpp>
#include <larder/pod.hpp>
#include <larder/status.hpp>

#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>

namespace larder {

enum class capture : std::uint8_t {
  snapshots,  // only ranges passed to snapshot() are logged
  pages,      // also every page of the heap written inside the transaction
};

class heap;
struct transaction_state;  // internal

class LARDER_EXPORT transaction {
 public:
  // Begins a transaction on `h`, or joins the one this thread has open on
  // it. Throws larder::error: read_only, invalid_argument (closed heap, or
  // this thread has another heap's transaction open), unsupported
  // (capture::pages without a synchronous tracker here), or the error that
  // making the log durable met.
  explicit transaction(heap& h, capture mode = capture::snapshots);
  // Commits the outermost transaction, unless an exception is leaving the
  // scope (then it rolls back) or it was aborted. A commit that fails rolls
  // back and throws larder::error.
  ~transaction() noexcept(false);
  transaction(const transaction&) = delete;
  transaction& operator=(const transaction&) = delete;

  // Logs the current bytes of [p, p + size) so that they are restored on
  // rollback. Must come before the first write to the range inside the
  // transaction; logging a range twice is harmless. The range must lie in
  // the heap. Throws larder::error (invalid_argument, out_of_space when the
  // lane cannot grow, tx_aborted, or the persist error).
  void snapshot(const void* p, std::size_t size);
  template <class T>
  void snapshot(const T* object) {
    snapshot(object, sizeof(T));
  }

  // Allocates from `in` (the default pod if invalid) as part of the
  // transaction: rolled back with it. Throws larder::error (out_of_space...).
  void* allocate(std::size_t size, std::size_t alignment = alignof(std::max_align_t), pod in = pod());
  template <class T, class... Args>
  T* make(Args&&... args) {
    void* raw = allocate(sizeof(T), alignof(T));
    return ::new (raw) T(std::forward<Args>(args)...);
  }
  // Frees a block of this heap when the transaction commits (nothing
  // happens to it if it rolls back).
  void free(void* p);
  // Runs ~T (after logging the object) and frees it at commit.
  template <class T>
  void destroy(T* object) {
    snapshot(object);
    object->~T();
    free(object);
  }

  // Makes the transaction durable now. In a nested transaction object,
  // only marks it done (the outermost commits). Returns the error and rolls
  // back if the changes cannot be made durable.
  status commit();
  // Rolls the whole (flat) transaction back now: every snapshotted range
  // and captured page gets its before-image, allocations are freed, frees
  // are dropped. Later calls on any of its objects throw tx_aborted.
  void abort() noexcept;

  // Nesting depth of the thread's transaction (1 for the outermost).
  std::size_t depth() const noexcept;
  heap& owner() const noexcept { return *heap_; }

 private:
  heap* heap_;
  transaction_state* state_;
  int exceptions_at_begin_;
  bool done_ = false;
};

// The transaction the calling thread has open on `h`, or nullptr.
LARDER_EXPORT transaction* current_transaction(const heap& h) noexcept;

}  // namespace larder
