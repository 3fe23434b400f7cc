// A file mapped through libpmem2 (port/linux/pmem2_api.hpp) into one range
// of address space reserved up front, which the mapping fills as the file
// grows: what is mapped never moves, so copies in flight on other threads
// are unaffected by growth. On a DAX file system stores become durable by
// CPU cache flushes; on any other file libpmem2 emulates that with msync.
// Entry point: pmem_file::open. Functions return 0 or an errno value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace larder::port {

class pmem_file {
 public:
  // Maps nothing yet: reserves address space for `capacity` bytes of the
  // open file `fd` (read-write, regular, emptied by the caller, and kept
  // open while this lives). ENOTSUP when libpmem2 (1.11 or later) is not
  // installed. On an error from libpmem2 itself, *detail is its text
  // (valid until the next libpmem2 call on this thread), else nullptr.
  static int open(int fd, std::uint64_t capacity, std::unique_ptr<pmem_file>* out, const char** detail);
  ~pmem_file();
  pmem_file(const pmem_file&) = delete;
  pmem_file& operator=(const pmem_file&) = delete;

  // Gives the file storage up to `length` bytes (a multiple of alignment(),
  // at most the capacity rounded up to it) and maps [size(), length) at
  // base() + size(). A full file system is ENOSPC here, never SIGBUS at a
  // later store: storage is allocated before the range is mapped (zeros
  // written where the file system cannot allocate ahead). Not thread-safe:
  // one grow at a time, while others copy in or out of what is mapped.
  int grow(std::uint64_t length, const char** detail);

  char* base() const { return base_; }
  std::uint64_t size() const { return size_; }
  // What lengths and offsets of mappings of this file must be multiples of.
  std::uint64_t alignment() const { return alignment_; }
  // Whether stores are made durable by cache flushes alone (a DAX file);
  // false where libpmem2 emulates persistent memory with msync. Known once
  // something is mapped (false before).
  bool is_dax() const { return dax_; }

  // Copies into the mapping with non-temporal stores and flushes them (on
  // an emulated file, msync); durable once drain() returns on the same
  // thread.
  void copy(void* to, const void* from, std::size_t length) const;
  void drain() const;

 private:
  struct mapping_state;
  explicit pmem_file(std::unique_ptr<mapping_state> state);

  std::unique_ptr<mapping_state> state_;
  char* base_ = nullptr;
  std::uint64_t size_ = 0;
  std::uint64_t alignment_ = 0;
  bool dax_ = false;
};

}  // namespace larder::port
