// Diffs, refs and deleting versions (larder/versions.hpp): a diff of two
// manifests counts the pages a model says changed, a diff against the live
// heap after k page writes reads and reports those k pages, roots added and
// written are named, branches and tags round-trip, and deleting a version
// then gc frees what du said it would.
#include "runtime_test_util.hpp"

#include <larder/versions.hpp>

#include <array>
#include <random>
#include <set>
#include <vector>

namespace {

using larder_test::temp_dir;

constexpr std::size_t kBlocks = 400;
using block_table = std::array<unsigned char*, kBlocks>;

struct fixture {
  temp_dir dir{true};
  larder::heap h;
  block_table* blocks = nullptr;
  std::mt19937_64 rng{11};
  std::vector<std::vector<unsigned char>> model;  // each block's bytes at the last checkpoint

  fixture() {
    larder::heap_options o;
    o.kind = larder::backing::file;
    o.name = dir.file("heap");
    o.reserve = std::size_t{1} << 30;
    larder::throw_if_error(larder::heap::open(o, &h));
    blocks = h.root<block_table>("blocks");
    for (auto& b : *blocks) {
      b = static_cast<unsigned char*>(h.allocate(4096, 4096));
      fill(b);
    }
  }
  void fill(unsigned char* p) {
    for (std::size_t i = 0; i < 4096; ++i) p[i] = static_cast<unsigned char>(rng());
  }
  void remember() {
    model.clear();
    for (unsigned char* b : *blocks) model.emplace_back(b, b + 4096);
  }
  // Blocks whose bytes differ from the model's.
  std::size_t changed_blocks() const {
    std::size_t n = 0;
    for (std::size_t i = 0; i < kBlocks; ++i) n += std::memcmp((*blocks)[i], model[i].data(), 4096) != 0;
    return n;
  }
};

// Differing pages of the pods, leaving out heap metadata (its tracking
// statistics change with every collect).
std::uint64_t pod_pages(const larder::version_diff& d) {
  std::uint64_t n = 0;
  for (const auto& a : d.areas) {
    EXPECT_EQ(a.segment, -1) << "versions made now record which pod each segment holds";
    if (a.pod >= 0) n += a.pages;
  }
  return n;
}

TEST(VersionDiffTest, TwoManifestsDifferInTheModelsChangedPages) {
  fixture f;
  std::vector<std::string> ids{larder::checkpoint(f.h, "all").id};
  f.remember();
  std::vector<std::size_t> expected;
  for (int step = 0; step < 4; ++step) {
    // Random blocks rewritten, some rewritten with the bytes they had (a
    // written page whose chunk stays the same does not differ).
    for (int i = 0; i < 30; ++i) {
      unsigned char* b = (*f.blocks)[f.rng() % kBlocks];
      if (i % 3 == 0) {
        b[5] ^= 1;
        b[5] ^= 1;
      } else {
        f.fill(b);
      }
    }
    expected.push_back(f.changed_blocks());
    ids.push_back(larder::checkpoint(f.h, "step").id);
    f.remember();
  }
  larder::version_store store;
  ASSERT_TRUE(larder::version_store::open(larder::version_store_of(f.h), &store).ok());
  for (std::size_t i = 1; i < ids.size(); ++i) {
    larder::version_diff d;
    ASSERT_TRUE(store.diff(ids[i - 1], ids[i], &d).ok());
    EXPECT_EQ(d.from, ids[i - 1]);
    EXPECT_EQ(d.to, ids[i]);
    EXPECT_EQ(pod_pages(d), expected[i - 1]) << "step " << i;
    EXPECT_EQ(d.bytes, d.pages * 4096);
    EXPECT_EQ(d.pages_fingerprinted, 0u) << "a diff of manifests reads no page";
    EXPECT_EQ(d.roots.size(), 0u) << "the blocks root itself was not written";
  }
  larder::version_diff same;
  ASSERT_TRUE(store.diff(ids[2], ids[2], &same).ok());
  EXPECT_EQ(same.pages, 0u);
  EXPECT_TRUE(same.areas.empty());
}

TEST(VersionDiffTest, LiveHeapAfterKPageWritesReadsAndReportsThoseK) {
  fixture f;
  const std::string base = larder::checkpoint(f.h, "base").id;
  for (std::size_t k : {0u, 1u, 7u, 50u}) {
    // A checkout sets the allocator up again, which rewrites process-local
    // fields of segment headers: pages that differ before any write.
    larder::version_diff before;
    ASSERT_TRUE(larder::diff(f.h, base, &before).ok());
    std::set<std::size_t> written;
    while (written.size() < k) written.insert(f.rng() % kBlocks);
    for (std::size_t i : written) f.fill((*f.blocks)[i]);
    larder::version_diff d;
    ASSERT_TRUE(larder::diff(f.h, base, &d).ok());
    EXPECT_EQ(d.from, base);
    EXPECT_EQ(d.to, "");
    EXPECT_EQ(pod_pages(d) - pod_pages(before), k);
    // Only the pages written since the checkpoint (and the heap metadata
    // the tracker's collect writes) are read.
    EXPECT_LE(d.pages_fingerprinted, k + 8) << "k = " << k;
    (void)larder::checkout(f.h, base);
    f.blocks = f.h.root<block_table>("blocks");
  }
  // In a process with no version current every used page is read.
  ASSERT_TRUE(f.h.close().ok());
  larder::heap_options o;
  o.kind = larder::backing::file;
  o.name = f.dir.file("heap");
  o.read_only = true;
  larder::heap reopened;
  ASSERT_TRUE(larder::heap::open(o, &reopened).ok());
  larder::version_diff d;
  ASSERT_TRUE(larder::diff(reopened, base, &d).ok());
  EXPECT_GE(d.pages_fingerprinted, kBlocks);
  EXPECT_LE(pod_pages(d), 2u) << "the blocks are as checked out; segment headers may differ";
}

TEST(VersionDiffTest, RootsAddedAndWrittenAreNamed) {
  fixture f;
  auto* counter = f.h.root<long>("counter");
  const std::string first = larder::checkpoint(f.h, "one").id;
  *counter = 5;
  (void)f.h.root<long>("another");
  larder::version_diff d;
  ASSERT_TRUE(larder::diff(f.h, first, &d).ok());
  std::set<std::pair<std::string, std::string>> roots;
  for (const auto& r : d.roots) roots.insert({r.name, r.change});
  EXPECT_TRUE(roots.contains({"counter", "written"}));
  EXPECT_TRUE(roots.contains({"another", "added"}));
  EXPECT_FALSE(roots.contains({"blocks", "written"}));
  const std::string second = larder::checkpoint(f.h, "two").id;
  larder::version_store store;
  ASSERT_TRUE(larder::version_store::open(larder::version_store_of(f.h), &store).ok());
  larder::version_diff back;
  ASSERT_TRUE(store.diff(second, first, &back).ok());
  roots.clear();
  for (const auto& r : back.roots) roots.insert({r.name, r.change});
  EXPECT_TRUE(roots.contains({"another", "removed"}));
  EXPECT_TRUE(roots.contains({"counter", "written"}));
}

TEST(VersionDiffTest, BranchesAndTagsRoundTrip) {
  fixture f;
  const std::string first = larder::checkpoint(f.h, "one").id;
  f.fill((*f.blocks)[0]);
  const std::string second = larder::checkpoint(f.h, "two").id;
  larder::version_store store;
  ASSERT_TRUE(larder::version_store::open(larder::version_store_of(f.h), &store).ok());
  ASSERT_TRUE(store.create_ref("tags/v1", first).ok());
  ASSERT_TRUE(store.create_ref("heads/topic", "").ok()) << "no version: HEAD's";
  EXPECT_TRUE(store.create_ref("tags/v1", second).is(larder::errc::already_exists));
  EXPECT_TRUE(store.create_ref("tags/bad name", second).is(larder::errc::invalid_argument));
  EXPECT_TRUE(store.create_ref("v2", second).is(larder::errc::invalid_argument));
  EXPECT_TRUE(store.create_ref("tags/v9", "nosuchversion").is(larder::errc::not_found));
  std::vector<larder::ref_info> refs;
  ASSERT_TRUE(store.refs(&refs).ok());
  std::set<std::pair<std::string, std::string>> listed;
  for (const auto& r : refs) listed.insert({r.name, r.id});
  EXPECT_EQ(listed, (std::set<std::pair<std::string, std::string>>{
                        {"heads/main", second}, {"heads/topic", second}, {"tags/v1", first}}));
  std::string id;
  ASSERT_TRUE(store.resolve("v1", &id).ok());
  EXPECT_EQ(id, first);
  EXPECT_TRUE(store.delete_ref("heads/main").is(larder::errc::invalid_argument)) << "HEAD is on main";
  ASSERT_TRUE(store.delete_ref("tags/v1").ok());
  EXPECT_TRUE(store.delete_ref("tags/v1").is(larder::errc::not_found));
  EXPECT_TRUE(store.resolve("v1", &id).is(larder::errc::not_found));
}

TEST(VersionDiffTest, DeleteThenGcFreesWhatDuSaid) {
  fixture f;
  const std::string first = larder::checkpoint(f.h, "one").id;
  for (std::size_t i = 0; i < 100; ++i) f.fill((*f.blocks)[i]);
  const std::string second = larder::checkpoint(f.h, "two").id;
  for (std::size_t i = 0; i < 100; ++i) f.fill((*f.blocks)[i]);
  larder::checkpoint(f.h, "three");
  larder::version_store store;
  ASSERT_TRUE(larder::version_store::open(larder::version_store_of(f.h), &store).ok());
  ASSERT_TRUE(store.create_ref("tags/keep", second).ok());
  EXPECT_TRUE(store.delete_version(second, false).is(larder::errc::invalid_argument)) << "a tag names it";
  larder::store_space space;
  ASSERT_TRUE(store.du(&space).ok());
  std::uint64_t would_free = 0;
  for (const auto& v : space.versions)
    if (v.id == second) would_free = v.freed_by_delete;
  EXPECT_GE(would_free, 100u * 4096 / 2) << "100 pages only it names (compressed at most to half)";
  ASSERT_TRUE(store.delete_version(second, true).ok());
  std::vector<larder::version_info> all;
  ASSERT_TRUE(store.log(true, &all).ok());
  ASSERT_EQ(all.size(), 2u);
  for (const auto& v : all) EXPECT_NE(v.id, second);
  larder::store_gc_report gc;
  ASSERT_TRUE(store.gc(&gc).ok());
  EXPECT_EQ(gc.bytes_freed, would_free);
  // What stays is whole: the first version checks out.
  ASSERT_TRUE(store.delete_ref("tags/keep").ok());
  ASSERT_TRUE(larder::checkout(f.h, first, nullptr).ok());
}

}  // namespace
