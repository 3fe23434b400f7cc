// Tier migration (larder/tiers.hpp, docs/tiers.md): pods evicted to the
// disk tier come back on touch with every byte; a heap holding 4x its DRAM
// budget under a uniform and a Zipfian workload stays within the budget
// and reads what a run without a budget reads; four threads read and write
// while pods are evicted; transactions across an evicted pod; a file heap
// and a pinned pod refused.
#include "migration_test_util.hpp"
#include "runtime_test_util.hpp"

#include "larder_config.h"

#include <larder/allocator.hpp>
#include <larder/check.hpp>
#include <larder/tiers.hpp>
#include <larder/versions.hpp>
#include <larder/transaction.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <thread>
#include <vector>

namespace {

using larder_test::temp_dir;
using namespace larder_migration_test;

// What the resident pod pages may pass the budget by between two passes:
// the pages touched back in meanwhile (a pass runs at least every 256
// operations here, and as soon as the loader sees the budget passed).
constexpr std::size_t kSlack = std::size_t{1} << 20;
// Right after a pass: a pod's rest still coming back after its touch (one
// batch of the loader).
constexpr std::size_t kInFlight = 64 * kPage;

larder::migration_policy disk_policy(const temp_dir& dir, std::size_t budget, bool prefetch = true) {
  larder::migration_policy p;
  p.dram_budget = budget;
  p.tiers.push_back({larder::tier_kind::disk, dir.file("tier"), std::size_t{256} << 20});
  p.prefetch_pod = prefetch;
  return p;
}

class migration_test : public ::testing::TestWithParam<larder::backing> {
 protected:
  void SetUp() override {
    if (!migration_works(GetParam())) GTEST_SKIP() << "userfaultfd missing faults are not available here";
  }
};

TEST_P(migration_test, evicted_pod_comes_back_on_touch_many_times) {
  temp_dir dir;
  pod_heap ph;
  ph.open(GetParam(), 3, 64, 1);
  ASSERT_TRUE(larder::set_migration_policy(ph.h, disk_policy(dir, 0, false)).ok());
  std::vector<std::vector<unsigned char>> expected;
  for (std::size_t b = 0; b < 64; ++b) expected.push_back(ph.copy_of(1, b));
  std::mt19937_64 rng(7);
  for (int round = 0; round < 6; ++round) {
    ASSERT_TRUE(larder::evict_pod(ph.h, ph.pods[1]).ok());
    larder::migration_stats s = larder::migration_info(ph.h);
    EXPECT_GE(s.evicted_bytes, 64 * kPage) << "round " << round;
    // Untouched pages stay evicted: nothing loads them in the background.
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    EXPECT_EQ(larder::migration_info(ph.h).evicted_bytes, s.evicted_bytes);
    // Half the blocks read and written, the other half only read.
    for (std::size_t b = 0; b < 64; ++b) {
      ASSERT_EQ(std::memcmp(ph.blocks[1][b], expected[b].data(), kPage), 0) << "round " << round << " block " << b;
      if (b % 2 == 0) {
        std::size_t at = rng() % (kPage - 8);
        std::uint64_t v = rng();
        std::memcpy(ph.blocks[1][b] + at, &v, 8);
        std::memcpy(expected[b].data() + at, &v, 8);
      }
    }
    s = larder::migration_info(ph.h);
    EXPECT_GE(s.faults, std::uint64_t(64 * (round + 1)) / 2);
    EXPECT_EQ(s.evictions, std::uint64_t(round + 1));
  }
  EXPECT_EQ(larder::migration_info(ph.h).lost_pages, 0u);
}

TEST_P(migration_test, second_touch_brings_the_rest_of_the_pod) {
  temp_dir dir;
  pod_heap ph;
  ph.open(GetParam(), 2, 64, 2);
  ASSERT_TRUE(larder::set_migration_policy(ph.h, disk_policy(dir, 0, true)).ok());
  std::vector<unsigned char> last = ph.copy_of(0, 63);
  ASSERT_TRUE(larder::evict_pod(ph.h, ph.pods[0]).ok());
  volatile unsigned char sink = ph.blocks[0][0][0];
  sink = ph.blocks[0][1][0];
  (void)sink;
  // The rest comes after the touching thread goes on.
  for (int i = 0; i < 200 && larder::migration_info(ph.h).evicted_bytes != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  larder::migration_stats s = larder::migration_info(ph.h);
  EXPECT_EQ(s.evicted_bytes, 0u);
  EXPECT_GE(s.prefetched_pages, 62u);
  EXPECT_EQ(s.faults, 2u);
  EXPECT_TRUE(resident(ph.blocks[0][63]));
  EXPECT_EQ(std::memcmp(ph.blocks[0][63], last.data(), kPage), 0);
}

TEST_P(migration_test, pinned_pod_is_never_evicted) {
  temp_dir dir;
  pod_heap ph;
  ph.open(GetParam(), 2, 16, 3);
  ASSERT_TRUE(larder::set_migration_policy(ph.h, disk_policy(dir, 0)).ok());
  ASSERT_TRUE(larder::pin_pod(ph.h, ph.pods[0], true).ok());
  EXPECT_TRUE(larder::evict_pod(ph.h, ph.pods[0]).is(larder::errc::invalid_argument));
  larder::migration_policy p = disk_policy(dir, kPage);  // everything is over this budget
  ASSERT_TRUE(larder::set_migration_policy(ph.h, p).ok());
  ASSERT_TRUE(larder::migrate(ph.h).ok());
  EXPECT_GE(larder::migration_info(ph.h).evicted_bytes, 16 * kPage);
  for (std::size_t b = 0; b < 16; ++b) {
    EXPECT_TRUE(resident(ph.blocks[0][b])) << b;
    EXPECT_FALSE(resident(ph.blocks[1][b])) << b;
  }
  ASSERT_TRUE(larder::set_migration_policy(ph.h, disk_policy(dir, 0)).ok());
}

constexpr int kOperations = 10000;

// Block numbers drawn uniformly, or Zipfian (theta 0.99) over the blocks
// in pod order, so that the hot blocks share pods.
class block_picker {
 public:
  block_picker(std::size_t blocks, bool zipfian) : cdf_(zipfian ? blocks : 0) {
    double sum = 0;
    for (std::size_t i = 0; i < cdf_.size(); ++i) cdf_[i] = sum += 1.0 / std::pow(double(i + 1), 0.99);
    for (double& c : cdf_) c /= sum;
    blocks_ = blocks;
  }
  std::size_t operator()(std::mt19937_64& rng) const {
    if (cdf_.empty()) return rng() % blocks_;
    double u = std::uniform_real_distribution<double>(0, 1)(rng);
    return std::min<std::size_t>(std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin(), blocks_ - 1);
  }

 private:
  std::vector<double> cdf_;
  std::size_t blocks_ = 0;
};

// Resident bytes of the segments (4 MiB, aligned) that hold the blocks:
// the pod pages the budget is about, by mincore.
std::size_t resident_pod_segments(const pod_heap& ph) {
  constexpr std::uintptr_t kSegment = std::uintptr_t{4} << 20;
  std::vector<std::uintptr_t> segments;
  for (const auto& pod : ph.blocks)
    for (unsigned char* b : pod) segments.push_back(reinterpret_cast<std::uintptr_t>(b) & ~(kSegment - 1));
  std::sort(segments.begin(), segments.end());
  segments.erase(std::unique(segments.begin(), segments.end()), segments.end());
  std::vector<unsigned char> in(kSegment / kPage);
  std::size_t n = 0;
  for (std::uintptr_t s : segments) {
    if (::mincore(reinterpret_cast<void*>(s), kSegment, in.data()) != 0) {
      ADD_FAILURE() << "mincore: " << std::strerror(errno);
      return 0;
    }
    for (unsigned char c : in) n += c & 1;
  }
  return n * kPage;
}

struct workload_result {
  std::size_t budget = 0;
  std::size_t max_after_pass = 0;  // resident right after a pass
  std::size_t max_seen = 0;        // resident at any sample
  std::uint64_t faults = 0;
};

// 32 pods of 64 page-sized blocks under a budget of a quarter of what they
// hold: reads and writes of 8 bytes at random places of the picked blocks,
// each read checked against the model, with the migrator's thread running
// and a pass of the test's own every 256 operations.
// The policy's tiers: by default one disk tier.
using policy_maker = std::function<larder::migration_policy(const temp_dir&, std::size_t budget, bool prefetch)>;

void run_workload(larder::backing kind, bool zipfian, workload_result* out, const policy_maker& make_policy = {},
                  larder::migration_stats* final_stats = nullptr) {
  temp_dir dir;
  pod_heap ph;
  ph.open(kind, 32, 64, 11);
  model m = model_of(ph);
  const std::size_t held = larder::migration_info(ph.h).resident_bytes;
  out->budget = held / 4;
  larder::migration_policy policy =
      make_policy ? make_policy(dir, out->budget, zipfian) : disk_policy(dir, out->budget, zipfian);
  larder::status set = larder::set_migration_policy(ph.h, policy);
  ASSERT_TRUE(set.ok()) << set.to_string();
  ASSERT_TRUE(larder::migrate(ph.h).ok());
  block_picker pick(32 * 64, zipfian);
  std::mt19937_64 rng(zipfian ? 5 : 6);
  for (int op = 0; op < kOperations; ++op) {
    std::size_t n = pick(rng), p = n / 64, b = n % 64, at = rng() % (kPage / 8) * 8;
    if (rng() % 2 == 0) {
      std::uint64_t v = rng();
      std::memcpy(ph.blocks[p][b] + at, &v, 8);
      std::memcpy(m[p][b].data() + at, &v, 8);
    } else {
      ASSERT_EQ(std::memcmp(ph.blocks[p][b] + at, m[p][b].data() + at, 8), 0) << "op " << op;
    }
    if (op % 64 == 63) out->max_seen = std::max(out->max_seen, resident_pod_segments(ph));
    if (op % 256 == 255) {
      ASSERT_TRUE(larder::migrate(ph.h).ok());
      out->max_after_pass = std::max(out->max_after_pass, resident_pod_segments(ph));
    }
  }
  expect_equal(ph, m);
  out->faults = larder::migration_info(ph.h).faults;
  EXPECT_EQ(larder::migration_info(ph.h).lost_pages, 0u);
  if (final_stats != nullptr) *final_stats = larder::migration_info(ph.h);
}

TEST_P(migration_test, four_times_the_budget_uniform) {
  workload_result r;
  run_workload(GetParam(), false, &r);
  std::printf("uniform: budget %zu KiB, resident after passes <= %zu KiB, anywhere <= %zu KiB, %llu faults\n",
              r.budget >> 10, r.max_after_pass >> 10, r.max_seen >> 10, (unsigned long long)r.faults);
  EXPECT_LE(r.max_after_pass, r.budget + kInFlight);
  EXPECT_LE(r.max_seen, r.budget + kSlack);
  EXPECT_GT(r.faults, 0u);
}

TEST_P(migration_test, four_times_the_budget_zipfian) {
  workload_result r;
  run_workload(GetParam(), true, &r);
  std::printf("zipfian: budget %zu KiB, resident after passes <= %zu KiB, anywhere <= %zu KiB, %llu faults\n",
              r.budget >> 10, r.max_after_pass >> 10, r.max_seen >> 10, (unsigned long long)r.faults);
  EXPECT_LE(r.max_after_pass, r.budget + kInFlight);
  EXPECT_LE(r.max_seen, r.budget + kSlack);
  EXPECT_GT(r.faults, 0u);
}

// Four threads read and write blocks of every pod (thread t those whose
// number is t mod 4), checking what they read, while pods are evicted
// under them.
// Filling a heap faster than its pods can be written out: each segment
// the fill takes waits for the migrator while the heap is past its budget
// (hold_for_budget), so what is resident stays near the budget throughout,
// not only after passes. The slack: the budget's eighth, and the two
// segments (4 MiB each) a thread may take before a pass sees them.
TEST_P(migration_test, filling_past_the_budget_stays_near_it) {
  temp_dir dir;
  pod_heap ph;
  ph.open(GetParam(), 0, 0, 1);
  const std::size_t budget = std::size_t{8} << 20;
  ASSERT_TRUE(larder::set_migration_policy(ph.h, disk_policy(dir, budget)).ok());
  std::size_t max_seen = 0;
  for (int p = 0; p < 12; ++p) {
    larder::pod pod;
    ASSERT_TRUE(ph.h.make_pod("fill" + std::to_string(p), &pod).ok());
    for (int b = 0; b < 1000; ++b) {
      auto* block = static_cast<unsigned char*>(pod.allocate(kPage, kPage));
      ASSERT_NE(block, nullptr);
      std::memset(block, p + 1, kPage);
      if (b % 250 == 0) max_seen = std::max(max_seen, larder::migration_info(ph.h).resident_bytes);
    }
  }
  std::printf("filled 47 MiB under a budget of %zu MiB: resident at most %zu KiB\n", budget >> 20, max_seen >> 10);
  EXPECT_LE(max_seen, budget + budget / 8 + (std::size_t{8} << 20));
}

TEST_P(migration_test, four_threads_while_pods_are_evicted) {
  temp_dir dir;
  pod_heap ph;
  ph.open(GetParam(), 8, 32, 31);
  model m = model_of(ph);
  ASSERT_TRUE(larder::set_migration_policy(ph.h, disk_policy(dir, 0, false)).ok());
  std::atomic<bool> stop{false};
  std::atomic<int> bad_reads{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(100 + t);
      for (int op = 0; op < 20000 || !stop.load(); ++op) {
        std::size_t n = (rng() % (8 * 32 / 4)) * 4 + t, p = n / 32, b = n % 32, at = rng() % (kPage / 8) * 8;
        if (rng() % 2 == 0) {
          std::uint64_t v = rng();
          std::memcpy(ph.blocks[p][b] + at, &v, 8);
          std::memcpy(m[p][b].data() + at, &v, 8);
        } else if (std::memcmp(ph.blocks[p][b] + at, m[p][b].data() + at, 8) != 0) {
          bad_reads.fetch_add(1);
        }
      }
    });
  }
  std::mt19937_64 rng(99);
  int evictions = 0;
  for (; evictions < 300; ++evictions) {
    larder::status s = larder::evict_pod(ph.h, ph.pods[rng() % 8]);
    if (!s.ok()) ADD_FAILURE() << s.message();
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  stop.store(true);
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(bad_reads.load(), 0);
  expect_equal(ph, m);
  larder::migration_stats s = larder::migration_info(ph.h);
  std::printf("%d evictions asked, %llu made, %llu faults\n", evictions, (unsigned long long)s.evictions,
              (unsigned long long)s.faults);
  EXPECT_GT(s.evictions, 100u);
  EXPECT_GT(s.faults, 0u);
}

// A transaction's snapshots and writes fault evicted pages back; pods
// evicted in the middle of it keep its writes; an abort puts the
// before-images back into evicted pages; a commit's writes survive the
// next eviction.
TEST_P(migration_test, transactions_across_an_evicted_pod) {
  temp_dir dir;
  pod_heap ph;
  ph.open(GetParam(), 2, 16, 41);
  model m = model_of(ph);
  ASSERT_TRUE(larder::set_migration_policy(ph.h, disk_policy(dir, 0, false)).ok());
  ASSERT_TRUE(larder::evict_pod(ph.h, ph.pods[1]).ok());
  {
    larder::transaction tx(ph.h);
    tx.snapshot(ph.blocks[1][0], kPage);
    std::memset(ph.blocks[1][0], 0xAA, kPage);
    ASSERT_TRUE(larder::evict_pod(ph.h, ph.pods[1]).ok());
    tx.snapshot(ph.blocks[1][1], kPage);
    std::memset(ph.blocks[1][1], 0xBB, kPage);
    EXPECT_EQ(ph.blocks[1][0][100], 0xAA);  // faulted back with the transaction's write
    ASSERT_TRUE(larder::evict_pod(ph.h, ph.pods[1]).ok());
    tx.abort();
  }
  expect_equal(ph, m);
  ASSERT_TRUE(larder::evict_pod(ph.h, ph.pods[1]).ok());
  {
    larder::transaction tx(ph.h);
    tx.snapshot(ph.blocks[1][2], kPage);
    std::memset(ph.blocks[1][2], 0xCC, kPage);
    std::memset(m[1][2].data(), 0xCC, kPage);
    ASSERT_TRUE(larder::evict_pod(ph.h, ph.pods[1]).ok());
    ASSERT_TRUE(tx.commit().ok());
  }
  ASSERT_TRUE(larder::evict_pod(ph.h, ph.pods[1]).ok());
  expect_equal(ph, m);
}

INSTANTIATE_TEST_SUITE_P(backings, migration_test,
                         ::testing::Values(larder::backing::anonymous, larder::backing::shm),
                         [](const auto& info) { return info.param == larder::backing::shm ? "shm" : "anonymous"; });

// Several tiers (docs/tiers.md, "Several tiers"): a small disk tier over a
// larger one. As the top one fills, the evicted pages of its coldest pods
// move down; every page is read back from wherever it went, and what each
// tier holds stays within its capacity.
larder::migration_policy two_disk_tiers(const temp_dir& dir, std::size_t budget, bool prefetch) {
  larder::migration_policy p;
  p.dram_budget = budget;
  p.tiers.push_back({larder::tier_kind::disk, dir.file("upper"), budget});
  p.tiers.push_back({larder::tier_kind::disk, dir.file("lower"), std::size_t{256} << 20});
  p.prefetch_pod = prefetch;
  return p;
}

TEST(migration_tiers, four_times_the_budget_over_two_tiers) {
  if (!migration_works(larder::backing::anonymous)) GTEST_SKIP() << "userfaultfd missing faults are not available here";
  for (bool zipfian : {false, true}) {
    workload_result r;
    larder::migration_stats st;
    run_workload(larder::backing::anonymous, zipfian, &r, two_disk_tiers, &st);
    std::printf("%s over two tiers: budget %zu KiB, resident after passes <= %zu KiB, %llu faults, "
                "upper tier %llu KiB, lower %llu KiB\n",
                zipfian ? "zipfian" : "uniform", r.budget >> 10, r.max_after_pass >> 10,
                (unsigned long long)r.faults, (unsigned long long)st.tiers[0].used_bytes >> 10,
                (unsigned long long)st.tiers[1].used_bytes >> 10);
    EXPECT_LE(r.max_after_pass, r.budget + kInFlight);
    ASSERT_EQ(st.tiers.size(), 2u);
    EXPECT_LE(st.tiers[0].used_bytes, st.tiers[0].capacity_bytes);
    EXPECT_GT(st.tiers[1].used_bytes, 0u) << "nothing cascaded to the lower tier";
  }
}

// Pods evicted past the top tier's capacity go on down; touched, written
// and evicted again, round after round, every byte comes back from the
// tier that holds its newest copy, not from a stale one below.
TEST(migration_tiers, newest_copy_wins_across_tiers) {
  if (!migration_works(larder::backing::anonymous)) GTEST_SKIP() << "userfaultfd missing faults are not available here";
  temp_dir dir;
  pod_heap ph;
  ph.open(larder::backing::anonymous, 8, 64, 81);  // 2 MiB of blocks
  model m = model_of(ph);
  larder::migration_policy p;
  p.tiers.push_back({larder::tier_kind::disk, dir.file("upper"), std::size_t{512} << 10});
  p.tiers.push_back({larder::tier_kind::disk, dir.file("middle"), std::size_t{1} << 20});
  p.tiers.push_back({larder::tier_kind::disk, dir.file("lower"), std::size_t{64} << 20});
  ASSERT_TRUE(larder::set_migration_policy(ph.h, p).ok());
  evict_write_and_check(ph, m, 82, 5);
}

TEST(migration_tiers, policies_refused_with_a_reason) {
  if (!migration_works(larder::backing::anonymous)) GTEST_SKIP() << "userfaultfd missing faults are not available here";
  temp_dir dir;
  pod_heap ph;
  ph.open(larder::backing::anonymous, 1, 4, 91);
  larder::migration_policy p;
  for (int i = 0; i < 5; ++i) p.tiers.push_back({larder::tier_kind::disk, dir.file(std::string(1, static_cast<char>('a' + i))), 0});
  EXPECT_TRUE(larder::set_migration_policy(ph.h, p).is(larder::errc::invalid_argument));
  p.tiers.resize(2);
  p.tiers[1].path = p.tiers[0].path;
  larder::status s = larder::set_migration_policy(ph.h, p);
  EXPECT_TRUE(s.is(larder::errc::invalid_argument)) << s.to_string();
  EXPECT_NE(s.message().find("twice"), std::string::npos) << s.message();
  // A GPU tier names a device by its index (a build without one refuses
  // any; migration_gpu_test.cpp has the rest).
  p.tiers[1] = {larder::tier_kind::gpu, "first", 0};
  s = larder::set_migration_policy(ph.h, p);
  EXPECT_TRUE(s.is(LARDER_HAVE_GPU_TIER ? larder::errc::invalid_argument : larder::errc::unsupported)) << s.to_string();
  EXPECT_TRUE(larder::migration_policy_of(ph.h).tiers.empty()) << "a failed policy leaves no tiers behind";
  // A good policy after the refusals works.
  p.tiers.resize(1);
  ASSERT_TRUE(larder::set_migration_policy(ph.h, p).ok());
  ASSERT_TRUE(larder::evict_pod(ph.h, ph.pods[0]).ok());

  if (!migration_works(larder::backing::shm)) return;
  pod_heap shm;
  shm.open(larder::backing::shm, 1, 4, 92);
  p.tiers.push_back({larder::tier_kind::disk, dir.file("shm-lower"), 0});
  s = larder::set_migration_policy(shm.h, p);
  EXPECT_TRUE(s.is(larder::errc::unsupported)) << s.to_string();
  EXPECT_NE(s.message().find("one disk tier"), std::string::npos) << s.message();
}

// Huge blocks (past 512 KiB: whole segments of their own) of an anonymous
// heap are evicted like any pod pages, all but the first 8 KiB of each
// segment; a shm heap keeps them resident, as only a pages segment's
// header can record its evicted pages for the open after a crash.
TEST(migration_huge, huge_blocks_of_an_anonymous_heap_are_evicted_and_come_back) {
  if (!migration_works(larder::backing::anonymous)) GTEST_SKIP() << "userfaultfd missing faults are not available here";
  constexpr std::size_t kBlock = std::size_t{3} << 20, kBlocks = 8;  // 24 MiB under a 6 MiB budget
  temp_dir dir;
  larder::heap h = anonymous_heap();
  ASSERT_TRUE(h.impl() != nullptr);
  std::mt19937_64 rng(121);
  std::vector<unsigned char*> blocks;
  std::vector<std::vector<unsigned char>> model;
  std::vector<larder::pod> pods;
  for (std::size_t i = 0; i < kBlocks; ++i) {
    larder::pod pod;
    ASSERT_TRUE(h.make_pod("huge" + std::to_string(i), &pod).ok());
    pods.push_back(pod);
    auto* b = static_cast<unsigned char*>(pod.allocate(kBlock, 64));
    ASSERT_NE(b, nullptr);
    model.emplace_back(kBlock);
    for (std::size_t k = 0; k < kBlock; k += 8) {
      std::uint64_t v = rng();
      std::memcpy(b + k, &v, 8);
      std::memcpy(model.back().data() + k, &v, 8);
    }
    blocks.push_back(b);
  }
  ASSERT_TRUE(larder::set_migration_policy(h, disk_policy(dir, 0)).ok());
  ASSERT_TRUE(larder::evict_pod(h, pods[0]).ok());
  larder::migration_stats st = larder::migration_info(h);
  EXPECT_GE(st.evicted_bytes, kBlock - 2 * (std::size_t{8} << 10)) << "the huge block stayed resident";
  EXPECT_EQ(std::memcmp(blocks[0], model[0].data(), kBlock), 0);
  EXPECT_GT(larder::migration_info(h).faults, 0u);

  const std::size_t budget = kBlocks * kBlock / 4;
  ASSERT_TRUE(larder::set_migration_policy(h, disk_policy(dir, budget)).ok());
  std::size_t max_after_pass = 0;
  for (int op = 0; op < 4000; ++op) {
    std::size_t i = rng() % kBlocks, at = rng() % (kBlock / 8) * 8;
    if (rng() % 2 == 0) {
      std::uint64_t v = rng();
      std::memcpy(blocks[i] + at, &v, 8);
      std::memcpy(model[i].data() + at, &v, 8);
    } else {
      ASSERT_EQ(std::memcmp(blocks[i] + at, model[i].data() + at, 8), 0) << "op " << op;
    }
    if (op % 256 == 255) {
      ASSERT_TRUE(larder::migrate(h).ok());
      max_after_pass = std::max(max_after_pass, larder::migration_info(h).resident_bytes);
    }
  }
  for (std::size_t i = 0; i < kBlocks; ++i) ASSERT_EQ(std::memcmp(blocks[i], model[i].data(), kBlock), 0) << "block " << i;
  std::printf("huge blocks: budget %zu KiB, resident after passes <= %zu KiB\n", budget >> 10, max_after_pass >> 10);
  EXPECT_LE(max_after_pass, budget + kSlack);
  // A block freed while evicted and its segments taken again by a new
  // one: what is written there reads back, and nothing is lost.
  ASSERT_TRUE(larder::evict_pod(h, pods[1]).ok());
  larder::free(blocks[1]);
  auto* again = static_cast<unsigned char*>(pods[1].allocate(kBlock, 64));
  ASSERT_NE(again, nullptr);
  std::memset(again, 0x5a, kBlock);
  ASSERT_TRUE(larder::migrate(h).ok());
  for (std::size_t k = 0; k < kBlock; k += 512) ASSERT_EQ(again[k], 0x5a) << k;
  EXPECT_EQ(larder::migration_info(h).lost_pages, 0u);
  ASSERT_TRUE(h.close().ok());

  if (!migration_works(larder::backing::shm)) return;
  pod_heap shm;
  shm.open(larder::backing::shm, 1, 1, 122);
  auto* b = static_cast<unsigned char*>(shm.pods[0].allocate(kBlock, 64));
  ASSERT_NE(b, nullptr);
  std::memset(b, 7, kBlock);
  ASSERT_TRUE(larder::set_migration_policy(shm.h, disk_policy(dir, 0)).ok());
  ASSERT_TRUE(larder::evict_pod(shm.h, shm.pods[0]).ok());
  EXPECT_LT(larder::migration_info(shm.h).evicted_bytes, kBlock / 4) << "a shm heap's huge block is not evicted";
  EXPECT_TRUE(resident(b + kBlock / 2));
}

// Evicted pages of blocks freed while evicted: the segments change kind
// under them (a huge block's tails become free, then a new block's), and
// neither the loader nor a cascade may take the bits in those segments'
// memory for the truth.
// The loader brings back the rest of a pod whose huge block was freed
// (its tails never written where a pages segment keeps its header): it
// must not write heap memory (it would fault on itself and hang every
// fault after), and the heap closes.
TEST(migration_freed, pages_of_a_freed_huge_block_come_back_without_a_hang) {
  if (!migration_works(larder::backing::anonymous)) GTEST_SKIP() << "userfaultfd missing faults are not available here";
  temp_dir dir;
  larder::heap h = anonymous_heap();
  constexpr std::size_t kSegment = std::size_t{4} << 20, kBlock = std::size_t{12} << 20;
  larder::pod a;
  ASSERT_TRUE(h.make_pod("a", &a).ok());
  unsigned char* small[16];
  for (auto& b : small) {
    b = static_cast<unsigned char*>(a.allocate(kPage, kPage));
    ASSERT_NE(b, nullptr);
    std::memset(b, 7, kPage);
  }
  auto* x = static_cast<unsigned char*>(a.allocate(kBlock, 64));
  ASSERT_NE(x, nullptr);
  const std::uintptr_t first = reinterpret_cast<std::uintptr_t>(x) & ~(kSegment - 1);
  for (std::uintptr_t p = reinterpret_cast<std::uintptr_t>(x); p < reinterpret_cast<std::uintptr_t>(x) + kBlock; p += kPage)
    if (p < first + kSegment || ((p - first) & (kSegment - 1)) >= 2 * kPage) std::memset(reinterpret_cast<void*>(p), 1, kPage);
  ASSERT_TRUE(larder::set_migration_policy(h, disk_policy(dir, 0, true)).ok());
  ASSERT_TRUE(larder::evict_pod(h, a).ok());
  larder::free(x);
  // Two touches in the pod: the rest of it comes back, freed pages too.
  EXPECT_EQ(small[0][0], 7);
  EXPECT_EQ(small[5][0], 7);
  for (int i = 0; i < 200 && larder::migration_info(h).evicted_bytes != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  for (unsigned char* b : small) EXPECT_EQ(b[kPage - 1], 7);
  EXPECT_EQ(larder::migration_info(h).lost_pages, 0u);
  ASSERT_TRUE(h.close().ok());
}

// A full tier forgets stale copies to make room; the copies of a freed
// block's pages that the loader still serves are not stale: a new block
// taking the segments back gets its pages, and nothing is lost.
TEST(migration_freed, a_full_tier_keeps_the_copies_the_loader_still_serves) {
  if (!migration_works(larder::backing::anonymous)) GTEST_SKIP() << "userfaultfd missing faults are not available here";
  temp_dir dir;
  larder::heap h = anonymous_heap();
  constexpr std::size_t kBlock = std::size_t{3} << 20;
  larder::pod a, b;
  ASSERT_TRUE(h.make_pod("a", &a).ok());
  ASSERT_TRUE(h.make_pod("b", &b).ok());
  auto* x = static_cast<unsigned char*>(a.allocate(kBlock, 64));
  auto* y = static_cast<unsigned char*>(b.allocate(kBlock, 64));
  ASSERT_TRUE(x != nullptr && y != nullptr);
  std::memset(x, 1, kBlock);
  std::memset(y, 2, kBlock);
  larder::migration_policy p;
  p.tiers.push_back({larder::tier_kind::disk, dir.file("tier"), std::size_t{4} << 20});
  ASSERT_TRUE(larder::set_migration_policy(h, p).ok());
  ASSERT_TRUE(larder::evict_pod(h, a).ok());
  larder::free(x);
  // The tier cannot take b as well: b stays resident, a's copies stay.
  (void)larder::evict_pod(h, b);
  auto* z = static_cast<unsigned char*>(a.allocate(kBlock, 64));
  ASSERT_NE(z, nullptr);
  std::memset(z, 3, kBlock);
  for (std::size_t k = 0; k < kBlock; k += 512) ASSERT_EQ(z[k], 3) << k;
  for (std::size_t k = 0; k < kBlock; k += 512) ASSERT_EQ(y[k], 2) << k;
  EXPECT_EQ(larder::migration_info(h).lost_pages, 0u);
}

// The persistent-memory tier (libpmem2; emulated on an ordinary file) holds
// an anonymous heap's evicted pods as the disk tier does; a shm heap, whose
// evicted pages must outlive its process, is refused it.
TEST(migration, pmem_tier_serves_an_anonymous_heap_and_refuses_a_shm_one) {
  if (!migration_works(larder::backing::anonymous)) GTEST_SKIP() << "userfaultfd missing faults are not available here";
  temp_dir dir;
  larder::migration_policy p;
  p.dram_budget = 0;
  p.tiers.push_back({larder::tier_kind::pmem, dir.file("pmem-tier"), std::size_t{64} << 20});
  pod_heap ph;
  ph.open(larder::backing::anonymous, 4, 64, 71);
  model m = model_of(ph);
  larder::status s = larder::set_migration_policy(ph.h, p);
  if (s.is(larder::errc::unsupported) && s.message().find("no persistent-memory tier") != std::string::npos)
    GTEST_SKIP() << s.message();
  ASSERT_TRUE(s.ok()) << s.to_string();
  for (int round = 0; round < 3; ++round) {
    for (larder::pod pod : ph.pods) ASSERT_TRUE(larder::evict_pod(ph.h, pod).ok());
    larder::migration_stats st = larder::migration_info(ph.h);
    EXPECT_GE(st.evicted_bytes, 4u * 64 * kPage) << "round " << round;
    ASSERT_EQ(st.tiers.size(), 1u);
    EXPECT_EQ(st.tiers[0].kind, larder::tier_kind::pmem);
    expect_equal(ph, m);
  }
  EXPECT_EQ(larder::migration_info(ph.h).lost_pages, 0u);

  if (!migration_works(larder::backing::shm)) return;
  pod_heap shm;
  shm.open(larder::backing::shm, 1, 4, 72);
  s = larder::set_migration_policy(shm.h, p);
  EXPECT_TRUE(s.is(larder::errc::unsupported)) << s.to_string();
  EXPECT_NE(s.message().find("outlive"), std::string::npos) << s.message();
}

// The offline checker reads every data page, which would give an evicted
// page of a shm heap zeros under its migrating process: it refuses.
TEST(migration, check_refuses_a_heap_being_migrated) {
  if (!migration_works(larder::backing::shm)) GTEST_SKIP() << "userfaultfd missing faults are not available here";
  temp_dir dir;
  pod_heap ph;
  ph.open(larder::backing::shm, 2, 16, 61);
  ASSERT_TRUE(larder::set_migration_policy(ph.h, disk_policy(dir, 0)).ok());
  std::vector<unsigned char> before = ph.copy_of(1, 0);
  ASSERT_TRUE(larder::evict_pod(ph.h, ph.pods[1]).ok());
  larder::check_report report;
  larder::status s = larder::check_heap(larder::backing::shm, ph.shm_name, false, &report);
  EXPECT_TRUE(s.is(larder::errc::unsupported)) << s.message();
  EXPECT_NE(s.message().find("evicted"), std::string::npos);
  EXPECT_FALSE(resident(ph.blocks[1][0]));
  EXPECT_EQ(std::memcmp(ph.blocks[1][0], before.data(), kPage), 0);
}

TEST(migration, file_heap_is_refused) {
  temp_dir dir;
  larder::heap h;
  larder::heap_options o;
  o.name = dir.file("heap");
  o.mode = larder::open_mode::create;
  ASSERT_TRUE(larder::heap::open(o, &h).ok());
  larder::status s = larder::set_migration_policy(h, disk_policy(dir, 1 << 20));
  EXPECT_TRUE(s.is(larder::errc::unsupported)) << s.message();
  EXPECT_NE(s.message().find("file heap"), std::string::npos);
}

}  // namespace

namespace {

// A checkpoint after the first reads the pages written since the last
// one: an evicted pod that nobody wrote stays evicted.
TEST(migration_versions, checkpoint_leaves_an_unwritten_evicted_pod_alone) {
  if (!migration_works(larder::backing::anonymous)) GTEST_SKIP() << "userfaultfd missing faults are not available here";
  temp_dir dir;
  pod_heap ph;
  ph.open(larder::backing::anonymous, 2, 64, 51);
  ASSERT_TRUE(larder::use_version_store(ph.h, dir.file("versions")).ok());
  ASSERT_TRUE(larder::set_migration_policy(ph.h, disk_policy(dir, 0, false)).ok());
  larder::checkpoint_stats first;
  ASSERT_TRUE(larder::checkpoint(ph.h, "first", &first).ok());
  ASSERT_TRUE(larder::evict_pod(ph.h, ph.pods[1]).ok());
  const std::size_t evicted = larder::migration_info(ph.h).evicted_bytes;
  ASSERT_GE(evicted, 64 * kPage);
  std::memset(ph.blocks[0][3], 0x5A, kPage);
  larder::checkpoint_stats second;
  ASSERT_TRUE(larder::checkpoint(ph.h, "second", &second).ok());
  EXPECT_LT(second.pages_considered, 16u) << "first read " << first.pages_considered;
  EXPECT_EQ(larder::migration_info(ph.h).evicted_bytes, evicted);
}

}  // namespace
