// Automatic pod placement (docs/placement.md): with heap_options::placement
// set, what a program allocates without naming a pod goes to pods larder
// chooses by allocation site and size class, and regroups by the write
// rates the tracker measures, so that hot objects share pages with hot ones
// and cold pods stay clean. Pods the program names are never touched.
#pragma once

#include <larder/export.hpp>
#include <larder/status.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace larder {

class heap;

enum class placement_policy : std::uint8_t {
  off,    // the default pod is an ordinary pod
  sites,  // the default pod's allocations are placed by site and size class
};

enum class placement_reason : std::uint8_t {
  probing,   // in a pod of its own while its write rate is measured
  apart,     // measured; bundling it with any other group would cost more
  bundled,   // measured; shares a pod with sites of like rate, which costs less
  large,     // huge blocks: a pod of its own, never bundled
  overflow,  // no spare pod was left when it first allocated: shares the overflow pod
};
LARDER_EXPORT const char* to_string(placement_reason reason) noexcept;

// One allocation site as the placement policy sees it.
struct placement_site {
  std::string location;       // "function+0x1c (file)" or "file+0x1234": where the call returns to
  std::uint32_t block_bytes;  // its size class's block size; 0 for huge blocks
  std::uint32_t pod;          // where its new allocations go
  std::string pod_name;
  std::uint32_t first_pod;    // the pod it probed in (its first allocations)
  placement_reason reason;
  double write_rate;          // smoothed share of its probe pod's pages written per epoch
  std::uint64_t bytes;        // bytes in use in its probe pod at the last decision
  std::uint32_t epochs;       // epochs it was measured over
  // apart: what bundling it into its best match would have added to the
  // expected bytes written per epoch; bundled: what bundling saved.
  double saving_bytes;
};

// The sites the placement policy last recorded in the heap, by pod then
// location. Read from the heap itself, so it works in any process,
// read-only too; empty when the heap never had placement on. Updated at
// each decision (docs/placement.md, "When it decides").
LARDER_EXPORT status placement_sites(const heap& h, std::vector<placement_site>* out);

}  // namespace larder
