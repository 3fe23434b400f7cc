// The C contract of the larder_* malloc family (include/larder/larder.h):
// edge cases, error reporting through NULL + errno (or the return value of
// posix_memalign), alignments, huge blocks and pointers larder does not own.
#include "allocator/test_util.hpp"

#include <larder/larder.h>

#include <gtest/gtest.h>

#include <errno.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace {

using larder_test::check_range;
using larder_test::fill_range;
using larder_test::interval_set;

constexpr std::size_t kKiB = 1024;
constexpr std::size_t kMiB = 1024 * 1024;
constexpr std::size_t kLargeMax = 512 * kKiB;  // largest size class

bool aligned_to(const void* p, std::size_t alignment) { return reinterpret_cast<std::uintptr_t>(p) % alignment == 0; }

std::size_t os_page() {
  long page = sysconf(_SC_PAGESIZE);
  return page > 0 ? static_cast<std::size_t>(page) : 4096;
}

// ---- malloc / free ---------------------------------------------------------

TEST(ApiTest, MallocZeroReturnsUniqueFreeablePointers) {
  std::set<void*> seen;
  std::vector<void*> blocks;
  for (int i = 0; i < 1000; ++i) {
    void* p = larder_malloc(0);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(aligned_to(p, 16));
    EXPECT_TRUE(seen.insert(p).second) << "malloc(0) returned " << p << " twice";
    blocks.push_back(p);
  }
  for (void* p : blocks) larder_free(p);
}

TEST(ApiTest, FreeNullIsANoOp) {
  larder_free(nullptr);
  larder_free(nullptr);
  void* p = larder_malloc(8);
  ASSERT_NE(p, nullptr);
  larder_free(p);
}

TEST(ApiTest, UsableSizeOfNullIsZero) { EXPECT_EQ(larder_usable_size(nullptr), 0u); }

// Every size up to the largest size class: usable_size covers the request
// and wastes at most a quarter (four classes per doubling) plus rounding to
// 16 bytes; blocks alive at the same time are distinct and writable.
TEST(ApiTest, UsableSizeFollowsSizeClasses) {
  interval_set ranges;
  std::vector<std::pair<void*, std::size_t>> blocks;
  for (std::size_t size = 0; size <= kLargeMax; size += size < 4096 ? 1 : size / 64) {
    void* p = larder_malloc(size);
    ASSERT_NE(p, nullptr) << "size " << size;
    ASSERT_TRUE(aligned_to(p, 16)) << "size " << size << ": " << p;
    std::size_t usable = larder_usable_size(p);
    ASSERT_GE(usable, size) << "size " << size;
    std::size_t bound = std::max<std::size_t>(16, size + size / 4 + 16);
    EXPECT_LE(usable, bound) << "size " << size;
    auto start = reinterpret_cast<std::uintptr_t>(p);
    ASSERT_TRUE(ranges.insert(start, start + usable)) << "size " << size << ": " << p << " overlaps a live block";
    fill_range(p, 0, usable, size);
    blocks.emplace_back(p, usable);
  }
  std::size_t size = 0;
  for (auto& [p, usable] : blocks) {
    EXPECT_EQ(check_range(p, 0, usable, size), SIZE_MAX) << "block of size " << size << " was overwritten";
    larder_free(p);
    size += size < 4096 ? 1 : size / 64;
  }
}

// ---- calloc ------------------------------------------------------------------

TEST(ApiTest, CallocOverflowFailsWithEnomem) {
  errno = 0;
  EXPECT_EQ(larder_calloc(SIZE_MAX / 2 + 1, 2), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(larder_calloc(2, SIZE_MAX / 2 + 1), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(larder_calloc(SIZE_MAX, SIZE_MAX), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(larder_calloc(std::size_t{1} << 32, std::size_t{1} << 32), nullptr);
  EXPECT_EQ(errno, ENOMEM);
}

TEST(ApiTest, CallocZeroCountOrSizeGivesFreeablePointer) {
  void* a = larder_calloc(0, 16);
  void* b = larder_calloc(16, 0);
  void* c = larder_calloc(0, 0);
  EXPECT_NE(a, nullptr);
  EXPECT_NE(b, nullptr);
  EXPECT_NE(c, nullptr);
  larder_free(a);
  larder_free(b);
  larder_free(c);
}

// calloc must zero memory that earlier blocks dirtied, huge blocks included
// (a freed huge block's segment may be kept and handed out again).
TEST(ApiTest, CallocZeroesReusedMemory) {
  for (std::size_t size : {std::size_t{1}, std::size_t{16}, std::size_t{100}, std::size_t{1000}, 8 * kKiB + 1,
                           64 * kKiB, 300 * kKiB, kLargeMax, kLargeMax + 1, 3 * kMiB, 8 * kMiB}) {
    for (int round = 0; round < 3; ++round) {
      std::vector<void*> dirty;
      for (int i = 0; i < 8; ++i) {
        void* p = larder_malloc(size);
        ASSERT_NE(p, nullptr);
        std::memset(p, 0xA5, larder_usable_size(p));
        dirty.push_back(p);
      }
      for (void* p : dirty) larder_free(p);
      for (int i = 0; i < 8; ++i) {
        auto* p = static_cast<unsigned char*>(larder_calloc(1, size));
        ASSERT_NE(p, nullptr);
        std::size_t bad = SIZE_MAX;
        for (std::size_t k = 0; k < size && bad == SIZE_MAX; ++k)
          if (p[k] != 0) bad = k;
        EXPECT_EQ(bad, SIZE_MAX) << "calloc(1, " << size << ") byte " << bad << " is not zero";
        dirty[i] = p;
      }
      for (void* p : dirty) larder_free(p);
    }
  }
}

// ---- realloc -----------------------------------------------------------------

TEST(ApiTest, ReallocNullBehavesLikeMalloc) {
  void* p = larder_realloc(nullptr, 100);
  ASSERT_NE(p, nullptr);
  EXPECT_GE(larder_usable_size(p), 100u);
  std::memset(p, 1, 100);
  larder_free(p);
  void* q = larder_realloc(nullptr, 0);
  EXPECT_NE(q, nullptr);  // like malloc(0)
  larder_free(q);
  void* h = larder_realloc(nullptr, 6 * kMiB);
  ASSERT_NE(h, nullptr);
  EXPECT_GE(larder_usable_size(h), 6 * kMiB);
  larder_free(h);
}

// glibc's realloc(p, 0) frees p and returns NULL; so does larder's. If the
// block were not freed, a million rounds would hold gigabytes.
TEST(ApiTest, ReallocToZeroFreesAndReturnsNull) {
  void* p = larder_malloc(64);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(larder_realloc(p, 0), nullptr);
  void* h = larder_malloc(5 * kMiB);
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(larder_realloc(h, 0), nullptr);

  std::size_t before = larder_test::resident_bytes();
  for (int i = 0; i < 1000000; ++i) {
    void* b = larder_malloc(4000);
    ASSERT_NE(b, nullptr);
    static_cast<char*>(b)[0] = 1;
    static_cast<char*>(b)[3999] = 1;
    ASSERT_EQ(larder_realloc(b, 0), nullptr);
  }
  std::size_t after = larder_test::resident_bytes();
  EXPECT_LT(after, before + 64 * kMiB) << "realloc(p, 0) does not seem to free p";
}

TEST(ApiTest, ReallocPreservesContentAcrossAllSizeRanges) {
  const std::uint64_t tag = 77;
  std::size_t size = 1;
  auto* p = static_cast<unsigned char*>(larder_malloc(size));
  ASSERT_NE(p, nullptr);
  fill_range(p, 0, size, tag);
  // Grow from 1 byte to 24 MiB, crossing every size range, then shrink back.
  std::vector<std::size_t> sizes;
  for (std::size_t s = 1; s <= 24 * kMiB; s = s * 3 / 2 + 7) sizes.push_back(s);
  std::vector<std::size_t> down(sizes.rbegin(), sizes.rend());
  sizes.insert(sizes.end(), down.begin(), down.end());
  for (std::size_t next : sizes) {
    auto* q = static_cast<unsigned char*>(larder_realloc(p, next));
    ASSERT_NE(q, nullptr) << "realloc to " << next;
    std::size_t keep = std::min(size, next);
    ASSERT_EQ(check_range(q, 0, keep, tag), SIZE_MAX) << "realloc from " << size << " to " << next;
    ASSERT_GE(larder_usable_size(q), next);
    if (next > size) fill_range(q, size & ~std::size_t{7}, next, tag);
    p = q;
    size = next;
  }
  larder_free(p);
}

TEST(ApiTest, ReallocOfAlignedBlockKeepsContent) {
  for (std::size_t alignment : {32u, 256u, 4096u, 65536u, 1u << 20}) {
    void* p = larder_aligned_alloc(alignment, 1000);
    ASSERT_NE(p, nullptr);
    fill_range(p, 0, 1000, alignment);
    for (std::size_t next : {std::size_t{600}, std::size_t{5000}, std::size_t{300000}, 5 * kMiB, std::size_t{100}}) {
      void* q = larder_realloc(p, next);
      ASSERT_NE(q, nullptr);
      ASSERT_EQ(check_range(q, 0, std::min<std::size_t>(next, 100), alignment), SIZE_MAX)
          << "alignment " << alignment << ", realloc to " << next;
      p = q;
    }
    larder_free(p);
  }
}

TEST(ApiTest, ReallocarrayOverflowFailsAndKeepsTheBlock) {
  auto* p = static_cast<unsigned char*>(larder_malloc(64));
  ASSERT_NE(p, nullptr);
  fill_range(p, 0, 64, 5);
  errno = 0;
  EXPECT_EQ(larder_reallocarray(p, SIZE_MAX / 2, 4), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(larder_reallocarray(p, std::size_t{1} << 33, std::size_t{1} << 33), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_EQ(check_range(p, 0, 64, 5), SIZE_MAX);
  EXPECT_GE(larder_usable_size(p), 64u);
  // Still a live block that reallocarray can grow.
  auto* q = static_cast<unsigned char*>(larder_reallocarray(p, 100, 8));
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(check_range(q, 0, 64, 5), SIZE_MAX);
  EXPECT_GE(larder_usable_size(q), 800u);
  larder_free(q);
  void* r = larder_reallocarray(nullptr, 10, 10);
  ASSERT_NE(r, nullptr);
  EXPECT_GE(larder_usable_size(r), 100u);
  larder_free(r);
}

TEST(ApiTest, ReallocFailureKeepsTheBlock) {
  auto* p = static_cast<unsigned char*>(larder_malloc(300));
  ASSERT_NE(p, nullptr);
  fill_range(p, 0, 300, 9);
  errno = 0;
  EXPECT_EQ(larder_realloc(p, SIZE_MAX / 2), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_EQ(check_range(p, 0, 300, 9), SIZE_MAX);
  errno = 0;
  EXPECT_EQ(larder_realloc(p, std::size_t{1} << 50), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_EQ(check_range(p, 0, 300, 9), SIZE_MAX);
  larder_free(p);
}

// Growing a huge block to an impossible size must fail like malloc does and
// leave the block as it was: same place, same usable size, same content.
TEST(ApiTest, HugeReallocToImpossibleSizeFails) {
  const std::size_t size = 6 * kMiB;
  auto* h = static_cast<unsigned char*>(larder_malloc(size));
  ASSERT_NE(h, nullptr);
  fill_range(h, 0, size, 10);
  const std::size_t usable = larder_usable_size(h);
  for (std::size_t impossible : {SIZE_MAX, SIZE_MAX - 4096, SIZE_MAX / 2, std::size_t{1} << 50}) {
    errno = 0;
    void* r = larder_realloc(h, impossible);
    EXPECT_EQ(r, nullptr) << "realloc(huge, " << impossible << ") succeeded";
    EXPECT_EQ(errno, ENOMEM) << "realloc(huge, " << impossible << ")";
    EXPECT_EQ(larder_usable_size(h), usable) << "after realloc(huge, " << impossible << ")";
    if (r != nullptr && r != h) h = static_cast<unsigned char*>(r);
  }
  EXPECT_EQ(check_range(h, 0, size, 10), SIZE_MAX);
  larder_free(h);
}

// ---- aligned allocation -----------------------------------------------------

TEST(ApiTest, PosixMemalignRejectsBadAlignments) {
  for (std::size_t alignment :
       {std::size_t{0}, std::size_t{1}, std::size_t{2}, std::size_t{4}, std::size_t{3}, std::size_t{12},
        std::size_t{24}, std::size_t{48}, std::size_t{100}, std::size_t{4097}, (std::size_t{1} << 20) + 8, SIZE_MAX}) {
    void* sentinel = reinterpret_cast<void*>(0x5EA1);
    void* out = sentinel;
    EXPECT_EQ(larder_posix_memalign(&out, alignment, 64), EINVAL) << "alignment " << alignment;
    EXPECT_EQ(out, sentinel) << "alignment " << alignment << ": *out was written";
  }
}

TEST(ApiTest, PosixMemalignReportsEnomemWithoutTouchingOut) {
  void* sentinel = reinterpret_cast<void*>(0x5EA1);
  void* out = sentinel;
  errno = 1234;
  EXPECT_EQ(larder_posix_memalign(&out, 64, SIZE_MAX / 2), ENOMEM);
  EXPECT_EQ(out, sentinel);
  EXPECT_EQ(errno, 1234) << "posix_memalign reports through its result and leaves errno alone";
}

TEST(ApiTest, AlignedAllocRejectsNonPowerOfTwo) {
  for (std::size_t alignment :
       {std::size_t{0}, std::size_t{3}, std::size_t{24}, std::size_t{96}, std::size_t{4095}, std::size_t{3} << 20}) {
    errno = 0;
    EXPECT_EQ(larder_aligned_alloc(alignment, 256), nullptr) << "alignment " << alignment;
    EXPECT_EQ(errno, EINVAL) << "alignment " << alignment;
  }
}

TEST(ApiTest, MemalignRoundsOddAlignmentsUp) {
  void* p = larder_memalign(24, 100);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(aligned_to(p, 32)) << p;
  larder_free(p);
  void* q = larder_memalign(3000, 100);
  ASSERT_NE(q, nullptr);
  EXPECT_TRUE(aligned_to(q, 4096)) << q;
  larder_free(q);
  void* r = larder_memalign(0, 100);
  ASSERT_NE(r, nullptr);
  larder_free(r);
}

// Every power of two from 1 byte to 64 MiB, through aligned_alloc,
// posix_memalign and memalign, with sizes around the alignment and
// unrelated to it. Blocks of one alignment are alive together and must
// not overlap.
TEST(ApiTest, EveryPowerOfTwoAlignment) {
  for (std::size_t log2 = 0; log2 <= 26; ++log2) {
    const std::size_t alignment = std::size_t{1} << log2;
    std::vector<std::size_t> sizes = {0, 1, 24, 100, 1000, 5000, 70000, 600000};
    if (alignment <= 4 * kMiB) {
      sizes.push_back(alignment);
      sizes.push_back(alignment + 1);
      if (alignment > 1) sizes.push_back(alignment - 1);
    }
    struct live {
      void* p;
      std::size_t size;
    };
    std::vector<live> blocks;
    interval_set ranges;
    for (std::size_t size : sizes) {
      for (int how = 0; how < 3; ++how) {
        void* p = nullptr;
        const char* name = "aligned_alloc";
        if (how == 0) {
          p = larder_aligned_alloc(alignment, size);
        } else if (how == 1) {
          name = "posix_memalign";
          if (alignment < sizeof(void*)) continue;
          ASSERT_EQ(larder_posix_memalign(&p, alignment, size), 0) << alignment << " " << size;
        } else {
          name = "memalign";
          p = larder_memalign(alignment, size);
        }
        ASSERT_NE(p, nullptr) << name << "(" << alignment << ", " << size << ")";
        EXPECT_TRUE(aligned_to(p, alignment)) << name << "(" << alignment << ", " << size << ") = " << p;
        std::size_t usable = larder_usable_size(p);
        ASSERT_GE(usable, size) << name << "(" << alignment << ", " << size << ")";
        auto start = reinterpret_cast<std::uintptr_t>(p);
        ASSERT_TRUE(ranges.insert(start, start + usable))
            << name << "(" << alignment << ", " << size << ") = " << p << " overlaps a live block";
        if (size > 0) {
          fill_range(p, 0, std::min<std::size_t>(size, 8192), alignment + size);
          fill_range(p, (size - std::min<std::size_t>(size, 8192)) & ~std::size_t{7}, size, alignment + size);
        }
        blocks.push_back({p, size});
      }
    }
    for (const live& b : blocks) {
      if (b.size > 0) {
        EXPECT_EQ(check_range(b.p, 0, std::min<std::size_t>(b.size, 8192), alignment + b.size), SIZE_MAX)
            << "alignment " << alignment << ", size " << b.size;
        EXPECT_EQ(check_range(b.p, (b.size - std::min<std::size_t>(b.size, 8192)) & ~std::size_t{7}, b.size,
                              alignment + b.size),
                  SIZE_MAX)
            << "alignment " << alignment << ", size " << b.size;
      }
      larder_free(b.p);
    }
  }
}

// Alignments past 64 MiB: up to 1 GiB they must work; beyond, a NULL with
// ENOMEM is acceptable, a misaligned block is not.
TEST(ApiTest, VeryLargeAlignments) {
  for (std::size_t log2 = 27; log2 <= 32; ++log2) {
    const std::size_t alignment = std::size_t{1} << log2;
    errno = 0;
    void* p = larder_aligned_alloc(alignment, 1000);
    if (log2 <= 30) {
      ASSERT_NE(p, nullptr) << "aligned_alloc(" << alignment << ", 1000): errno " << errno;
    } else if (p == nullptr) {
      EXPECT_EQ(errno, ENOMEM) << "aligned_alloc(" << alignment << ", 1000)";
      continue;
    }
    EXPECT_TRUE(aligned_to(p, alignment)) << p;
    EXPECT_GE(larder_usable_size(p), 1000u);
    std::memset(p, 0x33, 1000);
    larder_free(p);
  }
}

// memalign rounds an alignment that is not a power of two up to the next
// one. Past 2^63 there is none: the call must fail (glibc: EINVAL) rather
// than hand out a block without the alignment asked for.
TEST(ApiTest, MemalignBeyondTheLargestPowerOfTwoFails) {
  for (std::size_t alignment : {SIZE_MAX, (std::size_t{1} << 63) + 1, SIZE_MAX - 4096}) {
    errno = 0;
    void* p = larder_memalign(alignment, 16);
    EXPECT_EQ(p, nullptr) << "memalign(" << alignment << ", 16) returned " << p;
    EXPECT_TRUE(errno == EINVAL || errno == ENOMEM) << "memalign(" << alignment << ", 16): errno " << errno;
    if (p != nullptr) larder_free(p);
  }
  errno = 0;
  EXPECT_EQ(larder_memalign(std::size_t{1} << 63, 16), nullptr);
  EXPECT_TRUE(errno == EINVAL || errno == ENOMEM) << errno;
}

TEST(ApiTest, VallocIsPageAligned) {
  const std::size_t page = os_page();
  std::vector<void*> blocks;
  for (std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{100}, page - 1, page, page + 1, 10 * page + 3,
                           std::size_t{200000}, 2 * kMiB, 9 * kMiB}) {
    void* p = larder_valloc(size);
    ASSERT_NE(p, nullptr) << "valloc(" << size << ")";
    EXPECT_TRUE(aligned_to(p, page)) << "valloc(" << size << ") = " << p;
    EXPECT_GE(larder_usable_size(p), size);
    if (size > 0) std::memset(p, 0x11, size);
    blocks.push_back(p);
  }
  for (void* p : blocks) larder_free(p);
}

TEST(ApiTest, PvallocRoundsUpToPages) {
  const std::size_t page = os_page();
  std::vector<void*> blocks;
  for (std::size_t size :
       {std::size_t{0}, std::size_t{1}, page - 1, page, page + 1, 7 * page + 5, std::size_t{300000}, 5 * kMiB + 1}) {
    void* p = larder_pvalloc(size);
    ASSERT_NE(p, nullptr) << "pvalloc(" << size << ")";
    EXPECT_TRUE(aligned_to(p, page)) << "pvalloc(" << size << ") = " << p;
    std::size_t rounded = size == 0 ? page : (size + page - 1) / page * page;
    EXPECT_GE(larder_usable_size(p), rounded) << "pvalloc(" << size << ")";
    std::memset(p, 0x22, rounded);  // the whole rounded size is the caller's
    blocks.push_back(p);
  }
  for (void* p : blocks) larder_free(p);
  errno = 0;
  EXPECT_EQ(larder_pvalloc(SIZE_MAX - 10), nullptr);
  EXPECT_EQ(errno, ENOMEM);
}

// ---- huge blocks -------------------------------------------------------------

TEST(ApiTest, HugeBlocksAreUsable) {
  for (std::size_t size : {8 * kMiB, 100 * kMiB}) {
    auto* p = static_cast<unsigned char*>(larder_malloc(size));
    ASSERT_NE(p, nullptr) << size;
    EXPECT_TRUE(aligned_to(p, 16));
    EXPECT_GE(larder_usable_size(p), size);
    std::memset(p, 0x5C, size);
    EXPECT_EQ(p[0], 0x5C);
    EXPECT_EQ(p[size / 2], 0x5C);
    EXPECT_EQ(p[size - 1], 0x5C);
    larder_free(p);
  }
  auto* z = static_cast<unsigned char*>(larder_calloc(100, kMiB));
  ASSERT_NE(z, nullptr);
  for (std::size_t at = 0; at < 100 * kMiB; at += 4096) ASSERT_EQ(z[at], 0) << at;
  EXPECT_EQ(z[100 * kMiB - 1], 0);
  larder_free(z);
}

TEST(ApiTest, HugeAllocationFailureReturnsNullWithEnomem) {
  for (std::size_t size : {SIZE_MAX, SIZE_MAX / 2, std::size_t{1} << 47, std::size_t{1} << 45,
                           std::size_t{3} << 40 /* past the process heap's reserve */}) {
    errno = 0;
    EXPECT_EQ(larder_malloc(size), nullptr) << "malloc(" << size << ")";
    EXPECT_EQ(errno, ENOMEM) << "malloc(" << size << ")";
    errno = 0;
    EXPECT_EQ(larder_calloc(1, size), nullptr) << "calloc(1, " << size << ")";
    EXPECT_EQ(errno, ENOMEM);
    errno = 0;
    EXPECT_EQ(larder_aligned_alloc(4096, size), nullptr) << "aligned_alloc(4096, " << size << ")";
    EXPECT_EQ(errno, ENOMEM);
    errno = 0;
    EXPECT_EQ(larder_memalign(1 << 22, size), nullptr);
    EXPECT_EQ(errno, ENOMEM);
  }
  // The allocator still works afterwards.
  void* p = larder_malloc(10 * kMiB);
  ASSERT_NE(p, nullptr);
  larder_free(p);
}

// A huge block shrinks in place; it then grows in place into the segments
// it just gave back (nothing else allocates meanwhile). Content survives
// either way.
TEST(ApiTest, HugeReallocResizesInPlaceWhenPossible) {
  const std::uint64_t tag = 1234;
  auto* p = static_cast<unsigned char*>(larder_malloc(32 * kMiB));
  ASSERT_NE(p, nullptr);
  fill_range(p, 0, 32 * kMiB, tag);
  auto* q = static_cast<unsigned char*>(larder_realloc(p, 8 * kMiB));
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q, p) << "shrinking a huge block should not move it";
  EXPECT_EQ(check_range(q, 0, 8 * kMiB, tag), SIZE_MAX);
  EXPECT_GE(larder_usable_size(q), 8 * kMiB);
  EXPECT_LT(larder_usable_size(q), 16 * kMiB) << "the tail segments were not given back";
  auto* r = static_cast<unsigned char*>(larder_realloc(q, 24 * kMiB));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r, q) << "the segments after the block are free: growth should be in place";
  EXPECT_EQ(check_range(r, 0, 8 * kMiB, tag), SIZE_MAX);
  fill_range(r, 8 * kMiB, 24 * kMiB, tag);
  // Growing far beyond may or may not move; the content must survive.
  auto* s = static_cast<unsigned char*>(larder_realloc(r, 120 * kMiB));
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(check_range(s, 0, 24 * kMiB, tag), SIZE_MAX);
  // Down to a size that lives on a heap page.
  auto* t = static_cast<unsigned char*>(larder_realloc(s, 1000));
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(check_range(t, 0, 1000, tag), SIZE_MAX);
  EXPECT_LT(larder_usable_size(t), 2000u);
  larder_free(t);
}

// A freed huge block of one segment is kept for reuse; a larger huge block
// allocated next must not take that segment into its run while the segment
// is still kept, or the next one-segment block would land inside it.
TEST(ApiTest, HugeBlocksNeverShareSegments) {
  void* a = larder_malloc(1 * kMiB);
  ASSERT_NE(a, nullptr);
  larder_free(a);
  auto* b = static_cast<unsigned char*>(larder_malloc(8 * kMiB));
  auto* c = static_cast<unsigned char*>(larder_malloc(1 * kMiB));
  ASSERT_NE(b, nullptr);
  ASSERT_NE(c, nullptr);
  bool overlap = c < b + 8 * kMiB && b < c + 1 * kMiB;
  ASSERT_FALSE(overlap) << "malloc(1 MiB) = " << static_cast<void*>(c) << " lies inside the live 8 MiB block at "
                        << static_cast<void*>(b);
  fill_range(b, 0, 8 * kMiB, 1);
  fill_range(c, 0, 1 * kMiB, 2);
  EXPECT_EQ(check_range(b, 0, 8 * kMiB, 1), SIZE_MAX);
  larder_free(c);
  larder_free(b);
}

// Two huge blocks side by side: the first cannot grow in place while the
// second sits behind it, so it moves, keeping its content; the second
// block is left alone.
TEST(ApiTest, HugeReallocMovesWhenBlocked) {
  auto* a = static_cast<unsigned char*>(larder_malloc(6 * kMiB));
  auto* b = static_cast<unsigned char*>(larder_malloc(6 * kMiB));
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  fill_range(a, 0, 6 * kMiB, 1);
  fill_range(b, 0, 6 * kMiB, 2);
  auto* c = static_cast<unsigned char*>(larder_realloc(a, 40 * kMiB));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(check_range(c, 0, 6 * kMiB, 1), SIZE_MAX);
  EXPECT_EQ(check_range(b, 0, 6 * kMiB, 2), SIZE_MAX);
  auto bs = reinterpret_cast<std::uintptr_t>(b), cs = reinterpret_cast<std::uintptr_t>(c);
  EXPECT_TRUE(cs + 40 * kMiB <= bs || bs + 6 * kMiB <= cs) << "grown block overlaps its neighbour";
  larder_free(c);
  larder_free(b);
}

// ---- pointers larder does not own ---------------------------------------------

TEST(ApiTest, FreeOfForeignPointerIsIgnored) {
  int on_stack = 42;
  larder_free(&on_stack);
  EXPECT_EQ(on_stack, 42);
  void* from_libc = std::malloc(100);
  ASSERT_NE(from_libc, nullptr);
  std::memset(from_libc, 3, 100);
  larder_free(from_libc);  // not larder's: ignored
  EXPECT_EQ(static_cast<unsigned char*>(from_libc)[99], 3);
  std::free(from_libc);
  static char in_data[64];
  larder_free(in_data);
  EXPECT_EQ(larder_usable_size(&on_stack), 0u);
  // larder keeps working.
  void* p = larder_malloc(32);
  ASSERT_NE(p, nullptr);
  larder_free(p);
}

// ---- diagnostics -----------------------------------------------------------------

TEST(ApiTest, StatsPrintWritesStatistics) {
  void* p = larder_malloc(1000);
  ASSERT_NE(p, nullptr);
  ::testing::internal::CaptureStderr();
  larder_stats_print();
  std::string out = ::testing::internal::GetCapturedStderr();
  larder_free(p);
  EXPECT_NE(out.find("larder: statistics"), std::string::npos) << out;
}

TEST(ApiTest, CollectKeepsLiveBlocks) {
  std::vector<void*> keep;
  for (int i = 0; i < 2000; ++i) {
    void* p = larder_malloc(static_cast<std::size_t>(16 + i * 37 % 5000));
    ASSERT_NE(p, nullptr);
    fill_range(p, 0, 16, static_cast<std::uint64_t>(i));
    keep.push_back(p);
  }
  for (std::size_t i = 0; i < keep.size(); i += 2) larder_free(keep[i]);
  larder_collect();
  for (std::size_t i = 1; i < keep.size(); i += 2) {
    EXPECT_EQ(check_range(keep[i], 0, 16, i), SIZE_MAX) << i;
    larder_free(keep[i]);
  }
  larder_collect();
  EXPECT_NE(larder_strerror(ENOMEM), nullptr);
  EXPECT_GT(std::strlen(larder_strerror(ENOMEM)), 0u);
}

}  // namespace
