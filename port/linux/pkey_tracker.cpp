// The pkey backend (x86-64 PKU). Each group (a pod) gets a protection key;
// its ranges are tagged with it by pkey_mprotect, and every thread's PKRU
// denies writes to it. The first write by a thread faults with
// SEGV_PKUERR: the handler marks the key written in this epoch and grants
// the thread write access by editing the PKRU image in the signal frame
// (restored by sigreturn), so later writes by that thread cost nothing.
// Collect starts a new epoch, then takes write access away from every thread
// with a signal whose handler sets the deny bits in its own frame, then
// reports the whole of each group written in the old epoch: the fault
// tells the group, not every page of it.
//
// A write racing with collect is counted in the new epoch if it faults after
// the epoch changed; a thread that still had access writes into the old
// epoch, which is reported after every thread lost access. Nothing is missed.
//
// The tracker is mapped from the OS (os_mapped.hpp): both signal handlers
// read it, and a handler may run with every key but 0 denied.
#include "port/linux/kernel_abi.hpp"
#include "port/linux/os_mapped.hpp"
#include "port/linux/pkru.hpp"
#include "port/linux/tracker_backends.hpp"

#include <cpuid.h>
#include <dirent.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>

namespace larder::port {
namespace {

constexpr int kMaxKeys = 16;
constexpr std::uint32_t kXsaveMagic1 = 0x46505853;  // FP_XSTATE_MAGIC1
constexpr std::uint64_t kXfeaturePkru = std::uint64_t{1} << 9;

// The PKRU image that sigreturn will restore, or nullptr if the frame has no
// extended state.
std::uint32_t* frame_pkru(ucontext_t* context, std::size_t offset) noexcept {
  auto* area = reinterpret_cast<unsigned char*>(context->uc_mcontext.fpregs);
  if (area == nullptr || offset == 0) return nullptr;
  std::uint32_t magic;
  std::memcpy(&magic, area + 464, sizeof magic);  // fpstate sw_reserved.magic1
  if (magic != kXsaveMagic1) return nullptr;
  auto* xstate_bv = reinterpret_cast<std::uint64_t*>(area + 512);  // XSAVE header
  if ((*xstate_bv & kXfeaturePkru) == 0) {  // init state: PKRU was 0
    *reinterpret_cast<std::uint32_t*>(area + offset) = 0;
    *xstate_bv |= kXfeaturePkru;
  }
  return reinterpret_cast<std::uint32_t*>(area + offset);
}

class pkey_tracker;
std::atomic<pkey_tracker*> g_revoking{nullptr};
std::atomic<int> g_revoke_acks{0};

class pkey_tracker final : public write_tracker, public fault_client, public os_mapped {
 public:
  ~pkey_tracker() override {
    untrack_all();
    remove_fault_client(this);
    for (int k = 1; k < kMaxKeys; ++k)
      if (owned_keys_ & (1u << k)) ::syscall(kabi::kSysPkeyFree, k);
  }

  int init() {
    pkru_offset_ = pkru_offset();
    if (pkru_offset_ == 0) return ENOTSUP;
    static std::once_flag installed;
    static int install_error = 0;
    std::call_once(installed, [] {
      struct sigaction action {};
      action.sa_sigaction = on_revoke;
      action.sa_flags = SA_SIGINFO | SA_RESTART;
      ::sigemptyset(&action.sa_mask);
      if (::sigaction(kRevokeSignal(), &action, nullptr) != 0) install_error = errno;
    });
    if (install_error != 0) return install_error;
    return add_fault_client(this);
  }

  tracker_kind kind() const noexcept override { return tracker_kind::pkey; }

  int track(std::uintptr_t start, std::size_t size, std::uint32_t group) override {
    std::lock_guard guard(lock_);
    int key = 0;
    if (int e = key_for(group, &key)) return e;
    if (::syscall(kabi::kSysPkeyMprotect, start, size, PROT_READ | PROT_WRITE, key) != 0) return errno;
    // A range that changes group may have been written under its old key
    // in this epoch: count it written under the new one too.
    bool retagged = false;
    for (const range& r : ranges_)
      retagged |= r.lo < start + size && r.hi > start && r.key != key;
    if (retagged) written_[epoch_.load() & 1][key].store(true, std::memory_order_relaxed);
    remove_ranges(start, start + size);
    ranges_.push_back({start, start + size, key});
    std::sort(ranges_.begin(), ranges_.end(), [](const range& a, const range& b) { return a.lo < b.lo; });
    return 0;
  }

  void untrack_all() noexcept override {
    std::lock_guard guard(lock_);
    for (const range& r : ranges_)
      ::syscall(kabi::kSysPkeyMprotect, r.lo, r.hi - r.lo, PROT_READ | PROT_WRITE, 0);
    ranges_.clear();
  }

  int collect(std::vector<written_run>* out) override {
    std::lock_guard guard(lock_);
    std::uint64_t ended = epoch_.fetch_add(1, std::memory_order_acq_rel);
    if (int e = revoke_all_threads()) {
      // Some thread may keep its access: carry the ended epoch's marks into
      // the current one, so they are reported by a later collect.
      for (int k = 1; k < kMaxKeys; ++k)
        if (written_[ended & 1][k].exchange(false, std::memory_order_acq_rel))
          written_[(ended + 1) & 1][k].store(true, std::memory_order_release);
      return e;
    }
    bool written_keys[kMaxKeys] = {};
    for (int k = 1; k < kMaxKeys; ++k)
      written_keys[k] = written_[ended & 1][k].exchange(false, std::memory_order_acq_rel);
    for (const range& r : ranges_) {
      if (!written_keys[r.key]) continue;
      if (!out->empty() && out->back().start + out->back().pages * kOsPageSize == r.lo)
        out->back().pages += (r.hi - r.lo) / kOsPageSize;
      else
        out->push_back({r.lo, (r.hi - r.lo) / kOsPageSize});
    }
    return 0;
  }

  std::size_t tracked_bytes() const noexcept override {
    std::lock_guard guard(lock_);
    std::size_t total = 0;
    for (const range& r : ranges_) total += r.hi - r.lo;
    return total;
  }

  // ---- fault_client ------------------------------------------------------
  bool on_fault(const siginfo_t* info, ucontext_t* context) noexcept override {
    if (info->si_code != kabi::kSegvPkuErr) return false;
    int key = static_cast<int>(info->si_pkey);
    if (key <= 0 || key >= kMaxKeys || (keys_mask_.load(std::memory_order_acquire) & (1u << key)) == 0) return false;
    std::uint32_t* pkru = frame_pkru(context, pkru_offset_);
    if (pkru == nullptr) return false;
    bool is_write = (context->uc_mcontext.gregs[REG_ERR] & 2) != 0;
    if (is_write) {
      written_[epoch_.load(std::memory_order_acquire) & 1][key].store(true, std::memory_order_release);
      *pkru &= ~key_bits(key, kAccessDisable | kWriteDisable);
    } else {
      // A thread older than the key starts with no access at all: grant
      // reads, keep writes denied.
      *pkru = (*pkru & ~key_bits(key, kAccessDisable)) | key_bits(key, kWriteDisable);
    }
    return true;
  }

  // Called from the read/recv wrappers, never from a signal handler.
  bool prepare_write(std::uintptr_t lo, std::uintptr_t hi) noexcept override {
    // Holding lock_ keeps this tracker's collect out. The revoke signal
    // (of another tracker's collect) is blocked only once the lock is held,
    // so a thread waiting here still answers it; blocked, it cannot land
    // between reading and writing PKRU and be undone.
    std::lock_guard guard(lock_);
    sigset_t revoke, previous;
    ::sigemptyset(&revoke);
    ::sigaddset(&revoke, kRevokeSignal());
    ::pthread_sigmask(SIG_BLOCK, &revoke, &previous);
    std::uint32_t grant = 0;
    std::uint64_t epoch = epoch_.load(std::memory_order_acquire);
    for (const range& r : ranges_) {
      if (r.hi <= lo || r.lo >= hi) continue;
      written_[epoch & 1][r.key].store(true, std::memory_order_release);
      grant |= key_bits(r.key, kAccessDisable | kWriteDisable);
    }
    if (grant != 0) write_pkru(read_pkru() & ~grant);
    ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    return grant != 0;
  }

  void fork_child() noexcept override { new (&lock_) std::mutex; }

 private:
  struct range {
    std::uintptr_t lo, hi;
    int key;
  };

  int key_for(std::uint32_t group, int* key) {
    for (auto [g, k] : groups_)
      if (g == group) return *key = k, 0;
    long k = ::syscall(kabi::kSysPkeyAlloc, 0, kWriteDisable);
    if (k < 0 && errno != ENOSPC) return errno;
    if (k < 0) {
      if (groups_.empty()) return ENOSPC;
      k = groups_[group % groups_.size()].second;  // out of keys: groups share
    } else {
      owned_keys_ |= 1u << k;
      keys_mask_.fetch_or(1u << k, std::memory_order_acq_rel);
      // A key freed earlier may still be writable in threads that were
      // granted it then: take that away before any page carries it.
      if (int e = revoke_all_threads()) return e;
    }
    groups_.push_back({group, static_cast<int>(k)});
    *key = static_cast<int>(k);
    return 0;
  }

  void remove_ranges(std::uintptr_t lo, std::uintptr_t hi) {
    std::vector<range> kept;
    for (const range& r : ranges_) {
      if (r.hi <= lo || r.lo >= hi) {
        kept.push_back(r);
        continue;
      }
      if (r.lo < lo) kept.push_back({r.lo, lo, r.key});
      if (r.hi > hi) kept.push_back({hi, r.hi, r.key});
    }
    ranges_.swap(kept);
  }

  std::uint32_t deny_mask() const noexcept {
    std::uint32_t deny = 0;
    std::uint32_t keys = keys_mask_.load(std::memory_order_acquire);
    for (int k = 1; k < kMaxKeys; ++k)
      if (keys & (1u << k)) deny |= key_bits(k, kWriteDisable);
    return deny;
  }

  static void on_revoke(int, siginfo_t*, void* context) {
    pkey_tracker* self = g_revoking.load(std::memory_order_acquire);
    if (self != nullptr) {
      if (std::uint32_t* pkru = frame_pkru(static_cast<ucontext_t*>(context), self->pkru_offset_))
        *pkru |= self->deny_mask();
    }
    g_revoke_acks.fetch_add(1, std::memory_order_acq_rel);
  }

  // Sends the revoke signal to every thread but this one and waits for
  // each to run it; repeats while threads appear (a thread created from one
  // not yet revoked inherits its access).
  int revoke_all_threads() {
    static std::mutex one_at_a_time;
    std::lock_guard guard(one_at_a_time);
    write_pkru(read_pkru() | deny_mask());
    g_revoking.store(this, std::memory_order_release);
    int self = current_tid();
    int pid = ::getpid();
    std::vector<int> done;
    int result = 0;
    for (bool found_new = true; found_new && result == 0;) {
      found_new = false;
      DIR* dir = ::opendir("/proc/self/task");
      if (dir == nullptr) {
        result = errno;
        break;
      }
      int sent = 0;
      std::vector<int> signaled;
      g_revoke_acks.store(0, std::memory_order_release);
      while (dirent* entry = ::readdir(dir)) {
        int tid = std::atoi(entry->d_name);
        if (tid <= 0 || tid == self || std::find(done.begin(), done.end(), tid) != done.end()) continue;
        done.push_back(tid);
        found_new = true;
        if (::syscall(SYS_tgkill, pid, tid, kRevokeSignal()) == 0) {  // ESRCH: it exited
          ++sent;
          signaled.push_back(tid);
        }
      }
      ::closedir(dir);
      std::uint64_t deadline = monotonic_ns() + 5'000'000'000ull;
      while (g_revoke_acks.load(std::memory_order_acquire) < sent) {
        // A thread that exited after the signal was sent never answers.
        int alive = 0;
        for (int tid : signaled) alive += ::syscall(SYS_tgkill, pid, tid, 0) == 0;
        if (g_revoke_acks.load(std::memory_order_acquire) >= std::min(sent, alive)) break;
        if (monotonic_ns() > deadline) {
          result = ETIMEDOUT;  // a thread blocks the signal
          break;
        }
        ::sched_yield();
      }
    }
    g_revoking.store(nullptr, std::memory_order_release);
    return result;
  }

  mutable std::mutex lock_;
  std::vector<range> ranges_;
  std::vector<std::pair<std::uint32_t, int>> groups_;
  std::uint32_t owned_keys_ = 0;
  std::atomic<std::uint32_t> keys_mask_{0};
  std::atomic<std::uint64_t> epoch_{0};
  std::atomic<bool> written_[2][kMaxKeys] = {};
  std::size_t pkru_offset_ = 0;
};

}  // namespace

namespace backends {

tracker_probe probe_pkey() noexcept {
  long key = ::syscall(kabi::kSysPkeyAlloc, 0, 0);
  if (key < 0) {
    return {tracker_kind::pkey, false,
            errno == ENOSYS ? "the kernel has no pkey system calls"
                            : "this CPU or kernel has no memory protection keys (pkey_alloc failed)"};
  }
  ::syscall(kabi::kSysPkeyFree, key);
  if (pkru_offset() == 0) return {tracker_kind::pkey, false, "CPUID reports no PKRU state component"};
  return {tracker_kind::pkey, true, ""};
}

int make_pkey(std::unique_ptr<write_tracker>* out) {
  if (!probe_pkey().available) return ENOTSUP;
  auto tracker = std::make_unique<pkey_tracker>();
  if (int e = tracker->init()) return e;
  *out = std::move(tracker);
  return 0;
}

}  // namespace backends
}  // namespace larder::port
