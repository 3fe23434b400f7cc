// Holding the writers of some ranges for a moment, while their pages are
// copied somewhere and dropped (a pod evicted to a lower tier): the ranges
// become read-only, a thread that writes to one of them waits in the
// SIGSEGV handler (port/linux/fault_dispatch.cpp) until the hold ends, and
// its write then goes ahead on whatever the page is by then. Readers are
// not held. A system call writing into a held range through larder's
// wrappers (read(2) into a heap buffer) waits the same way before it
// starts; other system calls writing there fail with EFAULT meanwhile.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace larder::port {

class write_hold {
 public:
  static constexpr std::size_t kMaxRanges = 256;
  struct range {
    std::uintptr_t start;  // page-aligned
    std::size_t size;      // a page multiple
  };

  write_hold();
  ~write_hold();  // ends a hold still in place
  write_hold(const write_hold&) = delete;
  write_hold& operator=(const write_hold&) = delete;

  // Holds the writers of ranges[0, count) (count <= kMaxRanges) until
  // end(). 0, or an errno value with nothing held (EINVAL: too many ranges
  // or a hold in place already).
  int begin(const range* ranges, std::size_t count);
  // Makes the ranges writable again and lets the held writers go. 0 or the
  // errno value of the first range that could not be made writable.
  int end() noexcept;

 private:
  class holder;
  std::unique_ptr<holder> holder_;
};

}  // namespace larder::port
