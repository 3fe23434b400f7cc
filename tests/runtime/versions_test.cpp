// Versions of heaps (larder/versions.hpp): a model test of checkpoints and
// checkouts back and forth on file, shm and anonymous heaps, incremental
// checkpoints that store only what changed, checkpoints beside threads
// running transactions, and versions refused where they do not belong.
#include "runtime_test_util.hpp"

#include <larder/check.hpp>
#include <larder/versions.hpp>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <vector>

namespace {

using larder_test::temp_dir;

constexpr std::size_t kSlots = 64;

// The root: objects the model test allocates, frees and writes.
struct object_table {
  unsigned char* objects[kSlots];
  std::size_t sizes[kSlots];
};

using model = std::map<std::size_t, std::vector<unsigned char>>;  // slot → bytes

struct heap_case {
  larder::backing kind;
  const char* name;
};

class heap_under_test {
 public:
  heap_under_test(larder::backing kind, const temp_dir& dir) : kind_(kind), store_(dir.file("store")) {
    larder::heap_options o;
    o.kind = kind;
    o.reserve = std::size_t{1} << 30;
    if (kind == larder::backing::file) {
      o.name = dir.file("heap");
    } else if (kind == larder::backing::shm) {
      shm_ = larder_test::unique_shm_name("versions");
      o.name = shm_;
    }
    name_ = o.name;
    larder::throw_if_error(larder::heap::open(o, &heap_));
    if (kind != larder::backing::file) larder::throw_if_error(larder::use_version_store(heap_, store_));
  }
  ~heap_under_test() {
    (void)heap_.close();
    if (!shm_.empty()) ::shm_unlink(shm_.c_str());
  }
  larder::heap& get() { return heap_; }
  // larder check finds the heap clean (file and shm heaps).
  void expect_clean() {
    if (kind_ == larder::backing::anonymous) return;
    larder::check_report report;
    ASSERT_TRUE(larder::check_heap(kind_, name_, false, &report).ok());
    EXPECT_TRUE(report.clean()) << (report.problems.empty() ? "" : report.problems[0]);
  }

 private:
  larder::backing kind_;
  std::string store_, name_, shm_;
  larder::heap heap_;
};

std::set<std::filesystem::path> packs_of(const std::string& store) {
  std::set<std::filesystem::path> out;
  for (const auto& e : std::filesystem::directory_iterator(store + "/packs"))
    if (e.path().extension() == ".pack") out.insert(e.path());
  return out;
}

// One byte in 16 flipped between each pack's header and its footer.
void damage(const std::set<std::filesystem::path>& packs) {
  for (const auto& pack : packs) {
    std::fstream f(pack, std::ios::in | std::ios::out | std::ios::binary);
    const auto size = static_cast<std::streamoff>(std::filesystem::file_size(pack));
    for (std::streamoff at = 32; at < size - 4096; at += 16) {
      f.seekg(at);
      char c = 0;
      f.read(&c, 1);
      c = static_cast<char>(c ^ 0x5a);
      f.seekp(at);
      f.write(&c, 1);
    }
  }
}

void fill(unsigned char* p, std::size_t n, std::mt19937_64& rng) {
  for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<unsigned char>(rng());
}

// One random step: allocate, free or rewrite part of an object, in a
// transaction or outside one.
void random_step(larder::heap& h, object_table* t, model* m, std::mt19937_64& rng) {
  std::size_t slot = rng() % kSlots;
  bool in_tx = rng() % 2 == 0;
  if (t->objects[slot] == nullptr) {
    static constexpr std::size_t kSizes[] = {24, 200, 1000, 5000, 70000, 600000};
    std::size_t size = kSizes[rng() % std::size(kSizes)];
    unsigned char* p = nullptr;
    if (in_tx) {
      larder::transaction tx(h);
      p = static_cast<unsigned char*>(tx.allocate(size));
      fill(p, size, rng);
      tx.snapshot(&t->objects[slot]);
      tx.snapshot(&t->sizes[slot]);
      t->objects[slot] = p;
      t->sizes[slot] = size;
    } else {
      p = static_cast<unsigned char*>(h.allocate(size));
      ASSERT_NE(p, nullptr);
      fill(p, size, rng);
      t->objects[slot] = p;
      t->sizes[slot] = size;
    }
    (*m)[slot].assign(p, p + size);
  } else if (rng() % 3 == 0) {
    if (in_tx) {
      larder::transaction tx(h);
      tx.snapshot(&t->objects[slot]);
      tx.free(t->objects[slot]);
      t->objects[slot] = nullptr;
    } else {
      larder::heap::deallocate(t->objects[slot]);
      t->objects[slot] = nullptr;
    }
    m->erase(slot);
  } else {
    std::size_t size = t->sizes[slot];
    std::size_t at = rng() % size, n = std::min<std::size_t>(size - at, 1 + rng() % 9000);
    if (in_tx) {
      larder::transaction tx(h);
      tx.snapshot(t->objects[slot] + at, n);
      fill(t->objects[slot] + at, n, rng);
    } else {
      fill(t->objects[slot] + at, n, rng);
    }
    std::copy(t->objects[slot] + at, t->objects[slot] + at + n, (*m)[slot].begin() + static_cast<long>(at));
  }
}

void expect_matches(larder::heap& h, const model& m, const std::string& where) {
  std::size_t size = 0;
  auto* t = static_cast<object_table*>(h.find_root("table", &size));
  ASSERT_NE(t, nullptr) << where;
  ASSERT_EQ(size, sizeof(object_table));
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

class VersionsModelTest : public ::testing::TestWithParam<heap_case> {};

TEST_P(VersionsModelTest, EveryCheckoutEqualsTheModelAtThatVersion) {
  temp_dir dir(true);
  heap_under_test hut(GetParam().kind, dir);
  larder::heap& h = hut.get();
  auto* table = h.root<object_table>("table");
  std::mt19937_64 rng(42);
  std::vector<std::string> ids;
  std::vector<model> models;
  model m;
  constexpr int kSteps = 24;
  for (int step = 0; step < kSteps; ++step) {
    for (int k = 0; k < 6; ++k) random_step(h, table, &m, rng);
    larder::checkpoint_stats st = larder::checkpoint(h, "step " + std::to_string(step));
    ASSERT_EQ(st.id.size(), 32u);
    ids.push_back(st.id);
    models.push_back(m);
  }
  // Back and forth, with changes between checkouts that the next checkout
  // must undo; every other checkout lazy where it works, with the changes
  // made while its pages may still be missing, and some of them
  // checkpointed as new versions.
  const bool lazy_here = larder_test::lazy_checkout_works(GetParam().kind);
  std::size_t lazy_pages = 0;
  for (int round = 0; round < 30; ++round) {
    std::size_t v = rng() % ids.size();
    std::string name = round % 3 == 0 ? ids[v].substr(0, 12) : ids[v];
    const bool lazy = lazy_here && round % 2 == 1;
    larder::checkout_stats st = larder::checkout(h, name, {.lazy = lazy});
    EXPECT_EQ(st.id, ids[v]);
    if (!lazy) {
      EXPECT_EQ(st.pages_lazy, 0u);
    }
    lazy_pages += st.pages_lazy;
    std::string where = std::string(lazy ? "lazy" : "eager") + " checkout of version " + std::to_string(v) +
                        " in round " + std::to_string(round);
    expect_matches(h, models[v], where);
    if (HasFailure()) return;
    if (!lazy) hut.expect_clean();
    // Allocation and changes still work, and are undone by the next checkout.
    table = static_cast<object_table*>(h.find_root("table"));
    model scratch = models[v];
    for (int k = 0; k < 4; ++k) random_step(h, table, &scratch, rng);
    expect_matches(h, scratch, where + " after changes");
    if (round % 5 == 4) {
      ids.push_back(larder::checkpoint(h, "round " + std::to_string(round)).id);
      models.push_back(scratch);
    }
    if (lazy) {
      EXPECT_TRUE(larder::finish_checkout(h).ok()) << where;
      EXPECT_EQ(larder::lazy_checkout_progress(h).pages_pending, 0u);
      hut.expect_clean();
    }
  }
  if (lazy_here) {
    EXPECT_GT(lazy_pages, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Backings, VersionsModelTest,
                         ::testing::Values(heap_case{larder::backing::file, "file"},
                                           heap_case{larder::backing::shm, "shm"},
                                           heap_case{larder::backing::anonymous, "anonymous"}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(VersionsTest, IncrementalCheckpointStoresOnlyChangedPages) {
  temp_dir dir(true);
  heap_under_test hut(larder::backing::file, dir);
  larder::heap& h = hut.get();
  constexpr std::size_t kBlocks = 2000;
  auto* blocks = h.root<std::array<unsigned char*, kBlocks>>("blocks");
  std::mt19937_64 rng(7);
  for (auto& b : *blocks) {
    b = static_cast<unsigned char*>(h.allocate(4096, 4096));
    ASSERT_NE(b, nullptr);
    fill(b, 4096, rng);
  }
  larder::checkpoint_stats first = larder::checkpoint(h, "all");
  EXPECT_GE(first.new_chunks, kBlocks);
  EXPECT_GE(first.pages_considered, kBlocks);
  for (std::size_t k : {1u, 10u, 100u}) {
    for (std::size_t i = 0; i < k; ++i) fill((*blocks)[(i * 17 + k) % kBlocks], 4096, rng);
    larder::checkpoint_stats st = larder::checkpoint(h, std::to_string(k) + " pages changed");
    EXPECT_GE(st.new_chunks, k);
    EXPECT_LE(st.new_chunks, k + 4) << k << " pages changed";
    EXPECT_LE(st.pages_considered, k + 8) << k << " pages changed";
    EXPECT_GE(st.pages_in_version, kBlocks);
  }
  // Nothing changed: nothing new.
  larder::checkpoint_stats idle = larder::checkpoint(h, "idle");
  EXPECT_EQ(idle.new_chunks, 0u);
}

TEST(VersionsTest, CheckoutFailingBeforeTheHeapChangesKeepsItsWritesForTheNextCheckpoint) {
  temp_dir dir(true);
  heap_under_test hut(larder::backing::anonymous, dir);
  larder::heap& h = hut.get();
  auto* n = h.root<std::uint64_t>("n");
  *n = 1;
  std::string one = larder::checkpoint(h, "one").id;
  const std::set<std::filesystem::path> first = packs_of(dir.file("store"));
  *n = 2;
  larder::checkpoint(h, "two");
  damage(first);
  *n = 3;
  larder::checkout_stats st;
  EXPECT_FALSE(larder::checkout(h, one, {}, &st).ok());
  ASSERT_EQ(*n, 3u);
  std::string three = larder::checkpoint(h, "three").id;
  *n = 4;
  larder::status s = larder::checkout(h, three, {}, &st);
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(*static_cast<std::uint64_t*>(h.find_root("n")), 3u);
}

TEST(VersionsTest, FailedCheckpointStillKnowsWritesWentUnseen) {
  temp_dir dir(true);
  heap_under_test hut(larder::backing::anonymous, dir);
  larder::heap& h = hut.get();
  auto* n = h.root<std::uint64_t>("n");
  *n = 1;
  larder::checkpoint(h, "one");
  h.stop_tracking();
  *n = 2;  // seen by no tracker
  // A file where the manifests' directory was: the commit fails.
  const std::filesystem::path versions = dir.file("store") + "/versions";
  std::filesystem::rename(versions, dir.file("versions.away"));
  std::ofstream(versions).put('x');
  larder::checkpoint_stats st;
  EXPECT_FALSE(larder::checkpoint(h, "refused", &st).ok());
  std::filesystem::remove(versions);
  std::filesystem::rename(dir.file("versions.away"), versions);
  std::string two = larder::checkpoint(h, "two").id;
  *n = 3;
  larder::checkout_stats cst;
  larder::status s = larder::checkout(h, two, {}, &cst);
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(*static_cast<std::uint64_t*>(h.find_root("n")), 2u);
}

// The program stops tracking while checkpoints copy pages off the lock:
// each checkpoint reads every used page instead, and holds every byte.
TEST(VersionsTest, TrackingStoppedDuringCheckpointsFallsBackToReadingEverything) {
  temp_dir dir(true);
  heap_under_test hut(larder::backing::anonymous, dir);
  larder::heap& h = hut.get();
  constexpr std::size_t kSize = 16 << 20;
  auto* bytes = static_cast<unsigned char*>(h.allocate(kSize));
  ASSERT_NE(bytes, nullptr);
  larder::throw_if_error(h.set_root("bytes", bytes, 64));
  std::memset(bytes, 1, kSize);
  larder::checkpoint(h, "first");
  std::atomic<bool> done{false};
  std::thread toggler([&] {
    while (!done.load()) {
      h.stop_tracking();
      (void)h.start_tracking();
    }
  });
  std::vector<std::pair<std::string, unsigned char>> versions;
  for (unsigned char k = 2; k < 10; ++k) {
    std::memset(bytes, k, kSize);
    larder::checkpoint_stats st;
    larder::status s = larder::checkpoint(h, "step", &st);
    if (!s.ok()) {
      ADD_FAILURE() << s.to_string();
      break;
    }
    versions.emplace_back(st.id, k);
  }
  done = true;
  toggler.join();
  for (const auto& [id, k] : versions) {
    larder::checkout_stats st;
    larder::throw_if_error(larder::checkout(h, id, {}, &st));
    const auto* p = static_cast<const unsigned char*>(h.find_root("bytes"));
    ASSERT_TRUE(std::all_of(p, p + kSize, [k = k](unsigned char c) { return c == k; })) << "version " << int(k);
  }
}

TEST(VersionsTest, CheckpointsNeverHoldHalfATransaction) {
  temp_dir dir(true);
  heap_under_test hut(larder::backing::file, dir);
  larder::heap& h = hut.get();
  struct counters {
    std::uint64_t a[4];
    std::uint64_t b[4];
  };
  auto* c = h.root<counters>("counters");
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      while (!stop.load()) {
        larder::transaction tx(h);
        tx.snapshot(&c->a[t]);
        tx.snapshot(&c->b[t]);
        ++c->a[t];
        std::this_thread::yield();
        ++c->b[t];
      }
    });
  }
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    ids.push_back(larder::checkpoint(h, "while running").id);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  stop = true;
  for (auto& t : threads) t.join();
  // Each version holds whole transactions only, and later versions hold
  // more of them: the checkouts did load each.
  std::uint64_t previous = 0;
  std::size_t grew = 0;
  for (const std::string& id : ids) {
    larder::checkout(h, id);
    c = static_cast<counters*>(h.find_root("counters"));
    std::uint64_t total = 0;
    for (int t = 0; t < 4; ++t) {
      EXPECT_EQ(c->a[t], c->b[t]) << "version " << id << " thread " << t;
      total += c->a[t];
    }
    EXPECT_GE(total, previous);
    grew += total > previous;
    previous = total;
  }
  EXPECT_GT(grew, 5u);
}

TEST(VersionsTest, VersionOfAnotherHeapIsRefused) {
  temp_dir dir(true);
  larder::heap a(larder_test::file_options(dir.file("a")));
  larder::heap b(larder_test::file_options(dir.file("b")));
  larder::throw_if_error(larder::use_version_store(a, dir.file("shared")));
  larder::throw_if_error(larder::use_version_store(b, dir.file("shared")));
  a.root<int>("x");
  std::string id = larder::checkpoint(a, "a").id;
  larder::checkout_stats st;
  larder::status s = larder::checkout(b, id, &st);
  EXPECT_TRUE(s.is(larder::errc::invalid_argument)) << s.to_string();
  EXPECT_NE(s.message().find("not of"), std::string::npos) << s.message();
  EXPECT_TRUE(larder::checkout(b, "0123456789abcdef", &st).is(larder::errc::not_found));
  EXPECT_TRUE(larder::checkout(b, "no-such-branch", &st).is(larder::errc::not_found));
}

TEST(VersionsTest, ShmAndAnonymousHeapsNeedAStore) {
  larder::heap_options o;
  o.kind = larder::backing::anonymous;
  larder::heap h(o);
  larder::checkpoint_stats st;
  EXPECT_TRUE(larder::checkpoint(h, "x", &st).is(larder::errc::invalid_argument));
  EXPECT_EQ(larder::version_store_of(h), "");
}

TEST(VersionsTest, CheckpointInsideATransactionIsRefused) {
  temp_dir dir(true);
  larder::heap h(larder_test::file_options(dir.file("h")));
  larder::transaction tx(h);
  larder::checkpoint_stats st;
  EXPECT_TRUE(larder::checkpoint(h, "x", &st).is(larder::errc::invalid_argument));
}

TEST(VersionsTest, LogFollowsParentsAcrossProcesses) {
  temp_dir dir(true);
  std::string path = dir.file("h");
  std::string first, second;
  {
    larder::heap h(larder_test::file_options(path));
    *h.root<int>("n") = 1;
    first = larder::checkpoint(h, "one").id;
  }
  {
    larder::heap h(larder_test::file_options(path));
    *h.root<int>("n") = 2;
    second = larder::checkpoint(h, "two").id;
    EXPECT_EQ(larder::version_store_of(h), path + ".versions");
  }
  larder::version_store store;
  larder::throw_if_error(larder::version_store::open(path + ".versions", &store));
  std::vector<larder::version_info> log;
  larder::throw_if_error(store.log(false, &log));
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].id, second);
  EXPECT_EQ(log[0].parent, first);
  EXPECT_EQ(log[0].message, "two");
  EXPECT_EQ(log[0].refs, std::vector<std::string>{"heads/main"});
  EXPECT_NE(log[0].roots_and_pods.find("\"n\""), std::string::npos) << log[0].roots_and_pods;
  EXPECT_EQ(log[1].parent, "");
  // A checkout in a new process (no version current there) compares pages.
  larder::heap h(larder_test::file_options(path));
  larder::checkout_stats st = larder::checkout(h, first);
  EXPECT_GT(st.pages_compared, 0u);
  EXPECT_EQ(*static_cast<int*>(h.find_root("n")), 1);
  std::string head;
  larder::throw_if_error(store.head(&head));
  EXPECT_EQ(head, first);
}

}  // namespace
