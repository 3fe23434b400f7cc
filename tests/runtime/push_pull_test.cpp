// Push and pull of a heap's versions (larder/versions.hpp): a heap
// checkpointed here is pulled into another store and checked out there
// (a clone, then a later version checked out into the clone) with every
// byte equal, and pushing a version with 1 % of its pages changed sends
// no more than 1.1x the bytes of the pages that differ.
#include "runtime_test_util.hpp"

#include <larder/check.hpp>
#include <larder/versions.hpp>

#include <cstdio>
#include <string>

namespace {

using larder_test::temp_dir;

constexpr std::size_t kBlocks = 4;
constexpr std::size_t kBlockBytes = std::size_t{4} << 20;
constexpr std::size_t kPages = kBlocks * kBlockBytes / 4096;

struct block_table {
  std::uint64_t* blocks[kBlocks];
};

std::uint64_t word(std::uint64_t seed, std::size_t block, std::size_t i) {
  std::uint64_t x = (seed << 48) ^ (block << 40) ^ i;
  x ^= x >> 31;
  return x * 0x9E3779B97F4A7C15ull;  // pages zstd cannot shrink: what travels is the page
}

larder::heap_options file_heap(const std::string& path) {
  larder::heap_options o;
  o.name = path;
  o.reserve = std::size_t{1} << 30;
  return o;
}

void fill(larder::heap& h) {
  auto* table = h.root<block_table>("blocks");
  for (std::size_t b = 0; b < kBlocks; ++b) {
    table->blocks[b] = static_cast<std::uint64_t*>(h.allocate(kBlockBytes));
    ASSERT_NE(table->blocks[b], nullptr);
    for (std::size_t i = 0; i < kBlockBytes / 8; ++i) table->blocks[b][i] = word(1, b, i);
  }
}

// One word in each of `pages` pages spread over the blocks.
void touch(larder::heap& h, std::size_t pages) {
  auto* table = h.root<block_table>("blocks");
  for (std::size_t p = 0; p < pages; ++p) {
    const std::size_t page = p * 97 % kPages;
    table->blocks[page / (kBlockBytes / 4096)][page % (kBlockBytes / 4096) * 512] = word(2, p, 0);
  }
}

// The heap holds what fill() and touch(pages) wrote.
void expect_contents(const larder::heap& h, std::size_t touched) {
  std::size_t size = 0;
  auto* table = static_cast<block_table*>(h.find_root("blocks", &size));
  ASSERT_NE(table, nullptr);
  std::vector<std::uint64_t> want(kPages * 512);
  for (std::size_t b = 0; b < kBlocks; ++b)
    for (std::size_t i = 0; i < kBlockBytes / 8; ++i) want[b * kBlockBytes / 8 + i] = word(1, b, i);
  for (std::size_t p = 0; p < touched; ++p) want[p * 97 % kPages * 512] = word(2, p, 0);
  for (std::size_t b = 0; b < kBlocks; ++b)
    for (std::size_t i = 0; i < kBlockBytes / 8; ++i)
      ASSERT_EQ(table->blocks[b][i], want[b * kBlockBytes / 8 + i]) << "block " << b << " word " << i;
}

TEST(PushPull, CheckpointedHereCheckedOutThere) {
  temp_dir dir;
  const std::string here = dir.file("here"), remote = dir.file("backup"), there = dir.file("there.versions");
  const std::string clone = dir.file("clone");
  constexpr std::size_t kChanged = kPages / 100;
  std::string first, second;
  larder::transfer_stats pushed;
  {
    larder::heap h(file_heap(here));
    fill(h);
    first = larder::checkpoint(h, "filled").id;
    ASSERT_TRUE(larder::push_versions(here + ".versions", remote, "", {}, &pushed).ok());
    EXPECT_EQ(pushed.versions_sent, 1u);
    EXPECT_EQ(pushed.refs_set, 1u);
    EXPECT_GE(pushed.chunks_sent, kPages);
    touch(h, kChanged);
    second = larder::checkpoint(h, "1 % changed").id;
    larder::status s = larder::push_versions(here + ".versions", remote, "", {}, &pushed);
    ASSERT_TRUE(s.ok()) << s.to_string();
    ASSERT_TRUE(h.close().ok());
  }
  // What was sent against what differs: the pages written, and the
  // allocator's and the checkpoint's own.
  larder::version_store store;
  ASSERT_TRUE(larder::version_store::open(here + ".versions", &store).ok());
  larder::version_diff d;
  ASSERT_TRUE(store.diff(first, second, &d).ok());
  EXPECT_GE(d.pages, kChanged);
  std::printf("1 %% of pages changed: %llu pages differ (%llu bytes); sent %llu chunks, %llu bytes, %llu of manifests\n",
              static_cast<unsigned long long>(d.pages), static_cast<unsigned long long>(d.bytes),
              static_cast<unsigned long long>(pushed.chunks_sent),
              static_cast<unsigned long long>(pushed.chunk_bytes_sent),
              static_cast<unsigned long long>(pushed.version_bytes_sent));
  EXPECT_EQ(pushed.versions_sent, 1u);
  EXPECT_LE(pushed.chunks_asked, d.pages);
  EXPECT_LE(pushed.chunk_bytes_sent, d.bytes * 11 / 10) << d.pages << " pages differ";
  EXPECT_LE(pushed.chunk_bytes_sent + pushed.version_bytes_sent, d.bytes * 11 / 10);

  // The other machine: pull into its store, clone the first version, then
  // check the second out into the clone.
  larder::transfer_stats pulled;
  ASSERT_TRUE(larder::pull_versions(remote, there, first, {}, &pulled).ok());
  ASSERT_TRUE(larder::clone_version(there, first, clone).ok());
  {
    larder::heap h(file_heap(clone));
    expect_contents(h, 0);
    ASSERT_TRUE(larder::pull_versions(remote, there, "", {}, &pulled).ok());
    EXPECT_LE(pulled.chunk_bytes_sent, d.bytes * 11 / 10);
    ASSERT_TRUE(larder::use_version_store(h, there).ok());
    larder::checkout_stats st;
    larder::status s = larder::checkout(h, "main", &st);
    ASSERT_TRUE(s.ok()) << s.to_string();
    EXPECT_EQ(st.id, second);
    expect_contents(h, kChanged);
    ASSERT_TRUE(h.close().ok());
  }
  larder::check_report report;
  ASSERT_TRUE(larder::check_heap(larder::backing::file, clone, false, &report).ok());
  EXPECT_TRUE(report.clean());
}

TEST(PushPull, ErrorsAreClear) {
  temp_dir dir;
  larder::transfer_stats st;
  // No store to push from; a remote that is no store; HEAD naming nothing yet.
  EXPECT_TRUE(larder::push_versions(dir.file("none"), dir.file("r"), "", {}, &st).is(larder::errc::not_a_heap));
  EXPECT_TRUE(larder::pull_versions(dir.file("none"), dir.file("s"), "", {}, &st).is(larder::errc::not_a_heap));
  const std::string path = dir.file("heap");
  {
    larder::heap h(file_heap(path));
    (void)h.root<int>("x");
    larder::checkpoint(h, "one");
    ASSERT_TRUE(h.close().ok());
  }
  EXPECT_TRUE(larder::push_versions(path + ".versions", dir.file("r"), "nosuch", {}, &st).is(larder::errc::not_found));
  EXPECT_TRUE(larder::push_versions(path + ".versions", "rados:", "", {}, &st).code() != 0);
  larder::transfer_options all{.all = true};
  ASSERT_TRUE(larder::push_versions(path + ".versions", dir.file("r"), "", all, &st).ok());
  EXPECT_EQ(st.versions_sent, 1u);
}

}  // namespace
