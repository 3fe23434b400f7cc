// The disk tier (tiers/disk) against a model of what each pod holds: round
// trips of random page sets, slot reuse, O_DIRECT on a disk file system and
// the buffered path, a full file system, and four threads at once.
#include "tiers/disk/disk_tier.hpp"
#include "tiers/slots/slot_allocator.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/statfs.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

namespace larder::tiers {
namespace {

constexpr std::size_t kPage = kTierPageSize;
constexpr long kTmpfsMagic = 0x01021994;

// Page-aligned memory for `pages` pages.
struct page_buffer {
  explicit page_buffer(std::size_t pages) : size(pages * kPage) {
    bytes = static_cast<char*>(std::aligned_alloc(kPage, size));
    std::memset(bytes, 0, size);
  }
  ~page_buffer() { std::free(bytes); }
  page_buffer(const page_buffer&) = delete;
  page_buffer& operator=(const page_buffer&) = delete;
  char* page(std::size_t i) const { return bytes + i * kPage; }
  char* bytes;
  std::size_t size;
};

// A scratch directory under `base`, removed afterwards.
struct scratch_dir {
  explicit scratch_dir(const std::string& base) {
    std::string pattern = base + "/larder_disk_tier_XXXXXX";
    path = ::mkdtemp(pattern.data());
  }
  ~scratch_dir() { std::filesystem::remove_all(path); }
  std::string file() const { return path + "/tier"; }
  std::string path;
};

std::unique_ptr<disk_tier> open_tier(const std::string& file, disk_tier_options options = {}) {
  std::unique_ptr<disk_tier> tier;
  status s = disk_tier::open(file, options, &tier);
  EXPECT_TRUE(s.ok()) << s.to_string();
  return tier;
}

// What a pod should read back: page index -> its bytes.
using pod_model = std::map<std::uint64_t, std::string>;

// Writes a random set of `count` pages out of `range` indexes of `pod` with
// random bytes, some of them adjacent in memory, and records them.
void write_random_pages(disk_tier& tier, std::uint64_t pod, std::size_t range, std::size_t count,
                        std::mt19937_64& random, pod_model* model) {
  page_buffer memory(count);
  std::vector<std::uint64_t> indexes(range);
  for (std::size_t i = 0; i < range; ++i) indexes[i] = i;
  std::shuffle(indexes.begin(), indexes.end(), random);
  std::sort(indexes.begin(), indexes.begin() + static_cast<std::ptrdiff_t>(count));  // runs of adjacent pages
  std::vector<page_ref> pages;
  for (std::size_t i = 0; i < count; ++i) {
    for (std::size_t b = 0; b < kPage; b += 8) {
      std::uint64_t v = random();
      std::memcpy(memory.page(i) + b, &v, 8);
    }
    pages.push_back(page_ref{indexes[i], memory.page(i)});
  }
  std::shuffle(pages.begin(), pages.end(), random);
  status s = tier.write(pod, pages.data(), pages.size());
  ASSERT_TRUE(s.ok()) << s.to_string();
  for (const page_ref& p : pages) (*model)[p.index] = std::string(static_cast<char*>(p.address), kPage);
}

// Reads every page the model holds for `pod` and compares the bytes.
void expect_pod_equal(disk_tier& tier, std::uint64_t pod, const pod_model& model) {
  page_buffer memory(model.size());
  std::vector<page_ref> pages;
  for (const auto& [index, bytes] : model) pages.push_back(page_ref{index, memory.page(pages.size())});
  status s = tier.read(pod, pages.data(), pages.size());
  ASSERT_TRUE(s.ok()) << s.to_string();
  std::size_t i = 0;
  for (const auto& [index, bytes] : model) {
    ASSERT_EQ(0, std::memcmp(memory.page(i++), bytes.data(), kPage)) << "pod " << pod << " page " << index;
  }
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

void round_trips(const std::string& base, disk_tier_options options) {
  scratch_dir dir(base);
  auto tier = open_tier(dir.file(), options);
  ASSERT_TRUE(tier);
  std::mt19937_64 random(12);
  std::map<std::uint64_t, pod_model> model;
  for (int round = 0; round < 40; ++round) {
    std::uint64_t pod = random() % 6;
    if (random() % 5 == 0) {
      ASSERT_TRUE(tier->drop(pod).ok());
      model.erase(pod);
    } else {
      write_random_pages(*tier, pod, 300, 1 + random() % 200, random, &model[pod]);
    }
    std::uint64_t held = 0;
    for (const auto& [p, pages] : model) {
      expect_pod_equal(*tier, p, pages);
      held += pages.size();
    }
    EXPECT_EQ(held, tier->usage().used_pages);
  }
  ASSERT_TRUE(tier->sync().ok());
}

TEST(SlotAllocatorTest, FreedRunsMergeAndTheFreedTailIsHandedOutAgain) {
  slot_allocator slots(10);
  slot_run a = slots.take(4), b = slots.take(4), c = slots.take(4);
  EXPECT_EQ(0u, a.first);
  EXPECT_EQ(4u, b.first);
  EXPECT_EQ(8u, c.first);
  EXPECT_EQ(2u, c.count) << "only two slots were left";
  EXPECT_EQ(0u, slots.take(1).count);
  slots.give_back(slot_run{1, 1});
  slots.give_back(slot_run{2, 2});
  slots.give_back(slot_run{4, 1});
  slot_run merged = slots.take(4);
  EXPECT_EQ(1u, merged.first) << "slots 1-4 were freed in three pieces";
  EXPECT_EQ(4u, merged.count);
  slots.give_back(c);
  EXPECT_EQ(8u, slots.end()) << "a freed run at the end shortens the file";
  EXPECT_EQ(8u, slots.used());
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
  round_trips("/var/tmp", {});
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
  round_trips("/dev/shm", buffered);
  // Asked for O_DIRECT, a tmpfs either takes it (Linux 6.6+) or the tier
  // falls back to buffered I/O; the round trips hold either way.
  round_trips("/dev/shm", {});
}

TEST(DiskTierTest, DroppedSlotsAreReusedAndOverwritesKeepOneCopy) {
  scratch_dir dir("/var/tmp");
  disk_tier_options small;
  small.capacity_bytes = 64 * kPage;
  auto tier = open_tier(dir.file(), small);
  ASSERT_TRUE(tier);
  std::mt19937_64 random(7);
  std::map<std::uint64_t, pod_model> model;
  for (int round = 0; round < 50; ++round) {
    // 48 pages of one pod at a time in a 64-page tier: only reuse makes room.
    std::uint64_t pod = static_cast<std::uint64_t>(round);
    write_random_pages(*tier, pod, 48, 48, random, &model[pod]);
    write_random_pages(*tier, pod, 48, 10, random, &model[pod]);  // overwrites in place of the old copies
    EXPECT_EQ(48u, tier->usage().used_pages);
    expect_pod_equal(*tier, pod, model[pod]);
    ASSERT_TRUE(tier->drop(pod).ok());
    EXPECT_EQ(0u, tier->usage().used_pages);
    EXPECT_FALSE(tier->holds(pod, 0));
  }
  EXPECT_LE(std::filesystem::file_size(dir.file()), small.capacity_bytes);
}

TEST(DiskTierTest, CapacityAndBadArgumentsGiveClearErrors) {
  scratch_dir dir("/var/tmp");
  disk_tier_options small;
  small.capacity_bytes = 16 * kPage;
  auto tier = open_tier(dir.file(), small);
  ASSERT_TRUE(tier);
  std::mt19937_64 random(3);
  pod_model kept;
  write_random_pages(*tier, 1, 10, 10, random, &kept);
  page_buffer memory(8);
  std::vector<page_ref> pages;
  for (std::uint64_t i = 0; i < 8; ++i) pages.push_back(page_ref{i, memory.page(i)});
  status full = tier->write(2, pages.data(), pages.size());
  EXPECT_TRUE(full.is(errc::out_of_space)) << full.to_string();
  EXPECT_NE(std::string::npos, full.message().find("full")) << full.message();
  EXPECT_EQ(10u, tier->usage().used_pages);
  EXPECT_FALSE(tier->holds(2, 0));
  expect_pod_equal(*tier, 1, kept);

  page_ref unaligned{0, memory.page(0) + 8};
  EXPECT_TRUE(tier->write(2, &unaligned, 1).is(errc::invalid_argument));
  page_ref twice[2] = {{3, memory.page(0)}, {3, memory.page(1)}};
  EXPECT_TRUE(tier->write(2, twice, 2).is(errc::invalid_argument));
  page_ref missing{11, memory.page(0)};
  status absent = tier->read(1, &missing, 1);
  EXPECT_TRUE(absent.is(errc::not_found)) << absent.to_string();
  EXPECT_TRUE(tier->read(9, &missing, 1).is(errc::not_found));

  std::unique_ptr<disk_tier> none;
  disk_tier_options odd;
  odd.capacity_bytes = kPage + 1;
  EXPECT_TRUE(disk_tier::open(dir.path + "/odd", odd, &none).is(errc::invalid_argument));
  EXPECT_FALSE(disk_tier::open(dir.path + "/no/such/dir/tier", {}, &none).ok());
}

// Fills the tier until the file system refuses, then checks the error and
// that every page written before still reads back.
void fill_until_refused(disk_tier& tier, const char* expected_words) {
  std::mt19937_64 random(5);
  std::map<std::uint64_t, pod_model> model;
  status refused;
  for (std::uint64_t pod = 0; pod < 1000 && refused.ok(); ++pod) {
    page_buffer memory(64);
    std::vector<page_ref> pages;
    for (std::uint64_t i = 0; i < 64; ++i) {
      std::memset(memory.page(i), static_cast<int>(random()), kPage);
      pages.push_back(page_ref{i, memory.page(i)});
    }
    refused = tier.write(pod, pages.data(), pages.size());
    if (refused.ok()) {
      for (const page_ref& p : pages) model[pod][p.index] = std::string(static_cast<char*>(p.address), kPage);
    } else {
      EXPECT_FALSE(tier.holds(pod, 0));
    }
  }
  ASSERT_FALSE(refused.ok()) << "the file system never filled up";
  EXPECT_TRUE(refused.is(errc::out_of_space)) << refused.to_string();
  EXPECT_NE(std::string::npos, refused.message().find(expected_words)) << refused.message();
  ASSERT_FALSE(model.empty());
  for (const auto& [pod, pages] : model) expect_pod_equal(tier, pod, pages);
}

TEST(DiskTierTest, FullFileSystemIsAClearErrorAndLosesNothing) {
  scratch_dir dir("/var/tmp");
  std::string mount_point = dir.path + "/small";
  std::filesystem::create_directory(mount_point);
  if (::mount("tmpfs", mount_point.c_str(), "tmpfs", 0, "size=1m") != 0) {
    GTEST_SKIP() << "cannot mount a 1 MiB tmpfs (" << std::strerror(errno) << "): needs root";
  }
  struct unmount_at_end {
    ~unmount_at_end() { ::umount2(path.c_str(), MNT_DETACH); }
    std::string path;
  } unmount{mount_point};
  auto tier = open_tier(mount_point + "/tier");
  ASSERT_TRUE(tier);
  fill_until_refused(*tier, "file system holding");
}

TEST(DiskTierTest, FileSizeLimitIsAClearError) {
  scratch_dir dir("/var/tmp");
  struct rlimit before {};
  ASSERT_EQ(0, ::getrlimit(RLIMIT_FSIZE, &before));
  auto tier = open_tier(dir.file());
  ASSERT_TRUE(tier);
  // Past the limit the kernel sends SIGXFSZ, which kills by default; a
  // program that sets a file size limit ignores it to see EFBIG instead.
  struct sigaction ignore {}, old {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(0, ::sigaction(SIGXFSZ, &ignore, &old));
  struct rlimit limit = before;
  limit.rlim_cur = 1 << 20;
  ASSERT_EQ(0, ::setrlimit(RLIMIT_FSIZE, &limit));
  fill_until_refused(*tier, "largest file size");
  ASSERT_EQ(0, ::setrlimit(RLIMIT_FSIZE, &before));
  ::sigaction(SIGXFSZ, &old, nullptr);
}

TEST(DiskTierTest, FourThreadsWriteAndReadTheirOwnPods) {
  scratch_dir dir("/var/tmp");
  auto tier = open_tier(dir.file());
  ASSERT_TRUE(tier);
  std::vector<std::thread> threads;
  for (std::uint64_t t = 0; t < 4; ++t) {
    threads.emplace_back([&tier, t] {
      std::mt19937_64 random(100 + t);
      std::map<std::uint64_t, pod_model> model;
      for (int round = 0; round < 60; ++round) {
        std::uint64_t pod = t * 100 + random() % 3;
        if (random() % 4 == 0) {
          ASSERT_TRUE(tier->drop(pod).ok());
          model.erase(pod);
        } else {
          write_random_pages(*tier, pod, 128, 1 + random() % 96, random, &model[pod]);
        }
        for (const auto& [p, pages] : model) expect_pod_equal(*tier, p, pages);
      }
    });
  }
  for (std::thread& t : threads) t.join();
}

}  // namespace
}  // namespace larder::tiers
