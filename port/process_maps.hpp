// This process's memory mappings (/proc/self/maps on Linux), for debug
// aids that tell what an address is. Allocates: never call it from the
// malloc path.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace larder::port {

struct process_mapping {
  std::uintptr_t start = 0;
  std::uintptr_t end = 0;  // one past the last byte
  bool writable = false;
  bool executable = false;
  // The mapped file's path, "[heap]", "[stack]", ... or empty (anonymous).
  std::string name;
};

// Fills `out` with every mapping of this process, in address order.
// Returns 0 or an errno value.
int read_process_mappings(std::vector<process_mapping>* out);

}  // namespace larder::port
