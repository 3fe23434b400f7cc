// What users do to heaps beyond the happy path: statistics of reopened and
// read-only heaps, full file systems, heaps created separately opened
// together, stale files from crashed creations, lock holders.
#include "runtime_test_util.hpp"

#include <thread>
#include <vector>

namespace {

using larder_test::temp_dir;

std::size_t in_use_of(const larder::heap& h, std::string_view pod) {
  for (const auto& p : h.pods())
    if (p.name == pod) return p.bytes_in_use;
  ADD_FAILURE() << "no pod " << pod;
  return 0;
}

// A pod holding only huge blocks, reopened for writing and read-only:
// pods() counts what usable_size reports for each block.
TEST(PodUsage, CountsHugeBlocksAfterReopenAndReadOnly) {
  temp_dir dir;
  std::string path = dir.file("heap");
  std::size_t expected = 0;
  {
    larder::heap h({.kind = larder::backing::file, .name = path});
    larder::pod big;
    ASSERT_TRUE(h.make_pod("big", &big).ok());
    std::vector<void*> blocks;
    for (std::size_t mib : {1, 3, 9}) {
      void* p = big.allocate(mib << 20);
      ASSERT_NE(p, nullptr);
      expected += larder::usable_size(p);
      blocks.push_back(p);
    }
    ASSERT_TRUE(h.set_root("blocks", blocks[0], 1).ok());
    EXPECT_EQ(in_use_of(h, "big"), expected);
    ASSERT_TRUE(h.close().ok());
  }
  {
    larder::heap h({.kind = larder::backing::file, .name = path, .mode = larder::open_mode::open});
    EXPECT_EQ(in_use_of(h, "big"), expected);
  }
  larder::heap ro({.kind = larder::backing::file, .name = path, .mode = larder::open_mode::open, .read_only = true});
  EXPECT_EQ(in_use_of(ro, "big"), expected);
}

// Small blocks freed by another thread are not in use, whoever folds them.
TEST(PodUsage, RemoteFreesDoNotCount) {
  temp_dir dir;
  larder::heap h({.kind = larder::backing::file, .name = dir.file("heap")});
  std::size_t before = in_use_of(h, "default");
  std::vector<void*> blocks;
  for (int i = 0; i < 1000; ++i) blocks.push_back(h.allocate(48));
  EXPECT_EQ(in_use_of(h, "default"), before + 1000 * larder::usable_size(blocks[0]));
  std::thread([&] {
    for (void* p : blocks) larder::heap::deallocate(p);
  }).join();
  EXPECT_EQ(in_use_of(h, "default"), before);
}

}  // namespace
