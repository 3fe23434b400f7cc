// Huge blocks; see huge.hpp.
#include "allocator/huge.hpp"

#include "allocator/alloc.hpp"
#include "allocator/arena.hpp"
#include "allocator/metadata_log.hpp"
#include "allocator/unsettled.hpp"

#include <errno.h>

namespace larder::alloc {

namespace {

constexpr std::size_t kMaxHugeAlignment = std::size_t{1} << 30;

std::size_t segments_for(std::size_t bytes) { return (bytes + kSegmentSize - 1) >> kSegmentShift; }

std::size_t span_bytes(const segment* head) { return std::size_t{head->span} << kSegmentShift; }

}  // namespace

void* huge_alloc(local_heap* h, std::size_t size, std::size_t alignment, bool* zeroed) noexcept {
  if (alignment < kSliceSize) alignment = kSliceSize;
  if (alignment > kMaxHugeAlignment || size > kMaxRequest) {
    errno = ENOMEM;
    return nullptr;
  }
  // With an alignment past half a segment the block may start in a later
  // segment of the run; it then sits on a segment boundary, which free()
  // recognises.
  std::size_t worst_offset = alignment <= kSegmentSize / 2 ? alignment : alignment + kSliceSize;
  std::size_t count = segments_for(worst_offset + size);
  region* r = h->arena->owner;
  bool fresh = false;
  huge_request request{size, alignment};
  segment* s = r->acquire(count, h->arena->pod, layout::kSegmentHugeHead, &fresh, &request);
  if (s == nullptr) return nullptr;
  if (zeroed != nullptr) *zeroed = fresh;
  return reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(s) + s->huge_offset);
}

void init_huge_header(segment* s, const huge_request& request) noexcept {
  auto base = reinterpret_cast<std::uintptr_t>(s);
  std::uintptr_t start = (base + kSegmentHeaderSize + request.alignment - 1) & ~(request.alignment - 1);
  page* pg = &s->pages[0];
  s->huge_size = request.size;
  s->huge_offset = static_cast<std::uint32_t>(start - base);
  pg->capacity = 1;
  pg->used = 1;
  pg->slice_count = kSlicesPerSegment;
  pg->flags.store(kPageHuge, std::memory_order_relaxed);
  s->free_slices = 0;
}

void huge_free(region* r, segment* head) noexcept { r->release(head, head->span); }

std::size_t huge_usable(segment* head, const void* p) noexcept {
  auto end = reinterpret_cast<std::uintptr_t>(head) + span_bytes(head);
  return end - reinterpret_cast<std::uintptr_t>(p);
}

bool huge_resize_in_place(region* r, segment* head, void* p, std::size_t size) noexcept {
  std::size_t offset = reinterpret_cast<std::uintptr_t>(p) - reinterpret_cast<std::uintptr_t>(head);
  std::size_t needed = segments_for(offset + size);
  if (size <= kLargeMax / 2) return false;  // small enough to move to a page
  note_plain_change(head);
  if (needed < head->span) {
    // A shared writer's transaction gives no segment back before its
    // commit (see pod_arena::release_slices): the block moves instead.
    if (r->shared_writers() && metadata_logged()) return false;
    std::size_t extra = head->span - needed;
    auto* tail = reinterpret_cast<segment*>(reinterpret_cast<std::uintptr_t>(head) + (needed << kSegmentShift));
    // The span shrinks first: a kill before the release leaves tails of
    // nobody, which opening frees.
    head->span = static_cast<std::uint32_t>(needed);
    std::atomic_signal_fence(std::memory_order_release);
    r->release(tail, extra);
  } else if (needed > head->span && !r->extend(head, head->span, needed - head->span)) {
    return false;
  }
  head->huge_size = size;
  return true;
}

}  // namespace larder::alloc
