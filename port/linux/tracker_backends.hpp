// Internal to port/linux: the backend factories behind make_tracker, and the
// one SIGSEGV handler that the signal-based backends share.
#pragma once

#include "port/os.hpp"
#include "port/write_tracker.hpp"

#include <signal.h>
#include <ucontext.h>

#include <cstdint>
#include <memory>

namespace larder::port {

namespace backends {
tracker_probe probe_uffd_async() noexcept;
tracker_probe probe_mprotect() noexcept;
tracker_probe probe_pkey() noexcept;
int make_uffd_async(std::unique_ptr<write_tracker>* out);
int make_mprotect(std::unique_ptr<write_tracker>* out);
int make_pkey(std::unique_ptr<write_tracker>* out);
}  // namespace backends

// A tracker that takes write faults. Methods marked "signal" run inside the
// SIGSEGV handler and must be async-signal-safe.
class fault_client {
 public:
  // signal: true when the fault was this client's and is resolved (the
  // faulting instruction is retried); false passes it on.
  virtual bool on_fault(const siginfo_t* info, ucontext_t* context) noexcept = 0;
  // Makes [lo, hi) writable for a system call, marking it written.
  virtual bool prepare_write(std::uintptr_t lo, std::uintptr_t hi) noexcept = 0;
  // In the child of fork(), its only thread. Another thread of the parent
  // may have been inside the client (holding its lock, half through a
  // collect): the client makes its state usable and conservative again.
  // Taking the lock across fork instead would deadlock with the allocator's
  // fork handlers (a thread holding the region lock may be waiting for it).
  virtual void fork_child() noexcept = 0;

 protected:
  ~fault_client() = default;
};

// Registers `client` with the process's SIGSEGV handler, installing it on
// first use; the previous handler keeps getting every fault that no client
// claims. Returns 0, or EMFILE when too many clients exist.
int add_fault_client(fault_client* client);
// Unregisters, and waits until no handler still runs in `client`.
void remove_fault_client(fault_client* client) noexcept;

// True while any signal-based tracker exists, so system calls that write
// into user memory must prepare their buffers first.
bool kernel_writes_need_preparing() noexcept;

// The signal the pkey backend uses to take write access back from threads.
inline int kRevokeSignal() noexcept { return SIGRTMAX - 2; }

// Defined beside the read/recv wrappers; calling it keeps them linked.
void link_kernel_write_wrappers() noexcept;

// Reads the current thread id without libc caching (safe after fork).
int current_tid() noexcept;

}  // namespace larder::port
