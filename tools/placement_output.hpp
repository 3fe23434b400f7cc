// What `larder pods` and `larder stat` show of automatic placement
// (larder/placement.hpp): which allocation sites feed which pod, and why.
#pragma once

#include "output.hpp"

#include <larder/heap.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace larder_tool {

// The sites placement recorded (empty when it never ran on the heap, or
// with a warning on stderr when its record cannot be read).
std::vector<larder::placement_site> placement_sites_or_warn(const larder::heap& h);

// "why" in words: "probing (2 epochs)", "apart: bundling would write 40 KiB more per epoch", ...
std::string placement_why(const larder::placement_site& s);

// The sites feeding `pod`, for the pod's entry in `larder pods --json`.
json placement_sites_json(const std::vector<larder::placement_site>& sites, std::uint32_t pod);

// The table under `larder pods`: pod, size class, rate, site, why.
void print_placement_sites(const std::vector<larder::placement_site>& sites);

// One line for `larder stat`: "12 sites in 5 pods: 3 probing, 4 apart, ...".
std::string placement_line(const std::vector<larder::placement_site>& sites);

}  // namespace larder_tool
