// Automatic pod placement (larder/placement.hpp): where placed allocations
// go, that named pods are never overridden, that learning separates hot
// sites from cold ones and bundles alike ones, that decisions are the same
// for the same run, and what `placement_sites` reports.
#include "runtime/placement_model.hpp"
#include "runtime/runtime_test_util.hpp"

#include <larder/larder.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

larder::heap placed_heap(larder::placement_policy policy = larder::placement_policy::sites) {
  larder::heap_options o;
  o.kind = larder::backing::anonymous;
  o.reserve = std::size_t{4} << 30;
  o.placement = policy;
  larder::heap h;
  larder::status s = larder::heap::open(o, &h);
  EXPECT_TRUE(s.ok()) << s.message();
  return h;
}

// Three call sites. noinline and the store after the call keep each its
// own return address: a tail call would make the caller's the site, and
// identical bodies could be folded into one function.
std::atomic<int> g_last_site{0};
template <int Site>
__attribute__((noinline)) void* allocate_at(larder::heap& h, std::size_t size) {
  void* p = h.allocate(size);
  g_last_site.store(Site, std::memory_order_relaxed);
  return p;
}
void* allocate_hot(larder::heap& h, std::size_t size) { return allocate_at<1>(h, size); }
void* allocate_cold(larder::heap& h, std::size_t size) { return allocate_at<2>(h, size); }
void* allocate_cold_too(larder::heap& h, std::size_t size) { return allocate_at<3>(h, size); }

std::uint32_t pod_id(const larder::heap& h, const void* p) {
  larder::pod found = h.pod_of(p);
  EXPECT_TRUE(found.valid());
  return found.id();
}

TEST(PodPlacementModel, HotAndColdSplitAlikeBundle) {
  const double c = 16384;
  std::vector<larder::site_measure> sites = {
      {1, 1 << 20, 0.9},    // hot
      {2, 4 << 20, 0.0},    // cold
      {3, 1 << 20, 0.0},    // cold, small
      {4, 8 << 10, 0.001},  // tiny and nearly cold
  };
  auto groups = larder::group_sites(sites, c);
  std::map<std::size_t, std::size_t> group_of;
  for (std::size_t g = 0; g < groups.size(); ++g)
    for (std::size_t m : groups[g].members) group_of[m] = g;
  EXPECT_NE(group_of[0], group_of[1]);  // hot and cold apart
  EXPECT_NE(group_of[0], group_of[2]);
  EXPECT_EQ(group_of[1], group_of[2]);  // two cold sites share a pod
  // The tiny site is worth no pod of its own: its bytes cost less written
  // with the hot ones than a pod's overhead.
  EXPECT_EQ(group_of[3], group_of[0]);
  EXPECT_EQ(groups.size(), 2u);
  // The cost the issue names, at one point each way.
  EXPECT_DOUBLE_EQ(larder::bundle_cost(100, 0.5, 50, 0.25, 10), 150 * 0.75 + 10);
  EXPECT_DOUBLE_EQ(larder::split_cost(100, 0.5, 50, 0.25, 10), 50 + 12.5 + 20);
  EXPECT_DOUBLE_EQ(larder::bundle_cost(100, 0.8, 50, 0.8, 10), 150 + 10);  // the rate caps at 1
}

TEST(PodPlacementModel, SameInputSameGroupsWhateverTheOrder) {
  std::mt19937_64 rng(7);
  std::vector<larder::site_measure> sites;
  for (std::uint64_t k = 1; k <= 200; ++k)
    sites.push_back({k * 977, static_cast<double>(4096 * (1 + rng() % 64)), static_cast<double>(rng() % 5) / 4});
  auto reference = larder::group_sites(sites, 16384);
  auto key_groups = [&](const std::vector<larder::site_group>& groups, const std::vector<larder::site_measure>& in) {
    std::set<std::set<std::uint64_t>> out;
    for (const auto& g : groups) {
      std::set<std::uint64_t> keys;
      for (std::size_t m : g.members) keys.insert(in[m].key);
      out.insert(keys);
    }
    return out;
  };
  for (int round = 0; round < 5; ++round) {
    auto shuffled = sites;
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    EXPECT_EQ(key_groups(larder::group_sites(shuffled, 16384), shuffled), key_groups(reference, sites));
  }
}

TEST(PodPlacement, SitesGetPodsOfTheirOwnAndTheDefaultPodStaysEmpty) {
  larder::heap h = placed_heap();
  std::vector<void*> hot, cold;
  for (int i = 0; i < 100; ++i) {
    hot.push_back(allocate_hot(h, 48));
    cold.push_back(allocate_cold(h, 48));
  }
  const std::uint32_t hot_pod = pod_id(h, hot[0]), cold_pod = pod_id(h, cold[0]);
  EXPECT_NE(hot_pod, 0u);
  EXPECT_NE(cold_pod, 0u);
  EXPECT_NE(hot_pod, cold_pod);
  for (void* p : hot) EXPECT_EQ(pod_id(h, p), hot_pod);
  for (void* p : cold) EXPECT_EQ(pod_id(h, p), cold_pod);
  // One site, another size class: another pod.
  void* bigger = allocate_hot(h, 4000);
  EXPECT_NE(pod_id(h, bigger), hot_pod);
  // A huge block gets a pod apart too.
  void* huge = allocate_hot(h, 8 << 20);
  ASSERT_NE(huge, nullptr);
  EXPECT_NE(pod_id(h, huge), hot_pod);
  std::memset(huge, 1, 8 << 20);
  for (const larder::pod_info& p : h.pods())
    if (p.id == 0) {
      EXPECT_EQ(p.bytes_in_use, 0u);
    }
  EXPECT_TRUE(std::string(h.pods()[1].name).rfind("auto.", 0) == 0);
  for (void* p : hot) larder::heap::deallocate(p);
  for (void* p : cold) larder::heap::deallocate(p);
  larder::heap::deallocate(bigger);
  larder::heap::deallocate(huge);
}

TEST(PodPlacement, NamedPodsAreNeverOverridden) {
  larder::heap h = placed_heap();
  larder::pod mine;
  ASSERT_TRUE(h.make_pod("mine", &mine).ok());
  std::vector<void*> blocks;
  for (int i = 0; i < 50; ++i) blocks.push_back(mine.allocate(64));
  std::vector<int, larder::allocator<int>>* v = nullptr;
  {
    larder::pod_scope scope(mine);
    v = new (mine.allocate(sizeof *v)) std::vector<int, larder::allocator<int>>(100);
  }
  EXPECT_EQ(pod_id(h, v), mine.id());
  EXPECT_EQ(pod_id(h, v->data()), mine.id());
  {
    larder::transaction tx(h);
    blocks.push_back(tx.allocate(64, 16, mine));
    ASSERT_TRUE(tx.commit().ok());
  }
  for (void* p : blocks) EXPECT_EQ(pod_id(h, p), mine.id());
  for (void* p : blocks) larder::heap::deallocate(p);
  v->~vector();
  larder::heap::deallocate(v);
}

TEST(PodPlacement, TransactionsAndRootsArePlacedToo) {
  larder::heap h = placed_heap();
  struct node {
    std::uint64_t a[6];
  };
  node* root = h.root<node>("root");
  EXPECT_NE(pod_id(h, root), 0u);
  void* in_tx = nullptr;
  {
    larder::transaction tx(h);
    in_tx = tx.allocate(48);
    ASSERT_TRUE(tx.commit().ok());
  }
  EXPECT_NE(pod_id(h, in_tx), 0u);
  void* plain = allocate_hot(h, 48);
  EXPECT_NE(pod_id(h, plain), pod_id(h, in_tx));  // another site
  larder::heap::deallocate(plain);
}

TEST(PodPlacement, OffMeansTheDefaultPod) {
  larder::heap h = placed_heap(larder::placement_policy::off);
  void* a = allocate_hot(h, 48);
  void* b = allocate_cold(h, 48);
  EXPECT_EQ(pod_id(h, a), 0u);
  EXPECT_EQ(pod_id(h, b), 0u);
  std::vector<larder::placement_site> sites;
  ASSERT_TRUE(larder::placement_sites(h, &sites).ok());
  EXPECT_TRUE(sites.empty());
  for (const larder::pod_info& p : h.pods()) EXPECT_EQ(p.name.rfind("auto.", 0), std::string::npos) << p.name;
  larder::heap::deallocate(a);
  larder::heap::deallocate(b);
}

TEST(PodPlacement, ThreadsShareTheSitesPods) {
  larder::heap h = placed_heap();
  std::vector<void*> blocks[4];
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) blocks[t].push_back(allocate_hot(h, 32));
    });
  for (auto& t : threads) t.join();
  const std::uint32_t pod = pod_id(h, blocks[0][0]);
  for (auto& list : blocks)
    for (void* p : list) EXPECT_EQ(pod_id(h, p), pod);
  for (auto& list : blocks)
    for (void* p : list) larder::heap::deallocate(p);
}

// A workload where two sites allocate the same size class interleaved: the
// first site's objects are written every epoch, the others' never.
struct interleaved {
  std::vector<std::uint64_t*> hot, cold, cold_too;
};

interleaved fill(larder::heap& h, int count) {
  interleaved w;
  for (int i = 0; i < count; ++i) {
    w.hot.push_back(static_cast<std::uint64_t*>(allocate_hot(h, 64)));
    w.cold.push_back(static_cast<std::uint64_t*>(allocate_cold(h, 64)));
    w.cold_too.push_back(static_cast<std::uint64_t*>(allocate_cold_too(h, 64)));
    std::memset(w.hot.back(), 0, 64);
    std::memset(w.cold.back(), 7, 64);
    std::memset(w.cold_too.back(), 9, 64);
  }
  return w;
}

// Runs `epochs` epochs, each adding hot objects and writing every hot
// object; returns the pages written in the last epoch.
std::size_t run_epochs(larder::heap& h, interleaved& w, int epochs) {
  larder::dirty_set d;
  std::size_t last = 0;
  for (int e = 0; e < epochs; ++e) {
    for (int i = 0; i < 256; ++i) w.hot.push_back(static_cast<std::uint64_t*>(allocate_hot(h, 64)));
    for (std::uint64_t* p : w.hot) ++p[0];
    EXPECT_TRUE(h.collect_dirty(&d).ok());
    last = d.page_count();
  }
  return last;
}

std::map<std::string, std::uint32_t> decisions(const larder::heap& h) {
  std::vector<larder::placement_site> sites;
  EXPECT_TRUE(larder::placement_sites(h, &sites).ok());
  std::map<std::string, std::uint32_t> out;
  for (const auto& s : sites) out[s.location + "/" + std::to_string(s.block_bytes)] = s.pod;
  return out;
}

TEST(PodPlacement, LearningKeepsHotApartAndBundlesCold) {
  larder::heap h = placed_heap();
  if (!h.start_tracking().ok()) GTEST_SKIP() << "no page-write tracking here";
  interleaved w = fill(h, 2048);
  run_epochs(h, w, 6);
  std::vector<larder::placement_site> sites;
  ASSERT_TRUE(larder::placement_sites(h, &sites).ok());
  // Sites are known by the pod their first objects went to.
  const larder::placement_site *hot = nullptr, *cold = nullptr, *cold_too = nullptr;
  for (const auto& s : sites) {
    if (s.first_pod == pod_id(h, w.hot.front())) hot = &s;
    if (s.first_pod == pod_id(h, w.cold.front())) cold = &s;
    if (s.first_pod == pod_id(h, w.cold_too.front())) cold_too = &s;
  }
  std::string listed;
  for (const auto& s : sites) listed += s.location + " " + std::to_string(s.block_bytes) + "\n";
  ASSERT_TRUE(hot && cold && cold_too) << listed;
  EXPECT_GT(hot->write_rate, 0.5);
  EXPECT_LT(cold->write_rate, 0.2);
  EXPECT_NE(hot->pod, cold->pod);
  EXPECT_EQ(cold->pod, cold_too->pod) << "two cold sites of one size share a pod";
  EXPECT_EQ(cold->reason, larder::placement_reason::bundled);
  EXPECT_EQ(hot->reason, larder::placement_reason::apart);
  // New allocations follow the decision.
  void* fresh = allocate_cold_too(h, 64);
  EXPECT_EQ(pod_id(h, fresh), cold_too->pod);
  larder::heap::deallocate(fresh);
}

TEST(PodPlacement, HotPagesAreFewerThanWithOnePod) {
  auto pages_with = [](larder::placement_policy policy) -> std::size_t {
    larder::heap h = placed_heap(policy);
    if (!h.start_tracking().ok()) return 0;
    interleaved w = fill(h, 4096);
    return run_epochs(h, w, 6);
  };
  const std::size_t placed = pages_with(larder::placement_policy::sites);
  if (placed == 0) GTEST_SKIP() << "no page-write tracking here";
  const std::size_t one_pod = pages_with(larder::placement_policy::off);
  // Hot objects are a third of each page in one pod, all of a page placed.
  EXPECT_LT(placed * 2, one_pod) << placed << " pages placed, " << one_pod << " in one pod";
}

// What placement decided, by pod numbers: sites' code addresses are the
// same in one process, and pods are numbered in the order they are made.
std::vector<std::string> decided_pods(const larder::heap& h) {
  std::vector<larder::placement_site> sites;
  EXPECT_TRUE(larder::placement_sites(h, &sites).ok());
  std::vector<std::string> out;
  for (const auto& s : sites)
    out.push_back(std::to_string(s.first_pod) + "->" + std::to_string(s.pod) + " " + larder::to_string(s.reason) +
                  " " + std::to_string(s.block_bytes) + " rate " + std::to_string(s.write_rate));
  return out;
}

TEST(PodPlacement, DeterministicForAFixedSeed) {
  // Sizes, counts and which objects each epoch writes come from the seed.
  auto run = [](std::uint64_t seed) {
    larder::heap h = placed_heap();
    std::vector<std::string> out;
    if (!h.start_tracking().ok()) return out;
    std::mt19937_64 rng(seed);
    std::vector<std::uint64_t*> hot, warm;
    larder::dirty_set d;
    for (int epoch = 0; epoch < 14; ++epoch) {
      const std::size_t size = 16 * (1 + rng() % 8);
      for (int i = 0; i < 200; ++i) {
        hot.push_back(static_cast<std::uint64_t*>(allocate_hot(h, size)));
        warm.push_back(static_cast<std::uint64_t*>(allocate_cold(h, size)));
        static_cast<std::uint64_t*>(allocate_cold_too(h, 64))[0] = rng();
      }
      for (std::uint64_t* p : hot) *p = rng();
      for (std::uint64_t* p : warm)
        if (rng() % 8 == 0) *p = rng();
      EXPECT_TRUE(h.collect_dirty(&d).ok());
    }
    return decided_pods(h);
  };
  auto first = run(42);
  if (first.empty()) GTEST_SKIP() << "no page-write tracking here";
  EXPECT_EQ(run(42), first);
  EXPECT_EQ(run(42), first);
}

TEST(PodPlacement, RecordReadableAfterReopenAndReadOnly) {
  larder_test::temp_dir dir;
  const std::string path = dir.path() + "/placed.heap";
  larder::heap_options o;
  o.name = path;
  o.reserve = std::size_t{1} << 30;
  o.placement = larder::placement_policy::sites;
  std::map<std::string, std::uint32_t> before;
  {
    larder::heap h(o);
    if (!h.start_tracking().ok()) GTEST_SKIP() << "no page-write tracking here";
    interleaved w = fill(h, 1024);
    run_epochs(h, w, 5);
    before = decisions(h);
    ASSERT_FALSE(before.empty());
    ASSERT_TRUE(h.close().ok());
  }
  larder::heap_options ro;
  ro.name = path;
  ro.read_only = true;
  ro.mode = larder::open_mode::open;
  {
    larder::heap reader(ro);
    EXPECT_EQ(decisions(reader), before);
  }
  ro.placement = larder::placement_policy::sites;
  larder::heap refused;
  larder::status s = larder::heap::open(ro, &refused);
  EXPECT_TRUE(s.is(larder::errc::read_only)) << s.message();
}

TEST(PodPlacement, SharedWritersAreRefused) {
  larder::heap_options o;
  o.kind = larder::backing::shm;
  o.name = "/larder-placement-test-" + std::to_string(::getpid());
  o.reserve = std::size_t{1} << 30;
  o.shared_writers = true;
  o.placement = larder::placement_policy::sites;
  larder::heap h;
  larder::status s = larder::heap::open(o, &h);
  EXPECT_TRUE(s.is(larder::errc::invalid_argument)) << s.message();
  (void)larder::heap::remove(larder::backing::shm, o.name);
}


TEST(PodPlacement, FlippedBytesInTheRecordLoseOnlyThoseEntries) {
  larder::heap h = placed_heap();
  if (!h.start_tracking().ok()) GTEST_SKIP() << "no page-write tracking here";
  interleaved w = fill(h, 512);
  run_epochs(h, w, 5);
  std::vector<larder::placement_site> before;
  ASSERT_TRUE(larder::placement_sites(h, &before).ok());
  ASSERT_GE(before.size(), 3u);
  std::size_t size = 0;
  auto* record = static_cast<unsigned char*>(h.find_root("larder.placement", &size));
  ASSERT_NE(record, nullptr);
  // The first entry's bytes (after the 16-byte header), then the header.
  record[16 + 40] ^= 0x5A;
  std::vector<larder::placement_site> after;
  ASSERT_TRUE(larder::placement_sites(h, &after).ok());
  EXPECT_EQ(after.size(), before.size() - 1);
  record[0] ^= 0xFF;
  larder::status s = larder::placement_sites(h, &after);
  EXPECT_TRUE(s.is(larder::errc::corrupt)) << s.message();
  EXPECT_TRUE(after.empty());
  // Placement goes on: the next decision writes the record again.
  record[0] ^= 0xFF;
  run_epochs(h, w, 9);
  ASSERT_TRUE(larder::placement_sites(h, &after).ok());
  EXPECT_EQ(after.size(), before.size());
}


std::size_t auto_pods(const larder::heap& h) {
  std::size_t n = 0;
  for (const larder::pod_info& p : h.pods()) n += p.name.rfind("auto.", 0) == 0;
  return n;
}

// A reopened heap finds the sites an earlier open recorded (by file,
// build and offset, which hold across runs) and sends them to the pods
// they went to then: the pod table does not grow with every run.
TEST(PodPlacement, ReopenedHeapKeepsItsSitesPods) {
  larder_test::temp_dir dir;
  larder::heap_options o;
  o.name = dir.path() + "/reopened.heap";
  o.reserve = std::size_t{1} << 30;
  o.placement = larder::placement_policy::sites;
  std::uint32_t hot_pod = 0, cold_pod = 0;
  std::size_t pods_after_first = 0;
  for (int run = 0; run < 5; ++run) {
    larder::heap h(o);
    if (!h.start_tracking().ok()) GTEST_SKIP() << "no page-write tracking here";
    interleaved w = fill(h, 256);
    if (run == 0) {
      run_epochs(h, w, 5);
      hot_pod = pod_id(h, allocate_hot(h, 64));
      cold_pod = pod_id(h, allocate_cold(h, 64));
      pods_after_first = auto_pods(h);
    } else {
      EXPECT_EQ(pod_id(h, w.hot.front()), hot_pod) << "run " << run;
      EXPECT_EQ(pod_id(h, w.cold.front()), cold_pod) << "run " << run;
      run_epochs(h, w, 2);
      EXPECT_EQ(auto_pods(h), pods_after_first) << "run " << run;
    }
    ASSERT_TRUE(h.close().ok());
  }
  EXPECT_NE(hot_pod, cold_pod);
}

}  // namespace
