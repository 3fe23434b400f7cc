// Settling segments that plain allocation changed; see unsettled.hpp.
#include "allocator/unsettled.hpp"

#include "allocator/heap_walk.hpp"
#include "allocator/region.hpp"

#include <algorithm>
#include <string>
#include <vector>

namespace larder::alloc {

std::atomic<std::uint64_t> g_unsettled_marks{0};

namespace {

// The link word of every block the walker finds on the free and remote
// lists of the segments it walks (heap_walk.hpp keeps the rules of
// following a list). Damage is not this walk's to judge: open refused or
// will refuse it; what is there is made durable as it is.
class link_reporter final : public walk_reporter {
 public:
  explicit link_reporter(settle_collector& out) : out_(out) {}
  bool damage(const walk_place&, const std::string&) override { return true; }
  void list_block(std::uint64_t address) override {
    out_.add(settle_group::links, reinterpret_cast<void*>(address), sizeof(block));
  }

 private:
  settle_collector& out_;
};

bool holds_blocks(layout::segment_state st) noexcept {
  return st == layout::kSegmentPages || st == layout::kSegmentHugeHead;
}

void set_marks(region& r, std::uint8_t mark) noexcept {
  const std::size_t high = r.meta()->segments_high;
  for (std::size_t i = 1; i < high; ++i) {
    if (!holds_blocks(layout::entry_state(r.entry(i)))) continue;
    auto* s = reinterpret_cast<segment*>(segment_index_to_address(r.base(), i));
    if (__atomic_load_n(&s->unsettled, __ATOMIC_RELAXED) != mark) __atomic_store_n(&s->unsettled, mark, __ATOMIC_RELAXED);
  }
}

}  // namespace

void mark_all_unsettled(region& r) noexcept {
  set_marks(r, 1);
  g_unsettled_marks.fetch_add(1, std::memory_order_relaxed);
}

void clear_unsettled(region& r) noexcept { set_marks(r, 0); }

std::size_t collect_unsettled(region& r, const std::uint32_t* pods, std::size_t pod_count, settle_collector& out,
                              bool* others_left) {
  layout::heap_meta* meta = r.meta();
  const std::size_t high = meta->segments_high;
  std::size_t settled = 0;
  *others_left = false;
  auto wanted = [&](std::uint32_t pod) {
    for (std::size_t k = 0; k < pod_count; ++k)
      if (pods[k] == pod) return true;
    return false;
  };
  std::vector<bool> walk(high, false);
  for (std::size_t i = 1; i < high; ++i) {
    std::uint32_t entry = r.entry(i);
    layout::segment_state st = layout::entry_state(entry);
    if (!holds_blocks(st)) continue;
    auto* s = reinterpret_cast<segment*>(segment_index_to_address(r.base(), i));
    if (__atomic_load_n(&s->unsettled, __ATOMIC_RELAXED) == 0) continue;
    if (!wanted(entry >> 16)) {
      *others_left = true;
      continue;
    }
    // Cleared before the header is read for making durable, so that the
    // durable header carries no mark and a change racing with this settle
    // marks the segment again.
    __atomic_store_n(&s->unsettled, 0, __ATOMIC_RELAXED);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    std::size_t span = 1;
    if (st == layout::kSegmentPages) {
      walk[i] = true;
      out.add(settle_group::headers, s, kHeaderMetadataBytes);
    } else {
      out.add(settle_group::headers, s, offsetof(segment, pages) + sizeof(page));
      span = s->span == 0 ? 1 : s->span;
    }
    out.add(settle_group::entries, &meta->segments[i], std::min(span, high - i) * sizeof(meta->segments[0]));
    ++settled;
  }
  if (settled == 0) return 0;
  walk_options options;
  options.full_lists = true;
  options.segments = &walk;
  link_reporter links(out);
  (void)walk_heap(r.view(), options, links);
  // With the headers: entries past segments_high must be free, while a
  // segments_high above entries that are still free is sound.
  out.add(settle_group::headers, &meta->segments_high, sizeof(meta->segments_high));
  // Every free entry with the settled ones: a segment settled here may
  // have been part of a run that plain frees gave back, whose old head
  // would otherwise still claim it. (Entries a running transaction freed
  // have their before-images logged.)
  for (std::size_t i = 1; i < high;) {
    if (layout::entry_state(r.entry(i)) != layout::kSegmentFree) {
      ++i;
      continue;
    }
    std::size_t end = i + 1;
    while (end < high && layout::entry_state(r.entry(end)) == layout::kSegmentFree) ++end;
    out.add(settle_group::entries, &meta->segments[i], (end - i) * sizeof(meta->segments[0]));
    i = end;
  }
  return settled;
}

}  // namespace larder::alloc
