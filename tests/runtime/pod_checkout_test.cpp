// Restoring some pods of a version (checkout_options::pods): random
// allocations, frees and writes in several pods, a checkpoint, more of
// them, then some pods restored: those pods hold the version's bytes, the
// others the live heap's, and `larder check` finds the heap clean.
#include "runtime_test_util.hpp"

#include <larder/check.hpp>
#include <larder/versions.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <vector>

namespace {

using larder_test::temp_dir;

constexpr std::size_t kPods = 4;
constexpr std::size_t kSlots = 24;

// Each pod's objects, listed from a table in the pod itself, so that a
// restored pod's table lists its restored objects.
struct pod_table {
  unsigned char* objects[kSlots];
  std::size_t sizes[kSlots];
};
using model = std::map<std::size_t, std::vector<unsigned char>>;

std::string numbered(const char* prefix, std::size_t i) {
  std::string out(prefix);
  out += std::to_string(i);
  return out;
}

void fill(unsigned char* p, std::size_t n, std::mt19937_64& rng) {
  for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<unsigned char>(rng());
}

// With `frees`, a step may free an object; without, pods only grow, so
// that no segment a pod gave back is taken by another pod meanwhile (a
// restore of the first would then be refused: PodCheckoutRefusal).
void random_step(larder::pod pod, pod_table* t, model* m, std::mt19937_64& rng, bool frees) {
  std::size_t slot = rng() % kSlots;
  if (t->objects[slot] == nullptr) {
    static constexpr std::size_t kSizes[] = {40, 700, 3000, 20000, 300000, 5000000};
    std::size_t size = kSizes[rng() % std::size(kSizes)];
    auto* p = static_cast<unsigned char*>(pod.allocate(size));
    ASSERT_NE(p, nullptr);
    fill(p, size, rng);
    t->objects[slot] = p;
    t->sizes[slot] = size;
    (*m)[slot].assign(p, p + size);
  } else if (frees && rng() % 3 == 0) {
    larder::heap::deallocate(t->objects[slot]);
    t->objects[slot] = nullptr;
    m->erase(slot);
  } else {
    std::size_t size = t->sizes[slot];
    std::size_t at = rng() % size, n = std::min<std::size_t>(size - at, 1 + rng() % 9000);
    fill(t->objects[slot] + at, n, rng);
    std::copy(t->objects[slot] + at, t->objects[slot] + at + n, (*m)[slot].begin() + static_cast<long>(at));
  }
}

void expect_pod_matches(const pod_table* t, const model& m, const std::string& where) {
  for (std::size_t slot = 0; slot < kSlots; ++slot) {
    auto it = m.find(slot);
    if (it == m.end()) {
      EXPECT_EQ(t->objects[slot], nullptr) << where << " slot " << slot;
      continue;
    }
    ASSERT_NE(t->objects[slot], nullptr) << where << " slot " << slot;
    ASSERT_EQ(t->sizes[slot], it->second.size()) << where << " slot " << slot;
    EXPECT_EQ(std::memcmp(t->objects[slot], it->second.data(), it->second.size()), 0) << where << " slot " << slot;
  }
}

class PodCheckoutTest : public ::testing::TestWithParam<int> {};

TEST_P(PodCheckoutTest, RestoredPodsEqualTheVersionAndTheOthersTheLiveHeap) {
  temp_dir dir(true);
  const std::string path = dir.file("heap");
  larder::heap h(larder_test::file_options(path));
  std::mt19937_64 rng(static_cast<std::uint64_t>(GetParam()));
  std::vector<larder::pod> pods(kPods);
  std::vector<pod_table*> tables(kPods);
  std::vector<model> live(kPods);
  for (std::size_t i = 0; i < kPods; ++i) {
    larder::throw_if_error(h.make_pod(numbered("p", i), &pods[i]));
    tables[i] = static_cast<pod_table*>(pods[i].allocate(sizeof(pod_table)));
    *tables[i] = {};
    larder::throw_if_error(h.set_root(numbered("p", i), tables[i], sizeof(pod_table)));
  }
  for (int k = 0; k < 60; ++k) random_step(pods[k % kPods], tables[k % kPods], &live[k % kPods], rng, true);
  const std::vector<model> saved = live;
  const std::string version = larder::checkpoint(h, "saved").id;
  for (int k = 0; k < 60; ++k) random_step(pods[k % kPods], tables[k % kPods], &live[k % kPods], rng, false);
  // A pod made since: restoring it removes it, as the version has none.
  larder::pod fresh;
  larder::throw_if_error(h.make_pod("made since", &fresh));
  ASSERT_NE(fresh.allocate(100000), nullptr);

  // Restore two of the four, and the new one.
  std::vector<std::uint32_t> chosen = {pods[1].id(), pods[3].id(), fresh.id()};
  larder::checkout_stats st;
  larder::status s = larder::checkout(h, version, {.pods = chosen}, &st);
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_GT(st.pages_loaded, 0u);
  for (std::size_t i = 0; i < kPods; ++i) {
    const bool restored = i == 1 || i == 3;
    auto* t = static_cast<pod_table*>(h.find_root(numbered("p", i)));
    ASSERT_EQ(t, tables[i]);
    expect_pod_matches(t, restored ? saved[i] : live[i], numbered(restored ? "restored pod " : "live pod ", i));
  }
  EXPECT_FALSE(h.find_pod("made since").valid());
  larder::check_report report;
  ASSERT_TRUE(larder::check_heap(larder::backing::file, path, false, &report).ok());
  EXPECT_TRUE(report.clean()) << (report.problems.empty() ? "" : report.problems[0]);

  // The heap goes on: every pod allocates and writes, and the next
  // checkpoint holds the mix, restored and live.
  for (std::size_t i = 0; i < kPods; ++i) pods[i] = h.find_pod(numbered("p", i));
  std::vector<model> after = {live[0], saved[1], live[2], saved[3]};
  for (int k = 0; k < 40; ++k) random_step(pods[k % kPods], tables[k % kPods], &after[k % kPods], rng, true);
  const std::string mixed = larder::checkpoint(h, "mixed").id;
  larder::checkout(h, version);
  larder::checkout(h, mixed);
  for (std::size_t i = 0; i < kPods; ++i)
    expect_pod_matches(static_cast<pod_table*>(h.find_root(numbered("p", i))), after[i],
                       numbered("mixed pod ", i));
}

INSTANTIATE_TEST_SUITE_P(Seeds, PodCheckoutTest, ::testing::Values(1, 2, 3));

TEST(PodCheckoutRefusal, PodsOfRootsAndBadPods) {
  temp_dir dir(true);
  larder::heap h(larder_test::file_options(dir.file("heap")));
  larder::pod a;
  larder::throw_if_error(h.make_pod("a", &a));
  void* in_a = a.allocate(64);
  larder::throw_if_error(h.set_root("in a", in_a, 64));
  const std::string version = larder::checkpoint(h, "one").id;
  std::vector<std::uint32_t> found;
  ASSERT_TRUE(larder::pods_of_roots(h, version, {"in a"}, &found).ok());
  EXPECT_EQ(found, std::vector<std::uint32_t>{a.id()});
  EXPECT_TRUE(larder::pods_of_roots(h, version, {"nothing"}, &found).is(larder::errc::not_found));
  larder::checkout_stats st;
  EXPECT_TRUE(larder::checkout(h, version, {.pods = {100000}}, &st).is(larder::errc::invalid_argument));
  EXPECT_TRUE(larder::checkout(h, version, {.lazy = true, .pods = {a.id()}}, &st).is(larder::errc::invalid_argument));

  // A's huge block given back, and its segments taken by b's: restoring a
  // alone would take them from b.
  void* big = a.allocate(6 << 20);
  larder::throw_if_error(h.set_root("big", big, 64));
  const std::string with_big = larder::checkpoint(h, "big").id;
  larder::heap::deallocate(big);
  larder::pod b;
  larder::throw_if_error(h.make_pod("b", &b));
  void* taken = b.allocate(6 << 20);
  ASSERT_EQ(taken, big);  // the same segments
  larder::status s = larder::checkout(h, with_big, {.pods = {a.id()}}, &st);
  EXPECT_TRUE(s.is(larder::errc::invalid_argument)) << s.to_string();
  EXPECT_NE(s.message().find("restore that pod too"), std::string::npos) << s.message();
  // Both together: fine (b had no record then: it is removed).
  s = larder::checkout(h, with_big, {.pods = {a.id(), b.id()}}, &st);
  EXPECT_TRUE(s.ok()) << s.to_string();
  EXPECT_FALSE(h.find_pod("b").valid());
}

// A page zero in the version but not before is given back, not written:
// the next checkpoint must still hold it as zeros.
TEST(PodCheckoutZeroPages, PagesZeroInTheVersionReachTheNextCheckpoint) {
  temp_dir dir(true);
  larder::heap h(larder_test::file_options(dir.file("heap")));
  larder::pod a;
  larder::throw_if_error(h.make_pod("a", &a));
  constexpr std::size_t kSize = 256 << 10;
  auto* p = static_cast<unsigned char*>(a.allocate(kSize));
  ASSERT_NE(p, nullptr);
  std::memset(p, 0, kSize);
  larder::throw_if_error(h.set_root("a", p, 64));
  const std::string zeros = larder::checkpoint(h, "zeros").id;
  std::memset(p, 0x5a, kSize);
  larder::checkpoint(h, "written");
  larder::checkout_stats st;
  larder::status s = larder::checkout(h, zeros, {.pods = {a.id()}}, &st);
  ASSERT_TRUE(s.ok()) << s.to_string();
  auto all_zero = [&] {
    const auto* q = static_cast<const unsigned char*>(h.find_root("a"));
    return std::all_of(q, q + kSize, [](unsigned char c) { return c == 0; });
  };
  ASSERT_TRUE(all_zero());
  const std::string restored = larder::checkpoint(h, "restored").id;
  std::memset(p, 0x77, kSize);
  s = larder::checkout(h, restored, {}, &st);
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_TRUE(all_zero());
}

// The restore gives its segments' storage back, then the used pages get
// theirs again, zero ones too: a later write to one never finds a hole
// (on a full file system, a SIGBUS).
TEST(PodCheckoutZeroPages, UsedPagesKeepTheirStorage) {
  temp_dir dir(true);
  const std::string path = dir.file("heap");
  larder::heap h(larder_test::file_options(path));
  larder::pod a;
  larder::throw_if_error(h.make_pod("a", &a));
  constexpr std::size_t kSize = 1 << 20;
  auto* p = static_cast<unsigned char*>(a.allocate(kSize));
  ASSERT_NE(p, nullptr);
  std::memset(p, 0, kSize);
  larder::throw_if_error(h.set_root("a", p, 64));
  const std::string zeros = larder::checkpoint(h, "zeros").id;
  std::memset(p, 0x5a, kSize);
  larder::checkpoint(h, "written");
  auto stored_bytes = [&] {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0);
    return static_cast<std::size_t>(st.st_blocks) * 512;
  };
  const std::size_t before = stored_bytes();
  larder::checkout_stats st;
  larder::status s = larder::checkout(h, zeros, {.pods = {a.id()}}, &st);
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_GE(stored_bytes() + kSize / 4, before);
}

}  // namespace
