// write_hold: read-only ranges whose writers wait in the SIGSEGV handler
// (a fault_client) until the hold ends; see port/write_hold.hpp.
#include "port/write_hold.hpp"

#include "port/linux/tracker_backends.hpp"
#include "port/memory_guard.hpp"

#include <sched.h>

#include <atomic>
#include <cerrno>

namespace larder::port {

class write_hold::holder final : public fault_client {
 public:
  bool on_fault(const siginfo_t* info, ucontext_t*) noexcept override {
    return wait_if_held(reinterpret_cast<std::uintptr_t>(info->si_addr), 1);
  }
  bool prepare_write(std::uintptr_t lo, std::uintptr_t hi) noexcept override {
    (void)wait_if_held(lo, hi - lo);
    return false;  // nothing made writable: the call goes ahead after the hold
  }
  void fork_child() noexcept override {}  // the child's pages stay read-only until its own end()

  int begin(const range* ranges, std::size_t count) {
    if (count > kMaxRanges || active_.load(std::memory_order_acquire)) return EINVAL;
    for (std::size_t i = 0; i < count; ++i) ranges_[i] = ranges[i];
    count_ = count;
    active_.store(true, std::memory_order_release);
    // The handler knows the ranges before any write to them can fault.
    if (int e = add_fault_client(this)) {
      active_.store(false, std::memory_order_release);
      return e;
    }
    for (std::size_t i = 0; i < count; ++i) {
      if (int e = guard_pages(reinterpret_cast<void*>(ranges_[i].start), ranges_[i].size, false)) {
        count_ = i;  // end() makes writable only what was protected
        (void)end();
        return e;
      }
    }
    return 0;
  }

  int end() noexcept {
    if (!active_.load(std::memory_order_acquire)) return 0;
    int first = 0;
    for (std::size_t i = 0; i < count_; ++i) {
      int e = guard_pages(reinterpret_cast<void*>(ranges_[i].start), ranges_[i].size, true);
      if (e != 0 && first == 0) first = e;
    }
    active_.store(false, std::memory_order_release);
    remove_fault_client(this);  // waits for handlers still inside
    return first;
  }

 private:
  // Signal context: atomics, the ranges (written only while no hold is in
  // place, so never while a handler reads them) and sched_yield.
  bool wait_if_held(std::uintptr_t at, std::size_t size) noexcept {
    if (!active_.load(std::memory_order_acquire)) return false;
    bool held = false;
    for (std::size_t i = 0; i < count_ && !held; ++i)
      held = at < ranges_[i].start + ranges_[i].size && ranges_[i].start < at + size;
    if (!held) return false;
    while (active_.load(std::memory_order_acquire)) ::sched_yield();
    return true;
  }

  std::atomic<bool> active_{false};
  range ranges_[kMaxRanges] = {};
  std::size_t count_ = 0;
};

write_hold::write_hold() : holder_(std::make_unique<holder>()) {}
write_hold::~write_hold() { (void)holder_->end(); }
int write_hold::begin(const range* ranges, std::size_t count) { return holder_->begin(ranges, count); }
int write_hold::end() noexcept { return holder_->end(); }

}  // namespace larder::port
