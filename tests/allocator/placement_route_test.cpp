// The process heap's placement (LARDER_PLACEMENT=sites, allocator/
// placement.hpp): the same program runs twice, with the option and
// without (tests/allocator/CMakeLists.txt), through the larder_* entry
// points. With it, each site's blocks share a pod and two sites of one
// size class get pods apart; without it, every block is in pod 0 and no
// local heap routes, so the allocation fast path is the one it always was.
#include <larder/larder.h>

#include "allocator/alloc.hpp"
#include "allocator/placement.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

namespace {

std::atomic<int> g_last_site{0};
template <int Site>
__attribute__((noinline)) void* allocate_at(std::size_t size) {
  void* p = larder_malloc(size);
  g_last_site.store(Site, std::memory_order_relaxed);
  return p;
}

std::uint32_t pod_of(const void* p) { return larder::alloc::segment_of(p)->pod; }

bool placement_on() {
  const char* value = std::getenv("LARDER_PLACEMENT");
  return value != nullptr && std::strcmp(value, "sites") == 0;
}

TEST(ProcessHeapPlacement, SitesShareAPodAndKeepApart) {
  std::vector<void*> a, b;
  for (int i = 0; i < 1000; ++i) {
    a.push_back(allocate_at<1>(48));
    b.push_back(allocate_at<2>(48));
  }
  std::set<std::uint32_t> pods_a, pods_b;
  for (void* p : a) pods_a.insert(pod_of(p));
  for (void* p : b) pods_b.insert(pod_of(p));
  ASSERT_EQ(pods_a.size(), 1u);
  ASSERT_EQ(pods_b.size(), 1u);
  // Eight more sites: spread over 16 pods by hash, they cannot all meet
  // in one (two might).
  std::set<std::uint32_t> spread{*pods_a.begin(), *pods_b.begin()};
  std::vector<void*> more = {allocate_at<3>(48), allocate_at<4>(48), allocate_at<5>(48), allocate_at<6>(48),
                             allocate_at<7>(48), allocate_at<8>(48), allocate_at<9>(48), allocate_at<10>(48)};
  for (void* p : more) spread.insert(pod_of(p));
  for (void* p : more) larder_free(p);
  larder::alloc::local_heap* h = larder::alloc::tls_heap;
  if (placement_on()) {
    EXPECT_NE(h->routes, nullptr) << "the thread's pod-0 heap routes";
    EXPECT_EQ(spread.count(0), 0u);
    EXPECT_GE(spread.size(), 3u) << "ten sites spread over 16 pods";
  } else {
    EXPECT_EQ(h->routes, nullptr) << "without the option no local heap routes";
    EXPECT_EQ(larder::alloc::g_process_region->placement(), nullptr);
    EXPECT_EQ(*pods_a.begin(), 0u);
    EXPECT_EQ(*pods_b.begin(), 0u);
  }
  for (void* p : a) larder_free(p);
  for (void* p : b) larder_free(p);
}

TEST(ProcessHeapPlacement, EveryEntryPointAndThreads) {
  std::vector<void*> blocks;
  blocks.push_back(larder_calloc(10, 100));
  blocks.push_back(larder_aligned_alloc(256, 1024));
  blocks.push_back(larder_malloc(4 << 20));  // huge
  void* grown = larder_realloc(larder_malloc(100), 5000);
  blocks.push_back(grown);
  for (void* p : blocks) {
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(placement_on(), pod_of(p) != 0) << p;
  }
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(blocks[1]) % 256, 0u);
  std::vector<std::thread> threads;
  std::vector<std::uint32_t> seen(4);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      void* p = allocate_at<1>(48);
      seen[t] = pod_of(p);
      larder_free(p);
    });
  for (auto& t : threads) t.join();
  for (std::uint32_t pod : seen) EXPECT_EQ(pod, seen[0]) << "a site's pod is the same on every thread";
  for (void* p : blocks) larder_free(p);
}

}  // namespace
