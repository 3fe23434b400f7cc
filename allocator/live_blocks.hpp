// Which blocks of a heap are live, as of two moments: what a transaction
// that captured pages needs to write back only the blocks that were live
// when capture began and are live still (runtime/page_capture.cpp). A
// block is free when it was never carved, is on its page's free or
// remote-free list, or is held free outside its page by a thread's cache
// or delayed-free list ("spare" blocks, which only the holding thread can
// list: for_each_spare_block).
#pragma once

#include "allocator/region.hpp"
#include "allocator/segment.hpp"

#include <cstddef>
#include <cstdint>

namespace larder::alloc {

// The bytes of a heap as of some moment.
class earlier_heap_bytes {
 public:
  // The bytes at `address` as they were; valid to the end of its OS page.
  virtual const void* at(std::uintptr_t address) const noexcept = 0;

 protected:
  ~earlier_heap_bytes() = default;
};

// Calls visit(context, block) for each block of `r` that the calling
// thread holds free outside its page.
void for_each_spare_block(const region& r, void (*visit)(void* context, std::uintptr_t block), void* context) noexcept;

// Splits ranges of pages segments into the pieces that lie outside blocks
// free at either moment: `then` (a view, with the spare blocks of that
// moment) or now (the live heap, with the spare blocks of now). Spare
// lists are sorted and must outlive the object. Not thread-safe.
class live_blocks {
 public:
  live_blocks(const region& r, const earlier_heap_bytes& then, const std::uintptr_t* spare_then, std::size_t spare_then_count,
              const std::uintptr_t* spare_now, std::size_t spare_now_count) noexcept
      : region_(r),
        then_view_(then),
        spare_then_{spare_then, spare_then_count},
        spare_now_{spare_now, spare_now_count} {}
  live_blocks(const live_blocks&) = delete;
  live_blocks& operator=(const live_blocks&) = delete;

  // Calls emit(context, start, size) for each piece of [address, address +
  // size), a range inside one OS page of a segment that held heap pages
  // `then`, that lies in no block free then or now. Nothing when its slice
  // was free then, or its page is not the same page now (every block of
  // it was freed since, and what lies there now is newer). Ranges are best
  // given in address order: the last page read is kept.
  void pieces(std::uintptr_t address, std::size_t size,
              void (*emit)(void* context, std::uintptr_t start, std::size_t size), void* context) noexcept;

 private:
  // A page holds at most a slice's worth of 16-byte blocks.
  static constexpr std::size_t kMaxPageBlocks = kSliceSize / 16;
  struct spare_list {
    const std::uintptr_t* blocks;
    std::size_t count;
  };
  // The blocks of one heap page, and which of them are free.
  struct page_blocks {
    std::size_t head = 0;  // slice of its descriptor
    std::uintptr_t start = 0;
    std::size_t block_size = 0;
    std::size_t capacity = 0;
    std::uint64_t free[kMaxPageBlocks / 64] = {};  // bit i: block i is free

    std::uintptr_t end() const noexcept { return start + capacity * block_size; }
    bool is_free(std::size_t i) const noexcept { return (free[i >> 6] >> (i & 63)) & 1; }
    void mark(std::uintptr_t b) noexcept;
  };
  template <class Read>
  bool read_page(Read&& read, segment* s, std::size_t k, spare_list spare, page_blocks* out) const noexcept;

  const region& region_;
  const earlier_heap_bytes& then_view_;
  spare_list spare_then_, spare_now_;
  // The page read last.
  segment* segment_ = nullptr;
  std::size_t head_ = 0;
  bool live_ = false;  // it is still there, holding the blocks `then_` lists
  page_blocks then_;
  page_blocks now_;
};

}  // namespace larder::alloc
