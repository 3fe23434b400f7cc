// Allocation and free inside a transaction; see logged_alloc.hpp.
#include "allocator/logged_alloc.hpp"

#include <errno.h>

namespace larder::alloc {

void* allocate_direct_logged(local_heap* h, std::size_t size, metadata_sink& sink, int* err) noexcept {
  constexpr std::size_t kLinksPerBatch = 64;
  *err = 0;
  page* pg = h->direct[(size + 15) >> 4];
  block* b = pg->free;
  if (b == nullptr && pg->reserved >= pg->capacity) return nullptr;
  metadata_range ranges[1 + kLinksPerBatch];
  std::size_t count = 0;
  if (!sink.logged(pg, sizeof(page))) ranges[count++] = {pg, sizeof(page)};
  const std::size_t changing = count;
  if (b != nullptr && !sink.logged(b, sizeof(block))) {
    // Popped blocks get overwritten; a rollback needs their links back.
    for (block* link = b; count < changing + kLinksPerBatch && link != nullptr && !sink.logged(link, sizeof(block));
         link = link->next)
      ranges[count++] = {link, sizeof(block)};
  }
  if ((*err = sink.log_batch(ranges, count, changing)) != 0) return nullptr;
  ++pg->used;
  if (b != nullptr) {
    pg->free = b->next;
    return b;
  }
  // Carve the next fresh block without linking it anywhere.
  void* fresh = page_start(segment_of(pg), pg) + std::size_t{pg->reserved} * pg->block_size;
  ++pg->reserved;
  return fresh;
}

std::size_t free_writes(const region& r, void* p, metadata_range out[2]) noexcept {
  // A block on a segment boundary is huge.
  if ((reinterpret_cast<std::uintptr_t>(p) & (kSegmentSize - 1)) == 0) return 0;
  if (layout::entry_state(r.entry(r.segment_index(p))) != layout::kSegmentPages) return 0;
  out[0] = {page_of(segment_of(p), p), sizeof(page)};
  out[1] = {p, sizeof(block)};
  return 2;
}

}  // namespace larder::alloc
