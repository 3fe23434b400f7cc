// Persistent-memory flushes through libpmem2. The persistence domain
// (recovery/persist.hpp) uses them when libpmem2 reports that a heap file
// needs only CPU cache flushes to be durable: a file on a DAX file system,
// or any file when PMEM2_FORCE_GRANULARITY asks for that (emulation).
#pragma once

#include <cstddef>

namespace larder::port {

struct pmem_flushes {
  void (*flush)(const void* address, std::size_t size) = nullptr;  // write back cache lines
  void (*drain)() = nullptr;                                      // wait for them
  void* probe = nullptr;  // what keeps the functions valid
};

// True, with `out` filled, when stores to a shared mapping of `fd` become
// durable with cache flushes alone. False (and `out` untouched) otherwise,
// including when libpmem2 cannot tell.
bool probe_pmem(int fd, pmem_flushes* out);
void release_pmem(pmem_flushes* flushes);

}  // namespace larder::port
