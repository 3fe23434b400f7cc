// The persistent-memory tier (tiers/pmem) against a model of what each pod
// holds (tier_checks.hpp): round trips, slot reuse, growth of the file and
// its mapping, a full file system and a file size limit (errors, never
// SIGBUS), four threads.
// Without a DAX file system here, libpmem2 emulates persistent memory;
// LARDER_TEST_DAX_DIR names a directory on one to run on it too.
#include "tiers/pmem/pmem_tier.hpp"
#include "tier_checks.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

namespace larder::tiers {
namespace {

using namespace checks;

std::unique_ptr<pmem_tier> open_tier(const std::string& file, pmem_tier_options options = {}) {
  std::unique_ptr<pmem_tier> tier;
  status s = pmem_tier::open(file, options, &tier);
  EXPECT_TRUE(s.ok()) << s.to_string();
  return tier;
}

TEST(PmemTierTest, AnOrdinaryFileIsEmulatedAndSaysSo) {
  scratch_dir dir("/dev/shm");  // a tmpfs is never DAX
  testing::internal::CaptureStderr();
  auto tier = open_tier(dir.file());
  std::string said = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(tier);
  EXPECT_FALSE(tier->is_dax());
  EXPECT_STREQ("emulated (msync)", tier->mode());
  EXPECT_NE(std::string::npos, said.find("not on a DAX file system")) << said;
  EXPECT_NE(std::string::npos, said.find(dir.file())) << said;
}

TEST(PmemTierTest, RoundTripsMatchTheModel) {
  for (const char* base : {"/var/tmp", "/dev/shm"}) {
    scratch_dir dir(base);
    auto tier = open_tier(dir.file());
    ASSERT_TRUE(tier);
    round_trips(*tier);
  }
}

// libpmem2 told to treat any file as persistent memory takes the DAX path:
// cache-line flushes and a fence in place of msync.
TEST(PmemTierTest, ForcedCacheLineGranularityTakesTheDaxPath) {
  scratch_dir dir("/var/tmp");
  ::setenv("PMEM2_FORCE_GRANULARITY", "CACHE_LINE", 1);
  auto tier = open_tier(dir.file());
  ::unsetenv("PMEM2_FORCE_GRANULARITY");
  ASSERT_TRUE(tier);
  EXPECT_TRUE(tier->is_dax());
  EXPECT_STREQ("dax", tier->mode());
  round_trips(*tier);
  four_threads(*tier);
}

TEST(PmemTierTest, RoundTripsOnADaxFileSystem) {
  const char* dax_dir = std::getenv("LARDER_TEST_DAX_DIR");
  if (dax_dir == nullptr) GTEST_SKIP() << "LARDER_TEST_DAX_DIR names no directory on a DAX file system";
  scratch_dir dir(dax_dir);
  auto tier = open_tier(dir.file());
  ASSERT_TRUE(tier);
  EXPECT_TRUE(tier->is_dax()) << dax_dir << " is not on a DAX file system";
  EXPECT_STREQ("dax", tier->mode());
  round_trips(*tier);
}

TEST(PmemTierTest, TheFileGrowsInStepsAsItFills) {
  scratch_dir dir("/var/tmp");
  pmem_tier_options options;
  options.capacity_bytes = 4096 * kPage;
  options.growth_bytes = 256 * kPage;
  auto tier = open_tier(dir.file(), options);
  ASSERT_TRUE(tier);
  EXPECT_LT(std::filesystem::file_size(dir.file()), options.growth_bytes) << "nothing written yet";
  std::mt19937_64 random(9);
  std::map<std::uint64_t, pod_model> model;
  for (std::uint64_t pod = 0; pod < 12; ++pod) {
    write_random_pages(*tier, pod, 300, 300, random, &model[pod]);
    std::uint64_t held = (pod + 1) * 300 * kPage;
    EXPECT_GE(std::filesystem::file_size(dir.file()), held);
    EXPECT_LE(std::filesystem::file_size(dir.file()), held + options.growth_bytes);
  }
  for (const auto& [pod, pages] : model) expect_pod_equal(*tier, pod, pages);
  page_buffer memory(500);  // 12 * 300 + 500 > 4096 pages
  std::vector<page_ref> pages;
  for (std::uint64_t i = 0; i < 500; ++i) pages.push_back(page_ref{i, memory.page(i)});
  status full = tier->write(99, pages.data(), pages.size());
  EXPECT_TRUE(full.is(errc::out_of_space)) << full.to_string();
  EXPECT_FALSE(tier->holds(99, 0));
  EXPECT_LE(std::filesystem::file_size(dir.file()), options.capacity_bytes);
}

TEST(PmemTierTest, DroppedSlotsAreReusedAndOverwritesKeepOneCopy) {
  scratch_dir dir("/var/tmp");
  pmem_tier_options small;
  small.capacity_bytes = 64 * kPage;
  auto tier = open_tier(dir.file(), small);
  ASSERT_TRUE(tier);
  reuses_slots(*tier);
  EXPECT_LE(std::filesystem::file_size(dir.file()), small.capacity_bytes);
}

TEST(PmemTierTest, CapacityAndBadArgumentsGiveClearErrors) {
  scratch_dir dir("/var/tmp");
  pmem_tier_options small;
  small.capacity_bytes = 16 * kPage;
  auto tier = open_tier(dir.file(), small);
  ASSERT_TRUE(tier);
  refuses_clearly(*tier);

  std::unique_ptr<pmem_tier> none;
  pmem_tier_options odd;
  odd.growth_bytes = kPage + 1;
  EXPECT_TRUE(pmem_tier::open(dir.path + "/odd", odd, &none).is(errc::invalid_argument));
  status missing = pmem_tier::open(dir.path + "/no/such/dir/tier", {}, &none);
  EXPECT_TRUE(missing.is(static_cast<errc>(ENOENT))) << missing.to_string();
}

TEST(PmemTierTest, FullFileSystemIsAClearErrorAndLosesNothing) {
  small_tmpfs small;
  if (!small.mounted) GTEST_SKIP() << small.why_not;
  auto tier = open_tier(small.path + "/tier");
  ASSERT_TRUE(tier);
  fill_until_refused(*tier, "file system holding");
}

TEST(PmemTierTest, FileSizeLimitIsAClearError) {
  scratch_dir dir("/var/tmp");
  auto tier = open_tier(dir.file());
  ASSERT_TRUE(tier);
  fill_under_file_size_limit(*tier);
}

TEST(PmemTierTest, FourThreadsWriteAndReadTheirOwnPods) {
  scratch_dir dir("/var/tmp");
  pmem_tier_options options;
  options.growth_bytes = 64 * kPage;  // growth while other threads copy
  auto tier = open_tier(dir.file(), options);
  ASSERT_TRUE(tier);
  four_threads(*tier);
}

}  // namespace
}  // namespace larder::tiers
