// Lane writers, numbers and extents; see lane_space.hpp.
#include "runtime/lane_space.hpp"

#include "port/os.hpp"
#include "runtime/heap_impl.hpp"
#include "runtime/transaction_memory.hpp"

#include <errno.h>

#include <algorithm>

namespace larder {

recovery::lane_writer lane_writer_for(heap_impl& impl, std::uint32_t lane) noexcept {
  recovery::log_storage& storage = impl.lane_storage[lane];
  storage.fd = impl.fd;
  storage.whole = impl.hole_reads_take_storage;
  return recovery::lane_writer(&impl.meta()->lanes[lane], impl.region.base(), &storage);
}

void trim_log_storage(recovery::lane_writer& writer) noexcept {
  std::size_t keep = std::max(writer.used(), kLogStorageKept);
  if (writer.reserved() > 2 * keep) writer.release_storage_past(keep);
}

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

int claim_log_run(heap_impl& impl, std::uint32_t lane, std::size_t count, alloc::segment** run) noexcept {
  bool zeroed = false;
  alloc::segment* s = impl.region.acquire(count, lane, layout::kSegmentLog, &zeroed);
  if (s == nullptr) return errno != 0 ? errno : ENOMEM;
  // Storage before anything is read or written there: the first page,
  // which the extent's first record and a release write, or where reading
  // a hole takes storage, all of it (add_lane_extent reads every
  // segment's header).
  std::size_t bytes = impl.hole_reads_take_storage ? count << layout::kSegmentShift : port::kOsPageSize;
  if (int err = impl.reserve_storage(s, bytes)) {
    impl.region.release(s, count, false);
    return err;
  }
  *run = s;
  return 0;
}

int add_lane_extent(heap_impl& impl, recovery::persist_domain& domain, recovery::lane_writer& writer,
                    alloc::segment* run, std::size_t count) noexcept {
  layout::heap_meta* meta = impl.meta();
  std::size_t first = impl.region.segment_index(run);
  // An old segment header there would make recovery take a log segment for
  // a live one whose entry was damaged: clear those first, durably, then
  // mark the run as log.
  engine_vector<recovery::persist_range> headers;
  for (std::size_t i = 0; i < count; ++i) {
    auto* old = reinterpret_cast<alloc::segment*>(impl.region.base() + ((first + i) << layout::kSegmentShift));
    if (std::uint64_t* cleared = alloc::clear_old_header(old)) headers.push_back({cleared, sizeof(*cleared)});
  }
  int err = domain.persist(headers.data(), headers.size());
  // The table must say "log" durably before a lane points there, and a
  // crash between the two leaves a log segment no lane owns, which
  // recovery frees. segments_high lands first: entries past it must be
  // free, and one persist of both may land either half alone.
  if (err == 0) err = domain.persist(&meta->segments_high, sizeof(meta->segments_high));
  if (err == 0) err = domain.persist(&meta->segments[first], count * sizeof(meta->segments[0]));
  if (err == 0) err = writer.add_extent(layout::lane_extent(first, count), domain);
  if (err != 0) impl.region.release(run, count);
  return err;
}

}  // namespace larder
