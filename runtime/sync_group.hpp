// Group sync: transactions that make bytes durable at the same time share
// one persist. The first to arrive leads: it waits a little for the other
// open transactions to arrive (at most half a sync's time, and not at all
// when it is the only one), persists the ranges of every caller queued
// then in one call (on a file heap one fdatasync, where each alone would
// have cost an msync), and the others wait for it. Without the wait,
// threads in step would take turns leading batches of one. Each
// caller's ranges are durable when its call returns, so each transaction
// keeps the order of docs/transactions.md (before-images, then data, then
// commit slot) while N concurrent commits cost about two syncs, not 2N.
#pragma once

#include "recovery/persist.hpp"
#include "runtime/lane_claims.hpp"
#include "runtime/transaction_memory.hpp"

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

namespace larder {

// The heap's domain as transactions persist through it: grouped where
// each persist is a system call (file heaps, and their crash simulation,
// which then counts one persistence point per group), as it is elsewhere.
class sync_group final : public recovery::persist_domain {
 public:
  // `inner` is the heap's domain, which an open or a checkout may replace;
  // lanes[0, lane_count) say how many transactions are open.
  sync_group(const std::unique_ptr<recovery::persist_domain>& inner, const lane_slot* lanes,
             std::size_t lane_count) noexcept
      : inner_(inner), lanes_(lanes), lane_count_(lane_count) {}
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
  std::size_t transactions_open() const noexcept;

  const std::unique_ptr<recovery::persist_domain>& inner_;
  const lane_slot* lanes_;
  std::size_t lane_count_;
  std::mutex lock_;
  std::condition_variable finished_;
  std::condition_variable arrived_;  // the gathering leader's
  waiter* first_ = nullptr;  // callers waiting for a leader, in arrival order
  waiter* last_ = nullptr;
  std::size_t queued_ = 0;
  bool leading_ = false;    // a leader gathers or persists a batch
  bool gathering_ = false;  // ...and takes callers that arrive now into it
  std::int64_t last_sync_ns_ = 0;  // how long the last batch's persist took
  engine_vector<recovery::persist_range> gathered_;  // the leader's
};

}  // namespace larder
