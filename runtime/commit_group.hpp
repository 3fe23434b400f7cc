// Group commit: transactions that commit at the same time share their
// syncs. The first to arrive leads: it makes the data of every commit
// waiting then durable in one persist, writes their commit slots, and
// makes those durable in one more; the others wait for it. On a file heap
// N concurrent commits cost two syncs (fdatasync) instead of 2N, and each
// keeps the order of docs/transactions.md: its data durable before its
// commit slot.
#pragma once

#include "recovery/layout.hpp"
#include "recovery/persist.hpp"
#include "runtime/transaction_memory.hpp"

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>

namespace larder {

class commit_group {
 public:
  // Makes data[0, count) durable, then lane's commit slot for `seq`.
  // Returns when both are durable: 0, or the errno value of the persist
  // that failed (then the transaction is not known committed; the caller
  // marks the heap failed). Thread-safe; the caller holds the lane.
  int commit(recovery::persist_domain& domain, const recovery::persist_range* data, std::size_t count,
             layout::lane_record* lane, std::uint64_t seq) noexcept;

 private:
  struct waiter {
    const recovery::persist_range* data;
    std::size_t count;
    layout::lane_record* lane;
    std::uint64_t seq;
    waiter* next = nullptr;
    int result = 0;
    bool done = false;
  };
  // The leader's work for the commits in `batch`, with lock_ not held.
  void commit_batch(recovery::persist_domain& domain, waiter* batch) noexcept;

  std::mutex lock_;
  std::condition_variable finished_;
  waiter* first_ = nullptr;  // commits waiting for a leader, in arrival order
  waiter* last_ = nullptr;
  bool leading_ = false;  // a leader is committing a batch
  // The leader's ranges; only the leader touches them.
  engine_vector<recovery::persist_range> ranges_;
};

}  // namespace larder
