// The disk tier (tiers/disk) against a model of what each pod holds
// (tier_checks.hpp): round trips of random page sets, slot reuse, O_DIRECT
// on a disk file system and the buffered path, a full file system, a file
// size limit, and four threads at once.
#include "tiers/disk/disk_tier.hpp"
#include "tier_checks.hpp"

#include <gtest/gtest.h>

#include <sys/statfs.h>

#include <cstdio>
#include <filesystem>

namespace larder::tiers {
namespace {

using namespace checks;

constexpr long kTmpfsMagic = 0x01021994;

std::unique_ptr<disk_tier> open_tier(const std::string& file, disk_tier_options options = {}) {
  std::unique_ptr<disk_tier> tier;
  status s = disk_tier::open(file, options, &tier);
  EXPECT_TRUE(s.ok()) << s.to_string();
  return tier;
}

bool on_tmpfs(const std::string& path) {
  struct statfs fs {};
  return ::statfs(path.c_str(), &fs) == 0 && fs.f_type == kTmpfsMagic;
}

// ext4 or xfs: file systems known to take O_DIRECT.
bool on_ext4_or_xfs(const std::string& path) {
  constexpr long kExt4Magic = 0xEF53;
  constexpr long kXfsMagic = 0x58465342;
  struct statfs fs {};
  return ::statfs(path.c_str(), &fs) == 0 && (fs.f_type == kExt4Magic || fs.f_type == kXfsMagic);
}

void round_trips_in(const std::string& base, disk_tier_options options) {
  scratch_dir dir(base);
  auto tier = open_tier(dir.file(), options);
  ASSERT_TRUE(tier);
  round_trips(*tier);
}

TEST(DiskTierTest, RoundTripsMatchTheModelWithODirectOnDisk) {
  if (on_tmpfs("/var/tmp")) GTEST_SKIP() << "/var/tmp is a tmpfs here: no disk file system to try O_DIRECT on";
  scratch_dir dir("/var/tmp");
  auto tier = open_tier(dir.file());
  ASSERT_TRUE(tier);
  if (on_ext4_or_xfs("/var/tmp")) {
    EXPECT_TRUE(tier->direct()) << "ext4 and xfs take O_DIRECT";
  } else {
    std::printf("/var/tmp is neither ext4 nor xfs: O_DIRECT %s\n", tier->direct() ? "taken" : "refused, buffered");
  }
  EXPECT_TRUE(tier->uses_uring());
  round_trips(*tier);
}

TEST(DiskTierTest, RoundTripsMatchTheModelBufferedOnShm) {
  disk_tier_options buffered;
  buffered.try_direct = false;
  {
    scratch_dir dir("/dev/shm");
    auto tier = open_tier(dir.file(), buffered);
    ASSERT_TRUE(tier);
    EXPECT_FALSE(tier->direct());
  }
  round_trips_in("/dev/shm", buffered);
  // Asked for O_DIRECT, a tmpfs either takes it (Linux 6.6+) or the tier
  // falls back to buffered I/O; the round trips hold either way.
  round_trips_in("/dev/shm", {});
}

TEST(DiskTierTest, DroppedSlotsAreReusedAndOverwritesKeepOneCopy) {
  scratch_dir dir("/var/tmp");
  disk_tier_options small;
  small.capacity_bytes = 64 * kPage;
  auto tier = open_tier(dir.file(), small);
  ASSERT_TRUE(tier);
  reuses_slots(*tier);
  EXPECT_LE(std::filesystem::file_size(dir.file()), small.capacity_bytes);
}

TEST(DiskTierTest, CapacityAndBadArgumentsGiveClearErrors) {
  scratch_dir dir("/var/tmp");
  disk_tier_options small;
  small.capacity_bytes = 16 * kPage;
  auto tier = open_tier(dir.file(), small);
  ASSERT_TRUE(tier);
  refuses_clearly(*tier);

  std::unique_ptr<disk_tier> none;
  disk_tier_options odd;
  odd.capacity_bytes = kPage + 1;
  EXPECT_TRUE(disk_tier::open(dir.path + "/odd", odd, &none).is(errc::invalid_argument));
  EXPECT_FALSE(disk_tier::open(dir.path + "/no/such/dir/tier", {}, &none).ok());
}

TEST(DiskTierTest, FullFileSystemIsAClearErrorAndLosesNothing) {
  small_tmpfs small;
  if (!small.mounted) GTEST_SKIP() << small.why_not;
  auto tier = open_tier(small.path + "/tier");
  ASSERT_TRUE(tier);
  fill_until_refused(*tier, "file system holding");
}

TEST(DiskTierTest, FileSizeLimitIsAClearError) {
  scratch_dir dir("/var/tmp");
  auto tier = open_tier(dir.file());
  ASSERT_TRUE(tier);
  fill_under_file_size_limit(*tier);
}

TEST(DiskTierTest, FourThreadsWriteAndReadTheirOwnPods) {
  scratch_dir dir("/var/tmp");
  auto tier = open_tier(dir.file());
  ASSERT_TRUE(tier);
  four_threads(*tier);
}

}  // namespace
}  // namespace larder::tiers
