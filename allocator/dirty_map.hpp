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

// The pod whose objects OS page `page` (page-aligned, inside the region)
// may hold, for scans of what pages contain: a pod id, or kUnownedPod for
// a page that holds no pod's objects: outside every pod's segment, in a
// segment header, or in a free slice of a pages segment that was purged
// or never handed out since the segment was taken (it reads as zero, and
// on a file or shm heap it may have no storage, which reading would take).
std::uint32_t pod_of_object_page(const region& r, std::uintptr_t page) noexcept;

// Appends `written` to `out`, split so that each run lies in one segment's
// pod; runs outside the region are dropped.
void attribute_to_pods(const region& r, const std::vector<port::written_run>& written, std::vector<dirty_run>* out);

}  // namespace larder::alloc
