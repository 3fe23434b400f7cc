// larder::check_heap on sound and damaged heaps: a sound heap checks clean
// and is left byte for byte as it was; each kind of damage is reported with
// its place; repair fixes what a good copy or recovery can fix and nothing
// else; and opening a damaged heap is refused (or opens a sound heap), never
// crashes.
#include "runtime/runtime_test_util.hpp"

#include "allocator/segment.hpp"
#include "port/assert.hpp"
#include "recovery/layout.hpp"
#include "recovery/undo_log.hpp"

#include <larder/check.hpp>
#include <larder/larder.hpp>
#include <larder/transaction.hpp>

#include <xxhash.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <thread>

namespace {

namespace layout = larder::layout;
using larder::check_report;
using larder::errc;
using larder::open_mode;
using larder_test::describe;

constexpr std::size_t kCopySize = 4096;
constexpr std::size_t kSegment = std::size_t{4} << 20;
constexpr std::size_t kMetaAt = layout::kMetaOffset;
constexpr std::size_t kSegmentsAt = kMetaAt + offsetof(layout::heap_meta, segments);
constexpr std::size_t kRootsAt = kMetaAt + offsetof(layout::heap_meta, roots);
constexpr std::size_t kLanesAt = kMetaAt + offsetof(layout::heap_meta, lanes);
// Page descriptor fields (docs/format/heap.md).
constexpr std::size_t kPagesAt = 64;
constexpr std::size_t kPageFree = 0, kPageUsed = 8, kPageReserved = 14, kPageSliceCount = 60;

std::uint64_t get64(const std::string& b, std::size_t at) {
  std::uint64_t v;
  std::memcpy(&v, b.data() + at, sizeof(v));
  return v;
}
std::uint32_t get32(const std::string& b, std::size_t at) {
  std::uint32_t v;
  std::memcpy(&v, b.data() + at, sizeof(v));
  return v;
}
std::uint16_t get16(const std::string& b, std::size_t at) {
  std::uint16_t v;
  std::memcpy(&v, b.data() + at, sizeof(v));
  return v;
}
void put64(std::string& b, std::size_t at, std::uint64_t v) { std::memcpy(b.data() + at, &v, sizeof(v)); }
void put32(std::string& b, std::size_t at, std::uint32_t v) { std::memcpy(b.data() + at, &v, sizeof(v)); }
void put16(std::string& b, std::size_t at, std::uint16_t v) { std::memcpy(b.data() + at, &v, sizeof(v)); }

std::string joined(const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& l : lines) text += "  " + l + "\n";
  return text;
}

std::string describe(const check_report& r) {
  return "problems:\n" + joined(r.problems) + "notes:\n" + joined(r.notes) + "repairs:\n" + joined(r.repairs);
}

bool any_contains(const std::vector<std::string>& lines, const std::string& a, const std::string& b = "") {
  for (const auto& l : lines)
    if (l.find(a) != std::string::npos && l.find(b) != std::string::npos) return true;
  return false;
}

class RuntimeCheck : public ::testing::Test {
 protected:
  void SetUp() override { path_ = dir_.file("checked.lrd"); }

  // A heap with two pods, roots, small blocks over several segments (some
  // freed, some freed by another thread), and a huge block. Returns its
  // bytes after a clean close.
  std::string make_heap() {
    {
      larder::heap h(larder_test::file_options(path_, open_mode::create));
      base_ = reinterpret_cast<std::uintptr_t>(h.base());
      char* text = static_cast<char*>(h.allocate(64));
      std::strcpy(text, "the first root");
      EXPECT_TRUE(h.set_root("first", text, 64).ok());
      larder::pod other;
      EXPECT_TRUE(h.make_pod("other", &other).ok());
      std::vector<void*> blocks;
      for (int i = 0; i < 7000; ++i) {
        void* p = (i % 2 ? other : h.default_pod()).allocate(static_cast<std::size_t>(16 + (i % 50) * 40));
        EXPECT_NE(p, nullptr);
        blocks.push_back(p);
      }
      for (std::size_t i = 0; i < blocks.size(); i += 3) larder::heap::deallocate(blocks[i]);
      std::thread remote([&] {
        for (std::size_t i = 1; i < blocks.size(); i += 7)
          if (i % 3 != 0) larder::heap::deallocate(blocks[i]);
      });
      remote.join();
      void* huge = h.allocate(std::size_t{6} << 20);
      EXPECT_NE(huge, nullptr);
      EXPECT_TRUE(h.set_root("huge", huge, std::size_t{6} << 20).ok());
      EXPECT_TRUE(h.close().ok());
    }
    std::string bytes = larder_test::read_all(path_);
    EXPECT_GE(bytes.size(), 3 * kSegment);
    return bytes;
  }

  void write(const std::string& bytes) { ASSERT_TRUE(larder_test::write_all(path_, bytes.data(), bytes.size())); }

  check_report check(bool repair = false) {
    check_report r;
    larder::status s = larder::check_heap(path_, repair, &r);
    EXPECT_TRUE(s.ok()) << describe(s);
    return r;
  }

  // A read-only check: reports damage and changes nothing.
  check_report expect_damaged(const std::string& place, const std::string& what = "") {
    std::string before = larder_test::read_all(path_);
    check_report r = check();
    EXPECT_FALSE(r.clean());
    EXPECT_TRUE(any_contains(r.problems, place, what)) << "expected a problem naming '" << place << "' and '" << what
                                                       << "'\n" << describe(r);
    EXPECT_TRUE(larder_test::read_all(path_) == before) << "a read-only check changed the file";
    return r;
  }

  // Opening the damaged heap must not crash: it is refused as corrupt, or
  // it opens, and then a check afterwards finds what the open left.
  void expect_open_refused() {
    larder::heap h;
    larder::status s = larder::heap::open(larder_test::file_options(path_, open_mode::open), &h);
    EXPECT_TRUE(s.is_corruption()) << describe(s);
    EXPECT_FALSE(h.is_open());
  }

  // Damage deep in a free list: open reads free lists at their head only,
  // so the heap opens — except in a LARDER_DEBUG_FULL build, whose open
  // walks them to the end and refuses it.
  void expect_opens_unless_lists_are_walked() {
    larder::heap h;
    larder::status s = larder::heap::open(larder_test::file_options(path_, open_mode::open), &h);
    if (LARDER_DEBUG_LEVEL >= 3)
      EXPECT_TRUE(s.is_corruption()) << describe(s);
    else
      EXPECT_TRUE(s.ok()) << describe(s);
  }

  // The first segment of `state` at or after `from`, or 0.
  std::size_t find_segment(const std::string& b, layout::segment_state state, std::size_t from = 1) {
    std::uint64_t high = get64(b, kMetaAt + 8);
    for (std::size_t i = from; i < high; ++i)
      if (layout::entry_state(get32(b, kSegmentsAt + 4 * i)) == state) return i;
    return 0;
  }

  // File offset of a page descriptor (in a pages segment) whose page has a
  // non-empty free list and blocks in use.
  std::size_t find_page(const std::string& b) {
    for (std::size_t i = find_segment(b, layout::kSegmentPages); i != 0; i = find_segment(b, layout::kSegmentPages, i + 1)) {
      for (std::size_t k = 0; k < 64; ++k) {
        std::size_t at = i * kSegment + kPagesAt + k * 64;
        if (get16(b, at + kPageUsed) > 2 && get64(b, at + kPageFree) != 0 && b[at + kPageSliceCount] != 0) return at;
      }
    }
    ADD_FAILURE() << "no page with free blocks";
    return 0;
  }

  std::size_t root_slot(const std::string& b, const std::string& name) {
    for (std::size_t slot = 0; slot < layout::kMaxRoots; ++slot) {
      std::size_t at = kRootsAt + slot * sizeof(layout::root_record);
      if (get32(b, at + offsetof(layout::root_record, in_use)) == 1 && name == b.c_str() + at) return slot;
    }
    ADD_FAILURE() << "no root " << name;
    return 0;
  }

  larder_test::temp_dir dir_;
  std::string path_;
  std::uintptr_t base_ = 0;
};

TEST_F(RuntimeCheck, SoundHeapIsCleanAndUnchanged) {
  std::string good = make_heap();
  check_report r = check();
  EXPECT_TRUE(r.clean()) << describe(r);
  EXPECT_EQ(r.roots, 2u);
  EXPECT_EQ(r.pods, 2u);
  EXPECT_GE(r.segments, 4u);
  EXPECT_GT(r.pages, 10u);
  EXPECT_GT(r.blocks_in_use, 3000u);
  EXPECT_GT(r.bytes_in_use, std::size_t{6} << 20);
  EXPECT_EQ(r.pending_transactions, 0u);
  EXPECT_TRUE(larder_test::read_all(path_) == good);
  // Repair of a clean heap does nothing.
  r = check(true);
  EXPECT_TRUE(r.clean()) << describe(r);
  EXPECT_TRUE(r.repairs.empty());
  EXPECT_TRUE(larder_test::read_all(path_) == good);
}

TEST_F(RuntimeCheck, HeapOpenInThisProcessIsCheckedThroughAnotherMapping) {
  make_heap();
  larder::heap h(larder_test::file_options(path_, open_mode::open));
  void* p = h.allocate(100);
  ASSERT_NE(p, nullptr);
  check_report r = check();
  EXPECT_TRUE(r.clean()) << describe(r);
  EXPECT_EQ(r.roots, 2u);
}

TEST_F(RuntimeCheck, MissingFileIsAnError) {
  check_report r;
  larder::status s = larder::check_heap(path_, false, &r);
  EXPECT_TRUE(s.is(errc::not_found)) << describe(s);
  s = larder::check_heap(larder::backing::shm, "no-slash", false, &r);
  EXPECT_TRUE(s.is(errc::invalid_argument)) << describe(s);
}

TEST_F(RuntimeCheck, EmptyGarbageAndTruncatedFiles) {
  write("");
  expect_damaged("empty");
  std::mt19937_64 random(7);
  std::string garbage(kSegment + 100, '\0');
  for (auto& c : garbage) c = static_cast<char>(random());
  write(garbage);
  expect_damaged("not a larder heap");
  check_report r = check(true);  // nothing to repair from
  EXPECT_FALSE(r.clean());
  EXPECT_TRUE(r.repairs.empty());

  ASSERT_EQ(::unlink(path_.c_str()), 0);
  std::string good = make_heap();
  for (std::size_t size : {std::size_t{100}, std::size_t{5000}, std::size_t{9000}, kSegment + 4096, good.size() - 4096}) {
    SCOPED_TRACE(size);
    write(good.substr(0, size));
    expect_damaged(size < 2 * kCopySize ? "past the end of the file" : "truncated");
    expect_open_refused();
  }
}

TEST_F(RuntimeCheck, TornSuperblockCopyIsRepairedFromTheOther) {
  std::string good = make_heap();
  for (int copy = 0; copy < 2; ++copy) {
    SCOPED_TRACE(copy);
    std::string bad = good;
    bad[static_cast<std::size_t>(copy) * kCopySize + 300] ^= 0x10;
    write(bad);
    check_report r = expect_damaged("superblock copy " + std::to_string(copy), "checksum");
    EXPECT_EQ(r.roots, 2u) << "the rest of the heap is still checked";
    r = check(true);
    EXPECT_TRUE(r.clean()) << describe(r);
    EXPECT_TRUE(any_contains(r.repairs, "rewrote superblock copy " + std::to_string(copy))) << describe(r);
    std::string after = larder_test::read_all(path_);
    std::size_t other = static_cast<std::size_t>(1 - copy) * kCopySize;
    EXPECT_TRUE(after.substr(other, kCopySize) == good.substr(other, kCopySize)) << "the good copy changed";
    EXPECT_TRUE(after.substr(static_cast<std::size_t>(copy) * kCopySize, kCopySize) == after.substr(other, kCopySize));
    EXPECT_TRUE(check().clean());
  }
}

TEST_F(RuntimeCheck, BothSuperblockCopiesDamaged) {
  std::string good = make_heap();
  std::string bad = good;
  bad[100] ^= 0x01;
  bad[kCopySize + 200] ^= 0x01;
  write(bad);
  check_report r = expect_damaged("no superblock copy is valid");
  EXPECT_TRUE(any_contains(r.problems, "superblock copy 0", "checksum"));
  EXPECT_TRUE(any_contains(r.problems, "superblock copy 1", "checksum"));
  r = check(true);
  EXPECT_FALSE(r.clean());
  EXPECT_TRUE(r.repairs.empty());
  EXPECT_TRUE(larder_test::read_all(path_) == bad) << "repair guessed a superblock";
  expect_open_refused();
}

TEST_F(RuntimeCheck, DamagedMetadataMagic) {
  std::string bad = make_heap();
  bad[kMetaAt + 1] ^= 0x04;
  write(bad);
  expect_damaged("metadata block", "magic");
  expect_open_refused();
}

TEST_F(RuntimeCheck, FlippedSegmentTableEntry) {
  std::string bad = make_heap();
  std::size_t i = find_segment(bad, layout::kSegmentPages);
  ASSERT_NE(i, 0u);
  std::string good = bad;
  put32(bad, kSegmentsAt + 4 * i, get32(bad, kSegmentsAt + 4 * i) ^ (1u << 16));  // another pod
  write(bad);
  expect_damaged("segment " + std::to_string(i) + " (offset", "the segment table says");
  expect_open_refused();
  // A state that does not exist.
  bad = good;
  put32(bad, kSegmentsAt + 4 * i, (get32(bad, kSegmentsAt + 4 * i) & 0xFFFF0000u) | 9);
  write(bad);
  expect_damaged("segment table entry " + std::to_string(i), "invalid state 9");
  expect_open_refused();
}

TEST_F(RuntimeCheck, PagesSegmentMarkedAsLogIsNotHandedToRecovery) {
  // Recovery frees log segments no lane references; one that still holds
  // a segment header may be live blocks whose entry is damaged: opening
  // refuses it, the checker calls it damage, and repair leaves it alone.
  std::string bad = make_heap();
  std::size_t i = find_segment(bad, layout::kSegmentPages);
  put32(bad, kSegmentsAt + 4 * i, layout::segment_entry(layout::kSegmentLog, 0));
  write(bad);
  check_report r = check();
  EXPECT_TRUE(any_contains(r.problems, "segment " + std::to_string(i) + " (offset", "still holds a segment header"))
      << describe(r);
  expect_open_refused();
  r = check(true);
  EXPECT_TRUE(any_contains(r.notes, "not opened for writing")) << describe(r);
  EXPECT_TRUE(r.repairs.empty()) << describe(r);
  EXPECT_TRUE(larder_test::read_all(path_) == bad) << "repair changed the heap";
}

TEST_F(RuntimeCheck, FlippedSegmentHeader) {
  std::string good = make_heap();
  std::size_t i = find_segment(good, layout::kSegmentPages);
  std::string bad = good;
  bad[i * kSegment + 3] ^= 0x01;  // magic
  write(bad);
  expect_damaged("segment " + std::to_string(i) + " (offset", "bad magic");
  expect_open_refused();
  bad = good;
  bad[i * kSegment + 8] ^= 0x01;  // pod
  write(bad);
  expect_damaged("segment " + std::to_string(i) + " (offset", "pod");
  expect_open_refused();
  bad = good;
  put32(bad, i * kSegment + 12, 0);  // span
  write(bad);
  expect_damaged("segment " + std::to_string(i) + " (offset", "span 0");
  expect_open_refused();
}

TEST_F(RuntimeCheck, FlippedPageDescriptor) {
  std::string good = make_heap();
  std::size_t at = find_page(good);
  std::size_t i = at / kSegment, k = (at % kSegment - kPagesAt) / 64;
  std::string place = "segment " + std::to_string(i) + " page descriptor of slice " + std::to_string(k);
  struct edit {
    const char* what;
    std::size_t field;
    int delta;
    bool refused;  // by open; else it opens (the count is only checked by walking the free list)
  };
  for (edit e : {edit{"reserved", kPageReserved, 5000, true}, edit{"used", kPageUsed, 2, false},
                 edit{"free pointer", kPageFree, 8, true},
                 edit{"free pointer", kPageFree, -static_cast<int>(kSegment), true}}) {
    SCOPED_TRACE(e.what);
    std::string bad = good;
    if (e.field == kPageFree)
      put64(bad, at + e.field, get64(bad, at + e.field) + static_cast<std::uint64_t>(static_cast<std::int64_t>(e.delta)));
    else
      put16(bad, at + e.field, static_cast<std::uint16_t>(get16(bad, at + e.field) + e.delta));
    write(bad);
    expect_damaged(place);
    if (e.refused) {
      expect_open_refused();
    } else {
      expect_opens_unless_lists_are_walked();
    }
  }
  // A cycle in the free list: the first free block points to itself.
  std::string bad = good;
  std::uint64_t first = get64(bad, at + kPageFree);
  std::size_t block_at = static_cast<std::size_t>(first - base_);
  put64(bad, block_at, first);
  write(bad);
  expect_damaged(place, "appears twice");
  // Open reads free lists only at their head (block memory is not read at
  // open), so this heap opens; it must not crash doing so.
  expect_opens_unless_lists_are_walked();
}

TEST_F(RuntimeCheck, RootOutsideTheHeapIsRemovedByRepair) {
  std::string bad = make_heap();
  std::size_t slot = root_slot(bad, "huge");
  std::size_t at = kRootsAt + slot * sizeof(layout::root_record) + offsetof(layout::root_record, object);
  put64(bad, at, get64(bad, at) + (std::uint64_t{1} << 40));
  write(bad);
  expect_damaged("root 'huge' (slot " + std::to_string(slot) + ")", "outside the heap");
  check_report r = check(true);
  EXPECT_TRUE(r.clean()) << describe(r);
  EXPECT_TRUE(any_contains(r.repairs, "removed root 'huge'")) << describe(r);
  EXPECT_EQ(r.roots, 1u);
  larder::heap h(larder_test::file_options(path_, open_mode::open));
  EXPECT_EQ(h.find_root("huge"), nullptr);
  EXPECT_STREQ(static_cast<char*>(h.find_root("first")), "the first root");
}

// The hash is not recomputed from the name (which may be the damaged
// field): the record is damage, and repair removes the root, saying so.
TEST_F(RuntimeCheck, RootWithADamagedNameHashIsReportedNotGuessed) {
  std::string bad = make_heap();
  std::size_t slot = root_slot(bad, "first");
  bad[kRootsAt + slot * sizeof(layout::root_record) + offsetof(layout::root_record, name_hash)] ^= 0x01;
  write(bad);
  expect_damaged("root 'first' (slot " + std::to_string(slot) + ")", "hash");
  larder::heap h;
  larder::status s = larder::heap::open(larder_test::file_options(path_, open_mode::open), &h);
  EXPECT_TRUE(s.is(larder::errc::corrupt)) << describe(s);
  check_report r = check(true);
  EXPECT_TRUE(r.clean()) << describe(r);
  EXPECT_TRUE(any_contains(r.repairs, "removed root 'first'", "hash")) << describe(r);
  larder::heap after(larder_test::file_options(path_, open_mode::open));
  EXPECT_EQ(after.find_root("first"), nullptr);
}

// ---- undo-log lanes -----------------------------------------------------

class RuntimeCheckLog : public RuntimeCheck {
 protected:
  // Leaves a transaction that wrote `count` snapshots uncommitted: a child
  // process stops in the middle of it. Returns the heap's bytes.
  std::string make_pending(int count) {
    {
      larder::heap h(larder_test::file_options(path_, open_mode::create));
      base_ = reinterpret_cast<std::uintptr_t>(h.base());
      auto* values = static_cast<std::uint64_t*>(h.allocate(sizeof(std::uint64_t) * 64));
      for (int i = 0; i < 64; ++i) values[i] = 1000 + static_cast<std::uint64_t>(i);
      EXPECT_TRUE(h.set_root("values", values, sizeof(std::uint64_t) * 64).ok());
      EXPECT_TRUE(h.close().ok());
    }
    int code = larder_test::run_in_child([&] {
      larder::heap h(larder_test::file_options(path_, open_mode::open));
      auto* values = static_cast<std::uint64_t*>(h.find_root("values"));
      larder::transaction tx(h);
      for (int i = 0; i < count; ++i) {
        tx.snapshot(&values[i * 8], sizeof(std::uint64_t));
        values[i * 8] = 0xDEAD;
      }
      // Make the in-place writes reach the file, as a crash might.
      ::msync(h.base(), std::size_t{8} << 20, MS_SYNC);
      std::fflush(nullptr);
      ::_exit(0);
    });
    EXPECT_EQ(code, 0);
    return larder_test::read_all(path_);
  }

  // File offset of lane `n`'s first extent.
  std::size_t lane_start(const std::string& b, std::size_t n) {
    std::size_t at = kLanesAt + n * sizeof(layout::lane_record);
    EXPECT_GT(get32(b, at + offsetof(layout::lane_record, extent_count)), 0u);
    return static_cast<std::size_t>(layout::extent_first(get64(b, at + offsetof(layout::lane_record, extents)))) *
           kSegment;
  }

  std::size_t used_lane(const std::string& b) {
    for (std::size_t n = 0; n < layout::kMaxLanes; ++n)
      if (get32(b, kLanesAt + n * sizeof(layout::lane_record) + offsetof(layout::lane_record, extent_count)) != 0)
        return n;
    ADD_FAILURE() << "no lane in use";
    return 0;
  }

  void expect_values(std::uint64_t changed) {
    larder::heap h(larder_test::file_options(path_, open_mode::open));
    auto* values = static_cast<std::uint64_t*>(h.find_root("values"));
    ASSERT_NE(values, nullptr);
    EXPECT_EQ(values[0], changed);
    EXPECT_EQ(values[1], 1001u);
  }
};

TEST_F(RuntimeCheckLog, PendingTransactionIsANoteAndRepairRollsItBack) {
  std::string bytes = make_pending(3);
  std::size_t lane = used_lane(bytes);
  check_report r = check();
  EXPECT_TRUE(r.clean()) << describe(r);
  EXPECT_EQ(r.pending_transactions, 1u);
  EXPECT_TRUE(any_contains(r.notes, "lane " + std::to_string(lane) + " holds an uncommitted transaction (3 records)",
                           "rolls it back"))
      << describe(r);
  EXPECT_TRUE(larder_test::read_all(path_) == bytes);
  r = check(true);
  EXPECT_TRUE(r.clean()) << describe(r);
  EXPECT_EQ(r.pending_transactions, 0u);
  EXPECT_TRUE(any_contains(r.repairs, "rolled back 1 uncommitted")) << describe(r);
  expect_values(1000);
}

// A damaged record followed by a later batch of the same transaction is
// damage (a crash can only tear the last batch); damage in the last batch
// ends the log there.
TEST_F(RuntimeCheckLog, DamagedRecordBeforeALaterBatchIsDamage) {
  std::string bytes = make_pending(3);
  std::size_t lane = used_lane(bytes);
  std::size_t start = lane_start(bytes, lane);
  const std::size_t span = larder::recovery::record_span(sizeof(std::uint64_t));
  const std::size_t header = sizeof(larder::recovery::record_header);
  std::size_t second = start + span + header;  // record, marker, record, marker, record
  bytes[second + header] ^= 0x01;
  write(bytes);
  expect_damaged("lane " + std::to_string(lane), "log record");
  expect_open_refused();
  bytes[second + header] ^= 0x01;  // the last batch may be torn by a crash
  bytes[second + span + header + header] ^= 0x01;
  write(bytes);
  check_report r = check();
  EXPECT_TRUE(r.clean()) << describe(r);
  EXPECT_TRUE(any_contains(r.notes, "uncommitted transaction (2 records)")) << describe(r);
}

TEST_F(RuntimeCheckLog, RecordOutsideTheHeapIsAProblem) {
  std::string bytes = make_pending(2);
  std::size_t lane = used_lane(bytes);
  std::size_t start = lane_start(bytes, lane);
  larder::recovery::record_header h;
  std::memcpy(&h, bytes.data() + start, sizeof(h));
  h.address += std::uint64_t{1} << 42;
  // The record checksum (recovery/undo_log.hpp): XXH3 of the payload,
  // seeded with XXH3 of the header fields before the checksum.
  h.checksum = XXH3_64bits_withSeed(bytes.data() + start + sizeof(h), h.size,
                                    XXH3_64bits(&h, offsetof(larder::recovery::record_header, checksum)));
  std::memcpy(bytes.data() + start, &h, sizeof(h));
  write(bytes);
  expect_damaged("lane " + std::to_string(lane), "log record at offset 0");
  expect_open_refused();
}

TEST_F(RuntimeCheckLog, LogSegmentMarkedForAnotherLane) {
  std::string bytes = make_pending(1);
  std::size_t lane = used_lane(bytes);
  std::size_t i = lane_start(bytes, lane) / kSegment;
  put32(bytes, kSegmentsAt + 4 * i, layout::segment_entry(layout::kSegmentLog, static_cast<std::uint32_t>(lane + 1)));
  write(bytes);
  expect_damaged("lane " + std::to_string(lane) + " extent 0", "not undo log of lane");
}

}  // namespace
