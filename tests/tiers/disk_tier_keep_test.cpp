// A kept disk tier (disk_tier_options::keep): what one disk_tier wrote and
// synced, a later one opened on the same file reads back, with its slots
// in use; the index is rewritten at each sync, a damaged one is refused,
// and remove() deletes both files.
#include "tiers/disk/disk_tier.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

namespace larder::tiers {
namespace {

constexpr std::size_t kPage = kTierPageSize;

struct pages {
  explicit pages(std::size_t n) : count(n), bytes(static_cast<char*>(std::aligned_alloc(kPage, n * kPage))) {}
  ~pages() { std::free(bytes); }
  pages(const pages&) = delete;
  pages& operator=(const pages&) = delete;
  char* at(std::size_t i) const { return bytes + i * kPage; }
  std::size_t count;
  char* bytes;
};

struct kept_tier_test : ::testing::Test {
  void SetUp() override {
    std::string pattern = std::filesystem::temp_directory_path().string() + "/larder_kept_tier_XXXXXX";
    dir = ::mkdtemp(pattern.data());
    file = dir + "/tier";
    options.keep = true;
    options.capacity_bytes = 256 * kPage;
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  std::unique_ptr<disk_tier> open() {
    std::unique_ptr<disk_tier> tier;
    status s = disk_tier::open(file, options, &tier);
    EXPECT_TRUE(s.ok()) << s.to_string();
    return tier;
  }
  std::string dir, file;
  disk_tier_options options;
};

TEST_F(kept_tier_test, a_later_tier_reads_what_was_synced) {
  pages in(32), out(32);
  std::mt19937_64 rng(3);
  for (std::size_t i = 0; i < 32 * kPage; ++i) in.bytes[i] = static_cast<char>(rng());
  std::vector<page_ref> refs;
  for (std::size_t i = 0; i < 32; ++i) refs.push_back({1000 + i * 3, in.at(i)});
  {
    std::unique_ptr<disk_tier> tier = open();
    ASSERT_TRUE(tier->write(7, refs.data(), 16).ok());
    ASSERT_TRUE(tier->write(9, refs.data() + 16, 16).ok());
    ASSERT_TRUE(tier->sync().ok());
    ASSERT_TRUE(tier->drop(9).ok());  // not synced: the next tier still has pod 9
  }
  std::unique_ptr<disk_tier> tier = open();
  EXPECT_EQ(tier->usage().used_pages, 32u);
  std::vector<page_ref> back;
  for (std::size_t i = 0; i < 32; ++i) back.push_back({refs[i].index, out.at(i)});
  ASSERT_TRUE(tier->read(7, back.data(), 16).ok());
  ASSERT_TRUE(tier->read(9, back.data() + 16, 16).ok());
  EXPECT_EQ(std::memcmp(in.bytes, out.bytes, 32 * kPage), 0);
  // Its slots are taken: new pages go elsewhere and leave the old intact.
  pages more(8);
  std::memset(more.bytes, 0x77, 8 * kPage);
  std::vector<page_ref> extra;
  for (std::size_t i = 0; i < 8; ++i) extra.push_back({i, more.at(i)});
  ASSERT_TRUE(tier->write(11, extra.data(), 8).ok());
  ASSERT_TRUE(tier->read(7, back.data(), 16).ok());
  EXPECT_EQ(std::memcmp(in.bytes, out.bytes, 16 * kPage), 0);
}

TEST_F(kept_tier_test, a_damaged_index_is_refused_and_remove_deletes_both_files) {
  pages in(4);
  std::memset(in.bytes, 1, 4 * kPage);
  std::vector<page_ref> refs{{0, in.at(0)}, {1, in.at(1)}, {2, in.at(2)}, {3, in.at(3)}};
  {
    std::unique_ptr<disk_tier> tier = open();
    ASSERT_TRUE(tier->write(1, refs.data(), 4).ok());
    ASSERT_TRUE(tier->sync().ok());
  }
  ASSERT_TRUE(std::filesystem::exists(file + ".index"));
  std::filesystem::resize_file(file + ".index", std::filesystem::file_size(file + ".index") - 8);
  std::unique_ptr<disk_tier> tier;
  EXPECT_TRUE(disk_tier::open(file, options, &tier).is(errc::corrupt));
  disk_tier::remove(file);
  EXPECT_FALSE(std::filesystem::exists(file));
  EXPECT_FALSE(std::filesystem::exists(file + ".index"));
}

}  // namespace
}  // namespace larder::tiers
