// Group sync: transactions that make bytes durable at the same time share
// one persist. The first to arrive leads: it persists the ranges of every
// caller waiting then in one call (on a file heap one fdatasync, where
// each alone would have cost an msync), and the others wait for it. Each
// caller's ranges are durable when its call returns, so each transaction
// keeps the order of docs/transactions.md (before-images, then data, then
// commit slot) while N concurrent commits cost about two syncs, not 2N.
#pragma once

#include "recovery/persist.hpp"
#include "runtime/transaction_memory.hpp"

#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>

namespace larder {

// The heap's domain as transactions persist through it: grouped where
// each persist is a system call (file heaps, and their crash simulation,
// which then counts one persistence point per group), as it is elsewhere.
class sync_group final : public recovery::persist_domain {
 public:
  // `inner` is the heap's domain, which an open or a checkout may replace.
  explicit sync_group(const std::unique_ptr<recovery::persist_domain>& inner) noexcept : inner_(inner) {}
  using persist_domain::persist;
  // inner.persist(ranges, count), shared with the callers that arrive
  // while a persist runs: 0, or the errno value of the shared persist
  // (ENOMEM when the leader had no room to gather the ranges).
  // Thread-safe.
  int persist(const recovery::persist_range* ranges, std::size_t count) noexcept override;
  bool durable() const noexcept override { return inner_->durable(); }
  recovery::domain_kind kind() const noexcept override { return inner_->kind(); }

 private:
  struct waiter {
    const recovery::persist_range* ranges;
    std::size_t count;
    waiter* next = nullptr;
    int result = 0;
    bool done = false;
  };
  // The leader's persist of `batch`, with lock_ not held.
  void persist_batch(waiter* batch) noexcept;

  const std::unique_ptr<recovery::persist_domain>& inner_;
  std::mutex lock_;
  std::condition_variable finished_;
  waiter* first_ = nullptr;  // callers waiting for a leader, in arrival order
  waiter* last_ = nullptr;
  bool leading_ = false;  // a leader is persisting a batch
  engine_vector<recovery::persist_range> gathered_;  // the leader's
};

}  // namespace larder
