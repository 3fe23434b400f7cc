// What the tier migration tests share: a heap of pods filled with random
// page-sized blocks, and the model of what every block holds.
#pragma once

#include "runtime_test_util.hpp"

#include <larder/tiers.hpp>

#include <sys/mman.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace larder_migration_test {

constexpr std::size_t kPage = 4096;

inline bool migration_works(larder::backing kind) { return larder_test::lazy_checkout_works(kind); }

inline bool resident(const void* page) {
  unsigned char in = 0;
  return ::mincore(const_cast<void*>(page), kPage, &in) == 0 && (in & 1) != 0;
}

// A heap of `kind` with `pods` pods of `blocks_per_pod` page-sized blocks,
// each block filled from `seed`; blocks[p][b] is block b of pod p.
struct pod_heap {
  larder::heap h;
  std::vector<larder::pod> pods;
  std::vector<std::vector<unsigned char*>> blocks;
  std::string shm_name;

  void open(larder::backing kind, std::size_t pod_count, std::size_t blocks_per_pod, std::uint64_t seed) {
    larder::heap_options o;
    o.kind = kind;
    o.mode = larder::open_mode::create;
    o.reserve = std::size_t{1} << 30;
    if (kind == larder::backing::shm) o.name = shm_name = larder_test::unique_shm_name("mig");
    ASSERT_TRUE(larder::heap::open(o, &h).ok());
    std::mt19937_64 rng(seed);
    for (std::size_t p = 0; p < pod_count; ++p) {
      larder::pod pod;
      ASSERT_TRUE(h.make_pod("pod" + std::to_string(p), &pod).ok());
      pods.push_back(pod);
      blocks.emplace_back();
      for (std::size_t b = 0; b < blocks_per_pod; ++b) {
        auto* block = static_cast<unsigned char*>(pod.allocate(kPage, kPage));
        ASSERT_NE(block, nullptr);
        for (std::size_t i = 0; i < kPage; i += 8) {
          std::uint64_t v = rng();
          std::memcpy(block + i, &v, 8);
        }
        blocks.back().push_back(block);
      }
    }
  }
  ~pod_heap() {
    (void)h.close();
    if (!shm_name.empty()) (void)larder::heap::remove(larder::backing::shm, shm_name);
  }
  std::vector<unsigned char> copy_of(std::size_t p, std::size_t b) const {
    return std::vector<unsigned char>(blocks[p][b], blocks[p][b] + kPage);
  }
};

// An empty anonymous heap of 1 GiB.
inline larder::heap anonymous_heap() {
  larder::heap_options o;
  o.kind = larder::backing::anonymous;
  o.mode = larder::open_mode::create;
  o.reserve = std::size_t{1} << 30;
  larder::heap h;
  larder::status s = larder::heap::open(o, &h);
  EXPECT_TRUE(s.ok()) << s.to_string();
  return h;
}

// The reference: the same blocks in plain memory, which a run without a
// budget would read.
using model = std::vector<std::vector<std::vector<unsigned char>>>;

inline model model_of(const pod_heap& ph) {
  model m(ph.blocks.size());
  for (std::size_t p = 0; p < ph.blocks.size(); ++p)
    for (std::size_t b = 0; b < ph.blocks[p].size(); ++b) m[p].push_back(ph.copy_of(p, b));
  return m;
}

inline void expect_equal(const pod_heap& ph, const model& m) {
  for (std::size_t p = 0; p < m.size(); ++p)
    for (std::size_t b = 0; b < m[p].size(); ++b)
      ASSERT_EQ(std::memcmp(ph.blocks[p][b], m[p][b].data(), kPage), 0) << "pod " << p << " block " << b;
}

// Rounds of: every pod evicted, what each tier holds within its capacity
// and the bottom one holding something (pages went all the way down), 100
// random 8-byte writes (their pages come back first), then every block
// read against the model; the next round evicts the newer bytes.
inline void evict_write_and_check(pod_heap& ph, model& m, std::uint64_t seed, int rounds = 4) {
  std::mt19937_64 rng(seed);
  for (int round = 0; round < rounds; ++round) {
    for (larder::pod pod : ph.pods) {
      larder::status s = larder::evict_pod(ph.h, pod);
      ASSERT_TRUE(s.ok()) << s.to_string();
    }
    larder::migration_stats st = larder::migration_info(ph.h);
    EXPECT_GE(st.evicted_bytes, ph.pods.size() * ph.blocks[0].size() * kPage) << "round " << round;
    ASSERT_FALSE(st.tiers.empty());
    for (const larder::tier_usage_info& t : st.tiers) EXPECT_LE(t.used_bytes, t.capacity_bytes) << t.path;
    EXPECT_GT(st.tiers.back().used_bytes, 0u) << "round " << round << ": nothing reached the bottom tier";
    for (int w = 0; w < 100; ++w) {
      std::size_t pod = rng() % ph.pods.size(), b = rng() % ph.blocks[pod].size(), at = rng() % (kPage / 8) * 8;
      std::uint64_t v = rng();
      std::memcpy(ph.blocks[pod][b] + at, &v, 8);
      std::memcpy(m[pod][b].data() + at, &v, 8);
    }
    expect_equal(ph, m);
  }
  EXPECT_EQ(larder::migration_info(ph.h).lost_pages, 0u);
}

}  // namespace larder_migration_test
