// Page-write tracking: which 4 KiB pages of a heap were written since the
// last collect, and so which pods are dirty. Started with
// heap::start_tracking, read with heap::collect_dirty; docs/tracking.md
// explains the backends and which to choose.
//
// Guarantee: a page written through this process's mapping is reported by
// the collect that ends the epoch of the write, or, if the write raced with
// that collect, by the next one. Never missed. Writes made by the kernel
// through read(2) and the like are included (see docs/tracking.md for the
// list of wrapped calls under the signal-based backends). Extra pages may
// be reported (false positives): the allocator's own metadata writes, and
// whole pods under the pkey backend.
#pragma once

#include <larder/export.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace larder {

enum class tracker_backend : std::uint8_t {
  none,        // not tracking
  automatic,   // the first available of uffd_async, mprotect, pkey; the
               // environment variable LARDER_TRACKER (uffd-async, mprotect or
               // pkey) forces one
  uffd_async,  // userfaultfd async write-protect + PAGEMAP_SCAN (Linux 6.7+)
  mprotect,    // PROT_READ + SIGSEGV handler; sees each first write before it lands
  pkey,        // memory protection keys (x86 PKU): one fault per pod and thread
};
LARDER_EXPORT const char* to_string(tracker_backend backend) noexcept;

struct tracker_support {
  tracker_backend backend;
  bool available;
  std::string reason;  // why not, when unavailable
};
// Each backend, in fallback order, and whether it works here.
LARDER_EXPORT std::vector<tracker_support> tracker_backends();

// The metadata pages (superblocks, pod, root and segment tables) report as
// this pod.
inline constexpr std::uint32_t kMetadataPod = 0xFFFFFFFFu;

struct dirty_run {
  std::uintptr_t start;  // page-aligned address
  std::uint32_t pages;   // 4 KiB pages
  std::uint32_t pod;     // every page of a run is in this pod
};

// The pages written during one epoch.
class LARDER_EXPORT dirty_set {
 public:
  std::uint64_t epoch() const noexcept { return epoch_; }
  // Ascending by address, disjoint.
  const std::vector<dirty_run>& runs() const noexcept { return runs_; }
  std::size_t page_count() const noexcept;
  std::size_t page_count(std::uint32_t pod) const noexcept;
  // Pods with at least one written page, ascending (kMetadataPod last).
  std::vector<std::uint32_t> pods() const;
  bool contains(const void* address) const noexcept;

  // Filled by heap::collect_dirty.
  void assign(std::uint64_t epoch, std::vector<dirty_run> runs) noexcept {
    epoch_ = epoch;
    runs_ = std::move(runs);
  }

 private:
  std::uint64_t epoch_ = 0;
  std::vector<dirty_run> runs_;
};

// Statistics kept in the heap at each collect, readable by other processes
// (`larder stat`).
struct pod_write_stats {
  std::uint32_t pod;        // or kMetadataPod
  std::string name;         // "(metadata)" for kMetadataPod
  std::uint64_t pages_last_epoch;
  std::uint64_t pages_total;
  std::uint64_t epochs_written;
  std::uint64_t last_written_epoch;
};
struct write_stats {
  tracker_backend backend;  // none when no process is tracking
  int pid;                  // the tracking process, 0 if none
  std::uint64_t epoch;      // collects so far
  double last_epoch_seconds;
  double current_epoch_seconds;  // since the last collect
  std::uint64_t pages_last_epoch;
  std::uint64_t pages_total;
  std::vector<pod_write_stats> pods;  // pods ever written, by id
};

// Under the mprotect and pkey backends the kernel cannot write into a page
// still protected for tracking: the system call fails with EFAULT. larder
// wraps read, pread, readv, preadv, preadv2, recv, recvfrom and recvmsg
// (and their _chk forms) to prepare their buffers; before handing heap
// memory to any other system call that writes into it (fstat, getdents,
// io_uring, ...), call this. It marks [address, address + size) written in
// the current epoch and makes it writable. No-op under uffd_async, which
// needs nothing of the kind.
LARDER_EXPORT void prepare_kernel_write(const void* address, std::size_t size) noexcept;

}  // namespace larder
