// Versions outside an open heap (larder/versions.hpp): a clone holds
// exactly its version and checks clean, a version opens read-only straight
// from the store, and a checkout killed at any point is undone by writing
// the version into the heap's file, whether the heap opens or not.
#include "runtime_test_util.hpp"

#include <larder/check.hpp>
#include <larder/versions.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <string>

namespace {

using larder_test::temp_dir;

constexpr std::size_t kBlocks = 12;
constexpr std::size_t kBlockBytes = std::size_t{4} << 20;  // 48 MiB in all: a checkout of many batches

struct block_table {
  std::uint64_t* blocks[kBlocks];
};

std::uint64_t word(std::uint64_t seed, std::size_t block, std::size_t i) {
  return (seed * 0x9E3779B97F4A7C15ull) ^ (block << 40) ^ i;
}

void fill(larder::heap& h, std::uint64_t seed) {
  auto* table = h.root<block_table>("blocks");
  for (std::size_t b = 0; b < kBlocks; ++b) {
    if (table->blocks[b] == nullptr) {
      table->blocks[b] = static_cast<std::uint64_t*>(h.allocate(kBlockBytes));
      ASSERT_NE(table->blocks[b], nullptr);
    }
    for (std::size_t i = 0; i < kBlockBytes / 8; ++i) table->blocks[b][i] = word(seed, b, i);
  }
}

// Every word of every block is the one `seed` wrote.
void expect_filled(const larder::heap& h, std::uint64_t seed) {
  std::size_t size = 0;
  auto* table = static_cast<block_table*>(h.find_root("blocks", &size));
  ASSERT_NE(table, nullptr);
  ASSERT_EQ(size, sizeof(block_table));
  for (std::size_t b = 0; b < kBlocks; ++b) {
    ASSERT_NE(table->blocks[b], nullptr);
    for (std::size_t i = 0; i < kBlockBytes / 8; ++i)
      ASSERT_EQ(table->blocks[b][i], word(seed, b, i)) << "block " << b << " word " << i;
  }
}

void expect_clean(const std::string& path) {
  larder::check_report report;
  ASSERT_TRUE(larder::check_heap(larder::backing::file, path, false, &report).ok());
  EXPECT_TRUE(report.clean()) << (report.problems.empty() ? "" : report.problems[0]);
}

larder::heap_options file_heap(const std::string& path) {
  larder::heap_options o;
  o.name = path;
  o.reserve = std::size_t{1} << 30;
  return o;
}

// A heap with two versions: seed 1 (returned in `first`), then seed 2.
struct two_versions {
  std::string first, second;
};
two_versions make_two_versions(const std::string& path) {
  larder::heap h(file_heap(path));
  two_versions v;
  fill(h, 1);
  v.first = larder::checkpoint(h, "one").id;
  fill(h, 2);
  v.second = larder::checkpoint(h, "two").id;
  larder::throw_if_error(h.close());
  return v;
}

TEST(VersionClone, HoldsExactlyTheVersionAndChecksClean) {
  temp_dir dir;
  const std::string path = dir.file("heap"), clone = dir.file("clone");
  const two_versions v = make_two_versions(path);
  larder::checkout_stats st;
  ASSERT_TRUE(larder::clone_version(path + ".versions", v.first, clone, 0, &st).ok());
  EXPECT_EQ(st.id, v.first);
  EXPECT_GE(st.pages_loaded, kBlocks * kBlockBytes / 4096);
  EXPECT_TRUE(larder::clone_version(path + ".versions", v.first, clone).is(larder::errc::already_exists));
  expect_clean(clone);
  struct stat file{};
  ASSERT_EQ(::stat(clone.c_str(), &file), 0);
  // Sparse: storage for the version's pages (48 MiB and metadata), not all of the file's size.
  EXPECT_LT(static_cast<std::uint64_t>(file.st_blocks) * 512, kBlocks * kBlockBytes + (std::uint64_t{8} << 20));

  larder::heap original(file_heap(path));
  larder::heap beside;
  // Same uuid and base: never open beside the heap it came from.
  EXPECT_TRUE(larder::heap::open(file_heap(clone), &beside).is(larder::errc::address_taken));
  const std::string uuid = original.uuid();
  ASSERT_TRUE(original.close().ok());
  larder::heap h(file_heap(clone));
  EXPECT_EQ(h.uuid(), uuid);
  expect_filled(h, 1);
  // The clone is a heap of its own: it writes, checkpoints into its own store and reopens.
  fill(h, 3);
  EXPECT_EQ(larder::version_store_of(h), clone + ".versions");
  EXPECT_GT(larder::checkpoint(h, "three in the clone").pages_in_version, 0u);
  ASSERT_TRUE(h.close().ok());
  larder::heap again(file_heap(clone));
  expect_filled(again, 3);
  ASSERT_TRUE(again.close().ok());
  larder::heap first(file_heap(path));
  expect_filled(first, 2);
}

TEST(VersionClone, RefusesBadInputWithoutLeavingAFile) {
  temp_dir dir;
  const std::string path = dir.file("heap"), clone = dir.file("clone");
  const two_versions v = make_two_versions(path);
  EXPECT_TRUE(larder::clone_version(path + ".versions", "nosuchthing", clone).is(larder::errc::not_found));
  EXPECT_TRUE(larder::clone_version(dir.file("nostore"), v.first, clone).is(larder::errc::not_a_heap));
  EXPECT_TRUE(larder::clone_version(path + ".versions", v.first, clone, std::uint64_t{4} << 20)
                  .is(larder::errc::invalid_argument));
  EXPECT_NE(::access(clone.c_str(), F_OK), 0);
}

TEST(VersionImage, OpensReadOnlyStraightFromTheStore) {
  temp_dir dir;
  const std::string path = dir.file("heap");
  const two_versions v = make_two_versions(path);
  const std::string store = path + ".versions";
  {
    larder::heap live(file_heap(path));
    larder::heap image;
    EXPECT_TRUE(larder::open_version(store, v.first, &image).is(larder::errc::address_taken));
  }
  larder::heap image;
  ASSERT_TRUE(larder::open_version(store, v.first.substr(0, 8), &image).ok());
  expect_filled(image, 1);
  EXPECT_EQ(image.roots().size(), 1u);
  EXPECT_EQ(image.pods().size(), 1u);
  EXPECT_GE(image.pods()[0].bytes_in_use, kBlocks * kBlockBytes);
  errno = 0;
  EXPECT_EQ(image.allocate(64), nullptr);
  EXPECT_EQ(errno, EROFS);
  larder::pod p;
  EXPECT_TRUE(image.make_pod("more", &p).is(larder::errc::read_only));
  EXPECT_TRUE(larder::checkpoint(image, "no", nullptr).is(larder::errc::read_only));
  ASSERT_TRUE(image.close().ok());
  EXPECT_TRUE(larder::open_version(store, "nosuchthing", &image).is(larder::errc::not_found));
  EXPECT_FALSE(image.is_open());

  larder::heap latest;
  ASSERT_TRUE(larder::open_version(store, "main", &latest).ok());
  expect_filled(latest, 2);
  ASSERT_TRUE(latest.close().ok());
  // The heap itself is as it was left.
  larder::heap h(file_heap(path));
  expect_filled(h, 2);
}

// Runs a checkout of `version` in a child and kills it after `delay_us`;
// true when it was killed before it finished.
bool kill_checkout(const std::string& path, const std::string& version, unsigned delay_us) {
  pid_t child = ::fork();
  if (child < 0) return false;
  if (child == 0) {
    larder::heap h;
    if (!larder::heap::open(file_heap(path), &h).ok()) ::_exit(3);
    ::_exit(larder::checkout(h, version, nullptr).ok() && h.close().ok() ? 0 : 4);
  }
  ::usleep(delay_us);
  ::kill(child, SIGKILL);
  int wstatus = 0;
  EXPECT_EQ(::waitpid(child, &wstatus, 0), child);
  EXPECT_TRUE(WIFSIGNALED(wstatus) || (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0)) << wstatus;
  return WIFSIGNALED(wstatus);
}

void damage_metadata(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r+b");
  ASSERT_NE(f, nullptr);
  const unsigned char junk[64] = {0xde, 0xad, 0xbe, 0xef};
  ASSERT_EQ(std::fseek(f, 8192, SEEK_SET), 0);  // the metadata block's magic
  ASSERT_EQ(std::fwrite(junk, 1, sizeof(junk), f), sizeof(junk));
  ASSERT_EQ(std::fclose(f), 0);
}

TEST(VersionRestore, EveryVersionStaysRestorableAfterAKilledCheckout) {
  temp_dir dir;
  const std::string path = dir.file("heap");
  const two_versions v = make_two_versions(path);
  std::mt19937 random(10);
  int killed = 0, not_opening = 0;
  for (int round = 0; round < 8; ++round) {
    // From the second version towards the first, killed somewhere.
    const unsigned delay = std::uniform_int_distribution<unsigned>(0, 250000)(random);
    if (kill_checkout(path, v.first, delay)) ++killed;
    // Every third round the metadata block is damaged as well, so that the
    // heap certainly does not open.
    if (round % 3 == 0) damage_metadata(path);
    larder::heap probe;
    if (!larder::heap::open(file_heap(path), &probe).ok()) ++not_opening;
    (void)probe.close();
    // Whatever it left, each version is written back into the file.
    const std::string& target = round % 2 == 0 ? v.second : v.first;
    larder::checkout_stats st;
    ASSERT_TRUE(larder::restore_version(larder::backing::file, path, target, path + ".versions", &st).ok());
    EXPECT_EQ(st.id, target);
    expect_clean(path);
    larder::heap h(file_heap(path));
    expect_filled(h, target == v.first ? 1 : 2);
    // And the heap goes on with versions: back to the other one online.
    const std::string& other = target == v.first ? v.second : v.first;
    ASSERT_TRUE(larder::checkout(h, other, nullptr).ok());
    expect_filled(h, other == v.first ? 1 : 2);
    ASSERT_TRUE(h.close().ok());
    if (other != v.second) {
      larder::heap back(file_heap(path));
      ASSERT_TRUE(larder::checkout(back, v.second, nullptr).ok());
    }
  }
  std::printf("checkouts killed: %d of 8; heaps that did not open after: %d\n", killed, not_opening);
  EXPECT_GT(killed, 0);
  EXPECT_GE(not_opening, 3);
}

TEST(VersionRestore, RefusesAnotherHeapsVersionAndABusyHeap) {
  temp_dir dir;
  const std::string path = dir.file("heap"), other = dir.file("other");
  const two_versions v = make_two_versions(path);
  {
    larder::heap o(file_heap(other));
    fill(o, 7);
  }
  EXPECT_TRUE(larder::restore_version(larder::backing::file, other, v.first, path + ".versions")
                  .is(larder::errc::invalid_argument));
  {
    larder::heap o(file_heap(other));
    expect_filled(o, 7);
  }
  larder::heap open_now(file_heap(path));
  EXPECT_TRUE(larder::restore_version(larder::backing::file, path, v.first, path + ".versions")
                  .is(larder::errc::heap_busy));
  EXPECT_TRUE(larder::restore_version(larder::backing::file, dir.file("none"), v.first, path + ".versions")
                  .is(larder::errc::not_found));
}

}  // namespace
