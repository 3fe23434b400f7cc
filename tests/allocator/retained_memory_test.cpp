// Freed huge blocks keep their memory for the next ones (region::retain),
// and a new huge block larger than any one of them takes the memory of
// several (region::move_retained_into): it is then not faulted in again,
// and calloc still hands out zeros. Each test expects the process heap as
// a new process has it (ctest runs every test in its own process).
#include <larder/larder.h>

#include <gtest/gtest.h>

#include <sys/resource.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

constexpr std::size_t kMiB = 1024 * 1024;
constexpr std::size_t kPage = 4096;
// Two 4 MiB segments each (a huge block starts 64 KiB into its first).
constexpr std::size_t kSmallBlock = 7 * kMiB;
// Four segments: more than any one freed block holds.
constexpr std::size_t kLargeBlock = 15 * kMiB;

long minor_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

// Allocates six two-segment blocks written with `fill`, then frees every
// other one in address order, so that each freed block lies between two
// live ones and no freed run can hold a four-segment block. Returns the
// live blocks.
std::vector<void*> scatter_freed_blocks(unsigned char fill) {
  std::vector<void*> blocks;
  for (int i = 0; i < 6; ++i) {
    void* p = larder_malloc(kSmallBlock);
    EXPECT_NE(p, nullptr);
    if (p == nullptr) break;
    std::memset(p, fill, kSmallBlock);
    blocks.push_back(p);
  }
  std::sort(blocks.begin(), blocks.end());
  std::vector<void*> live;
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    if (i % 2 == 0) {
      larder_free(blocks[i]);
    } else {
      live.push_back(blocks[i]);
    }
  }
  return live;
}

TEST(RetainedMemoryTest, BlockLargerThanEveryFreedOneIsNotFaultedInAgain) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer faults in fresh shadow memory for every page written (its shadow does not move "
                  "with the pages), so the fault count cannot tell reuse from new memory";
#endif
  std::vector<void*> live = scatter_freed_blocks(0x5A);
  auto* p = static_cast<unsigned char*>(larder_malloc(kLargeBlock));
  ASSERT_NE(p, nullptr);
  const long before = minor_faults();
  for (std::size_t at = 0; at < kLargeBlock; at += kPage) p[at] = 1;
  const long faults = minor_faults() - before;
  // Without reuse every page faults (3,840); the margin is for what a
  // sanitizer's shadow memory adds.
  EXPECT_LT(faults, static_cast<long>(kLargeBlock / kPage / 4))
      << "the freed blocks' 12 MiB were not reused for a 15 MiB block";
  larder_free(p);
  for (void* q : live) larder_free(q);
}

TEST(RetainedMemoryTest, CallocZeroesMemoryMovedFromFreedBlocks) {
  std::vector<void*> live = scatter_freed_blocks(0xA5);
  auto* p = static_cast<unsigned char*>(larder_calloc(1, kLargeBlock));
  ASSERT_NE(p, nullptr);
  std::size_t bad = SIZE_MAX;
  for (std::size_t at = 0; at < kLargeBlock && bad == SIZE_MAX; ++at)
    if (p[at] != 0) bad = at;
  EXPECT_EQ(bad, SIZE_MAX) << "calloc(1, 15 MiB) byte " << bad << " is not zero";
  larder_free(p);
  for (void* q : live) larder_free(q);
}

TEST(RetainedMemoryTest, MovedMemoryKeepsEveryLiveBlockIntact) {
  std::vector<void*> live = scatter_freed_blocks(0x11);
  std::vector<unsigned char*> large;
  for (int i = 0; i < 3; ++i) {
    auto* p = static_cast<unsigned char*>(larder_malloc(kLargeBlock));
    ASSERT_NE(p, nullptr);
    std::memset(p, 0x20 + i, kLargeBlock);
    large.push_back(p);
  }
  for (void* q : live) {
    const auto* bytes = static_cast<const unsigned char*>(q);
    for (std::size_t at = 0; at < kSmallBlock; at += kPage / 2) ASSERT_EQ(bytes[at], 0x11) << at;
  }
  for (int i = 0; i < 3; ++i)
    for (std::size_t at = 0; at < kLargeBlock; at += kPage / 2) ASSERT_EQ(large[i][at], 0x20 + i) << at;
  for (unsigned char* p : large) larder_free(p);
  for (void* q : live) larder_free(q);
}

}  // namespace
