// The walker; see heap_walk.hpp. Its messages are the lines `larder check`
// prints (docs/tools/larder.md).
#include "allocator/heap_walk.hpp"

#include "allocator/size_class.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <iterator>

namespace larder::alloc {

namespace {

std::string num(std::uint64_t value) { return std::to_string(value); }

}  // namespace

std::string hex(std::uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof(text), "0x%" PRIx64, value);
  return text;
}

const char* segment_state_name(std::uint32_t state) noexcept {
  switch (state) {
    case layout::kSegmentFree:
      return "free";
    case layout::kSegmentPages:
      return "heap pages";
    case layout::kSegmentHugeHead:
      return "huge block head";
    case layout::kSegmentHugeTail:
      return "huge block continuation";
    case layout::kSegmentMeta:
      return "metadata";
    case layout::kSegmentLog:
      return "undo log";
    default:
      return "unknown";
  }
}

namespace {

constexpr std::uint8_t kKnownPageFlags = kPageInFull | kPageHasAligned;

// Where a huge block can start in its run (huge.cpp, init_huge_header):
// at its alignment, a power of two from a slice to half a segment, or, for
// larger alignments, at a later segment boundary.
bool huge_offset_possible(std::uint64_t offset, std::uint64_t run_bytes) {
  if (offset < kSliceSize || offset >= run_bytes) return false;
  return offset <= kSegmentSize / 2 ? (offset & (offset - 1)) == 0 : offset % kSegmentSize == 0;
}

class walker {
 public:
  walker(const heap_view& view, const walk_options& options, walk_reporter& reporter)
      : view_(view), options_(options), reporter_(reporter), meta_(view.meta()) {}

  walk_totals run();

 private:
  // Reports damage; false once the reporter has ended the walk.
  bool damage(const walk_place& place, const std::string& message) {
    ++totals_.damage;
    if (!totals_.stopped && !reporter_.damage(place, message)) totals_.stopped = true;
    return !totals_.stopped;
  }
  bool damage_at(const walk_place& place, const std::string& what) { return damage(place, place.text() + ": " + what); }
  void check_table();
  void walk_pages_segment(std::size_t i, std::uint32_t entry);
  std::size_t walk_page(std::size_t i, std::size_t k, const segment& s, bool marked_free);
  std::size_t unreadable_run(std::size_t k, const segment& s) const;
  bool walk_list(const walk_place& place, bool report, const char* what, std::uint64_t head, std::uint64_t start,
                 std::size_t block_size, std::size_t reserved, bool to_the_end, std::vector<bool>* listed,
                 std::size_t* count);
  void walk_huge(std::size_t i, std::uint32_t entry, std::size_t* next);
  bool check_pod(std::size_t i, const segment& s, std::uint32_t pod, const walk_place& header);

  static walk_place at_table(std::size_t i) { return {walk_place::table, i, 0}; }
  static walk_place at_segment(std::size_t i) { return {walk_place::segment, i, 0}; }
  static walk_place at_header(std::size_t i) { return {walk_place::header, i, 0}; }
  static walk_place at_page(std::size_t i, std::size_t k) { return {walk_place::page, i, k}; }

  const heap_view& view_;
  const walk_options& options_;
  walk_reporter& reporter_;
  const layout::heap_meta* meta_;
  std::size_t high_ = 0;  // segments_high, clamped to what the heap's size and the file hold
  walk_totals totals_;
  page_facts facts_;  // of the page being walked
};

walk_totals walker::run() {
  const std::uint64_t recorded = meta_->segments_high;
  const std::uint64_t limit = view_.size >> kSegmentShift;
  const walk_place meta{walk_place::metadata, 0, 0};
  if (recorded == 0)
    damage(meta, "metadata block: segments_high is 0 (segment 0 itself is always in use)");
  else if (recorded > limit)
    damage(meta, "metadata block: segments_high " + num(recorded) + " runs past the heap's size (" + num(limit) +
                     " segments)");
  high_ = static_cast<std::size_t>(std::min(recorded, limit));
  if (high_ > (view_.readable >> kSegmentShift)) high_ = static_cast<std::size_t>(view_.readable >> kSegmentShift);
  if (totals_.stopped) return totals_;
  const std::vector<bool>* only = options_.segments;
  if (only == nullptr) check_table();
  for (std::size_t i = 1; i < high_ && !totals_.stopped;) {
    if (only != nullptr && (i >= only->size() || !(*only)[i])) {
      ++i;
      continue;
    }
    std::uint32_t e = view_.entry(i);
    std::uint32_t st = layout::entry_state(e);
    std::size_t next = i + 1;
    if (st != layout::kSegmentFree) ++totals_.segments;
    if (st == layout::kSegmentHugeTail) {
      reporter_.notice(at_segment(i), at_segment(i).text() +
                                          " is marked a huge block's continuation, but no huge block covers it (a "
                                          "process stopped between the steps of a huge allocation or free); "
                                          "opening the heap for writing frees it");
    } else if (st == layout::kSegmentLog) {
      if (layout::entry_pod(e) >= layout::kMaxLanes)
        damage(at_segment(i), at_segment(i).text() + " is marked undo log of lane " + num(layout::entry_pod(e)) +
                                  ", which cannot exist");
    } else if (st == layout::kSegmentPages) {
      walk_pages_segment(i, e);
    } else if (st == layout::kSegmentHugeHead) {
      walk_huge(i, e, &next);
    }
    i = next;
  }
  return totals_;
}

void walker::check_table() {
  if (view_.entry(0) != layout::segment_entry(layout::kSegmentMeta, 0) &&
      !damage(at_table(0), "segment table entry 0 is " + hex(view_.entry(0)) + ", not the metadata segment"))
    return;
  for (std::size_t i = 1; i < high_; ++i) {
    std::uint32_t st = layout::entry_state(view_.entry(i));
    if ((st > layout::kSegmentLog || st == layout::kSegmentMeta) &&
        !damage_at(at_table(i), "invalid state " + num(st) + " (entry " + hex(view_.entry(i)) + ")"))
      return;
  }
  // Past segments_high every entry of the reserve is free (entries past the
  // reserve are never read); compared a chunk at a time.
  static constexpr std::uint32_t kZeros[1024] = {};
  std::size_t past = 0, first_past = 0;
  const std::size_t limit =
      static_cast<std::size_t>(std::min<std::uint64_t>(view_.reserve >> kSegmentShift, layout::kMaxSegments));
  const std::size_t from = static_cast<std::size_t>(std::min<std::uint64_t>(meta_->segments_high, limit));
  const std::size_t scan_end = options_.table_tail ? limit : from;
  for (std::size_t i = from; i < scan_end;) {
    std::size_t n = std::min<std::size_t>(std::size(kZeros), scan_end - i);
    if (std::memcmp(&meta_->segments[i], kZeros, n * sizeof(std::uint32_t)) != 0) {
      for (std::size_t j = i; j < i + n; ++j)
        if (view_.entry(j) != layout::kSegmentFree && past++ == 0) first_past = j;
    }
    i += n;
  }
  if (past != 0 && !damage(at_table(first_past), num(past) + " segment table entries past segments_high (" +
                                                     num(meta_->segments_high) +
                                                     ") are not free, the first at segment " + num(first_past)))
    return;
  for (std::size_t i = high_; i < meta_->segments_high && i < limit; ++i) {
    if (view_.entry(i) == layout::kSegmentFree) continue;
    damage(at_segment(i), at_segment(i).text() + " is marked " +
                              segment_state_name(layout::entry_state(view_.entry(i))) +
                              " but lies past the end of the file or the heap");
    break;
  }
}

// The header checks a pages segment and a huge block share. False when the
// header does not hold what the segment table says.
bool walker::check_pod(std::size_t i, const segment& s, std::uint32_t pod, const walk_place& header) {
  bool sound = true;
  if (s.magic != kSegmentMagic) {
    sound = false;
    if (!damage_at(header, "bad magic " + hex(s.magic) + " (expected \"LRDRSEGM\")")) return false;
  }
  if (s.pod != pod) {
    sound = false;
    if (!damage_at(header, "pod " + num(s.pod) + ", but the segment table says " + num(pod))) return false;
  }
  if ((pod >= layout::kMaxPods || meta_->pods[pod].in_use != 1) &&
      !damage(at_segment(i), at_segment(i).text() + " belongs to pod " + num(pod) + ", which is not in use"))
    return false;
  if (s.unpurged & ~s.free_slices) {
    sound = false;
    damage_at(header, "slices " + hex(s.unpurged & ~s.free_slices) + " are marked unpurged but not free");
  }
  return sound;
}

void walker::walk_pages_segment(std::size_t i, std::uint32_t e) {
  const segment* s = view_.segment_at(i);
  if (s == nullptr) {
    damage(at_segment(i), at_segment(i).text() + " lies past the end of the file");
    return;
  }
  pages_segment_facts facts;
  facts.segment = i;
  facts.pod = layout::entry_pod(e);
  facts.header_damaged = !check_pod(i, *s, facts.pod, at_header(i));
  if (totals_.stopped) return;
  if (s->span != 1) {
    facts.header_damaged = true;
    if (!damage_at(at_header(i), "span " + num(s->span) + ", but a segment of pages spans 1")) return;
  }
  // Which slices are free follows from the pages: every slice no page
  // covers. A free slice's descriptor is stale by design (pages are
  // described before their slices leave the free set, and freed, empty,
  // before the descriptor is cleared), so only one that still holds blocks
  // in use contradicts its free bit.
  const std::uint64_t recorded_free = s->free_slices;
  std::uint64_t free_slices = 0;
  for (std::size_t k = 0; k < kSlicesPerSegment && !totals_.stopped;) {
    const page& pg = s->pages[k];
    bool marked_free = (recorded_free >> k) & 1;
    page_geometry g;
    bool recovered = false;
    bool live = pg.slice_count != 0 && page_class(pg, k, &g, &recovered) && !recovered &&
                k + g.slices <= kSlicesPerSegment && pg.used > 0 && pg.used <= pg.reserved && pg.reserved <= g.capacity;
    if (marked_free && !live) {
      free_slices |= std::uint64_t{1} << k;
      ++k;
      continue;
    }
    if (marked_free &&
        !damage_at(at_page(i, k), "the slice is marked free, but its page holds " + num(pg.used) + " blocks in use"))
      return;
    // In use with no page: free again only when nothing was ever carved
    // under its descriptor; otherwise it may hold the blocks of a page whose
    // descriptor lost its size class, and they cannot be told apart.
    if (!marked_free && pg.slice_count == 0 && pg.slice_offset == 0 && pg.reserved == 0 && pg.used == 0 &&
        pg.free == nullptr && !page_class(pg, k, &g, &recovered)) {
      if (!damage_at(at_page(i, k), "the slice is in use but belongs to no page")) return;
      free_slices |= std::uint64_t{1} << k;
      ++k;
      continue;
    }
    k += walk_page(i, k, *s, marked_free);
  }
  facts.free_slices = free_slices;
  if (!totals_.stopped) reporter_.pages_segment(facts);
}

// The slices an unreadable page at slice k seems to cover: itself and the
// continuation slices that point back at it.
std::size_t walker::unreadable_run(std::size_t k, const segment& s) const {
  std::size_t n = 1;
  while (k + n < kSlicesPerSegment && !((s.free_slices >> (k + n)) & 1) && s.pages[k + n].slice_count == 0 &&
         s.pages[k + n].slice_offset == n)
    ++n;
  return n;
}

// Walks the page starting at slice k; returns the slices it covers.
std::size_t walker::walk_page(std::size_t i, std::size_t k, const segment& s, bool marked_free) {
  const page& pg = s.pages[k];
  const walk_place place = at_page(i, k);
  // One page_facts for the whole walk, so that its block bitmap is not
  // allocated again for every page.
  page_facts& facts = facts_;
  std::vector<bool> listed = std::move(facts.listed);
  listed.clear();
  facts = page_facts();
  facts.listed = std::move(listed);
  facts.segment = i;
  facts.slice = k;
  facts.flags = pg.flags.load(std::memory_order_relaxed);
  facts.used = pg.used;
  facts.start = view_.base + (std::uint64_t{i} << kSegmentShift) + (k == 0 ? kSegmentHeaderSize : k << kSliceShift);
  bool sound = !marked_free;
  // A quarantined page is written whole (heap_repair.cpp, quarantine_page);
  // a flag alone, which one flipped bit can set, is not one.
  const std::size_t slices = pg.slice_count;
  if (facts.flags == kPageQuarantined && slices != 0 && k + slices <= kSlicesPerSegment && pg.bin == 0 &&
      pg.free == nullptr && pg.capacity == 1 && pg.reserved == 1 && pg.used == 1 &&
      pg.block_size == run_area(k, slices) && unreadable_run(k, s) >= slices) {
    facts.state = page_state::quarantined;
    facts.slices = slices;
    ++totals_.quarantined_pages;
    totals_.quarantined_bytes += run_area(k, slices);
    reporter_.notice(place, place.text() + ": quarantined by a repair (" + num(run_area(k, slices)) +
                                " bytes set aside; its blocks are never handed out again)");
    reporter_.page(facts);
    return slices;
  }
  page_geometry g;
  bool known = page_class(pg, k, &g, &facts.geometry_recovered);
  if (pg.slice_count != 0 && k + pg.slice_count > kSlicesPerSegment) {
    sound = false;
    if (!damage_at(place, num(pg.slice_count) + " slices run past the segment's end")) return 1;
  }
  if (pg.bin == 0 || pg.bin >= kBinCount) {
    sound = false;
    if (!damage_at(place, "size class " + num(pg.bin) + " does not exist")) return 1;
  } else {
    std::size_t size = kSizeClasses.block_size[pg.bin];
    if ((pg.block_size != size || slices_for_block(size) != pg.slice_count)) {
      sound = false;
      if (!damage_at(place, "block size " + num(pg.block_size) + " and " + num(pg.slice_count) +
                                " slices do not match size class " + num(pg.bin) + " (" + num(size) + " bytes)"))
        return 1;
    }
  }
  if (!known || k + g.slices > kSlicesPerSegment) {
    facts.state = page_state::unreadable;
    facts.slices = unreadable_run(k, s);
    reporter_.page(facts);
    return facts.slices;
  }
  facts.geometry = g;
  facts.slices = g.slices;
  ++totals_.pages;
  if (pg.slice_offset != 0) {  // page_of() steps back by it
    sound = false;
    damage_at(place, "slice_offset " + num(pg.slice_offset) + " in the page's first slice");
  }
  for (std::size_t j = 1; j < g.slices && !totals_.stopped; ++j) {
    const page& cont = s.pages[k + j];
    if ((s.free_slices >> (k + j)) & 1) {
      sound = false;
      damage_at(place, "its slice " + num(k + j) + " is marked free");
    } else if (cont.slice_count != 0 || cont.slice_offset != j) {
      sound = false;
      damage_at(at_page(i, k + j), "continuation of the page at slice " + num(k) + ", but it records slice_count " +
                                       num(cont.slice_count) + " and slice_offset " + num(cont.slice_offset));
    }
  }
  if (pg.capacity != g.capacity) {
    sound = false;
    damage_at(place, "capacity " + num(pg.capacity) + ", but " + num(g.capacity) + " blocks of " + num(g.block_size) +
                         " bytes fit");
  }
  if (pg.cache_bin != kNoCacheBin && (pg.cache_bin != g.bin || g.bin >= kCachedBins)) {
    sound = false;
    damage_at(place, "cache_bin " + num(pg.cache_bin) + " does not match size class " + num(g.bin));
  }
  if (facts.flags & ~kKnownPageFlags) {
    sound = false;
    damage_at(place, "unexpected flags " + hex(facts.flags));
  }
  if (totals_.stopped) return g.slices;
  facts.reserved = std::min<std::size_t>(pg.reserved, g.capacity);
  facts.listed.assign(g.capacity, false);
  // Counts out of order: the lists are still followed (repair learns what
  // they name), quietly: their own checks would only repeat the problem.
  bool counts_ok = pg.reserved <= g.capacity && pg.used <= pg.reserved;
  if (!counts_ok) {
    sound = false;
    if (!damage_at(place, "counts out of order (used " + num(pg.used) + ", reserved " + num(pg.reserved) +
                              ", capacity " + num(pg.capacity) + ")"))
      return g.slices;
  } else {
    totals_.blocks_in_use += pg.used;
    totals_.bytes_in_use += std::size_t{pg.used} * g.block_size;
  }
  std::size_t bound = counts_ok ? pg.reserved : g.capacity;
  std::size_t free_count = 0, remote_count = 0;
  std::uintptr_t remote = pg.xthread_free.load(std::memory_order_relaxed);
  bool lists_ok =
      walk_list(place, counts_ok, "free list", reinterpret_cast<std::uintptr_t>(pg.free), facts.start, g.block_size,
                bound, options_.full_lists, &facts.listed, &free_count) &&
      walk_list(place, counts_ok, "remote-free list", reinterpret_cast<std::uintptr_t>(alloc::remote_list(remote)),
                facts.start, g.block_size, bound, true, &facts.listed, &remote_count);
  if (!lists_ok) {
    sound = false;
  } else if (counts_ok) {
    if (remote_count != alloc::remote_count(remote)) {
      sound = false;
      damage_at(place, "the remote-free list holds " + num(remote_count) + " blocks but records " +
                           num(alloc::remote_count(remote)));
    } else if (remote_count > pg.used) {
      sound = false;
      damage_at(place, num(remote_count) + " remote frees but only " + num(pg.used) + " blocks in use");
    } else if (options_.full_lists && free_count + pg.used != pg.reserved) {
      // A process killed between the two stores of an allocation or a free
      // on this page leaves its count one off (one block both listed and
      // counted, or neither): the block in flight is leaked, never handed
      // out twice, so that is not damage.
      const std::size_t total = free_count + pg.used;
      const std::size_t carved = pg.reserved;
      if (total + 1 == carved || total == carved + 1) {
        reporter_.notice(place, place.text() + ": " + num(free_count) + " free blocks + " + num(pg.used) +
                                    " in use = " + num(total) + " of " + num(pg.reserved) +
                                    " carved: a process stopped during an allocation or free here (one block leaked)");
      } else {
        sound = false;
        damage_at(place,
                  num(free_count) + " free blocks + " + num(pg.used) + " in use != " + num(pg.reserved) + " carved");
      }
    }
  }
  facts.state = sound && !facts.geometry_recovered ? page_state::sound : page_state::lists_damaged;
  if (!totals_.stopped) reporter_.page(facts);
  return g.slices;
}

// Walks a block list of a page: every block must be one of the `reserved`
// carved blocks from `start`, and appear once (in either list). Without
// `to_the_end` only the head is checked; without `report` a broken link
// only ends the walk.
bool walker::walk_list(const walk_place& place, bool report, const char* what, std::uint64_t head, std::uint64_t start,
                       std::size_t block_size, std::size_t reserved, bool to_the_end, std::vector<bool>* listed,
                       std::size_t* count) {
  const std::uint64_t end = start + std::uint64_t{reserved} * block_size;
  std::size_t n = 0;
  auto fail = [&](std::uint64_t b, const std::string& why) {
    if (report) damage_at(place, std::string(what) + " entry " + num(n) + " (" + hex(b) + ") " + why);
    return false;
  };
  for (std::uint64_t b = head; b != 0; ++n) {
    if (b < start || b >= end)
      return fail(b,
                  "lies outside the page's " + num(reserved) + " carved blocks [" + hex(start) + ", " + hex(end) + ")");
    if ((b - start) % block_size != 0)
      return fail(b, "is not on a block boundary (block size " + num(block_size) + ")");
    std::size_t index = static_cast<std::size_t>((b - start) / block_size);
    if ((*listed)[index]) return fail(b, "appears twice in the page's free lists (a cycle or a double free)");
    (*listed)[index] = true;
    reporter_.list_block(b);
    if (!to_the_end) break;
    const std::uint8_t* local = view_.translate(b, sizeof(std::uint64_t));
    if (local == nullptr) return fail(b, "lies past the end of the file");
    std::memcpy(&b, local, sizeof(b));
  }
  *count = n;
  return true;
}

void walker::walk_huge(std::size_t i, std::uint32_t e, std::size_t* next) {
  const segment* s = view_.segment_at(i);
  if (s == nullptr) {
    damage(at_segment(i), at_segment(i).text() + " lies past the end of the file");
    return;
  }
  huge_facts facts;
  facts.segment = i;
  facts.pod = layout::entry_pod(e);
  bool sound = check_pod(i, *s, facts.pod, at_header(i));
  if (totals_.stopped) return;
  const std::string place = at_segment(i).text() + " (huge block)";
  // The run as the segment table has it: the head and the continuations
  // of its pod after it. A recorded span shorter than that is what a kill
  // while shrinking leaves (the rest are tails of nobody); a longer one,
  // or none, is damage, and the table's run is what it should be.
  std::size_t run = 1;
  while (i + run < high_ && view_.entry(i + run) == layout::segment_entry(layout::kSegmentHugeTail, facts.pod)) ++run;
  if (s->span == 0 || i + s->span > high_) {
    sound = false;
    if (!damage(at_header(i), place + ": span " + num(s->span) + " runs past segments_high (" + num(high_) + ")"))
      return;
    facts.span = run;
  } else if (s->span > run) {
    std::size_t j = i + run;
    sound = false;
    if (!damage(at_header(i), place + " spans " + num(s->span) + " segments, but segment " + num(j) + " is marked " +
                                  segment_state_name(layout::entry_state(view_.entry(j))) + " (entry " +
                                  hex(view_.entry(j)) + ")"))
      return;
    facts.span = run;
  } else {
    facts.span = s->span;
  }
  totals_.segments += facts.span - 1;
  *next = i + facts.span;
  const page& pg = s->pages[0];
  const std::uint8_t flags = pg.flags.load(std::memory_order_relaxed);
  const std::uint64_t bytes = std::uint64_t{facts.span} << kSegmentShift;
  facts.offset = s->huge_offset;
  facts.size = s->huge_size;
  if (flags == (kPageHuge | kPageQuarantined) && s->huge_offset == kSliceSize && s->huge_size == bytes - kSliceSize) {
    facts.state = huge_state::quarantined;
    ++totals_.quarantined_pages;
    totals_.quarantined_bytes += bytes;
    reporter_.notice(at_segment(i), place + ": quarantined by a repair (" + num(bytes) +
                                        " bytes set aside; never freed or handed out again)");
    reporter_.huge(facts);
    return;
  }
  if (flags != kPageHuge || pg.slice_count != kSlicesPerSegment || pg.capacity != 1 || pg.used != 1) {
    sound = false;
    if (!damage_at(at_page(i, 0), "not the descriptor of a live huge block (flags, slice_count, capacity, used)"))
      return;
  }
  if (s->free_slices != 0) {
    sound = false;
    if (!damage(at_header(i), place + ": free_slices is " + hex(s->free_slices) + ", not 0")) return;
  }
  // An offset one flipped bit away from exactly one that can be is that one.
  bool offset_ok = huge_offset_possible(s->huge_offset, bytes);
  if (!offset_ok) {
    std::size_t candidates = 0;
    for (unsigned bit = 0; bit < 32; ++bit) {
      std::uint64_t other = s->huge_offset ^ (std::uint64_t{1} << bit);
      if (huge_offset_possible(other, bytes) && other + s->huge_size <= bytes && ++candidates == 1)
        facts.offset = other;
    }
    offset_ok = candidates == 1;
  }
  if (!offset_ok || facts.offset != s->huge_offset || s->huge_size > bytes - s->huge_offset) {
    damage(at_header(i), place + ": the block (offset " + hex(s->huge_offset) + ", " + num(s->huge_size) +
                             " bytes) does not fit its " + num(facts.span) + " segments");
    facts.state = offset_ok ? huge_state::header_damaged : huge_state::unreadable;
    if (offset_ok) facts.size = std::min<std::uint64_t>(s->huge_size, bytes - facts.offset);
  } else {
    facts.state = sound ? huge_state::sound : huge_state::header_damaged;
    ++totals_.blocks_in_use;
    totals_.bytes_in_use += s->huge_size;
  }
  if (!totals_.stopped) reporter_.huge(facts);
}

}  // namespace

std::string walk_place::text() const {
  std::uint64_t at = std::uint64_t{segment_index} << kSegmentShift;
  switch (kind) {
    case metadata:
      return "metadata block";
    case table:
      return "segment table entry " + num(segment_index);
    case segment:
      return "segment " + num(segment_index) + " (offset " + hex(at) + ")";
    case header:
      return "segment " + num(segment_index) + " (offset " + hex(at) + ") header";
    case page:
      return "segment " + num(segment_index) + " page descriptor of slice " + num(slice) + " (offset " +
             hex(at + offsetof(alloc::segment, pages) + slice * sizeof(alloc::page)) + ")";
  }
  return {};
}

// Four fields follow from the size class: bin, block size, slice count and
// capacity. The class that at least three of them agree on is the page's;
// one damaged field is outvoted (*recovered), two leave it unknown.
bool page_class(const page& pg, std::size_t slice, page_geometry* out, bool* recovered) noexcept {
  auto geometry_of = [&](std::size_t bin) {
    page_geometry g;
    g.bin = bin;
    g.block_size = kSizeClasses.block_size[bin];
    g.slices = slices_for_block(g.block_size);
    g.capacity = slice + g.slices <= kSlicesPerSegment ? run_area(slice, g.slices) / g.block_size : 0;
    return g;
  };
  auto votes = [&](const page_geometry& g) {
    return int{pg.bin == g.bin} + int{pg.block_size == g.block_size} + int{pg.slice_count == g.slices} +
           int{pg.capacity == g.capacity};
  };
  std::size_t candidates[2] = {0, 0};
  if (pg.bin >= 1 && pg.bin < kBinCount) candidates[0] = pg.bin;
  if (pg.block_size >= 16 && pg.block_size <= kLargeMax &&
      kSizeClasses.block_size[bin_of(pg.block_size)] == pg.block_size)
    candidates[1] = bin_of(pg.block_size);
  for (std::size_t bin : candidates) {
    if (bin == 0) continue;
    page_geometry g = geometry_of(bin);
    int v = votes(g);
    if (v >= 3 && g.capacity != 0) {
      *out = g;
      *recovered = v < 4;
      return true;
    }
  }
  return false;
}

walk_totals walk_heap(const heap_view& view, const walk_options& options, walk_reporter& reporter) {
  walker w(view, options, reporter);
  return w.run();
}

}  // namespace larder::alloc
