// Lane numbers and extents; see lane_space.hpp.
#include "runtime/lane_space.hpp"

#include "runtime/heap_impl.hpp"
#include "runtime/transaction_memory.hpp"

namespace larder {

int take_lane_seq(heap_impl& impl, std::uint32_t lane, std::uint64_t* seq) noexcept {
  layout::lane_record* rec = &impl.meta()->lanes[lane];
  std::uint64_t next = impl.next_seq[lane];
  std::uint64_t committed = recovery::committed_seq(*rec);
  if (next <= committed) next = committed + 1;
  if (int err = recovery::reserve_seqs(rec, next, *impl.domain)) return err;
  impl.next_seq[lane] = next + 1;
  *seq = next;
  return 0;
}

int add_lane_extent(heap_impl& impl, recovery::lane_writer& writer, alloc::segment* run, std::size_t count) noexcept {
  layout::heap_meta* meta = impl.meta();
  std::size_t first = impl.region.segment_index(run);
  // A segment freed earlier may still start with its old segment header,
  // which recovery takes for a live segment whose entry was damaged: clear
  // those first, durably, then mark the run as log.
  engine_vector<recovery::persist_range> headers;
  for (std::size_t i = 0; i < count; ++i) {
    auto* old = reinterpret_cast<alloc::segment*>(impl.region.base() + ((first + i) << layout::kSegmentShift));
    if (old->magic == 0) continue;
    old->magic = 0;
    headers.push_back({&old->magic, sizeof(old->magic)});
  }
  int err = impl.domain->persist(headers.data(), headers.size());
  // The table must say "log" durably before a lane points there, and a
  // crash between the two leaves a log segment no lane owns, which
  // recovery frees. segments_high lands first: entries past it must be
  // free, and one persist of both may land either half alone.
  if (err == 0) err = impl.domain->persist(&meta->segments_high, sizeof(meta->segments_high));
  if (err == 0) err = impl.domain->persist(&meta->segments[first], count * sizeof(meta->segments[0]));
  if (err == 0) err = writer.add_extent(layout::lane_extent(first, count), *impl.domain);
  if (err != 0) impl.region.release(run, count);
  return err;
}

}  // namespace larder
