// Lane states for larder::heap::lanes; see lane_report.hpp.
#include "runtime/lane_report.hpp"

#include "recovery/undo_log.hpp"

#include <cstring>

namespace larder {

const char* to_string(lane_state state) noexcept {
  switch (state) {
    case lane_state::unused: return "unused";
    case lane_state::clean: return "clean";
    case lane_state::pending_transaction: return "pending transaction";
    case lane_state::interrupted_close: return "interrupted close";
    case lane_state::damaged: return "damaged";
  }
  return "?";
}

std::vector<lane_info> describe_lanes(const layout::heap_meta& meta, std::uintptr_t base, std::size_t heap_size) {
  std::vector<lane_info> out;
  static const layout::commit_slot kEmpty[2] = {};
  for (std::uint32_t i = 0; i < layout::kMaxLanes; ++i) {
    const layout::lane_record& lane = meta.lanes[i];
    // Recovery reads every lane with extents, a seq reservation or a slot.
    if (lane.extent_count == 0 && lane.seq_limit == 0 && std::memcmp(lane.commits, kEmpty, sizeof(kEmpty)) == 0)
      continue;
    lane_info info{};
    info.index = i;
    info.state = lane_state::clean;
    info.last_finished = recovery::committed_seq(lane);
    for (const layout::commit_slot& slot : lane.commits)
      if (info.last_finished != 0 && slot.seq == info.last_finished) info.last_finished_ns = slot.time_ns;
    std::vector<recovery::extent_view> extents;
    recovery::lane_scan scan;
    status s = recovery::lane_extents(lane, base, heap_size, &extents);
    if (s.ok()) s = recovery::scan_lane(lane, base, heap_size, &scan);
    if (s.ok()) s = recovery::lane_verdict(scan, i);
    info.extents = extents.size();
    for (const auto& x : extents) info.log_bytes += x.size;
    if (!s.ok()) {
      info.state = lane_state::damaged;
      info.problem = s.message();
    } else if (scan.pending()) {
      info.state = scan.journal ? lane_state::interrupted_close : lane_state::pending_transaction;
      info.pending_seq = scan.seq;
      info.pending_records = scan.records.size();
      info.pending_bytes = scan.bytes;
    }
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace larder
