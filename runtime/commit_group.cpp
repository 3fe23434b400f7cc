// Group commit; see commit_group.hpp.
#include "runtime/commit_group.hpp"

#include "recovery/undo_log.hpp"

#include <errno.h>

#include <new>

namespace larder {

int commit_group::commit(recovery::persist_domain& domain, const recovery::persist_range* data, std::size_t count,
                         layout::lane_record* lane, std::uint64_t seq) noexcept {
  waiter me{data, count, lane, seq};
  std::unique_lock guard(lock_);
  (last_ != nullptr ? last_->next : first_) = &me;
  last_ = &me;
  // A commit that arrives while a leader syncs waits for the next batch:
  // the running persist may have missed its bytes.
  finished_.wait(guard, [&] { return me.done || !leading_; });
  if (me.done) return me.result;
  leading_ = true;
  waiter* batch = first_;
  first_ = last_ = nullptr;
  guard.unlock();
  commit_batch(domain, batch);
  guard.lock();
  // Set under the lock: a waiter's `me` lives on its stack until it sees it.
  for (waiter* w = batch; w != nullptr;) {
    waiter* next = w->next;
    w->done = true;
    w = next;
  }
  leading_ = false;
  // The waiters of this batch return, and one that queued meanwhile leads next.
  finished_.notify_all();
  return me.result;
}

void commit_group::commit_batch(recovery::persist_domain& domain, waiter* batch) noexcept {
  int err = 0;
  std::size_t commits = 0;
  std::size_t data_ranges = 0;
  for (waiter* w = batch; w != nullptr; w = w->next, ++commits) data_ranges += w->count;
  try {
    ranges_.clear();
    ranges_.reserve(data_ranges + commits);
  } catch (const std::bad_alloc&) {
    err = ENOMEM;
  }
  if (err == 0) {
    for (waiter* w = batch; w != nullptr; w = w->next) ranges_.insert(ranges_.end(), w->data, w->data + w->count);
    err = domain.persist(ranges_.data(), ranges_.size());
  }
  if (err == 0) {
    ranges_.clear();
    for (waiter* w = batch; w != nullptr; w = w->next) ranges_.push_back(recovery::place_commit(w->lane, w->seq));
    err = domain.persist(ranges_.data(), ranges_.size());
  }
  for (waiter* w = batch; w != nullptr; w = w->next) w->result = err;
}

}  // namespace larder
