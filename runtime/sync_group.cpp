// Group sync; see sync_group.hpp.
#include "runtime/sync_group.hpp"

#include <errno.h>

#include <chrono>
#include <new>

namespace larder {

int sync_group::persist(const recovery::persist_range* ranges, std::size_t count) noexcept {
  if (count == 0) return 0;
  recovery::domain_kind k = inner_->kind();
  if (k != recovery::domain_kind::file && k != recovery::domain_kind::crash_simulation)
    return inner_->persist(ranges, count);
  waiter me{ranges, count};
  std::unique_lock guard(lock_);
  (last_ != nullptr ? last_->next : first_) = &me;
  last_ = &me;
  ++queued_;
  if (gathering_) arrived_.notify_one();
  // A caller that arrives while a leader persists waits for the next
  // batch: the running persist may have missed its bytes.
  finished_.wait(guard, [&] { return me.done || !leading_; });
  if (me.done) return me.result;
  leading_ = true;
  gathering_ = true;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(last_sync_ns_ / 2);
  arrived_.wait_until(guard, deadline, [&] { return queued_ >= transactions_open(); });
  gathering_ = false;
  waiter* batch = first_;
  first_ = last_ = nullptr;
  queued_ = 0;
  guard.unlock();
  const auto started = std::chrono::steady_clock::now();
  persist_batch(batch);
  const std::int64_t took = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - started).count();
  guard.lock();
  last_sync_ns_ = took;
  // Set under the lock: each waiter's `me` lives on its stack until it
  // sees `done`.
  for (waiter* w = batch; w != nullptr;) {
    waiter* next = w->next;
    w->done = true;
    w = next;
  }
  leading_ = false;
  // This batch's callers return; one that queued meanwhile leads next.
  finished_.notify_all();
  return me.result;
}

std::size_t sync_group::transactions_open() const noexcept {
  std::size_t open = 0;
  for (std::size_t i = 0; i < lane_count_; ++i) open += lanes_[i].busy.load(std::memory_order_relaxed);
  return open;
}

void sync_group::persist_batch(waiter* batch) noexcept {
  recovery::persist_domain& domain = *inner_;
  int err = 0;
  if (batch->next == nullptr) {
    err = domain.persist(batch->ranges, batch->count);
  } else {
    try {
      gathered_.clear();
      for (waiter* w = batch; w != nullptr; w = w->next) gathered_.insert(gathered_.end(), w->ranges, w->ranges + w->count);
      err = domain.persist(gathered_.data(), gathered_.size());
    } catch (const std::bad_alloc&) {
      err = ENOMEM;
    }
  }
  for (waiter* w = batch; w != nullptr; w = w->next) w->result = err;
}

}  // namespace larder
