// Every kill point of a migration, in turn: a process evicting a pod of a
// shm heap, touching half of it back, evicting it again and closing is
// ended at kill point 1, 2, ... (runtime/migration_test_hooks.hpp) until
// it gets through; then a process opening a heap that a crash left with
// evicted pages is ended at each kill point of the restore. After each
// stop the next open finds every block with the bytes last written.
#include "runtime_test_util.hpp"

#include "runtime/migration_test_hooks.hpp"

#include <larder/tiers.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

namespace {

using larder_test::temp_dir;

constexpr std::size_t kPage = 4096;
constexpr std::size_t kBlocks = 16;  // per pod; pod 1 moves

larder::heap_options shm_options(const std::string& name, larder::open_mode mode) {
  larder::heap_options o;
  o.kind = larder::backing::shm;
  o.name = name;
  o.mode = mode;
  o.reserve = std::size_t{1} << 30;
  return o;
}

larder::migration_policy policy(const std::string& tier) {
  larder::migration_policy p;
  p.tiers.push_back({larder::tier_kind::disk, tier, std::size_t{16} << 20});
  p.prefetch_pod = false;
  return p;
}

unsigned char** blocks_of(larder::heap& h) { return static_cast<unsigned char**>(h.find_root("blocks")); }

void fill(unsigned char* block, std::size_t n, int version) { std::memset(block, (n * 7 + version) & 0xFF, kPage); }

// Runs `body` in a child and returns its exit status (-1: killed by a
// signal, which no kill point does).
int in_child(const std::function<void()>& body) {
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = ::fork();
  if (pid == 0) {
    body();
    ::_exit(0);
  }
  int wstatus = 0;
  if (pid < 0 || ::waitpid(pid, &wstatus, 0) != pid) return -2;
  return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
}

// Every block of both pods holds `version` (pod 0 holds 0 throughout).
void expect_blocks(const std::string& shm, int version, const std::string& when) {
  larder::heap h;
  larder::status s = larder::heap::open(shm_options(shm, larder::open_mode::open), &h);
  ASSERT_TRUE(s.ok()) << when << ": " << s.message();
  unsigned char** blocks = blocks_of(h);
  ASSERT_NE(blocks, nullptr);
  unsigned char expected[kPage];
  for (std::size_t n = 0; n < 2 * kBlocks; ++n) {
    fill(expected, n, n < kBlocks ? 0 : version);
    ASSERT_EQ(std::memcmp(blocks[n], expected, kPage), 0) << when << ": block " << n;
  }
  EXPECT_EQ(larder::migration_info(h).evicted_bytes, 0u) << when;
  ASSERT_TRUE(h.close().ok());
}

TEST(migration_sweep, every_kill_point_of_an_eviction_and_of_the_restore) {
  if (!larder_test::lazy_checkout_works(larder::backing::shm)) GTEST_SKIP() << "userfaultfd missing faults are not available here";
  temp_dir dir;
  const std::string tier = dir.file("tier");
  larder_test::shm_guard shm(larder_test::unique_shm_name("migsweep"));
  {
    larder::heap h;
    ASSERT_TRUE(larder::heap::open(shm_options(shm.name(), larder::open_mode::create), &h).ok());
    auto** blocks = static_cast<unsigned char**>(h.allocate(2 * kBlocks * sizeof(void*)));
    for (std::size_t p = 0; p < 2; ++p) {
      larder::pod pod;
      ASSERT_TRUE(h.make_pod("pod" + std::to_string(p), &pod).ok());
      for (std::size_t b = 0; b < kBlocks; ++b) {
        std::size_t n = p * kBlocks + b;
        blocks[n] = static_cast<unsigned char*>(pod.allocate(kPage, kPage));
        fill(blocks[n], n, 0);
      }
    }
    ASSERT_TRUE(h.set_root("blocks", blocks, 2 * kBlocks * sizeof(void*)).ok());
    ASSERT_TRUE(h.close().ok());
  }

  // The eviction, the faults back, a second eviction and the close.
  int version = 0;
  int step = 1;
  for (;; ++step) {
    ++version;
    int status = in_child([&] {
      larder::heap h;
      if (!larder::heap::open(shm_options(shm.name(), larder::open_mode::open), &h).ok()) ::_exit(3);
      unsigned char** blocks = blocks_of(h);
      for (std::size_t b = 0; b < kBlocks; ++b) fill(blocks[kBlocks + b], kBlocks + b, version);
      larder::pod pod = h.find_pod("pod1");
      if (!larder::set_migration_policy(h, policy(tier)).ok()) ::_exit(4);
      larder::migration_test::stop_after(step);
      if (!larder::evict_pod(h, pod).ok()) ::_exit(5);
      for (std::size_t b = 0; b < kBlocks; b += 2) (void)*static_cast<volatile unsigned char*>(blocks[kBlocks + b]);
      if (!larder::evict_pod(h, pod).ok()) ::_exit(6);
      if (!h.close().ok()) ::_exit(7);
    });
    ASSERT_TRUE(status == 0 || status == larder::migration_test::kStoppedStatus) << "step " << step << ": " << status;
    expect_blocks(shm.name(), version, "eviction, step " + std::to_string(step));
    if (status == 0) break;
  }
  std::printf("%d kill points in an eviction, faults back, an eviction and a close\n", step - 1);
  EXPECT_GT(step, 2 * kBlocks);

  // The restore after a crash that left pod 1 evicted.
  int restore_step = 1;
  for (;; ++restore_step) {
    ++version;
    ASSERT_EQ(in_child([&] {
                larder::heap h;
                if (!larder::heap::open(shm_options(shm.name(), larder::open_mode::open), &h).ok()) ::_exit(3);
                unsigned char** blocks = blocks_of(h);
                for (std::size_t b = 0; b < kBlocks; ++b) fill(blocks[kBlocks + b], kBlocks + b, version);
                if (!larder::set_migration_policy(h, policy(tier)).ok()) ::_exit(4);
                if (!larder::evict_pod(h, h.find_pod("pod1")).ok()) ::_exit(5);
                ::_exit(0);  // a crash with every page of pod 1 evicted
              }),
              0);
    ASSERT_TRUE(std::filesystem::exists(tier));
    int status = in_child([&] {
      larder::migration_test::stop_after(restore_step);
      larder::heap h;
      if (!larder::heap::open(shm_options(shm.name(), larder::open_mode::open), &h).ok()) ::_exit(3);
      ::_exit(0);
    });
    ASSERT_TRUE(status == 0 || status == larder::migration_test::kStoppedStatus)
        << "restore step " << restore_step << ": " << status;
    expect_blocks(shm.name(), version, "restore, step " + std::to_string(restore_step));
    EXPECT_FALSE(std::filesystem::exists(tier));
    if (status == 0) break;
  }
  std::printf("%d kill points in a restore\n", restore_step - 1);
  EXPECT_GT(restore_step, 2 * kBlocks);
}

}  // namespace
