// A heap's backing opened and mapped outside larder::heap, for what must
// read or mend a heap that open refuses: the checker and its repair
// (check.cpp) and salvage (salvage.cpp).
#pragma once

#include <larder/heap.hpp>
#include <larder/status.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

namespace larder {

// One open backing: a file or a shm object.
struct backing_file {
  int fd = -1;
  std::uint64_t size = 0;
  backing_file() = default;
  backing_file(const backing_file&) = delete;
  backing_file& operator=(const backing_file&) = delete;
  ~backing_file();
};

// Errors: not_found, or the errno value of the failed call.
status open_backing(backing kind, const std::string& path, bool writable, backing_file* out);

// The first min(file size, reserve) bytes of a heap, mapped.
struct heap_mapping {
  std::uint8_t* local = nullptr;
  std::size_t length = 0;      // mapped, whole OS pages
  std::uint64_t readable = 0;  // bytes backed by the file
  heap_mapping() = default;
  heap_mapping(const heap_mapping&) = delete;
  heap_mapping& operator=(const heap_mapping&) = delete;
  ~heap_mapping() { unmap(); }
  void unmap() noexcept;
};

// Maps `file` at `base`, the heap's recorded address, when that range is
// free in this process; otherwise, unless `base_only` (address_taken
// then), at an address the kernel picks, so that every address stored in
// the heap must be translated. `writable` writes through to the file; with
// `copy_on_write` writes stay in this process.
status map_heap_file(const backing_file& file, std::uint64_t base, std::uint64_t reserve, bool writable,
                     bool copy_on_write, bool base_only, heap_mapping* out);

}  // namespace larder
