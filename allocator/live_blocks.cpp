// Live blocks at two moments; see live_blocks.hpp.
#include "allocator/live_blocks.hpp"

#include "allocator/local_heap.hpp"
#include "allocator/thread.hpp"

#include <algorithm>
#include <atomic>

namespace larder::alloc {

void for_each_spare_block(const region& r, void (*visit)(void* context, std::uintptr_t block), void* context) noexcept {
  thread_data* td = current_thread();
  if (td == nullptr) return;
  auto in_heap = [&](const block* b) {
    auto at = reinterpret_cast<std::uintptr_t>(b);
    return at >= r.base() && sizeof(block) <= r.committed() && at - r.base() <= r.committed() - sizeof(block);
  };
  auto visit_list = [&](const block* b, std::size_t limit) {
    for (std::size_t n = 0; b != nullptr && n < limit && in_heap(b); ++n) {
      visit(context, reinterpret_cast<std::uintptr_t>(b));
      b = b->next;
    }
  };
  for (local_heap* h = td->heaps; h != nullptr; h = h->next_in_thread) {
    if (h->owner_region.load(std::memory_order_acquire) != &r) continue;
    for (std::size_t bin = 0; bin < kCachedBins; ++bin) visit_list(h->cache[bin], kCache.limit[bin] + 1u);
    // Other threads push at its head; the blocks behind a head stay put.
    visit_list(h->delayed_free.load(std::memory_order_acquire), std::size_t{1} << 20);
  }
}

void live_blocks::page_blocks::mark(std::uintptr_t b) noexcept {
  if (b < start || b >= end() || (b - start) % block_size != 0) return;
  std::size_t i = (b - start) / block_size;
  free[i >> 6] |= std::uint64_t{1} << (i & 63);
}

// Reads the heap page holding slice `k` of `s` through `read` (the bytes
// at an address, as of some moment): false when the slice was free.
template <class Read>
bool live_blocks::read_page(Read&& read, segment* s, std::size_t k, spare_list spare, page_blocks* out) const noexcept {
  const auto* seg = static_cast<const segment*>(read(reinterpret_cast<std::uintptr_t>(s)));
  if ((seg->free_slices >> k) & 1) return false;
  const auto* slice = static_cast<const page*>(read(reinterpret_cast<std::uintptr_t>(&s->pages[k])));
  if (slice->slice_offset > k) return false;
  std::size_t head = k - slice->slice_offset;
  const auto* pg = static_cast<const page*>(read(reinterpret_cast<std::uintptr_t>(&s->pages[head])));
  if (pg->slice_count == 0 || pg->block_size == 0 || head + pg->slice_count <= k || pg->capacity > kMaxPageBlocks)
    return false;
  out->head = head;
  out->start = reinterpret_cast<std::uintptr_t>(page_start(s, &s->pages[head]));
  out->block_size = pg->block_size;
  out->capacity = pg->capacity;
  std::fill(std::begin(out->free), std::end(out->free), 0);
  for (std::size_t i = pg->reserved; i < out->capacity; ++i) out->free[i >> 6] |= std::uint64_t{1} << (i & 63);
  const std::uintptr_t base = region_.base();
  const std::size_t committed = region_.committed();
  auto walk = [&](const block* b) {
    for (std::size_t n = 0; b != nullptr && n < out->capacity; ++n) {
      auto at = reinterpret_cast<std::uintptr_t>(b);
      if (at < out->start || at >= out->end() || at < base || at - base > committed - sizeof(block)) return;
      out->mark(at);
      b = static_cast<const block*>(read(at))->next;
    }
  };
  walk(pg->free);
  walk(remote_list(pg->xthread_free.load(std::memory_order_acquire)));
  const std::uintptr_t* spare_end = spare.blocks + spare.count;
  for (auto it = std::lower_bound(spare.blocks, spare_end, out->start); it != spare_end && *it < out->end(); ++it)
    out->mark(*it);
  return true;
}

void live_blocks::pieces(std::uintptr_t address, std::size_t size,
                         void (*emit)(void* context, std::uintptr_t start, std::size_t size), void* context) noexcept {
  auto then_bytes = [&](std::uintptr_t a) { return then_view_.at(a); };
  auto now_bytes = [](std::uintptr_t a) { return reinterpret_cast<const void*>(a); };
  auto* s = segment_of(reinterpret_cast<void*>(address));
  std::size_t k = slice_index(s, reinterpret_cast<void*>(address));
  const auto* seg = static_cast<const segment*>(then_bytes(reinterpret_cast<std::uintptr_t>(s)));
  const auto* slice = static_cast<const page*>(then_bytes(reinterpret_cast<std::uintptr_t>(&s->pages[k])));
  // A slice free then holds only blocks made since.
  if (((seg->free_slices >> k) & 1) || slice->slice_offset > k) return;
  std::size_t head = k - slice->slice_offset;
  if (segment_ != s || head_ != head) {
    segment_ = s;
    head_ = head;
    // The same page must still be there; if not, all its blocks were freed
    // and what lies there now is newer.
    live_ = read_page(then_bytes, s, k, spare_then_, &then_) && read_page(now_bytes, s, k, spare_now_, &now_) &&
            now_.head == then_.head && now_.start == then_.start && now_.block_size == then_.block_size &&
            now_.capacity == then_.capacity;
  }
  if (!live_) return;
  // Everything but the blocks free then or now.
  std::uintptr_t at = address, end = address + size, piece = at;
  auto flush = [&](std::uintptr_t upto) {
    if (upto > piece) emit(context, piece, upto - piece);
  };
  while (at < end) {
    if (at < then_.start || at >= then_.end()) {
      at = at < then_.start ? std::min(end, then_.start) : end;
      continue;
    }
    std::size_t i = (at - then_.start) / then_.block_size;
    std::uintptr_t block_end = std::min(end, then_.start + (i + 1) * then_.block_size);
    if (then_.is_free(i) || now_.is_free(i)) {
      flush(at);
      piece = block_end;
    }
    at = block_end;
  }
  flush(end);
}

}  // namespace larder::alloc
