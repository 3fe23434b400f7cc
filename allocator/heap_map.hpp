// What every heap page and huge block of a heap holds, from one full walk
// (heap_walk.hpp), and which blocks an address reaches. `larder check
// --repair` (heap_repair.hpp) and salvage (runtime/salvage.cpp) share it.
//
// Reachability is conservative: every 8-byte-aligned word inside a reached
// block whose value lies inside a block that may be live is an edge, so an
// object graph reached from a root is reached whole, and an integer that
// happens to look like such an address only adds blocks. A block "may be
// live" when it is carved in a page whose size class is known and the
// page's sound lists do not name it free (a page with damaged lists: any
// carved block), or it is a huge block, from its start to its segments'
// end (its usable size). An address inside a page whose blocks cannot be
// told apart (unreadable or quarantined) is a damaged edge.
#pragma once

#include "allocator/heap_walk.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace larder::alloc {

// A heap page or a huge block, as the walk found it.
struct map_unit {
  enum kind_t : std::uint8_t { page, huge } kind = page;
  page_facts page_info;          // kind page
  huge_facts huge_info;          // kind huge
  std::uint64_t start = 0;       // heap address of its first block
  std::size_t block_bytes = 0;   // bytes of each block (an unreadable page: all of it)
  std::size_t blocks = 0;        // blocks an address can land in
  bool readable_blocks = false;  // its blocks can be told apart (else a damaged unit)
  std::size_t first_mark = 0;    // its blocks' index in reach_marks
};

struct block_ref {
  std::uint32_t unit = 0;
  std::uint32_t index = 0;
};

// Which blocks a reach has visited: a stamp per block, so that one set of
// marks serves many reaches (one stamp each).
struct reach_marks {
  std::vector<std::uint32_t> stamp;
};

class heap_map final : public walk_reporter {
 public:
  // Walks `view` in full and indexes what it holds. The map reads the
  // heap through the view's mapping, which must outlive it.
  void build(const heap_view& view);

  const heap_view& view() const noexcept { return view_; }
  const std::vector<map_unit>& units() const noexcept { return units_; }
  const std::vector<pages_segment_facts>& pages_segments() const noexcept { return segments_; }
  const walk_totals& totals() const noexcept { return totals_; }
  // Every damage line of the walk, in order.
  const std::vector<std::string>& damage_lines() const noexcept { return damage_lines_; }

  enum class found : std::uint8_t { nothing, block, damaged };
  // What heap address `address` lies in: a block that may be live, a
  // damaged unit (`out->unit` names it), or nothing a pointer can mean.
  found resolve(std::uint64_t address, block_ref* out) const noexcept;
  std::uint64_t block_start(block_ref b) const noexcept {
    return units_[b.unit].start + std::uint64_t{b.index} * units_[b.unit].block_bytes;
  }
  std::size_t block_bytes(block_ref b) const noexcept { return units_[b.unit].block_bytes; }

  // Marks for every block of the map, all unvisited.
  reach_marks new_marks() const { return reach_marks{std::vector<std::uint32_t>(mark_count_, 0)}; }
  bool marked(const reach_marks& marks, block_ref b, std::uint32_t stamp) const noexcept {
    return marks.stamp[units_[b.unit].first_mark + b.index] == stamp;
  }

  struct reach_result {
    std::vector<block_ref> blocks;  // every block reached, each once
    bool damaged = false;           // an edge led into a damaged unit
    std::string why;                // the first such edge, said for a report
  };
  // Visits every block reachable from `address` that `marks` does not
  // already hold with `stamp`, stamping each. With `through_damage`, a
  // damaged unit is visited as one block covering the whole page (so what
  // it points to is reached too); without, it is only reported.
  void reach(std::uint64_t address, std::uint32_t stamp, bool through_damage, reach_marks* marks,
             reach_result* out) const;

  // walk_reporter
  bool damage(const walk_place& place, const std::string& message) override;
  void page(const page_facts& facts) override;
  void huge(const huge_facts& facts) override;
  void pages_segment(const pages_segment_facts& facts) override;

 private:
  static constexpr std::uint32_t kNone = ~std::uint32_t{0};
  void index_unit(std::size_t unit);
  bool may_be_live(const map_unit& u, std::size_t index) const noexcept;

  heap_view view_;
  std::vector<map_unit> units_;
  std::vector<pages_segment_facts> segments_;
  std::vector<std::string> damage_lines_;
  walk_totals totals_;
  std::size_t mark_count_ = 0;
  // Per segment: the unit of a huge block's segments, or the first of the
  // segment's 64 entries in slice_unit_ (kNone: no unit).
  std::vector<std::uint32_t> segment_slot_;
  std::vector<std::uint8_t> segment_is_huge_;
  std::vector<std::uint32_t> slice_unit_;
};

}  // namespace larder::alloc
