// The page → pod map for page-write tracking: splits the written runs a
// tracker reports at segment boundaries and tags each piece with the pod
// that owns its segment, per the segment table.
#pragma once

#include "allocator/region.hpp"
#include "port/write_tracker.hpp"

#include <larder/tracking.hpp>

#include <vector>

namespace larder::alloc {

// Pages of segments no pod holds (released after being written).
inline constexpr std::uint32_t kUnownedPod = 0xFFFFFFFEu;

// The pod owning the segment that holds `address`: a pod id, kMetadataPod
// for segment 0, or kUnownedPod.
std::uint32_t pod_of_address(const region& r, std::uintptr_t address) noexcept;

// Appends `written` to `out`, split so that each run lies in one segment's
// pod; runs outside the region are dropped.
void attribute_to_pods(const region& r, const std::vector<port::written_run>& written, std::vector<dirty_run>* out);

}  // namespace larder::alloc
