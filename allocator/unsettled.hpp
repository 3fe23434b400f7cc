// Segments whose metadata plain allocation changed since it was last made
// durable. Outside a transaction the allocator makes nothing durable: its
// metadata reaches the media at close (through the close journal). A
// transaction that allocates or frees makes its part of that metadata
// durable at commit; where plain allocation changed the same segment, that
// part rests on changes that are not durable (a page it carved, links its
// frees wrote), and a power failure would keep the one without the other.
// So a transaction first settles every marked segment: its table entries,
// header, page descriptors and free-list links made durable as they are
// (settle_segments), in that dependency order. Marks live in the segment
// header (segment::unsettled), so a killed process's unsettled segments are
// still marked when the heap is opened again.
#pragma once

#include "allocator/segment.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace larder::alloc {

class region;
class metadata_sink;
// As declared in metadata_log.hpp, whose range type this header's users
// need not share.
extern thread_local constinit metadata_sink* t_metadata_sink __attribute__((tls_model("initial-exec")));

// Counts marks set in this process, in every region: a region whose count
// at its last settle is still current has nothing to settle.
extern std::atomic<std::uint64_t> g_unsettled_marks;

// Marks `s` after a plain change of its metadata. Inside a transaction the
// metadata sink makes the change durable, so nothing is marked.
inline void note_plain_change(segment* s) noexcept {
  if (t_metadata_sink != nullptr) return;
  if (__atomic_load_n(&s->unsettled, __ATOMIC_RELAXED) != 0) return;
  __atomic_store_n(&s->unsettled, 1, __ATOMIC_RELAXED);
  g_unsettled_marks.fetch_add(1, std::memory_order_relaxed);
}
inline void note_plain_change(page* pg) noexcept { note_plain_change(segment_of(pg)); }

// Marks every segment of blocks of `r` (when what reached the media is
// not known), or clears every mark (when all of it is about to be durable:
// a close).
void mark_all_unsettled(region& r) noexcept;
void clear_unsettled(region& r) noexcept;

// What makes an unsettled segment durable as it is, in three groups:
// the link word of every block on its pages' free and remote lists; its
// header (segment fields and page descriptors) and segments_high; its
// segment-table entries and every free one. Persisted in that order, each group durable before the
// next: a power failure before the entries leaves a segment the settle
// would have handed out still free in the table. Not covered (docs/persistence.md): a
// power failure in the middle of a group can leave a page whose free list
// and descriptor disagree, and one between the headers and the table, in
// a segment that plain allocation freed and took again for another use,
// leaves its new header under its old entry; `larder check --repair`
// rebuilds both.
enum class settle_group : std::uint8_t { links, headers, entries };

class settle_collector {
 public:
  virtual void add(settle_group group, void* address, std::size_t size) noexcept = 0;

 protected:
  ~settle_collector() = default;
};

// Clears the marks of `r`'s marked segments that belong to one of
// pods[0, pod_count) and hands `out` what settles them; other pods'
// segments are left alone (a transaction settles only what its own
// allocator metadata rests on), and `*others_left` says whether any is
// marked. Other threads of the region may go on allocating: what they
// change meanwhile they mark again. Returns the segments settled.
// Allocates (std::bad_alloc).
std::size_t collect_unsettled(region& r, const std::uint32_t* pods, std::size_t pod_count, settle_collector& out,
                              bool* others_left);

}  // namespace larder::alloc
