// The heap map and conservative reachability; see heap_map.hpp.
#include "allocator/heap_map.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace larder::alloc {

namespace {

std::string unit_place(const map_unit& u) {
  if (u.kind == map_unit::huge) return walk_place{walk_place::segment, u.huge_info.segment, 0}.text() + " (huge block)";
  return walk_place{walk_place::page, u.page_info.segment, u.page_info.slice}.text();
}

}  // namespace

bool heap_map::damage(const walk_place&, const std::string& message) {
  damage_lines_.push_back(message);
  return true;
}

void heap_map::page(const page_facts& facts) {
  map_unit u;
  u.kind = map_unit::page;
  u.page_info = facts;
  u.start = facts.start;
  u.readable_blocks = facts.state == page_state::sound || facts.state == page_state::lists_damaged;
  if (u.readable_blocks) {
    u.block_bytes = facts.geometry.block_size;
    u.blocks = facts.geometry.capacity;
  } else {
    u.block_bytes = run_area(facts.slice, facts.slices);
    u.blocks = 1;
  }
  units_.push_back(std::move(u));
}

void heap_map::huge(const huge_facts& facts) {
  map_unit u;
  u.kind = map_unit::huge;
  u.huge_info = facts;
  const std::uint64_t segment_address = view_.base + (std::uint64_t{facts.segment} << kSegmentShift);
  const std::uint64_t run_bytes = std::uint64_t{facts.span} << kSegmentShift;
  u.readable_blocks = facts.state == huge_state::sound || facts.state == huge_state::header_damaged;
  // A huge block reaches from its start to its segments' end (what
  // usable_size reports); a quarantined one is all of its run after the header.
  std::uint64_t offset = u.readable_blocks ? facts.offset : kSegmentHeaderSize;
  u.start = segment_address + offset;
  u.block_bytes = static_cast<std::size_t>(run_bytes - offset);
  u.blocks = 1;
  units_.push_back(std::move(u));
}

void heap_map::pages_segment(const pages_segment_facts& facts) { segments_.push_back(facts); }

void heap_map::build(const heap_view& view) {
  view_ = view;
  units_.clear();
  segments_.clear();
  damage_lines_.clear();
  walk_options full;
  full.full_lists = true;
  totals_ = walk_heap(view, full, *this);
  std::size_t high = 0;
  for (const map_unit& u : units_)
    high = std::max(high, u.kind == map_unit::huge ? u.huge_info.segment + u.huge_info.span : u.page_info.segment + 1);
  segment_slot_.assign(high, kNone);
  segment_is_huge_.assign(high, 0);
  slice_unit_.clear();
  mark_count_ = 0;
  for (std::size_t i = 0; i < units_.size(); ++i) {
    units_[i].first_mark = mark_count_;
    mark_count_ += units_[i].blocks;
    index_unit(i);
  }
}

void heap_map::index_unit(std::size_t unit) {
  const map_unit& u = units_[unit];
  if (u.kind == map_unit::huge) {
    for (std::size_t j = 0; j < u.huge_info.span; ++j) {
      segment_slot_[u.huge_info.segment + j] = static_cast<std::uint32_t>(unit);
      segment_is_huge_[u.huge_info.segment + j] = 1;
    }
    return;
  }
  std::uint32_t& slot = segment_slot_[u.page_info.segment];
  if (slot == kNone) {
    slot = static_cast<std::uint32_t>(slice_unit_.size());
    slice_unit_.resize(slice_unit_.size() + kSlicesPerSegment, kNone);
  }
  for (std::size_t k = u.page_info.slice; k < u.page_info.slice + u.page_info.slices; ++k)
    slice_unit_[slot + k] = static_cast<std::uint32_t>(unit);
}

bool heap_map::may_be_live(const map_unit& u, std::size_t index) const noexcept {
  if (u.kind == map_unit::huge) return true;
  const page_facts& p = u.page_info;
  if (p.state == page_state::lists_damaged) return true;  // which carved ones are free is not known
  return index < p.reserved && !p.listed[index];
}

heap_map::found heap_map::resolve(std::uint64_t address, block_ref* out) const noexcept {
  if (address < view_.base) return found::nothing;
  const std::uint64_t offset = address - view_.base;
  const std::uint64_t segment = offset >> kSegmentShift;
  if (segment >= segment_slot_.size() || segment_slot_[segment] == kNone) return found::nothing;
  std::uint32_t unit = segment_slot_[segment];
  if (!segment_is_huge_[segment]) {
    const std::uint64_t inside = offset & (kSegmentSize - 1);
    if (inside < kSegmentHeaderSize) return found::nothing;
    unit = slice_unit_[unit + (inside >> kSliceShift)];
    if (unit == kNone) return found::nothing;
  }
  const map_unit& u = units_[unit];
  if (address < u.start) return found::nothing;
  const std::uint64_t index = (address - u.start) / u.block_bytes;
  if (index >= u.blocks) return found::nothing;
  out->unit = unit;
  out->index = static_cast<std::uint32_t>(index);
  if (!u.readable_blocks) return found::damaged;
  return may_be_live(u, static_cast<std::size_t>(index)) ? found::block : found::nothing;
}

void heap_map::reach(std::uint64_t address, std::uint32_t stamp, bool through_damage, reach_marks* marks,
                     reach_result* out) const {
  std::vector<block_ref> stack;
  auto visit = [&](block_ref b) {
    std::uint32_t& mark = marks->stamp[units_[b.unit].first_mark + b.index];
    if (mark == stamp) return;
    mark = stamp;
    stack.push_back(b);
    out->blocks.push_back(b);
  };
  auto damaged = [&](block_ref b, const std::string& how) {
    if (!out->damaged) out->why = how + " " + unit_place(units_[b.unit]) + ", whose blocks cannot be told apart";
    out->damaged = true;
    if (through_damage) visit(b);
  };
  block_ref first;
  found f = resolve(address, &first);
  if (f == found::damaged) damaged(first, "its object " + hex(address) + " lies in");
  if (f == found::block) visit(first);
  while (!stack.empty()) {
    block_ref b = stack.back();
    stack.pop_back();
    const std::uint64_t start = block_start(b);
    const std::size_t bytes = block_bytes(b);
    const std::uint8_t* local = view_.translate(start, bytes);
    if (local == nullptr) {
      if (!out->damaged) out->why = "the block at " + hex(start) + " lies past the end of the file";
      out->damaged = true;
      continue;
    }
    for (std::size_t at = 0; at + sizeof(std::uint64_t) <= bytes; at += sizeof(std::uint64_t)) {
      std::uint64_t word;
      std::memcpy(&word, local + at, sizeof(word));
      if (word - view_.base >= view_.size) continue;
      block_ref target;
      found t = resolve(word, &target);
      if (t == found::block)
        visit(target);
      else if (t == found::damaged)
        damaged(target, "the block at " + hex(start) + " points into");
    }
  }
}

}  // namespace larder::alloc
