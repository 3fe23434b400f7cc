// Opening files that are not sound heaps: each must be refused with the
// right code and a message naming the file, and must leave the file exactly
// as it was. A heap with one damaged superblock copy opens from the other.
#include "runtime/runtime_test_util.hpp"

#include "allocator/segment.hpp"
#include "recovery/layout.hpp"

#include <larder/larder.hpp>

#include <xxhash.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>

namespace {

using larder::errc;
using larder::open_mode;
using larder_test::describe;

// The documented on-media offsets (docs/format/heap.md), checked against the
// structure the library uses.
constexpr std::size_t kCopySize = 4096;
constexpr std::size_t kMagicAt = 0;
constexpr std::size_t kMajorAt = 8;
constexpr std::size_t kMinorAt = 12;
constexpr std::size_t kGenerationAt = 16;
constexpr std::size_t kBaseAt = 40;
constexpr std::size_t kReserveAt = 48;
constexpr std::size_t kSizeAt = 56;
constexpr std::size_t kSignatureAt = 64;
constexpr std::size_t kChecksumAt = 4088;
constexpr std::size_t kMetaAt = 8192;
constexpr std::size_t kSegmentsHighAt = kMetaAt + 8;
constexpr std::size_t kLastCloseAt = kMetaAt + 2740224;  // format 1.4
static_assert(offsetof(larder::layout::superblock, magic) == kMagicAt);
static_assert(offsetof(larder::layout::superblock, format_major) == kMajorAt);
static_assert(offsetof(larder::layout::superblock, format_minor) == kMinorAt);
static_assert(offsetof(larder::layout::superblock, generation) == kGenerationAt);
static_assert(offsetof(larder::layout::superblock, base) == kBaseAt);
static_assert(offsetof(larder::layout::superblock, reserve) == kReserveAt);
static_assert(offsetof(larder::layout::superblock, size) == kSizeAt);
static_assert(offsetof(larder::layout::superblock, layout_signature) == kSignatureAt);
static_assert(offsetof(larder::layout::superblock, checksum) == kChecksumAt);
static_assert(larder::layout::kMetaOffset == kMetaAt);
static_assert(offsetof(larder::layout::heap_meta, segments_high) == 8);
static_assert(kMetaAt + offsetof(larder::layout::heap_meta, last_close_ns) == kLastCloseAt);
constexpr std::uint64_t kHeapMagic = 0x504145485244524Cull;  // "LRDRHEAP"
static_assert(larder::layout::kHeapMagic == kHeapMagic);
constexpr std::size_t kSegment = std::size_t{4} << 20;

std::uint64_t get64(const std::string& bytes, std::size_t at) {
  std::uint64_t v;
  std::memcpy(&v, bytes.data() + at, sizeof(v));
  return v;
}
std::uint32_t get32(const std::string& bytes, std::size_t at) {
  std::uint32_t v;
  std::memcpy(&v, bytes.data() + at, sizeof(v));
  return v;
}
void put64(std::string& bytes, std::size_t at, std::uint64_t v) { std::memcpy(bytes.data() + at, &v, sizeof(v)); }
void put32(std::string& bytes, std::size_t at, std::uint32_t v) { std::memcpy(bytes.data() + at, &v, sizeof(v)); }

// Recomputes the checksum of superblock copy `copy` (0 or 1).
void reseal(std::string& bytes, int copy) {
  std::size_t start = static_cast<std::size_t>(copy) * kCopySize;
  put64(bytes, start + kChecksumAt, XXH3_64bits(bytes.data() + start, kChecksumAt));
}

bool sealed(const std::string& bytes, int copy) {
  std::size_t start = static_cast<std::size_t>(copy) * kCopySize;
  return get64(bytes, start + kChecksumAt) == XXH3_64bits(bytes.data() + start, kChecksumAt);
}

// The copy the library should use: valid, with the higher generation.
int current_copy(const std::string& bytes) {
  return get64(bytes, kCopySize + kGenerationAt) > get64(bytes, kGenerationAt) ? 1 : 0;
}

class RuntimeBadFile : public ::testing::Test {
 protected:
  void SetUp() override { path_ = dir_.file("victim.lrd"); }

  // Makes a sound heap with two roots; `grow` allocates enough to make the
  // heap grow (so the two superblock copies differ). Returns its bytes.
  std::string make_heap(bool grow) {
    {
      larder::heap h(larder_test::file_options(path_, open_mode::create));
      base_ = h.base();
      if (grow) {
        char* text = static_cast<char*>(h.allocate(64));
        std::strcpy(text, "the first root");
        EXPECT_TRUE(h.set_root("first", text, 64).ok());
        // Small blocks over several segments, and one huge block.
        for (int i = 0; i < 7000; ++i) {
          void* p = h.allocate(1000);
          EXPECT_NE(p, nullptr);
          if (i % 3 == 0) larder::heap::deallocate(p);
        }
        void* huge = h.allocate(std::size_t{6} << 20);
        EXPECT_NE(huge, nullptr);
        EXPECT_TRUE(h.set_root("huge", huge, std::size_t{6} << 20).ok());
      }
      EXPECT_TRUE(h.close().ok());
    }
    std::string bytes = larder_test::read_all(path_);
    EXPECT_GE(bytes.size(), kSegment);
    EXPECT_EQ(get64(bytes, kMagicAt), kHeapMagic);
    EXPECT_TRUE(sealed(bytes, 0));
    EXPECT_TRUE(sealed(bytes, 1));
    return bytes;
  }

  void write(const std::string& bytes) { ASSERT_TRUE(larder_test::write_all(path_, bytes.data(), bytes.size())); }

  // Opens the file (writable, then read-only, then with open_or_create) and
  // expects `code` each time, a message naming the file, and the file
  // unchanged.
  void expect_refused(errc code) {
    std::string before = larder_test::read_all(path_);
    struct variant {
      open_mode mode;
      bool read_only;
    };
    for (variant v : {variant{open_mode::open, false}, variant{open_mode::open, true},
                      variant{open_mode::open_or_create, false}}) {
      larder::heap h;
      larder::heap_options o = larder_test::file_options(path_, v.mode);
      o.read_only = v.read_only;
      larder::status s = larder::heap::open(o, &h);
      EXPECT_TRUE(s.is(code)) << "read_only=" << v.read_only << ": expected " << static_cast<int>(code) << ", got "
                              << describe(s);
      EXPECT_FALSE(h.is_open());
      EXPECT_FALSE(s.to_string().empty());
      EXPECT_FALSE(s.message().empty());
      EXPECT_NE(s.to_string().find(path_), std::string::npos) << s.to_string();
      bool same = larder_test::read_all(path_) == before;
      EXPECT_TRUE(same) << "refusing the heap changed the file (read_only=" << v.read_only << ")";
      if (!same) before = larder_test::read_all(path_);
    }
  }

  // Restores `good` and checks that the heap opens: nothing was left mapped
  // or locked by the refused attempts.
  void expect_opens_again(const std::string& good) {
    write(good);
    larder::heap h;
    larder::status s = larder::heap::open(larder_test::file_options(path_, open_mode::open), &h);
    ASSERT_TRUE(s.ok()) << describe(s);
    EXPECT_EQ(h.base(), base_);
  }

  larder_test::temp_dir dir_;
  std::string path_;
  void* base_ = nullptr;
};

TEST_F(RuntimeBadFile, MissingFileIsNotFound) {
  larder::heap h;
  larder::status s = larder::heap::open(larder_test::file_options(path_, open_mode::open), &h);
  EXPECT_TRUE(s.is(errc::not_found)) << describe(s);
  EXPECT_NE(s.to_string().find(path_), std::string::npos) << s.to_string();
  EXPECT_FALSE(larder_test::path_exists(path_));
  // A missing directory too.
  s = larder::heap::open(larder_test::file_options(dir_.file("no/such/dir.lrd"), open_mode::open_or_create), &h);
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(s.to_string().empty());
}

TEST_F(RuntimeBadFile, EmptyFileIsNotAHeap) {
  write("");
  expect_refused(errc::not_a_heap);
  EXPECT_EQ(larder_test::file_size_of(path_), 0u);
}

TEST_F(RuntimeBadFile, RandomGarbageIsNotAHeap) {
  std::mt19937_64 random(12345);
  for (std::size_t size : {std::size_t{7}, std::size_t{100}, std::size_t{5000}, std::size_t{9000}, kSegment + 17}) {
    std::string garbage(size, '\0');
    for (auto& c : garbage) c = static_cast<char>(random());
    write(garbage);
    SCOPED_TRACE(size);
    expect_refused(errc::not_a_heap);
  }
  // Text that merely starts like a heap is not one either.
  write(std::string("LRDRHEA") + std::string(9000, 'x'));
  expect_refused(errc::not_a_heap);
}

TEST_F(RuntimeBadFile, TruncatedHeapIsTruncated) {
  std::string good = make_heap(true);
  std::uint64_t recorded = get64(good, current_copy(good) * kCopySize + kSizeAt);
  ASSERT_LE(recorded, good.size());
  for (std::size_t size : {std::size_t{8}, std::size_t{100}, std::size_t{4095}, std::size_t{6000},
                           std::size_t{8192}, kSegment, good.size() / 2, static_cast<std::size_t>(recorded) - 4096}) {
    SCOPED_TRACE(size);
    write(good.substr(0, size));
    expect_refused(errc::truncated);
  }
  expect_opens_again(good);
}

TEST_F(RuntimeBadFile, OneDamagedSuperblockCopyOpensFromTheOther) {
  // A heap that never grew: both copies describe the same heap.
  std::string good = make_heap(false);
  for (int copy = 0; copy < 2; ++copy) {
    SCOPED_TRACE(copy);
    std::string bad = good;
    bad[static_cast<std::size_t>(copy) * kCopySize + 200] ^= 0x5A;  // inside the unused tail
    write(bad);
    larder::heap h;
    larder::heap_options ro = larder_test::file_options(path_, open_mode::open);
    ro.read_only = true;
    larder::status s = larder::heap::open(ro, &h);
    ASSERT_TRUE(s.ok()) << describe(s);
    EXPECT_EQ(h.base(), base_);
    ASSERT_TRUE(h.close().ok());
    EXPECT_EQ(larder_test::read_all(path_), bad) << "a read-only open changed the file";
    s = larder::heap::open(larder_test::file_options(path_, open_mode::open), &h);
    ASSERT_TRUE(s.ok()) << describe(s);
    void* p = h.allocate(100);
    ASSERT_NE(p, nullptr);
    ASSERT_TRUE(h.set_root("after", p, 100).ok());
  }
}

TEST_F(RuntimeBadFile, DamagedStaleCopyOfAGrownHeapOpensFromTheCurrentOne) {
  std::string good = make_heap(true);
  int current = current_copy(good);
  std::string bad = good;
  bad[static_cast<std::size_t>(1 - current) * kCopySize + kGenerationAt] ^= 0x01;
  write(bad);
  larder::heap h;
  larder::status s = larder::heap::open(larder_test::file_options(path_, open_mode::open), &h);
  ASSERT_TRUE(s.ok()) << describe(s);
  EXPECT_STREQ(static_cast<char*>(h.find_root("first")), "the first root");
  EXPECT_NE(h.find_root("huge"), nullptr);
}

TEST_F(RuntimeBadFile, DamagedCurrentCopyOfAGrownHeapOpensFromTheOlderOne) {
  // An update of the superblock that was torn leaves the current copy with
  // a bad checksum; the other copy must still open the heap.
  std::string good = make_heap(true);
  int current = current_copy(good);
  ASSERT_NE(get64(good, kGenerationAt), get64(good, kCopySize + kGenerationAt)) << "the heap did not grow";
  std::string bad = good;
  bad[static_cast<std::size_t>(current) * kCopySize + 300] ^= 0x01;
  write(bad);
  larder::heap h;
  larder::heap_options ro = larder_test::file_options(path_, open_mode::open);
  ro.read_only = true;
  larder::status s = larder::heap::open(ro, &h);
  EXPECT_TRUE(s.ok()) << "older copy (size " << get64(good, (1 - current) * kCopySize + kSizeAt)
                      << ", current size " << get64(good, current * kCopySize + kSizeAt) << ", segments_high "
                      << get64(good, kSegmentsHighAt) << "): " << describe(s);
  if (s.ok()) {
    EXPECT_STREQ(static_cast<char*>(h.find_root("first")), "the first root");
    ASSERT_TRUE(h.close().ok());
  }
  EXPECT_EQ(larder_test::read_all(path_), bad);
  s = larder::heap::open(larder_test::file_options(path_, open_mode::open), &h);
  EXPECT_TRUE(s.ok()) << describe(s);
  if (s.ok()) {
    EXPECT_STREQ(static_cast<char*>(h.find_root("first")), "the first root");
    EXPECT_NE(h.allocate(5000), nullptr);
  }
}

TEST_F(RuntimeBadFile, BothCopiesDamagedIsCorrupt) {
  std::string good = make_heap(true);
  std::string bad = good;
  bad[100] ^= 0x01;
  bad[kCopySize + kChecksumAt] ^= 0x80;
  write(bad);
  expect_refused(errc::corrupt);
  // A damaged magic in one copy and a bad checksum in the other.
  bad = good;
  bad[kMagicAt] = 'X';
  bad[kCopySize + 1000] ^= 0x01;
  write(bad);
  expect_refused(errc::corrupt);
  expect_opens_again(good);
}

TEST_F(RuntimeBadFile, NewerMajorFormatIsRefused) {
  std::string good = make_heap(true);
  ASSERT_EQ(get32(good, kMajorAt), 1u);
  std::string bad = good;
  for (int copy = 0; copy < 2; ++copy) {
    put32(bad, static_cast<std::size_t>(copy) * kCopySize + kMajorAt, 2);
    reseal(bad, copy);
  }
  write(bad);
  expect_refused(errc::newer_format);
  larder::heap h;
  larder::status s = larder::heap::open(larder_test::file_options(path_, open_mode::open), &h);
  EXPECT_NE(s.message().find('2'), std::string::npos) << s.message();

  // Only the current copy newer: that is the one that counts.
  bad = good;
  int current = current_copy(good);
  put32(bad, static_cast<std::size_t>(current) * kCopySize + kMajorAt, 7);
  reseal(bad, current);
  write(bad);
  expect_refused(errc::newer_format);
  expect_opens_again(good);
}

TEST_F(RuntimeBadFile, NewerMinorFormatStillOpens) {
  std::string good = make_heap(true);
  std::string newer = good;
  for (int copy = 0; copy < 2; ++copy) {
    put32(newer, static_cast<std::size_t>(copy) * kCopySize + kMinorAt, 9);
    reseal(newer, copy);
  }
  write(newer);
  larder::heap h;
  larder::status s = larder::heap::open(larder_test::file_options(path_, open_mode::open), &h);
  ASSERT_TRUE(s.ok()) << describe(s);
  EXPECT_STREQ(static_cast<char*>(h.find_root("first")), "the first root");
}

TEST_F(RuntimeBadFile, OtherLayoutSignatureIsForeignBuild) {
  std::string good = make_heap(true);
  ASSERT_EQ(get64(good, kSignatureAt), larder::layout::kLayoutSignature);
  std::string bad = good;
  for (int copy = 0; copy < 2; ++copy) {
    std::size_t at = static_cast<std::size_t>(copy) * kCopySize + kSignatureAt;
    put64(bad, at, get64(bad, at) ^ (std::uint64_t{1} << 8));  // another slice size
    reseal(bad, copy);
  }
  write(bad);
  expect_refused(errc::foreign_build);
  expect_opens_again(good);
}

TEST_F(RuntimeBadFile, ImpossibleGeometryIsCorrupt) {
  std::string good = make_heap(true);
  struct edit {
    const char* what;
    std::size_t at;
    std::uint64_t value;
  };
  std::uint64_t reserve = get64(good, kReserveAt);
  std::uint64_t base = get64(good, kBaseAt);
  for (edit e : {edit{"misaligned base", kBaseAt, base + 4096}, edit{"zero reserve", kReserveAt, 0},
                 edit{"reserve over 2 TiB", kReserveAt, std::uint64_t{4} << 40},
                 edit{"size over the reserve", kSizeAt, reserve + kSegment}, edit{"size below a segment", kSizeAt, 4096},
                 edit{"base + reserve wrapping past 2^64", kBaseAt, ~std::uint64_t{kSegment - 1}}}) {
    SCOPED_TRACE(e.what);
    std::string bad = good;
    for (int copy = 0; copy < 2; ++copy) {
      put64(bad, static_cast<std::size_t>(copy) * kCopySize + e.at, e.value);
      reseal(bad, copy);
    }
    write(bad);
    expect_refused(errc::corrupt);
  }
  expect_opens_again(good);
}

TEST_F(RuntimeBadFile, DamagedMetadataMagicIsCorrupt) {
  std::string good = make_heap(true);
  ASSERT_EQ(get64(good, kMetaAt), larder::layout::kMetaMagic);
  std::string bad = good;
  bad[kMetaAt + 3] ^= 0x20;
  write(bad);
  expect_refused(errc::corrupt);

  // A segment table that runs past the heap's size.
  bad = good;
  std::uint64_t size = get64(good, current_copy(good) * kCopySize + kSizeAt);
  put64(bad, kSegmentsHighAt, size / kSegment + 1);
  write(bad);
  expect_refused(errc::corrupt);
  expect_opens_again(good);
}

TEST_F(RuntimeBadFile, DamagedSegmentHeaderIsCorruptAndLeavesTheFileAlone) {
  std::string good = make_heap(true);
  std::uint64_t high = get64(good, kSegmentsHighAt);
  ASSERT_GE(high, 3u) << "the heap should span several segments";
  // Damage the magic of the last segment that holds small-block pages, so
  // that sound segments come before it.
  std::size_t victim = 0;
  for (std::size_t i = 1; i < high; ++i) {
    std::uint32_t entry = get32(good, kMetaAt + offsetof(larder::layout::heap_meta, segments) + 4 * i);
    if (larder::layout::entry_state(entry) == larder::layout::kSegmentPages) victim = i;
  }
  ASSERT_GE(victim, 2u) << "need a sound page segment before the damaged one";
  std::string bad = good;
  ASSERT_EQ(get64(bad, victim * kSegment), larder::alloc::kSegmentMagic);
  bad[victim * kSegment + 2] ^= 0x01;
  write(bad);
  // Read-only opens do not look at segment headers; a writable one must.
  std::string before = larder_test::read_all(path_);
  larder::heap h;
  larder::status s = larder::heap::open(larder_test::file_options(path_, open_mode::open), &h);
  EXPECT_TRUE(s.is(errc::corrupt)) << describe(s);
  EXPECT_FALSE(h.is_open());
  EXPECT_NE(s.to_string().find(path_), std::string::npos) << s.to_string();
  std::string after = larder_test::read_all(path_);
  std::size_t first_difference = 0;
  while (first_difference < before.size() && first_difference < after.size() &&
         before[first_difference] == after[first_difference])
    ++first_difference;
  EXPECT_TRUE(after == before) << "refusing the heap changed the file, first at offset " << first_difference
                               << " (segment " << first_difference / kSegment << ", damaged segment " << victim
                               << ")";
  expect_opens_again(good);
}

TEST_F(RuntimeBadFile, DamagedPageDescriptorIsCorruptAndLeavesTheFileAlone) {
  // Opening follows a page's remote-free list and hands out its free list:
  // a descriptor whose lists point out of the page, or whose counts or
  // size class are impossible, must be refused before anything is touched.
  std::string good = make_heap(true);
  std::uint64_t high = get64(good, kSegmentsHighAt);
  std::size_t at = 0;
  for (std::size_t i = 1; i < high && at == 0; ++i) {
    std::uint32_t entry = get32(good, kMetaAt + offsetof(larder::layout::heap_meta, segments) + 4 * i);
    if (larder::layout::entry_state(entry) != larder::layout::kSegmentPages) continue;
    for (std::size_t k = 0; k < 64 && at == 0; ++k) {
      std::size_t d = i * kSegment + 64 + k * 64;  // page descriptor of slice k (docs/format/heap.md)
      if (good[d + 60] != 0 && get64(good, d) != 0) at = d;
    }
  }
  ASSERT_NE(at, 0u) << "no page with a free list";
  struct edit {
    const char* what;
    std::size_t field;
    std::uint64_t value;
    std::size_t width;
  };
  std::uint64_t free_head = get64(good, at);
  for (edit e : {edit{"free list outside the page", 0, free_head + kSegment, 8},
                 edit{"free list off a block boundary", 0, free_head + 8, 8},
                 edit{"remote-free list outside the page", 24, (std::uint64_t{1} << 48) | (free_head + kSegment), 8},
                 edit{"remote count without a list", 24, std::uint64_t{3} << 48, 8},
                 edit{"size class that does not exist", 62, 200, 1},
                 edit{"more carved blocks than fit", 14, 60000, 2}}) {
    SCOPED_TRACE(e.what);
    std::string bad = good;
    std::memcpy(bad.data() + at + e.field, &e.value, e.width);
    write(bad);
    expect_refused(errc::corrupt);
  }
  expect_opens_again(good);
}

// A heap of format 1.3 (no close time) reads as such, with the time
// unknown, until its first writer: that open records format 1.4 and its
// close the time.
TEST_F(RuntimeBadFile, Format13IsUpgradedByTheFirstWriter) {
  std::string bytes = make_heap(true);
  for (int copy = 0; copy < 2; ++copy) {
    put32(bytes, static_cast<std::size_t>(copy) * kCopySize + kMinorAt, 3);
    reseal(bytes, copy);
  }
  put64(bytes, kLastCloseAt, 0);
  ASSERT_TRUE(larder_test::write_all(path_, bytes.data(), bytes.size()));
  {
    larder::heap_options o = larder_test::file_options(path_, open_mode::open);
    o.read_only = true;
    larder::heap reader(o);
    EXPECT_EQ(reader.stats().format_minor, 3u);
    EXPECT_EQ(reader.stats().last_close_ns, 0u);
    EXPECT_NE(reader.find_root("first"), nullptr);
  }
  EXPECT_TRUE(larder_test::read_all(path_) == bytes) << "a reader changed the file";
  std::uint64_t created = 0;
  {
    larder::heap writer(larder_test::file_options(path_, open_mode::open));
    EXPECT_EQ(writer.stats().format_minor, larder::layout::kFormatMinor);  // upgraded to this build's
    EXPECT_EQ(writer.stats().last_close_ns, 0u);
    created = writer.stats().created_ns;
    EXPECT_TRUE(writer.close().ok());
  }
  std::string after = larder_test::read_all(path_);
  int copy = current_copy(after);
  EXPECT_TRUE(sealed(after, copy));
  EXPECT_EQ(get32(after, static_cast<std::size_t>(copy) * kCopySize + kMinorAt), larder::layout::kFormatMinor);
  EXPECT_GE(get64(after, kLastCloseAt), created);
}

}  // namespace
