// The allocator's durable metadata; see durable_metadata.hpp.
#include "allocator/durable_metadata.hpp"

#include <algorithm>

namespace larder::alloc {

namespace {

// Takes what the walker finds, in address order: the walker visits
// segments and their pages in address order, a segment's header comes
// before its pages, and a page's list blocks, in list order, are sorted
// when the page ends.
class metadata_reporter final : public walk_reporter {
 public:
  metadata_reporter(std::uintptr_t base, std::vector<metadata_range>* out)
      : base_(base), out_(out), unsorted_(out->size()) {}

  // A close journals the metadata as it is: damage (which open would
  // have refused) changes nothing of what there is to journal.
  bool damage(const walk_place&, const std::string&) override { return true; }
  void list_block(std::uint64_t address) override {
    enter_segment(static_cast<std::size_t>((address - base_) >> kSegmentShift));
    out_->push_back({static_cast<std::uintptr_t>(address), sizeof(block)});
  }
  // A list is often in address order, or the reverse (blocks freed in
  // order are pushed on its head).
  void page(const page_facts&) override {
    auto from = out_->begin() + static_cast<std::ptrdiff_t>(unsorted_);
    auto before = [](const metadata_range& a, const metadata_range& b) { return a.address < b.address; };
    auto after = [](const metadata_range& a, const metadata_range& b) { return a.address > b.address; };
    if (std::is_sorted(from, out_->end(), after))
      std::reverse(from, out_->end());
    else if (!std::is_sorted(from, out_->end(), before))
      std::sort(from, out_->end(), before);
    unsorted_ = out_->size();
  }
  void huge(const huge_facts& facts) override { enter_segment(facts.segment); }
  void pages_segment(const pages_segment_facts& facts) override { enter_segment(facts.segment); }

 private:
  void enter_segment(std::size_t segment) {
    if (segment == segment_) return;
    segment_ = segment;
    out_->push_back({segment_index_to_address(base_, segment), kHeaderMetadataBytes});
    unsorted_ = out_->size();
  }

  std::uintptr_t base_;
  std::vector<metadata_range>* out_;
  std::size_t unsorted_;    // where the current page's list blocks start
  std::size_t segment_ = 0;  // whose header was added last (segment 0 has none)
};

}  // namespace

void collect_segment_table(const heap_view& view, std::vector<metadata_range>* out) {
  const std::uintptr_t meta = static_cast<std::uintptr_t>(view.base) + layout::kMetaOffset;
  const std::uint64_t high = view.meta()->segments_high;
  out->push_back({meta + offsetof(layout::heap_meta, segments_high), sizeof(high)});
  out->push_back({meta + offsetof(layout::heap_meta, segments), high * sizeof(std::uint32_t)});
}

void collect_segment_metadata(const heap_view& view, std::size_t join_gap, std::vector<metadata_range>* out) {
  const std::size_t first = out->size();
  metadata_reporter reporter(static_cast<std::uintptr_t>(view.base), out);
  walk_options full;
  full.full_lists = true;
  full.table_tail = false;  // nothing there is journaled
  walk_heap(view, full, reporter);
  auto begin = out->begin() + static_cast<std::ptrdiff_t>(first);
  auto joined = begin;
  for (auto it = begin; it != out->end(); ++it) {
    if (joined != begin) {
      metadata_range& last = *(joined - 1);
      if (it->address <= last.address + last.size + join_gap) {
        last.size = std::max(last.address + last.size, it->address + it->size) - last.address;
        continue;
      }
    }
    *joined++ = *it;
  }
  out->erase(joined, out->end());
}

}  // namespace larder::alloc
