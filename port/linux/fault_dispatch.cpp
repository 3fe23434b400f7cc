// The SIGSEGV handler shared by the mprotect and pkey backends, and the
// factory that picks a backend. Faults no client claims go to the handler
// that was installed before ours, as if we were not there.
#include "port/linux/tracker_backends.hpp"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <mutex>

namespace larder::port {
namespace {

constexpr std::size_t kMaxClients = 64;

std::atomic<fault_client*> g_clients[kMaxClients];
std::atomic<int> g_handlers_running{0};
std::atomic<int> g_client_count{0};
std::mutex g_install_lock;
bool g_installed = false;
struct sigaction g_previous {};

void pass_on(int sig, siginfo_t* info, void* context) {
  const struct sigaction& prev = g_previous;
  if (prev.sa_flags & SA_SIGINFO) {
    if (prev.sa_sigaction != nullptr) prev.sa_sigaction(sig, info, context);
    return;
  }
  if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
    prev.sa_handler(sig);
    return;
  }
  // Default action: restore it, and let the fault recur (or re-raise a
  // signal that was sent rather than caused) so the process dies with
  // SIGSEGV and a core, as it would have without us.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  ::sigemptyset(&dfl.sa_mask);
  ::sigaction(SIGSEGV, &dfl, nullptr);
  if (info->si_code <= 0) ::raise(sig);
}

// The address of this thread's last fault that no client claimed.
thread_local void* t_unclaimed __attribute__((tls_model("initial-exec"))) = nullptr;

void on_sigsegv(int sig, siginfo_t* info, void* context) {
  int saved_errno = errno;
  g_handlers_running.fetch_add(1, std::memory_order_acq_rel);
  bool handled = false;
  for (auto& slot : g_clients) {
    fault_client* client = slot.load(std::memory_order_acquire);
    if (client != nullptr && client->on_fault(info, static_cast<ucontext_t*>(context))) {
      handled = true;
      break;
    }
  }
  g_handlers_running.fetch_sub(1, std::memory_order_acq_rel);
  errno = saved_errno;
  if (handled) {
    t_unclaimed = nullptr;
    return;
  }
  // A write that faulted just before its range stopped being tracked (and
  // was made writable) is no one's now, but succeeds if retried: retry an
  // unclaimed access fault once before passing it on.
  if (info->si_code == SEGV_ACCERR && t_unclaimed != info->si_addr) {
    t_unclaimed = info->si_addr;
    return;
  }
  t_unclaimed = nullptr;
  pass_on(sig, info, context);
}

template <class Fn>
void for_each_client(Fn&& fn) {
  for (auto& slot : g_clients)
    if (fault_client* client = slot.load(std::memory_order_acquire)) fn(client);
}

void fork_prepare() { g_install_lock.lock(); }
void fork_parent() { g_install_lock.unlock(); }
void fork_child() {
  g_handlers_running.store(0, std::memory_order_relaxed);  // only this thread survives
  for_each_client([](fault_client* c) { c->fork_child(); });
  g_install_lock.unlock();
}

int install_handler() {
  if (g_installed) return 0;
  struct sigaction action {};
  action.sa_sigaction = on_sigsegv;
  action.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  ::sigemptyset(&action.sa_mask);
  // The pkey backend's revoke signal must not run inside a fault handler
  // that is granting access for the epoch it is ending.
  ::sigaddset(&action.sa_mask, kRevokeSignal());
  // Read the old action first: a foreign fault right after installing
  // must find it.
  if (::sigaction(SIGSEGV, nullptr, &g_previous) != 0) return errno;
  if (::sigaction(SIGSEGV, &action, nullptr) != 0) return errno;
  if (int e = at_fork(fork_prepare, fork_parent, fork_child)) return e;
  g_installed = true;
  return 0;
}

}  // namespace

int add_fault_client(fault_client* client) {
  link_kernel_write_wrappers();
  std::lock_guard guard(g_install_lock);
  if (int e = install_handler()) return e;
  for (auto& slot : g_clients) {
    fault_client* expected = nullptr;
    if (slot.compare_exchange_strong(expected, client, std::memory_order_acq_rel)) {
      g_client_count.fetch_add(1, std::memory_order_acq_rel);
      return 0;
    }
  }
  return EMFILE;
}

void remove_fault_client(fault_client* client) noexcept {
  {
    std::lock_guard guard(g_install_lock);
    for (auto& slot : g_clients) {
      fault_client* expected = client;
      if (slot.compare_exchange_strong(expected, nullptr, std::memory_order_acq_rel))
        g_client_count.fetch_sub(1, std::memory_order_acq_rel);
    }
  }
  while (g_handlers_running.load(std::memory_order_acquire) != 0) ::sched_yield();
}

bool kernel_writes_need_preparing() noexcept { return g_client_count.load(std::memory_order_acquire) != 0; }

bool prepare_kernel_write(const void* p, std::size_t size) noexcept {
  if (size == 0 || !kernel_writes_need_preparing()) return false;
  auto lo = reinterpret_cast<std::uintptr_t>(p) & ~(kOsPageSize - 1);
  auto hi = (reinterpret_cast<std::uintptr_t>(p) + size + kOsPageSize - 1) & ~(kOsPageSize - 1);
  bool touched = false;
  // Counted like a handler, so that remove_fault_client waits for it.
  g_handlers_running.fetch_add(1, std::memory_order_acq_rel);
  for_each_client([&](fault_client* c) { touched |= c->prepare_write(lo, hi); });
  g_handlers_running.fetch_sub(1, std::memory_order_acq_rel);
  return touched;
}

int current_tid() noexcept { return static_cast<int>(::syscall(SYS_gettid)); }

const char* tracker_name(tracker_kind kind) noexcept {
  switch (kind) {
    case tracker_kind::uffd_async: return "uffd-async";
    case tracker_kind::mprotect: return "mprotect";
    case tracker_kind::pkey: return "pkey";
  }
  return "unknown";
}

tracker_probe probe_tracker(tracker_kind kind) noexcept {
  switch (kind) {
    case tracker_kind::uffd_async: return backends::probe_uffd_async();
    case tracker_kind::mprotect: return backends::probe_mprotect();
    case tracker_kind::pkey: return backends::probe_pkey();
  }
  return {kind, false, "unknown backend"};
}

int make_tracker(tracker_kind kind, std::unique_ptr<write_tracker>* out) {
  switch (kind) {
    case tracker_kind::uffd_async: return backends::make_uffd_async(out);
    case tracker_kind::mprotect: return backends::make_mprotect(out);
    case tracker_kind::pkey: return backends::make_pkey(out);
  }
  return EINVAL;
}

}  // namespace larder::port
