// Restoring some pods of a version into the open heap
// (checkout_options::pods, docs/versions.md "Restoring some pods"): which
// segments change and what each becomes, and the metadata writes; the
// pages themselves are loaded by checkout.cpp like any others.
#pragma once

#include "recovery/layout.hpp"
#include "runtime/versions_state.hpp"

#include <larder/status.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace larder {

class heap_impl;

// A partial restore (checkout_options::pods): which segments change and
// what each becomes. A segment belongs to one pod (a huge block's tail
// segments to its head's), so restoring a pod restores its segments,
// headers included; the rest of the heap stays as it is.
struct pod_restore {
  std::vector<std::size_t> segments;    // segments whose entry and pages become the version's
  std::vector<std::uint32_t> entries;  // their new segment table entries
  std::vector<std::size_t> pages;       // the version's non-zero pages in them, ascending
  std::size_t high = 0;                 // segments_high after
  std::vector<std::uint32_t> pod_ids;  // the pods restored
  layout::pod_record pods[layout::kMaxPods];  // the version's pod records
};

// Works out a restore of `pods` from the version's metadata block
// (`target_meta`) and its page table. Refused (invalid_argument) when the
// version puts a chosen pod's segment where another pod or a lane lives
// now: restoring it would take that segment away from them.
status plan_pod_restore(const heap_impl& impl, const layout::heap_meta& target_meta,
                        const std::vector<chunks::page_entry>& table, const std::vector<std::uint32_t>& pods,
                        pod_restore* out);

// The version's metadata block, from its chunks.
status read_target_meta(versions_state& v, const std::vector<chunks::page_entry>& table, layout::heap_meta* out);

// Applies a restore's segment table entries and pod records, and gives
// the storage of its segments back (they read as zero until their pages
// are written). The region is down (between destroy and start_region).
void restore_pod_metadata(heap_impl& impl, const pod_restore& r);

}  // namespace larder
