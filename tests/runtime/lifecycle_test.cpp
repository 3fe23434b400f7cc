// Heaps closed while threads come and go, forked children, and blocks that
// are in flight between threads when a heap closes.
#include <larder/larder.h>
#include <larder/larder.hpp>

#include <gtest/gtest.h>

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

class RuntimeLifecycle : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/larder-lifecycle-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    unlink(path().c_str());
    rmdir(dir_.c_str());
  }
  std::string path() const { return dir_ + "/heap"; }
  larder::heap_options options() const {
    larder::heap_options o;
    o.kind = larder::backing::file;
    o.name = path();
    o.reserve = std::size_t{1} << 30;
    return o;
  }
  static std::size_t in_use(larder::heap& h) { return h.pods()[0].bytes_in_use; }

  std::string dir_;
};

// A thread that used a heap may still be exiting (giving its pages back)
// when another thread closes that heap.
TEST_F(RuntimeLifecycle, ThreadExitRacesClose) {
  larder::heap_options o;
  o.kind = larder::backing::anonymous;
  o.reserve = std::size_t{1} << 30;
  for (int round = 0; round < 30; ++round) {
    larder::heap h(o);
    for (int k = 0; k < 4000; ++k) ASSERT_NE(h.allocate(8000), nullptr);
    std::atomic<bool> done{false};
    std::thread t([&] {
      for (int k = 0; k < 3000; ++k) (void)h.allocate(64 + (k % 50) * 16);
      done.store(true);
    });
    t.detach();
    while (!done.load()) {
    }
    ASSERT_TRUE(h.close().ok());
  }
  usleep(50000);  // let the last detached thread finish exiting
}

// Blocks another thread frees into a full page wait on the owner's delayed
// list; closing the heap must return them to their page.
TEST_F(RuntimeLifecycle, FreesInFlightAtCloseAreNotLost) {
  {
    larder::heap h(options());
    std::vector<void*> blocks;
    for (int i = 0; i < 2000; ++i) blocks.push_back(h.allocate(64));
    std::thread([&] { larder::heap::deallocate(blocks[0]); }).join();
    for (std::size_t i = 1; i < blocks.size(); ++i) larder::heap::deallocate(blocks[i]);
    ASSERT_TRUE(h.close().ok());
  }
  larder::heap h(options());
  EXPECT_EQ(in_use(h), 0u);
}

// A forked child shares the parent's heap mapping: giving memory back to
// the OS there would punch holes in the parent's live data.
TEST_F(RuntimeLifecycle, ForkedChildCollectLeavesTheParentsHeapAlone) {
  larder::heap h(options());
  void* first = h.allocate(1 << 20);  // a huge block: freed, its segment is kept for reuse
  ASSERT_NE(first, nullptr);
  larder::heap::deallocate(first);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    usleep(20000);
    larder_collect();
    larder_stats_print();
    _exit(0);
  }
  auto* live = static_cast<unsigned char*>(h.allocate(1 << 20));  // reuses the kept segment
  ASSERT_NE(live, nullptr);
  std::memset(live, 'P', 1 << 20);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  std::size_t damaged = 0;
  for (std::size_t i = 0; i < (1 << 20); ++i) damaged += live[i] != 'P';
  EXPECT_EQ(damaged, 0u);
}

TEST_F(RuntimeLifecycle, ReallocInAReadOnlyHeapFailsWithErofs) {
  void* block = nullptr;
  {
    larder::heap h(options());
    block = h.allocate(12 << 20);
    ASSERT_NE(block, nullptr);
    std::memset(block, 'A', 12 << 20);
    ASSERT_TRUE(h.set_root("block", block, 12 << 20).ok());
    ASSERT_TRUE(h.close().ok());
  }
  larder::heap_options o = options();
  o.read_only = true;
  o.mode = larder::open_mode::open;
  larder::heap h(o);
  void* found = h.find_root("block");
  ASSERT_EQ(found, block);
  errno = 0;
  EXPECT_EQ(larder_realloc(found, 1 << 20), nullptr);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(static_cast<unsigned char*>(found)[(12 << 20) - 1], 'A');
}

}  // namespace
