// Lazy checkout (larder/versions.hpp, docs/versions.md "Lazy checkout"):
// pages loaded on first touch with the background loading off, so that
// they are still missing when the program reads, writes, runs a
// transaction, checkpoints and closes; a damaged chunk met by a lazy load;
// a file heap refused.
#include "runtime_test_util.hpp"

#include <larder/versions.hpp>

#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>
#include <vector>

namespace {

using larder_test::temp_dir;

constexpr std::size_t kBlocks = 48;
constexpr std::size_t kBlockSize = 64 << 10;

struct blocks {
  unsigned char* at[kBlocks];
};
using contents = std::vector<std::vector<unsigned char>>;

// Pages stay missing until touched (or the checkout is finished).
class no_prefetch {
 public:
  no_prefetch() { ::setenv("LARDER_LAZY_PREFETCH", "0", 1); }
  ~no_prefetch() { ::unsetenv("LARDER_LAZY_PREFETCH"); }
};

class lazy_heap {
 public:
  lazy_heap(larder::backing kind, const temp_dir& dir) : kind_(kind), store_(dir.file("store")) {
    if (kind == larder::backing::shm) name_ = larder_test::unique_shm_name("lazy");
    open();
    larder::throw_if_error(larder::use_version_store(heap_, store_));
  }
  ~lazy_heap() {
    (void)heap_.close();
    if (!name_.empty()) ::shm_unlink(name_.c_str());
  }
  void open() {
    larder::heap_options o;
    o.kind = kind_;
    o.name = name_;
    o.reserve = std::size_t{1} << 30;
    larder::throw_if_error(larder::heap::open(o, &heap_));
  }
  void reopen() {
    larder::throw_if_error(heap_.close());
    open();
  }
  larder::heap& get() { return heap_; }
  const std::string& store() const { return store_; }

 private:
  larder::backing kind_;
  std::string store_, name_;
  larder::heap heap_;
};

void fill_all(blocks* b, contents* model, std::mt19937_64& rng) {
  model->resize(kBlocks);
  for (std::size_t i = 0; i < kBlocks; ++i) {
    for (std::size_t k = 0; k < kBlockSize; ++k) b->at[i][k] = static_cast<unsigned char>(rng());
    (*model)[i].assign(b->at[i], b->at[i] + kBlockSize);
  }
}

// Two versions of kBlocks random blocks: `first` then every block rewritten
// in `second`; the heap is left at the second.
blocks* two_versions(larder::heap& h, contents* first, std::string* first_id, std::string* second_id) {
  auto* b = h.root<blocks>("blocks");
  for (auto& p : b->at) p = static_cast<unsigned char*>(h.allocate(kBlockSize));
  std::mt19937_64 rng(5);
  fill_all(b, first, rng);
  *first_id = larder::checkpoint(h, "first").id;
  contents second;
  fill_all(b, &second, rng);
  *second_id = larder::checkpoint(h, "second").id;
  return b;
}

class LazyCheckoutTest : public ::testing::TestWithParam<larder::backing> {
 protected:
  void SetUp() override {
    if (!larder_test::lazy_checkout_works(GetParam())) GTEST_SKIP() << "no uffd write-protect tracker here";
  }
};

TEST_P(LazyCheckoutTest, PagesLoadOnFirstTouchAndWritesInTheWindowReachTheNextCheckpoint) {
  no_prefetch quiet;
  temp_dir dir(true);
  lazy_heap lh(GetParam(), dir);
  larder::heap& h = lh.get();
  contents first;
  std::string first_id, second_id;
  two_versions(h, &first, &first_id, &second_id);

  larder::checkout_stats st = larder::checkout(h, first_id, {.lazy = true});
  EXPECT_GE(st.pages_lazy, kBlocks * kBlockSize / 4096);
  EXPECT_EQ(larder::lazy_checkout_progress(h).pages_pending, st.pages_lazy);
  auto* b = static_cast<blocks*>(h.find_root("blocks"));

  // A write to a page still missing: loaded, then written.
  b->at[3][100] ^= 0xff;
  first[3][100] ^= 0xff;
  // A transaction over pages still missing.
  {
    larder::transaction tx(h);
    tx.snapshot(b->at[7], 8192);
    for (std::size_t k = 0; k < 8192; ++k) b->at[7][k] = static_cast<unsigned char>(k);
  }
  for (std::size_t k = 0; k < 8192; ++k) first[7][k] = static_cast<unsigned char>(k);
  larder::lazy_checkout_state part = larder::lazy_checkout_progress(h);
  EXPECT_LT(part.pages_pending, st.pages_lazy);
  EXPECT_GT(part.pages_pending, 0u);
  EXPECT_EQ(part.pages_failed, 0u);

  // The checkpoint loads what is still missing first, and holds the writes.
  std::string third_id = larder::checkpoint(h, "third").id;
  EXPECT_EQ(larder::lazy_checkout_progress(h).pages_pending, 0u);
  larder::checkout(h, second_id);
  larder::checkout(h, third_id);
  b = static_cast<blocks*>(h.find_root("blocks"));
  for (std::size_t i = 0; i < kBlocks; ++i)
    ASSERT_EQ(std::memcmp(b->at[i], first[i].data(), kBlockSize), 0) << "block " << i;
}

TEST_P(LazyCheckoutTest, EveryByteEqualsTheVersionWhenTouchedInAnyOrder) {
  no_prefetch quiet;
  temp_dir dir(true);
  lazy_heap lh(GetParam(), dir);
  larder::heap& h = lh.get();
  contents first;
  std::string first_id, second_id;
  two_versions(h, &first, &first_id, &second_id);
  larder::checkout(h, first_id, {.lazy = true});
  auto* b = static_cast<blocks*>(h.find_root("blocks"));
  std::mt19937_64 rng(9);
  for (std::size_t n = 0; n < kBlocks; ++n) {
    std::size_t i = rng() % kBlocks;
    std::size_t at = rng() % kBlockSize;
    ASSERT_EQ(b->at[i][at], first[i][at]) << "block " << i << " byte " << at;
  }
  for (std::size_t i = 0; i < kBlocks; ++i)
    ASSERT_EQ(std::memcmp(b->at[i], first[i].data(), kBlockSize), 0) << "block " << i;
  EXPECT_TRUE(larder::finish_checkout(h).ok());
}

TEST_P(LazyCheckoutTest, CloseLoadsWhatIsStillMissing) {
  if (GetParam() != larder::backing::shm) GTEST_SKIP() << "an anonymous heap does not outlive its close";
  no_prefetch quiet;
  temp_dir dir(true);
  lazy_heap lh(GetParam(), dir);
  larder::heap& h = lh.get();
  contents first;
  std::string first_id, second_id;
  two_versions(h, &first, &first_id, &second_id);
  larder::checkout(h, first_id, {.lazy = true});
  lh.reopen();
  auto* b = static_cast<blocks*>(lh.get().find_root("blocks"));
  for (std::size_t i = 0; i < kBlocks; ++i)
    ASSERT_EQ(std::memcmp(b->at[i], first[i].data(), kBlockSize), 0) << "block " << i;
}

TEST_P(LazyCheckoutTest, DamagedChunkReadsAsZerosAndIsReported) {
  no_prefetch quiet;
  temp_dir dir(true);
  lazy_heap lh(GetParam(), dir);
  larder::heap& h = lh.get();
  auto* b = h.root<blocks>("blocks");
  for (auto& p : b->at) p = static_cast<unsigned char*>(h.allocate(kBlockSize));
  std::mt19937_64 rng(5);
  contents first, second;
  fill_all(b, &first, rng);
  std::string first_id = larder::checkpoint(h, "first").id;
  std::set<std::filesystem::path> first_packs;
  for (const auto& e : std::filesystem::directory_iterator(lh.store() + "/packs"))
    if (e.path().extension() == ".pack") first_packs.insert(e.path());
  ASSERT_FALSE(first_packs.empty());
  fill_all(b, &second, rng);
  larder::checkpoint(h, "second");
  // Damage the second half of the first version's data: one byte a page.
  for (const auto& pack : first_packs) {
    std::fstream f(pack, std::ios::in | std::ios::out | std::ios::binary);
    const auto size = static_cast<std::streamoff>(std::filesystem::file_size(pack));
    for (std::streamoff at = size / 2; at < size - 8192; at += 4096) {
      f.seekg(at);
      char c = 0;
      f.read(&c, 1);
      c = static_cast<char>(c ^ 0x5a);
      f.seekp(at);
      f.write(&c, 1);
    }
  }
  larder::checkout_stats st;
  ASSERT_TRUE(larder::checkout(h, first_id, {.lazy = true}, &st).ok());
  b = static_cast<blocks*>(h.find_root("blocks"));
  std::size_t zero_pages = 0;
  for (std::size_t i = 0; i < kBlocks; ++i) {
    for (std::size_t page = 0; page < kBlockSize / 4096; ++page) {
      const unsigned char* p = b->at[i] + page * 4096;
      if (std::memcmp(p, first[i].data() + page * 4096, 4096) == 0) continue;
      // Not the version's bytes: zeros, never a page of another version.
      EXPECT_TRUE(std::all_of(p, p + 4096, [](unsigned char c) { return c == 0; })) << "block " << i;
      ++zero_pages;
    }
  }
  EXPECT_GT(zero_pages, 0u);
  larder::lazy_checkout_state state = larder::lazy_checkout_progress(h);
  EXPECT_GE(state.pages_failed, zero_pages);
  EXPECT_NE(state.error.find("zeros"), std::string::npos) << state.error;
  larder::status finished = larder::finish_checkout(h);
  EXPECT_TRUE(finished.is_corruption()) << finished.to_string();
  larder::checkpoint_stats cst;
  EXPECT_TRUE(larder::checkpoint(h, "after damage", &cst).is(larder::errc::tx_aborted));
}

TEST_P(LazyCheckoutTest, VersionLargerThanTheHeapWhenTrackingBeganLoads) {
  if (GetParam() != larder::backing::shm) GTEST_SKIP() << "an anonymous heap does not outlive its close";
  no_prefetch quiet;
  temp_dir dir(true);
  lazy_heap lh(GetParam(), dir);
  larder::heap& h = lh.get();
  *h.root<int>("n") = 1;
  std::string small = larder::checkpoint(h, "small").id;
  // Segments of 4 MiB: these reach well past the small version's.
  constexpr std::size_t kBig = 24, kBigSize = 512 << 10;
  struct big_blocks {
    unsigned char* at[kBig];
  };
  auto* big = h.root<big_blocks>("big");
  std::mt19937_64 rng(11);
  contents model(kBig);
  for (std::size_t i = 0; i < kBig; ++i) {
    big->at[i] = static_cast<unsigned char*>(h.allocate(kBigSize));
    for (std::size_t k = 0; k < kBigSize; ++k) big->at[i][k] = static_cast<unsigned char>(rng());
    model[i].assign(big->at[i], big->at[i] + kBigSize);
  }
  std::string large = larder::checkpoint(h, "large").id;
  larder::checkout(h, small);
  // Tracking begins afresh at the small version's size.
  lh.reopen();
  larder::throw_if_error(larder::use_version_store(lh.get(), lh.store()));
  larder::checkout_stats st;
  larder::status s = larder::checkout(lh.get(), large, {.lazy = true}, &st);
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_GT(st.pages_lazy, 0u);
  auto* again = static_cast<big_blocks*>(lh.get().find_root("big"));
  ASSERT_NE(again, nullptr);
  for (std::size_t i = 0; i < kBig; ++i)
    ASSERT_EQ(std::memcmp(again->at[i], model[i].data(), kBigSize), 0) << "block " << i;
  EXPECT_TRUE(larder::finish_checkout(lh.get()).ok());
}

TEST_P(LazyCheckoutTest, ChildForkedInTheWindowFinishesWithoutWaiting) {
  no_prefetch quiet;
  temp_dir dir(true);
  lazy_heap lh(GetParam(), dir);
  larder::heap& h = lh.get();
  contents first;
  std::string first_id, second_id;
  two_versions(h, &first, &first_id, &second_id);
  larder::checkout_stats st;
  ASSERT_TRUE(larder::checkout(h, first_id, {.lazy = true}, &st).ok());
  ASSERT_GT(larder::lazy_checkout_progress(h).pages_pending, 0u);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::alarm(20);  // a wait for the parent's loader would end here
    const bool finished = larder::finish_checkout(h).ok();
    h.stop_tracking();
    ::_exit(finished ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "the child ended by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  auto* b = static_cast<blocks*>(h.find_root("blocks"));
  for (std::size_t i = 0; i < kBlocks; ++i)
    ASSERT_EQ(std::memcmp(b->at[i], first[i].data(), kBlockSize), 0) << "block " << i;
  EXPECT_TRUE(larder::finish_checkout(h).ok());
}

TEST_P(LazyCheckoutTest, ConcurrentFinishesMoveHeadOnceBesideProgressQueries) {
  no_prefetch quiet;
  temp_dir dir(true);
  lazy_heap lh(GetParam(), dir);
  larder::heap& h = lh.get();
  contents first;
  std::string first_id, second_id;
  two_versions(h, &first, &first_id, &second_id);
  larder::checkout_stats st;
  ASSERT_TRUE(larder::checkout(h, first_id, {.lazy = true}, &st).ok());
  std::atomic<bool> finished{false};
  std::thread poll([&] {
    while (!finished.load()) (void)larder::lazy_checkout_progress(h);
  });
  larder::status a, b;
  std::thread one([&] { a = larder::finish_checkout(h); });
  std::thread two([&] { b = larder::finish_checkout(h); });
  one.join();
  two.join();
  finished = true;
  poll.join();
  EXPECT_TRUE(a.ok()) << a.to_string();
  EXPECT_TRUE(b.ok()) << b.to_string();
  EXPECT_EQ(larder::lazy_checkout_progress(h).pages_pending, 0u);
  larder::version_store store;
  larder::throw_if_error(larder::version_store::open(lh.store(), &store));
  std::string head;
  larder::throw_if_error(store.head(&head));
  EXPECT_EQ(head, first_id);
}

TEST_P(LazyCheckoutTest, PagesLoadedLazilyReachTheProgramsCollect) {
  no_prefetch quiet;
  temp_dir dir(true);
  lazy_heap lh(GetParam(), dir);
  larder::heap& h = lh.get();
  larder::throw_if_error(h.start_tracking(larder::tracker_backend::uffd_async));
  contents first;
  std::string first_id, second_id;
  blocks* b = two_versions(h, &first, &first_id, &second_id);
  larder::dirty_set dirty;
  larder::throw_if_error(h.collect_dirty(&dirty));
  larder::checkout_stats st;
  ASSERT_TRUE(larder::checkout(h, first_id, {.lazy = true}, &st).ok());
  ASSERT_GT(st.pages_lazy, 0u);
  ASSERT_TRUE(larder::finish_checkout(h).ok());
  larder::throw_if_error(h.collect_dirty(&dirty));
  for (std::size_t i = 0; i < kBlocks; ++i)
    for (std::size_t at = 0; at < kBlockSize; at += 4096)
      ASSERT_TRUE(dirty.contains(b->at[i] + at)) << "block " << i << " page " << at / 4096;
}

INSTANTIATE_TEST_SUITE_P(Backings, LazyCheckoutTest,
                         ::testing::Values(larder::backing::shm, larder::backing::anonymous),
                         [](const auto& info) { return info.param == larder::backing::shm ? "shm" : "anonymous"; });

// Unprivileged, the tracker's userfaultfd takes user-mode faults only: a
// lazy checkout is refused before anything changes.
TEST(LazyCheckoutRefusal, UserModeOnlyDescriptorIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to become an unprivileged user";
  std::ifstream sysctl("/proc/sys/vm/unprivileged_userfaultfd");
  int unprivileged = 1;
  if (!(sysctl >> unprivileged) || unprivileged != 0) GTEST_SKIP() << "unprivileged processes get a full userfaultfd";
  if (!larder_test::lazy_checkout_works(larder::backing::anonymous)) GTEST_SKIP() << "no uffd write-protect tracker here";
  temp_dir dir(true);
  const std::filesystem::path store = dir.file("store");
  std::filesystem::create_directory(store);
  std::filesystem::permissions(dir.file(""), std::filesystem::perms::all);
  std::filesystem::permissions(store, std::filesystem::perms::all);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Dumpable again, as a process started unprivileged is: /proc/self
    // stays its own.
    if (::setgid(65534) != 0 || ::setuid(65534) != 0 || ::prctl(PR_SET_DUMPABLE, 1) != 0) ::_exit(2);
    larder::heap_options o;
    o.kind = larder::backing::anonymous;
    o.reserve = std::size_t{1} << 28;
    larder::heap h;
    if (!larder::heap::open(o, &h).ok() || !larder::use_version_store(h, store.string()).ok()) ::_exit(3);
    *h.root<int>("n") = 1;
    larder::checkpoint_stats cst;
    larder::status s = larder::checkpoint(h, "one", &cst);
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.to_string().c_str());
      ::_exit(4);
    }
    *static_cast<int*>(h.find_root("n")) = 2;
    larder::checkout_stats st;
    s = larder::checkout(h, cst.id, {.lazy = true}, &st);
    const bool refused = s.is(larder::errc::unsupported) && s.message().find("user-mode") != std::string::npos &&
                         *static_cast<int*>(h.find_root("n")) == 2;
    if (!refused) std::fprintf(stderr, "%s\n", s.to_string().c_str());
    ::_exit(refused ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(LazyCheckoutRefusal, FileHeapIsRefusedAndLeftAsItWas) {
  temp_dir dir(true);
  larder::heap h(larder_test::file_options(dir.file("h")));
  *h.root<int>("n") = 1;
  std::string one = larder::checkpoint(h, "one").id;
  *static_cast<int*>(h.find_root("n")) = 2;
  larder::checkout_stats st;
  larder::status s = larder::checkout(h, one, {.lazy = true}, &st);
  EXPECT_TRUE(s.is(larder::errc::unsupported)) << s.to_string();
  EXPECT_NE(s.message().find("eagerly"), std::string::npos) << s.message();
  EXPECT_EQ(*static_cast<int*>(h.find_root("n")), 2);
  ASSERT_TRUE(larder::checkout(h, one, &st).ok());
  EXPECT_EQ(*static_cast<int*>(h.find_root("n")), 1);
}

}  // namespace
