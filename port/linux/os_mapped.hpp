// Internal to port/linux: memory for the trackers' own objects, mapped
// from the OS and never taken from malloc. Their fault handlers and
// collects write these objects (and the kernel writes a collect's results
// into them); with larder's malloc inside a pod_scope, malloc would place
// them in the very pages the tracker protects, where a fault inside the
// SIGSEGV handler kills the process, a pkey handler (which may run with
// the kernel's initial PKRU: every key but 0 denied) cannot read them, and
// a userfaultfd collect would report its own result buffer as written in
// every epoch.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <new>

namespace larder::port {

// Zeroed, private, anonymous memory of `bytes`, or nullptr (errno set).
template <class T>
T* map_zeroed(std::size_t bytes) noexcept {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? nullptr : static_cast<T*>(p);
}

// Objects of a class deriving from this are mapped from the OS (a page at
// least each: trackers are few and long-lived).
struct os_mapped {
  static void* operator new(std::size_t size) {
    void* p = map_zeroed<void>(size);
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }
  static void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return map_zeroed<void>(size); }
  static void operator delete(void* p, std::size_t size) noexcept { ::munmap(p, size); }
};

}  // namespace larder::port
