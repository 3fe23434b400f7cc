// Kills (SIGKILL) of a process migrating a shm heap at random instants:
// the next open finds every page, evicted or not, with its last completed
// write. Each block is written whole, word by word, with its number and a
// version; a journal outside the heap (plain shared memory) records each
// version once its write is complete, so after a kill every word of a
// block holds that version or the next (a write cut short), the next ones
// first. A page lost or served stale from the tier breaks that.
#include "runtime_test_util.hpp"

#include <larder/tiers.hpp>

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <random>
#include <thread>

namespace {

using larder_test::temp_dir;

constexpr std::size_t kPage = 4096;
constexpr std::size_t kPods = 8;
constexpr std::size_t kBlocksPerPod = 32;
constexpr std::size_t kBlocks = kPods * kBlocksPerPod;
constexpr std::size_t kWords = kPage / 8;
constexpr int kRounds = 12;

struct journal {
  std::atomic<std::uint64_t> done[kBlocks];  // the last version written whole
  std::atomic<std::uint64_t> evicted_bytes;  // the child's last look
};

std::uint64_t word(std::size_t block, std::uint64_t version) { return std::uint64_t{block} << 40 | version; }

void write_block(std::uint64_t* at, std::size_t block, std::uint64_t version) {
  for (std::size_t w = 0; w < kWords; ++w) __atomic_store_n(&at[w], word(block, version), __ATOMIC_RELAXED);
}

larder::migration_policy policy(const std::string& tier, std::size_t budget) {
  larder::migration_policy p;
  p.dram_budget = budget;
  p.tiers.push_back({larder::tier_kind::disk, tier, std::size_t{64} << 20});
  return p;
}

// The child: writes blocks at random, whole, under a budget of a quarter
// of what they hold, with a pass of its own now and then, until killed.
[[noreturn]] void migrate_until_killed(const std::string& shm, const std::string& tier, journal* j, unsigned seed) {
  larder::heap h;
  larder::heap_options o;
  o.kind = larder::backing::shm;
  o.name = shm;
  o.mode = larder::open_mode::open;
  if (!larder::heap::open(o, &h).ok()) ::_exit(3);
  auto** blocks = static_cast<std::uint64_t**>(h.find_root("blocks"));
  if (blocks == nullptr) ::_exit(4);
  if (!larder::set_migration_policy(h, policy(tier, kBlocks * kPage / 4)).ok()) ::_exit(5);
  std::mt19937_64 rng(seed);
  for (std::uint64_t op = 0;; ++op) {
    std::size_t b = rng() % kBlocks;
    std::uint64_t version = j->done[b].load() + 1;
    write_block(blocks[b], b, version);
    j->done[b].store(version);
    if (op % 64 == 0) {
      (void)larder::migrate(h);
      j->evicted_bytes.store(larder::migration_info(h).evicted_bytes);
    }
  }
}

TEST(migration_kill, nothing_is_lost_when_a_migrating_process_is_killed) {
  if (!larder_test::lazy_checkout_works(larder::backing::shm)) GTEST_SKIP() << "userfaultfd missing faults are not available here";
  temp_dir dir;
  const std::string tier = dir.file("tier");
  larder_test::shm_guard shm(larder_test::unique_shm_name("migkill"));
  void* shared = ::mmap(nullptr, sizeof(journal), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(shared, MAP_FAILED);
  auto* j = new (shared) journal{};
  {
    larder::heap h;
    larder::heap_options o;
    o.kind = larder::backing::shm;
    o.name = shm.name();
    o.mode = larder::open_mode::create;
    o.reserve = std::size_t{1} << 30;
    ASSERT_TRUE(larder::heap::open(o, &h).ok());
    auto** blocks = static_cast<std::uint64_t**>(h.allocate(kBlocks * sizeof(std::uint64_t*)));
    ASSERT_NE(blocks, nullptr);
    for (std::size_t p = 0; p < kPods; ++p) {
      larder::pod pod;
      ASSERT_TRUE(h.make_pod("pod" + std::to_string(p), &pod).ok());
      for (std::size_t b = 0; b < kBlocksPerPod; ++b) {
        std::size_t n = p * kBlocksPerPod + b;
        blocks[n] = static_cast<std::uint64_t*>(pod.allocate(kPage, kPage));
        ASSERT_NE(blocks[n], nullptr);
        write_block(blocks[n], n, 0);
      }
    }
    ASSERT_TRUE(h.set_root("blocks", blocks, kBlocks * sizeof(std::uint64_t*)).ok());
    ASSERT_TRUE(h.close().ok());
  }

  std::mt19937_64 rng(2026);
  int rounds_with_evicted_pages = 0;
  for (int round = 0; round < kRounds; ++round) {
    std::fflush(stdout);
    std::fflush(stderr);
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) migrate_until_killed(shm.name(), tier, j, static_cast<unsigned>(round));
    // Killed at a random instant once the child has evicted pages (a
    // loaded machine can take long to get there).
    for (int waited = 0; waited < 3000 && j->evicted_bytes.load() == 0; ++waited)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 60));
    ASSERT_GT(child, 0);
    ASSERT_EQ(::kill(child, SIGKILL), 0);
    int wstatus = 0;
    ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
    ASSERT_TRUE(WIFSIGNALED(wstatus)) << "round " << round << ": the child exited with " << WEXITSTATUS(wstatus);

    rounds_with_evicted_pages += j->evicted_bytes.exchange(0) != 0 ? 1 : 0;
    larder::heap h;
    larder::heap_options o;
    o.kind = larder::backing::shm;
    o.name = shm.name();
    o.mode = larder::open_mode::open;
    larder::status opened = larder::heap::open(o, &h);
    ASSERT_TRUE(opened.ok()) << "round " << round << ": " << opened.message();
    auto** blocks = static_cast<std::uint64_t**>(h.find_root("blocks"));
    ASSERT_NE(blocks, nullptr);
    for (std::size_t b = 0; b < kBlocks; ++b) {
      const std::uint64_t done = j->done[b].load();
      bool older_seen = false;
      for (std::size_t w = 0; w < kWords; ++w) {
        const std::uint64_t v = blocks[b][w];
        ASSERT_TRUE(v == word(b, done) || v == word(b, done + 1))
            << "round " << round << " block " << b << " word " << w << ": " << std::hex << v << " with version "
            << done << " done";
        if (v == word(b, done)) older_seen = true;
        ASSERT_FALSE(older_seen && v == word(b, done + 1)) << "round " << round << " block " << b << " word " << w;
      }
      // A write cut short is finished now, so that the next round's
      // versions follow on.
      if (blocks[b][0] == word(b, done + 1)) {
        write_block(blocks[b], b, done + 1);
        j->done[b].store(done + 1);
      }
    }
    EXPECT_EQ(larder::migration_info(h).evicted_bytes, 0u);
    EXPECT_FALSE(std::filesystem::exists(tier)) << "the tier's file outlives the pages it held";
    ASSERT_TRUE(h.close().ok());
  }
  std::printf("%d of %d kills came while pages were evicted\n", rounds_with_evicted_pages, kRounds);
  EXPECT_GT(rounds_with_evicted_pages, kRounds / 2);
  ::munmap(shared, sizeof(journal));
}

}  // namespace
