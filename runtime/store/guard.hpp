// This process's view of a store it has handles on: how many, whether the
// store's locks were made fresh by the first, and the guard that keeps the
// store's metadata write-protected outside store operations
// (store_protection; port/memory_guard.hpp).
#pragma once

#include <larder/status.hpp>
#include <larder/store.hpp>

namespace larder {
class store_impl;
}

namespace larder::store_internal {

struct process_store;

// Registers handle `s` (its header and pods set). *first: no other handle
// of this process is attached, so the store's locks hold what the last
// process left. Errors: invalid_argument (another protection is in force
// in this process), unsupported (protection keys without PKU: why).
status attach_process(store_impl& s, store_protection protection, bool* first);
void detach_process(store_impl& s) noexcept;

// Around every operation of a handle: the store's metadata is writable
// by this thread in between. Nests.
void guard_enter(store_impl& s) noexcept;
void guard_exit(store_impl& s) noexcept;

class guarded_operation {
 public:
  explicit guarded_operation(store_impl& s) noexcept : s_(s) { guard_enter(s_); }
  ~guarded_operation() { guard_exit(s_); }
  guarded_operation(const guarded_operation&) = delete;
  guarded_operation& operator=(const guarded_operation&) = delete;

 private:
  store_impl& s_;
};

}  // namespace larder::store_internal
