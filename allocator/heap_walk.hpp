// The one walker over a heap's allocator metadata: the segment table, every
// used segment's header and every heap page (docs/format/heap.md, "Segment
// header"). Each invariant is written here once; what to do about a broken
// one is the caller's, through a reporter (the shape of LevelDB's
// log::Reader::Reporter):
//   open                stops at the first damage (region::validate_segments)
//   larder check        lists every problem with its place (runtime/check.cpp)
//   --repair, salvage   learn what each page and huge block holds (heap_map)
//   debug builds        region::is_valid(), the full walk, as an expensive
//                       assertion
// The walk only reads, and reads the heap through a view, so a heap mapped
// away from its base (the checker's fallback) is walked the same way: every
// address stored in the heap is translated and never followed before it is
// known to lie inside the readable part.
#pragma once

#include "allocator/segment.hpp"
#include "recovery/layout.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace larder::alloc {

// A heap as this process has it mapped.
struct heap_view {
  std::uint8_t* local = nullptr;  // where the heap's first byte is mapped here
  std::uint64_t base = 0;         // where the heap's own pointers assume it
  std::uint64_t size = 0;         // bytes of the heap in use (the superblock's size)
  std::uint64_t readable = 0;     // bytes from `local` that may be read (backed by the file)
  std::uint64_t reserve = 0;      // the reserve: table entries past it are never read

  layout::heap_meta* meta() const noexcept { return reinterpret_cast<layout::heap_meta*>(local + layout::kMetaOffset); }
  // Bytes [offset, offset + size) of the heap, when readable; else nullptr.
  std::uint8_t* at(std::uint64_t offset, std::uint64_t bytes) const noexcept {
    if (offset > readable || bytes > readable - offset) return nullptr;
    return local + offset;
  }
  // The local address of heap address `address`, when readable.
  std::uint8_t* translate(std::uint64_t address, std::uint64_t bytes) const noexcept {
    return address < base ? nullptr : at(address - base, bytes);
  }
  // The header of segment i, when readable.
  segment* segment_at(std::size_t i) const noexcept {
    return reinterpret_cast<segment*>(at(std::uint64_t{i} << kSegmentShift, kSegmentHeaderSize));
  }
  // Segment-table entry i (a writer may change entries meanwhile).
  std::uint32_t entry(std::size_t i) const noexcept { return __atomic_load_n(&meta()->segments[i], __ATOMIC_ACQUIRE); }
};

// Where a problem lies; text() names it as every report does.
struct walk_place {
  enum kind_t : std::uint8_t {
    metadata,  // the metadata block (segments_high)
    table,     // segment-table entry `segment`
    segment,   // segment `segment` as a whole
    header,    // its header
    page,      // the page descriptor of slice `slice`
  };
  kind_t kind = metadata;
  std::size_t segment_index = 0;
  std::size_t slice = 0;
  // "segment table entry 5", "segment 5 (offset 0x1400000)", "segment 5
  // (offset 0x1400000) header", "segment 5 page descriptor of slice 3
  // (offset 0x14000c0)".
  std::string text() const;
};

// A heap page's size class and what follows from it.
struct page_geometry {
  std::size_t bin = 0;
  std::size_t block_size = 0;
  std::size_t slices = 0;
  std::size_t capacity = 0;  // blocks that fit
};

enum class page_state : std::uint8_t {
  sound,          // every invariant holds
  lists_damaged,  // its size class is known (as recorded, or from two of
                  // bin, block size and slice count that agree) but a
                  // list, a count or another field is not as it must be
  unreadable,     // which blocks it holds cannot be told
  quarantined,    // set aside by a repair: never handed out again
};

// What a walk learned about one heap page.
struct page_facts {
  std::size_t segment = 0;
  std::size_t slice = 0;
  std::size_t slices = 1;  // the run it covers (unreadable: the slices that look like its own)
  page_state state = page_state::sound;
  page_geometry geometry;           // when the state is sound or lists_damaged
  bool geometry_recovered = false;  // a field of the size class was outvoted
  std::size_t reserved = 0;         // carved blocks as recorded, at most capacity
  std::size_t used = 0;             // as recorded
  std::uint8_t flags = 0;
  std::uint64_t start = 0;  // heap address of its first block
  // Over `capacity` blocks, with the full walk: the blocks that the free
  // and remote-free lists name, up to the first link that cannot be right.
  std::vector<bool> listed;
};

enum class huge_state : std::uint8_t {
  sound,
  header_damaged,  // where the block starts is known (as recorded, or the one
                   // possible offset one flipped bit away); other fields are not as they must be
  unreadable,      // where the block starts cannot be told
  quarantined,     // set aside by a repair
};

struct huge_facts {
  std::size_t segment = 0;
  std::size_t span = 1;  // from the segment table: the head and the continuations after it
  std::uint32_t pod = 0;
  huge_state state = huge_state::sound;
  std::uint64_t offset = 0;  // of the block from the segment start (header_damaged: as it must be)
  std::uint64_t size = 0;    // its bytes, at most what the span holds
};

// A segment of heap pages, after its pages were walked.
struct pages_segment_facts {
  std::size_t segment = 0;
  std::uint32_t pod = 0;          // from the segment table
  bool header_damaged = false;    // magic, pod, span or unpurged not as they must be
  std::uint64_t free_slices = 0;  // as the pages found say it should be
};

class walk_reporter {
 public:
  virtual ~walk_reporter() = default;
  // Damage at `place`; `message` is the whole line, place included.
  // Returns whether the walk goes on.
  virtual bool damage(const walk_place& place, const std::string& message) = 0;
  // Not damage: what a process stopped at any instant leaves, which the
  // next writer open clears, or a page a repair set aside.
  virtual void notice(const walk_place& place, const std::string& message) {
    (void)place;
    (void)message;
  }
  // A block that a page's free or remote-free list names, as the walk
  // follows the list (the block's first word links to the next), before
  // page() for that page. With full_lists every listed block, in list order.
  virtual void list_block(std::uint64_t address) { (void)address; }
  virtual void page(const page_facts& facts) { (void)facts; }
  virtual void huge(const huge_facts& facts) { (void)facts; }
  virtual void pages_segment(const pages_segment_facts& facts) { (void)facts; }
};

struct walk_options {
  // Follow every free list to its end (reads the free blocks). Without it a
  // free list is checked at its head only, as open does to keep from
  // reading every free block of the heap; remote-free lists are always
  // walked (open folds them in).
  bool full_lists = false;
  // Check that every segment-table entry past segments_high, up to the
  // reserve, is free: reads up to 2 MiB of table that no segment uses.
  // Without it the walk reads only what the segments in use need.
  bool table_tail = true;
  // When set, only the segments it marks (by index) are walked, and the
  // table is not checked: a walk over a few segments (settling them,
  // allocator/unsettled.hpp).
  const std::vector<bool>* segments = nullptr;
};

struct walk_totals {
  std::size_t segments = 0;           // in use, segment 0 excluded
  std::size_t pages = 0;              // heap pages whose size class is sound
  std::size_t blocks_in_use = 0;      // huge blocks count one
  std::size_t bytes_in_use = 0;       // block sizes (huge: the size asked for)
  std::size_t quarantined_pages = 0;  // pages and huge blocks set aside
  std::size_t quarantined_bytes = 0;
  std::size_t damage = 0;  // damage reported
  bool stopped = false;    // the reporter ended the walk
};

// Walks the segment table and every used segment of `view`.
walk_totals walk_heap(const heap_view& view, const walk_options& options, walk_reporter& reporter);

// `value` as 0x-prefixed hexadecimal, as every report writes addresses.
std::string hex(std::uint64_t value);

// "free", "heap pages", "huge block head", ... for a segment-table state.
const char* segment_state_name(std::uint32_t state) noexcept;

// The size class that two of a descriptor's bin, block size and slice count
// agree on (all three when sound); false when no two agree.
bool page_class(const page& pg, std::size_t slice, page_geometry* out, bool* recovered) noexcept;

}  // namespace larder::alloc
