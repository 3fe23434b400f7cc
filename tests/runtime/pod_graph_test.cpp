// The reference graph between pods (larder/references.hpp): random pointer
// structures rewritten over several epochs of page-write tracking, the
// graph checked against a model after each collect and against a scan of
// every page by a read-only open; the pods a root reaches, over chains and
// cycles; pinning them, with evicted pages read without bringing them
// back; and versions, which record the graph for pods_of_roots.
#include "migration_test_util.hpp"
#include "runtime_test_util.hpp"

#include <larder/references.hpp>
#include <larder/tiers.hpp>
#include <larder/versions.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace {

using larder_test::temp_dir;

constexpr std::size_t kPage = 4096;

std::string text(const std::vector<larder::pod_edge>& edges) {
  std::string out;
  for (const larder::pod_edge& e : edges)
    out += std::to_string(e.from) + "->" + std::to_string(e.to) + ":" + std::to_string(e.pages) + " ";
  return out;
}

std::vector<larder::pod_edge> graph_of(const larder::heap& h) {
  std::vector<larder::pod_edge> edges;
  larder::status s = larder::pod_graph(h, &edges);
  EXPECT_TRUE(s.ok()) << s.to_string();
  return edges;
}

void store(void* at, std::uint64_t value) { std::memcpy(at, &value, sizeof(value)); }

// Objects in several pods whose words hold pointers into objects (their
// own pod's or another's), small numbers or zero, and the pages the graph
// must count: the model of every pointer written.
class pointer_structure {
 public:
  pointer_structure(larder::heap& h, std::size_t pods, std::uint64_t seed) : rng_(seed) {
    for (std::size_t i = 0; i < pods; ++i) {
      larder::pod p;
      larder::throw_if_error(h.make_pod(larder_test::numbered("pod", static_cast<long>(i)), &p));
      pods_.push_back(p);
    }
  }

  // A new object of a random pod, every word written.
  void add_object(std::size_t size = 0) {
    static constexpr std::size_t kSizes[] = {16, 48, 200, 1000, 3000, 9000, 70000};
    if (size == 0) size = kSizes[rng_() % std::size(kSizes)];
    const std::size_t pod = rng_() % pods_.size();
    auto* at = static_cast<unsigned char*>(pods_[pod].allocate(size, 8));
    ASSERT_NE(at, nullptr);
    objects_.push_back({at, size, pods_[pod].id()});
    by_address_[reinterpret_cast<std::uintptr_t>(at)] = objects_.size() - 1;
    rewrite(objects_.size() - 1);
  }
  // Every word of object `i` written again.
  void rewrite(std::size_t i) {
    for (std::size_t w = 0; w < objects_[i].size / 8; ++w) write_word(i, w);
  }
  // One random word of a random object.
  void write_random_word() {
    const std::size_t i = rng_() % objects_.size();
    write_word(i, rng_() % (objects_[i].size / 8));
  }
  // A huge block (segments of its own), written sparsely.
  void add_huge_object(std::size_t size) {
    const std::size_t pod = rng_() % pods_.size();
    auto* at = static_cast<unsigned char*>(pods_[pod].allocate(size, 8));
    ASSERT_NE(at, nullptr);
    std::memset(at, 0, size);
    objects_.push_back({at, size, pods_[pod].id()});
    by_address_[reinterpret_cast<std::uintptr_t>(at)] = objects_.size() - 1;
    for (int k = 0; k < 300; ++k) write_word(objects_.size() - 1, rng_() % (size / 8));
  }
  void rewrite_random_object() { rewrite(rng_() % objects_.size()); }

  // What pod_graph must give: per page holding a pointer, one page for
  // each other pod it points into.
  std::vector<larder::pod_edge> expected() const {
    std::map<std::uintptr_t, std::set<std::uint32_t>> targets;  // page → pods pointed to
    std::map<std::uintptr_t, std::uint32_t> owner;              // page → its pod
    for (const auto& [word, value] : pointers_) {
      const std::uintptr_t page = word & ~(kPage - 1);
      owner[page] = object_at(word).pod;
      targets[page].insert(object_at(value).pod);
    }
    std::map<std::pair<std::uint32_t, std::uint32_t>, std::uint64_t> count;
    for (const auto& [page, pods] : targets)
      for (std::uint32_t to : pods)
        if (to != owner[page]) ++count[{owner[page], to}];
    std::vector<larder::pod_edge> out;
    for (const auto& [pair, pages] : count) out.push_back({pair.first, pair.second, pages});
    return out;
  }

 private:
  struct object {
    unsigned char* at;
    std::size_t size;
    std::uint32_t pod;
  };

  const object& object_at(std::uintptr_t address) const {
    auto it = by_address_.upper_bound(address);
    return objects_[std::prev(it)->second];
  }

  // A pointer into a random object (its start or inside it), a number
  // below 1000 (never a heap address), or zero: the pointer removed.
  void write_word(std::size_t i, std::size_t w) {
    const auto word = reinterpret_cast<std::uintptr_t>(objects_[i].at + w * 8);
    const unsigned kind = static_cast<unsigned>(rng_() % 10);
    if (kind < 3) {
      const object& to = objects_[rng_() % objects_.size()];
      const std::uintptr_t value = reinterpret_cast<std::uintptr_t>(to.at) + (rng_() % 2 ? 0 : rng_() % to.size);
      store(objects_[i].at + w * 8, value);
      pointers_[word] = value;
      return;
    }
    store(objects_[i].at + w * 8, kind < 7 ? 0 : rng_() % 1000);
    pointers_.erase(word);
  }

  std::mt19937_64 rng_;
  std::vector<larder::pod> pods_;
  std::vector<object> objects_;
  std::map<std::uintptr_t, std::size_t> by_address_;  // object start → index
  std::map<std::uintptr_t, std::uintptr_t> pointers_;  // word → the pointer it holds
};

class PodGraphModelTest : public ::testing::TestWithParam<int> {};

// Built and changed over epochs of tracking; after each collect the graph
// equals the model's. Midway the graph a scan of every page gives (tracking
// stopped) equals the kept one, and at the end so does a read-only open's.
TEST_P(PodGraphModelTest, KeptGraphEqualsTheModelAndAFullScan) {
  const larder_test::shm_guard shm(larder_test::unique_shm_name("graph"));
  larder::heap h(larder_test::shm_options(shm.name(), larder::open_mode::create));
  larder::status started = h.start_tracking();
  if (!started.ok()) GTEST_SKIP() << "no page-write tracker here: " << started.to_string();
  const auto seed = static_cast<std::uint64_t>(GetParam());
  pointer_structure s(h, 5, seed);
  for (int i = 0; i < 40; ++i) s.add_object();
  if (seed % 2 == 0) s.add_huge_object(std::size_t{5} << 20);
  ASSERT_EQ(text(graph_of(h)), text(s.expected())) << "the first call, a scan of every page";
  ASSERT_FALSE(s.expected().empty());

  std::mt19937_64 rng(seed * 7919);
  larder::dirty_set written;
  for (int epoch = 1; epoch <= 8; ++epoch) {
    for (int k = 0; k < 150; ++k) s.write_random_word();
    for (int k = 0; k < 2; ++k) s.rewrite_random_object();
    const std::uint64_t added = rng() % 4;
    for (std::uint64_t k = 0; k < added; ++k) s.add_object();
    ASSERT_TRUE(h.collect_dirty(&written).ok());
    ASSERT_EQ(text(graph_of(h)), text(s.expected())) << "after epoch " << epoch;
    if (epoch == 4) {
      const std::vector<larder::pod_edge> kept = graph_of(h);
      h.stop_tracking();
      EXPECT_EQ(text(graph_of(h)), text(kept)) << "a scan of every page, untracked";
      ASSERT_TRUE(h.start_tracking().ok());
    }
  }
  const std::vector<larder::pod_edge> kept = graph_of(h);
  ASSERT_TRUE(h.close().ok());
  larder::heap_options o = larder_test::shm_options(shm.name(), larder::open_mode::open);
  o.read_only = true;
  larder::heap reader(o);
  EXPECT_EQ(text(graph_of(reader)), text(kept)) << "a read-only open scans every page";
}

INSTANTIATE_TEST_SUITE_P(Seeds, PodGraphModelTest, ::testing::Values(1, 2, 3, 4));

// pods[i]'s object points into pods[j]'s for each (i, j) of `links`.
std::vector<void*> linked_objects(larder::heap& h, std::size_t count,
                                  const std::vector<std::pair<std::size_t, std::size_t>>& links) {
  std::vector<void*> objects;
  for (std::size_t i = 0; i < count; ++i) {
    larder::pod p;
    larder::throw_if_error(h.make_pod(larder_test::numbered("linked", static_cast<long>(i)), &p));
    void* object = p.allocate(128, 8);
    EXPECT_NE(object, nullptr);
    std::memset(object, 0, 128);
    objects.push_back(object);
  }
  std::vector<std::size_t> used(count, 0);
  for (const auto& [from, to] : links)
    store(static_cast<char*>(objects[from]) + 8 * used[from]++, reinterpret_cast<std::uintptr_t>(objects[to]) + 8);
  return objects;
}

std::uint32_t pod_of(const larder::heap& h, std::size_t i) {
  return h.find_pod(larder_test::numbered("linked", static_cast<long>(i))).id();
}

std::vector<std::uint32_t> reached(const larder::heap& h, const char* root) {
  std::vector<std::uint32_t> out;
  larder::status s = larder::pods_reached(h, root, &out);
  EXPECT_TRUE(s.ok()) << s.to_string();
  return out;
}

class PodsReachedTest : public ::testing::TestWithParam<bool> {};

// A chain 0 → 1 → 2 with 3 → 0 beside it, and a cycle 4 → 5 → 6 → 4 with
// 6 → 7: from the chain's head its three pods, from inside the cycle the
// cycle and what leaves it. Tracked (the kept graph) or not (a scan).
TEST_P(PodsReachedTest, ChainsAndCycles) {
  temp_dir dir(true);
  larder::heap h(larder_test::file_options(dir.file("heap")));
  if (GetParam() && !h.start_tracking().ok()) GTEST_SKIP() << "no page-write tracker here";
  std::vector<void*> o = linked_objects(h, 8, {{0, 1}, {1, 2}, {3, 0}, {4, 5}, {5, 6}, {6, 4}, {6, 7}});
  larder::throw_if_error(h.set_root("chain", o[0], 128));
  larder::throw_if_error(h.set_root("beside", o[3], 128));
  larder::throw_if_error(h.set_root("cycle", o[5], 128));
  larder::throw_if_error(h.set_root("end", o[7], 128));
  auto pods = [&](std::initializer_list<std::size_t> indexes) {
    std::vector<std::uint32_t> out;
    for (std::size_t i : indexes) out.push_back(pod_of(h, i));
    std::sort(out.begin(), out.end());
    return out;
  };
  EXPECT_EQ(reached(h, "chain"), pods({0, 1, 2}));
  EXPECT_EQ(reached(h, "beside"), pods({0, 1, 2, 3}));
  EXPECT_EQ(reached(h, "cycle"), pods({4, 5, 6, 7}));
  EXPECT_EQ(reached(h, "end"), pods({7}));

  // The chain broken: 1 no longer points at 2.
  store(o[1], 0);
  if (GetParam()) {
    larder::dirty_set written;
    ASSERT_TRUE(h.collect_dirty(&written).ok());
  }
  EXPECT_EQ(reached(h, "chain"), pods({0, 1}));

  std::vector<std::uint32_t> out;
  EXPECT_TRUE(larder::pods_reached(h, "no such root", &out).is(larder::errc::not_found));
}

INSTANTIATE_TEST_SUITE_P(TrackedOrNot, PodsReachedTest, ::testing::Bool());

// Pinning what a root reaches keeps exactly those pods from eviction; the
// graph of a heap with evicted pods is read from the tier, the pages left
// where they are.
TEST(PinReachedTest, PinsExactlyThePodsReachedAndReadsEvictedPagesInPlace) {
  using namespace larder_migration_test;
  if (!migration_works(larder::backing::anonymous)) GTEST_SKIP() << "userfaultfd missing faults are not available here";
  temp_dir dir;
  pod_heap ph;
  ph.open(larder::backing::anonymous, 4, 8, 11);
  // Every block of pod 0 points into pod 1, of pod 1 into pod 2, and of
  // pod 3 into pod 0: 8 pages each.
  for (std::size_t b = 0; b < 8; ++b) {
    store(ph.blocks[0][b], reinterpret_cast<std::uintptr_t>(ph.blocks[1][b]));
    store(ph.blocks[1][b] + 64, reinterpret_cast<std::uintptr_t>(ph.blocks[2][7 - b]) + 100);
    store(ph.blocks[3][b] + 8, reinterpret_cast<std::uintptr_t>(ph.blocks[0][0]));
  }
  larder::throw_if_error(ph.h.set_root("head", ph.blocks[0][0], kPage));
  larder::migration_policy policy;
  policy.tiers.push_back({larder::tier_kind::disk, dir.file("tier"), std::size_t{64} << 20});
  larder::status set = larder::set_migration_policy(ph.h, policy);
  if (set.is(larder::errc::unsupported)) GTEST_SKIP() << set.to_string();
  ASSERT_TRUE(set.ok()) << set.to_string();

  ASSERT_TRUE(larder::evict_pod(ph.h, ph.pods[1]).ok());
  ASSERT_TRUE(larder::evict_pod(ph.h, ph.pods[2]).ok());
  const std::size_t evicted = larder::migration_info(ph.h).evicted_bytes;
  ASSERT_GE(evicted, 16 * kPage);
  const std::uint32_t p0 = ph.pods[0].id(), p1 = ph.pods[1].id(), p2 = ph.pods[2].id(), p3 = ph.pods[3].id();
  const std::vector<larder::pod_edge> expected = {{p0, p1, 8}, {p1, p2, 8}, {p3, p0, 8}};
  EXPECT_EQ(text(graph_of(ph.h)), text(expected));
  EXPECT_EQ(larder::migration_info(ph.h).evicted_bytes, evicted) << "the scan brought evicted pages back";
  for (std::size_t b = 0; b < 8; ++b) EXPECT_FALSE(resident(ph.blocks[1][b])) << "block " << b;

  std::vector<std::uint32_t> pods;
  ASSERT_TRUE(larder::pods_reached(ph.h, "head", &pods).ok());
  EXPECT_EQ(pods, (std::vector<std::uint32_t>{p0, p1, p2}));
  ASSERT_TRUE(larder::pin_reached(ph.h, "head", true).ok());
  for (std::size_t i = 0; i < 3; ++i)
    EXPECT_TRUE(larder::evict_pod(ph.h, ph.pods[i]).is(larder::errc::invalid_argument)) << "pod " << i << " is pinned";
  EXPECT_TRUE(larder::evict_pod(ph.h, ph.pods[3]).ok()) << "pod 3 is not reached, so not pinned";
  ASSERT_TRUE(larder::pin_reached(ph.h, "head", false).ok());
  for (std::size_t i = 0; i < 3; ++i) EXPECT_TRUE(larder::evict_pod(ph.h, ph.pods[i]).ok()) << "pod " << i;
  EXPECT_TRUE(larder::pin_reached(ph.h, "no such root", true).is(larder::errc::not_found));
}

// A checkpoint records the graph the program keeps; pods_of_roots follows it, so restoring
// a root's pods brings back the objects of the pods it reaches, and
// leaves the pods it does not reach as they are.
TEST(PodGraphVersionTest, VersionsRecordTheGraphAndPodsOfRootsFollowsIt) {
  temp_dir dir(true);
  larder::heap h(larder_test::file_options(dir.file("heap")));
  // 0 → 1 → 2; 3 apart.
  std::vector<void*> o = linked_objects(h, 4, {{0, 1}, {1, 2}});
  auto value = [&](std::size_t i) { return static_cast<std::uint64_t*>(o[i]) + 15; };
  for (std::size_t i = 0; i < 4; ++i) *value(i) = 100 + i;
  larder::throw_if_error(h.set_root("root", o[0], 128));
  // A version records the graph where the program keeps it: asked for
  // while tracking.
  if (!h.start_tracking().ok()) GTEST_SKIP() << "no page-write tracking here";
  std::vector<larder::pod_edge> kept;
  larder::throw_if_error(larder::pod_graph(h, &kept));
  const std::string version = larder::checkpoint(h, "linked").id;
  const std::uint32_t p0 = pod_of(h, 0), p1 = pod_of(h, 1), p2 = pod_of(h, 2);

  larder::version_store store;
  larder::throw_if_error(larder::version_store::open(dir.file("heap") + ".versions", &store));
  std::vector<larder::version_info> log;
  larder::throw_if_error(store.log(false, &log));
  ASSERT_EQ(log.size(), 1u);
  const nlohmann::json meta = nlohmann::json::parse(log[0].roots_and_pods);
  ASSERT_TRUE(meta.contains("edges")) << log[0].roots_and_pods;
  EXPECT_EQ(meta["edges"], nlohmann::json::parse("[[" + std::to_string(p0) + "," + std::to_string(p1) + ",1],[" +
                                                 std::to_string(p1) + "," + std::to_string(p2) + ",1]]"));

  std::vector<std::uint32_t> pods;
  ASSERT_TRUE(larder::pods_of_roots(h, version, {"root"}, &pods).ok());
  EXPECT_EQ(pods, (std::vector<std::uint32_t>{p0, p1, p2}));

  for (std::size_t i = 0; i < 4; ++i) *value(i) = 200 + i;
  larder::checkout_stats st;
  larder::status s = larder::checkout(h, version, {.pods = pods}, &st);
  ASSERT_TRUE(s.ok()) << s.to_string();
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(*value(i), 100 + i) << "pod " << i << " is reached from the root";
  EXPECT_EQ(*value(3), 203u) << "pod 3 is not reached";
}

TEST(PodGraphVersionTest, AVersionRecordsNoGraphWhereNoneIsKept) {
  temp_dir dir(true);
  larder::heap h(larder_test::file_options(dir.file("heap")));
  std::vector<void*> o = linked_objects(h, 2, {{0, 1}});
  larder::throw_if_error(h.set_root("root", o[0], 128));
  const std::string version = larder::checkpoint(h, "linked").id;
  larder::version_store store;
  larder::throw_if_error(larder::version_store::open(dir.file("heap") + ".versions", &store));
  std::vector<larder::version_info> log;
  larder::throw_if_error(store.log(false, &log));
  ASSERT_EQ(log.size(), 1u);
  EXPECT_FALSE(nlohmann::json::parse(log[0].roots_and_pods).contains("edges")) << log[0].roots_and_pods;
  std::vector<std::uint32_t> pods;
  ASSERT_TRUE(larder::pods_of_roots(h, version, {"root"}, &pods).ok());
  EXPECT_EQ(pods, (std::vector<std::uint32_t>{pod_of(h, 0)})) << "only the root's own pod";
}

}  // namespace
