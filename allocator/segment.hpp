// Segments and heap pages: the allocator's in-heap metadata.
// A segment is a 4 MiB aligned piece of a heap that belongs to one pod. Its
// first 8 KiB hold this header: one page descriptor per 64 KiB slice. A heap
// page is a run of slices holding blocks of one size; its descriptor is the
// one of its first slice. Huge blocks span whole segments (see huge.cpp).
//
// The fields marked "process-local" describe which thread owns a page in
// the process that has the heap open; they are reset when a heap is opened
// and mean nothing on media. Everything else is part of the heap's format
// (docs/format/heap.md).
#pragma once

#include "recovery/layout.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace larder::alloc {

using layout::kSegmentShift;
using layout::kSegmentSize;
using layout::kSliceShift;
using layout::kSliceSize;
using layout::kSlicesPerSegment;

struct block {
  block* next;
};

inline constexpr std::uint8_t kNoCacheBin = 0xFF;

struct local_heap;

// Page flags.
inline constexpr std::uint8_t kPageInFull = 1;      // in the owner's full queue
inline constexpr std::uint8_t kPageHasAligned = 2;  // holds interior (aligned) pointers
inline constexpr std::uint8_t kPageHuge = 4;        // the one block of a huge segment run
// Set aside by `larder check --repair` (format 1.4): which blocks the page
// holds could not be told, so none is ever handed out or freed again; the
// descriptor covers its slice run as one block (see heap_repair.hpp).
inline constexpr std::uint8_t kPageQuarantined = 8;

// page::xthread_free packs three things into one word, so that one atomic
// operation updates them together: bits 0-1 the delay_state, bits 2-47 the
// address of the first block of the remote-free list (blocks are 16-byte
// aligned and user addresses fit in 47 bits), bits 48-63 how many blocks
// the list holds (a page holds at most 4096).
inline constexpr std::uintptr_t kRemoteStateMask = 3;
inline constexpr unsigned kRemoteCountShift = 48;
inline constexpr std::uintptr_t kRemoteListMask = ((std::uintptr_t{1} << kRemoteCountShift) - 1) & ~kRemoteStateMask;

inline block* remote_list(std::uintptr_t word) noexcept { return reinterpret_cast<block*>(word & kRemoteListMask); }
inline std::uint32_t remote_count(std::uintptr_t word) noexcept {
  return static_cast<std::uint32_t>(word >> kRemoteCountShift);
}

// The delay_state values of page::xthread_free (see page_ops.hpp).
enum delay_state : std::uintptr_t {
  kNoDelayed = 0,     // other threads push onto xthread_free
  kUseDelayed = 1,    // page is full: the next remote free tells the owner heap
  kDelaying = 2,      // a remote free is telling the owner heap right now
  kNeverDelayed = 3,  // page has no owner heap (abandoned)
};

struct page {
  block* free;                // blocks ready for the owner
  std::uint16_t used;         // blocks handed out, counting unreturned remote frees
  std::uint8_t cache_bin;     // bin if freed blocks may go to the thread cache, else kNoCacheBin
  // Shared writers: 1 while the owner takes the remote list (page_ops.hpp,
  // fold_gate). Format 1.7; zero before and elsewhere.
  std::atomic<std::uint8_t> folding;
  std::uint16_t capacity;     // blocks that fit in the page
  std::uint16_t reserved;     // blocks carved out of the page so far
  std::atomic<std::uintptr_t> owner_tid;  // process-local: owning thread, 0 if none
  std::atomic<std::uintptr_t> xthread_free;  // remote frees | delay_state
  std::atomic<local_heap*> heap;             // process-local: owner heap
  page* next;                 // process-local: queue links
  page* prev;
  std::uint32_t block_size;   // bytes per block (huge: see segment::huge_size)
  std::uint8_t slice_count;   // slices in this page; 0 for a free slice
  std::uint8_t slice_offset;  // in a continuation slice: distance to the first
  std::uint8_t bin;
  std::atomic<std::uint8_t> flags;  // kPage* bits; read by remote frees
};
// One cache line, so the free path touches one line of metadata.
static_assert(sizeof(page) == 64);

// "LRDRSEGM".
inline constexpr std::uint64_t kSegmentMagic = 0x4D4745535244524Cull;
inline constexpr std::size_t kSegmentHeaderSize = 8192;

struct segment {
  std::uint64_t magic;
  std::uint32_t pod;            // owning pod id
  std::uint32_t span;           // segments covered (1 unless huge)
  std::uint64_t free_slices;    // bit i set: slice i is free
  std::uint64_t unpurged;       // bit i set: free slice i still holds memory
  segment* next_with_free;      // process-local: pod arena's list
  std::uint8_t listed;          // process-local: on that list
  // Set when plain allocation (outside a transaction) changes the
  // segment's metadata, which then reaches the media only at close: a
  // transaction settles the segment before it makes any of it durable
  // (allocator/unsettled.hpp). Format 1.5; zero before.
  std::uint8_t unsettled;
  // On a heap with shared writers (format 1.6): the client that allocates
  // from this segment's pages; layout::kNoClient when none does (its
  // client left or died), and any client may adopt it. Zero elsewhere.
  std::uint16_t client;
  std::uint32_t huge_offset;    // huge: offset of the block from the segment start
  std::uint64_t huge_size;      // huge: the size asked for
  std::uint64_t holes;          // bit i set: slice i may have no storage in the file (file and shm heaps)
  page pages[kSlicesPerSegment];
  // Shared writers (format 1.7; zero before and elsewhere). Bit L: the
  // open transaction of undo-log lane L pushed blocks it frees onto remote
  // lists of this segment's pages, which no owner folds in until that
  // transaction ends (page_ops.hpp, fold_gate).
  std::atomic<std::uint64_t> pending_pushes;
  // Huge: lane + 1 of the transaction that frees this block at its commit
  // (0: none), so that a client dying between the commit and the free
  // leaves the free to whoever recovers it.
  std::uint32_t freeing_lane;
  std::uint32_t unused;
};
static_assert(sizeof(segment) <= kSegmentHeaderSize);
// Evicted pages (format 1.8; docs/tiers.md), at the end of the header's
// padding, which the allocator never writes: bit i of the map is set while
// OS page i of the segment has its only copy in a lower tier, the one the
// heap's migration record names. The header's own pages are never
// evicted. Written by the runtime's migrator with atomic operations only.
inline constexpr std::size_t kOsPagesPerSegment = kSegmentSize / 4096;
inline constexpr std::size_t kHeaderOsPages = kSegmentHeaderSize / 4096;
inline constexpr std::size_t kEvictedMapOffset = kSegmentHeaderSize - kOsPagesPerSegment / 8;
inline std::uint64_t* evicted_map(segment* s) noexcept {
  return reinterpret_cast<std::uint64_t*>(reinterpret_cast<char*>(s) + kEvictedMapOffset);
}
// Sets or clears the bit of OS page `page` (0..kOsPagesPerSegment) of `s`.
inline void mark_evicted(segment* s, std::size_t page, bool evicted) noexcept {
  std::uint64_t* word = &evicted_map(s)[page / 64];
  const std::uint64_t bit = std::uint64_t{1} << (page % 64);
  if (evicted)
    __atomic_fetch_or(word, bit, __ATOMIC_SEQ_CST);
  else
    __atomic_fetch_and(word, ~bit, __ATOMIC_SEQ_CST);
}
inline bool is_evicted(segment* s, std::size_t page) noexcept {
  return (__atomic_load_n(&evicted_map(s)[page / 64], __ATOMIC_SEQ_CST) >> (page % 64) & 1) != 0;
}

// The part of a segment header that means anything on media (segment
// fields and page descriptors); the rest of its 8 KiB is padding (but for
// the evicted map above).
inline constexpr std::size_t kHeaderMetadataBytes = sizeof(segment);
static_assert(offsetof(segment, pages) == 64);
static_assert(kEvictedMapOffset >= sizeof(segment), "the evicted map lies in the header's padding");

inline segment* segment_of(const void* p) noexcept {
  return reinterpret_cast<segment*>(reinterpret_cast<std::uintptr_t>(p) & ~(kSegmentSize - 1));
}

// Whether the segment starting at `start` begins with a segment header.
// A free segment may still hold one from an allocation that recovery
// rolled back (its header was new memory, which the log does not keep).
inline bool holds_segment_header(const void* start) noexcept {
  return static_cast<const segment*>(start)->magic == kSegmentMagic;
}

// Makes a free segment that is taken for other use (an undo log) stop
// looking like a segment with a header. Returns the bytes it changed, for
// the caller to make durable, or nullptr when there was nothing to clear.
inline std::uint64_t* clear_old_header(segment* s) noexcept {
  if (s->magic == 0) return nullptr;
  s->magic = 0;
  return &s->magic;
}

inline std::size_t slice_index(const segment* s, const void* p) noexcept {
  return (reinterpret_cast<std::uintptr_t>(p) - reinterpret_cast<std::uintptr_t>(s)) >> kSliceShift;
}

// The page holding `p`, for a pointer into a pages segment.
inline page* page_of(segment* s, const void* p) noexcept {
  page* pg = &s->pages[slice_index(s, p)];
  return pg - pg->slice_offset;
}

inline std::uintptr_t segment_index_to_address(std::uintptr_t base, std::size_t index) noexcept {
  return base + (index << kSegmentShift);
}

// First byte of the page's blocks. Slice 0 starts after the segment header.
inline std::uint8_t* page_start(segment* s, const page* pg) noexcept {
  std::size_t index = static_cast<std::size_t>(pg - s->pages);
  std::size_t offset = index == 0 ? kSegmentHeaderSize : (index << kSliceShift);
  return reinterpret_cast<std::uint8_t*>(s) + offset;
}

// Bytes of blocks a run of `slices` slices from slice `first` holds.
inline std::size_t run_area(std::size_t first, std::size_t slices) noexcept {
  std::size_t bytes = slices << kSliceShift;
  return first == 0 ? bytes - kSegmentHeaderSize : bytes;
}

inline std::size_t page_area(const page* pg, std::size_t index) noexcept { return run_area(index, pg->slice_count); }

}  // namespace larder::alloc
