// Checkout straight from a remote (checkout_options::remote, docs/versions.md
// "Checking out from a remote"). A shm heap is checkpointed here and pushed
// to a directory remote; the other machine is the same heap with its first
// version restored into it and a store of its own. There an eager and a
// lazy checkout from the remote hold every byte of the version, and its
// store then holds the version, its ref and every chunk it names; touching
// 1 % of a lazy checkout's pages fetches about 1 % of the chunks; a remote
// damaged or emptied in the middle of a lazy checkout gives the failed-page
// error naming it, never a signal; a process killed in the middle of a
// lazy checkout leaves its store valid.
#include "runtime_test_util.hpp"

#include <larder/versions.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

namespace {

using larder_test::temp_dir;

constexpr std::size_t kBlocks = 64;
constexpr std::size_t kBlockSize = 256 << 10;
constexpr std::size_t kPagesPerBlock = kBlockSize / 4096;
constexpr std::size_t kDataPages = kBlocks * kPagesPerBlock;  // 16 MiB
constexpr std::size_t kDataChunks = kDataPages - kPagesPerBlock;  // block 1 repeats block 0

struct blocks {
  unsigned char* at[kBlocks];
};

// Pages stay missing until touched (or the checkout is finished).
class no_prefetch {
 public:
  no_prefetch() { ::setenv("LARDER_LAZY_PREFETCH", "0", 1); }
  ~no_prefetch() { ::unsetenv("LARDER_LAZY_PREFETCH"); }
};

class RemoteCheckoutTest : public ::testing::Test {
 protected:
  RemoteCheckoutTest() : dir_(true), shm_(larder_test::unique_shm_name("remote")) {}

  // Here: the blocks allocated (zero) as the first version, filled with
  // random bytes as the second, both pushed to the remote (heads/main: the
  // second). Then the other machine's heap: the first version restored.
  void SetUp() override {
    {
      larder::heap h(options());
      larder::throw_if_error(larder::use_version_store(h, here()));
      auto* b = h.root<blocks>("blocks");
      for (auto& p : b->at) p = static_cast<unsigned char*>(h.allocate(kBlockSize));
      empty_id_ = larder::checkpoint(h, "allocated").id;
      std::mt19937_64 rng(17);
      model_.resize(kBlocks * kBlockSize);
      for (std::size_t i = 0; i < kBlocks; ++i)
        for (std::size_t k = 0; k < kBlockSize; ++k) b->at[i][k] = model_[i * kBlockSize + k] = static_cast<unsigned char>(rng());
      // Block 1 repeats block 0: chunks that two pages name, fetched once.
      std::memcpy(b->at[1], b->at[0], kBlockSize);
      std::memcpy(model_.data() + kBlockSize, model_.data(), kBlockSize);
      full_id_ = larder::checkpoint(h, "filled").id;
      larder::throw_if_error(h.close());
    }
    larder::transfer_stats sent;
    larder::throw_if_error(larder::push_versions(here(), remote(), "", {.all = true}, &sent));
    larder::throw_if_error(larder::restore_version(larder::backing::shm, shm_.name(), empty_id_, here()));
  }

  larder::heap_options options() const {
    larder::heap_options o;
    o.kind = larder::backing::shm;
    o.name = shm_.name();
    o.reserve = std::size_t{1} << 30;
    return o;
  }
  // The heap on the other machine, with its own store.
  larder::status open_there(larder::heap* h) const {
    if (larder::status s = larder::heap::open(options(), h); !s.ok()) return s;
    return larder::use_version_store(*h, there());
  }
  // Opens the heap here and checks "main" out lazily from the remote.
  larder::status lazy_checkout_there(larder::heap* h, larder::checkout_stats* st) const {
    if (larder::status s = open_there(h); !s.ok()) return s;
    return larder::checkout(*h, "main", {.lazy = true, .remote = remote()}, st);
  }
  std::string here() const { return dir_.file("here"); }
  std::string remote() const { return dir_.file("remote"); }
  std::string there() const { return dir_.file("there"); }

  void expect_version(const larder::heap& h) const {
    auto* b = static_cast<blocks*>(h.find_root("blocks"));
    ASSERT_NE(b, nullptr);
    for (std::size_t i = 0; i < kBlocks; ++i)
      ASSERT_EQ(std::memcmp(b->at[i], model_.data() + i * kBlockSize, kBlockSize), 0) << "block " << i;
  }
  // The other machine's store is valid (every version it lists has every
  // chunk it names), its heads/main is `main` ("": absent) and HEAD on it.
  void expect_store(const std::string& main) const {
    larder::version_store s;
    larder::throw_if_error(larder::version_store::open(there(), &s));
    larder::store_verify_report report;
    larder::throw_if_error(s.verify(&report));
    EXPECT_TRUE(report.clean()) << report.problems.front().file << ": " << report.problems.front().what;
    std::string id;
    larder::status resolved = s.resolve("main", &id);
    if (main.empty()) {
      EXPECT_TRUE(resolved.is(larder::errc::not_found)) << resolved.to_string();
      return;
    }
    ASSERT_TRUE(resolved.ok()) << resolved.to_string();
    EXPECT_EQ(id, main);
    std::string head;
    larder::throw_if_error(s.head(&head));
    EXPECT_EQ(head, "heads/main");
  }
  // Every pack of the remote damaged: `emptied` truncates it, else one
  // byte of each of its pages is flipped.
  void damage_remote(bool emptied) const {
    for (const auto& e : std::filesystem::directory_iterator(remote() + "/packs")) {
      if (e.path().extension() != ".pack") continue;
      if (emptied) {
        std::filesystem::resize_file(e.path(), 0);
        continue;
      }
      std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
      const auto size = static_cast<std::streamoff>(std::filesystem::file_size(e.path()));
      for (std::streamoff at = 64; at < size; at += 4096) {
        char c = 0;
        f.seekg(at);
        f.read(&c, 1);
        c = static_cast<char>(c ^ 0x5a);
        f.seekp(at);
        f.write(&c, 1);
      }
    }
  }

  temp_dir dir_;
  larder_test::shm_guard shm_;
  std::vector<unsigned char> model_;
  std::string empty_id_, full_id_;
};

TEST_F(RemoteCheckoutTest, EagerCheckoutHoldsTheVersionAndItsStoreGetsIt) {
  larder::heap h;
  larder::throw_if_error(open_there(&h));
  larder::checkout_stats st;
  larder::status s = larder::checkout(h, "main", {.remote = remote()}, &st);
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(st.id, full_id_);
  // The data pages differ; the allocator's are equal, put from the heap.
  EXPECT_GE(st.chunks_fetched, kDataChunks);
  EXPECT_LE(st.chunks_fetched, kDataChunks + kDataPages / 50);
  EXPECT_GE(st.bytes_fetched, kDataChunks * 4096);
  expect_version(h);
  expect_store(full_id_);
  // Again after a write: nothing is fetched, the store holds every chunk.
  std::memset(static_cast<blocks*>(h.find_root("blocks"))->at[5], 1, kBlockSize);
  ASSERT_TRUE(larder::checkout(h, "main", {.remote = remote()}, &st).ok());
  EXPECT_EQ(st.chunks_fetched, 0u);
  expect_version(h);
  // A checkpoint there names the version's chunks, and descends from it.
  static_cast<blocks*>(h.find_root("blocks"))->at[0][0] ^= 1;
  larder::checkpoint_stats cst;
  s = larder::checkpoint(h, "there", &cst);
  ASSERT_TRUE(s.ok()) << s.to_string();
  ASSERT_TRUE(h.close().ok());
  expect_store(cst.id);
  larder::version_store store;
  larder::throw_if_error(larder::version_store::open(there(), &store));
  std::vector<larder::version_info> log;
  larder::throw_if_error(store.log(false, &log));
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].parent, full_id_);
}

// A heap that holds the version already, in a process with no version
// current, compared by content: its data is not fetched, and a store that
// held none of its chunks gets them from the heap's own pages.
TEST_F(RemoteCheckoutTest, PagesEqualToTheVersionsAreStoredFromTheHeapNotFetched) {
  {
    larder::heap h;
    larder::throw_if_error(open_there(&h));
    larder::checkout_stats st;
    ASSERT_TRUE(larder::checkout(h, "main", {.remote = remote()}, &st).ok());
    ASSERT_TRUE(h.close().ok());
  }
  larder::heap h;
  larder::throw_if_error(larder::heap::open(options(), &h));
  const std::string elsewhere = dir_.file("elsewhere");
  larder::throw_if_error(larder::use_version_store(h, elsewhere));
  larder::checkout_stats st;
  larder::status s = larder::checkout(h, "main", {.remote = remote()}, &st);
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_GE(st.pages_compared, kDataPages);
  // Only pages the open rewrote (process-local fields of segment headers)
  // differ: none of the data.
  EXPECT_LE(st.chunks_fetched, kDataPages / 100);
  expect_version(h);
  ASSERT_TRUE(h.close().ok());
  larder::version_store store;
  larder::throw_if_error(larder::version_store::open(elsewhere, &store));
  larder::store_verify_report report;
  larder::throw_if_error(store.verify(&report));
  EXPECT_TRUE(report.clean());
  EXPECT_EQ(report.versions_checked, 1u);
  EXPECT_GE(report.chunks_checked, kDataChunks);
}

TEST_F(RemoteCheckoutTest, LazyCheckoutHoldsTheVersionAndItsStoreGetsItOnceWhole) {
  if (!larder_test::lazy_checkout_works(larder::backing::shm)) GTEST_SKIP() << "no uffd write-protect tracker here";
  no_prefetch quiet;
  larder::heap h;
  larder::checkout_stats st;
  larder::status s = lazy_checkout_there(&h, &st);
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_GE(st.pages_lazy, kDataPages);
  EXPECT_LT(st.chunks_fetched, kDataPages / 10);  // the segment headers' and metadata's
  // Nothing published before every page is in.
  expect_store("");
  expect_version(h);
  ASSERT_TRUE(larder::finish_checkout(h).ok());
  const larder::lazy_checkout_state done = larder::lazy_checkout_progress(h);
  EXPECT_EQ(done.pages_pending, 0u);
  EXPECT_GE(done.chunks_fetched, kDataChunks);
  EXPECT_LE(done.chunks_fetched, kDataChunks + kDataPages / 50);
  EXPECT_GE(done.bytes_fetched, kDataChunks * 4096);
  expect_store(full_id_);
  ASSERT_TRUE(h.close().ok());
}

TEST_F(RemoteCheckoutTest, TouchingOnePercentOfTheHeapFetchesAboutOnePercentOfItsChunks) {
  if (!larder_test::lazy_checkout_works(larder::backing::shm)) GTEST_SKIP() << "no uffd write-protect tracker here";
  no_prefetch quiet;
  larder::heap h;
  larder::checkout_stats st;
  ASSERT_TRUE(lazy_checkout_there(&h, &st).ok());
  // 1 % of the data pages, in a run: an object read whole.
  constexpr std::size_t kTouched = kDataPages / 100;
  static_assert(kTouched <= kPagesPerBlock);
  const auto* b = static_cast<const blocks*>(h.find_root("blocks"));
  for (std::size_t p = 0; p < kTouched; ++p)
    ASSERT_EQ(b->at[20][p * 4096 + 7], model_[20 * kBlockSize + p * 4096 + 7]) << "page " << p;
  const std::uint64_t fetched = larder::lazy_checkout_progress(h).chunks_fetched - st.chunks_fetched;
  std::printf("touched %zu of %zu data pages: %llu chunks fetched on touch\n", kTouched, kDataPages,
              static_cast<unsigned long long>(fetched));
  // Each touch brings the 8 pages after it (the loader's fault-around).
  EXPECT_GE(fetched, kTouched);
  EXPECT_LE(fetched, kTouched + 16);
  ASSERT_TRUE(larder::finish_checkout(h).ok());
}

class RemoteDamagedMidCheckout : public RemoteCheckoutTest, public ::testing::WithParamInterface<bool> {};

TEST_P(RemoteDamagedMidCheckout, GivesTheFailedPageErrorNamingTheRemote) {
  if (!larder_test::lazy_checkout_works(larder::backing::shm)) GTEST_SKIP() << "no uffd write-protect tracker here";
  no_prefetch quiet;
  larder::heap h;
  larder::checkout_stats st;
  ASSERT_TRUE(lazy_checkout_there(&h, &st).ok());
  damage_remote(GetParam());
  const auto* b = static_cast<const blocks*>(h.find_root("blocks"));
  std::size_t zero_pages = 0;
  for (std::size_t p = 0; p < kPagesPerBlock; ++p) {
    const unsigned char* page = b->at[30] + p * 4096;
    zero_pages += std::all_of(page, page + 4096, [](unsigned char c) { return c == 0; });
  }
  EXPECT_EQ(zero_pages, kPagesPerBlock);
  larder::lazy_checkout_state state = larder::lazy_checkout_progress(h);
  EXPECT_GE(state.pages_failed, kPagesPerBlock);
  EXPECT_NE(state.error.find(remote()), std::string::npos) << state.error;
  larder::status finished = larder::finish_checkout(h);
  EXPECT_TRUE(finished.is_corruption()) << finished.to_string();
  EXPECT_NE(finished.message().find(remote()), std::string::npos) << finished.message();
  larder::checkpoint_stats cst;
  EXPECT_TRUE(larder::checkpoint(h, "after damage", &cst).is(larder::errc::tx_aborted));
  expect_store("");
}

INSTANTIATE_TEST_SUITE_P(Remote, RemoteDamagedMidCheckout, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Emptied" : "Damaged"; });

TEST_F(RemoteCheckoutTest, KilledMidLazyCheckoutLeavesItsStoreValid) {
  if (!larder_test::lazy_checkout_works(larder::backing::shm)) GTEST_SKIP() << "no uffd write-protect tracker here";
  std::mt19937_64 rng(23);
  int killed = 0;
  constexpr int kRounds = 6;
  for (int round = 0; round < kRounds; ++round) {
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    std::fflush(stdout);
    std::fflush(stderr);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      ::close(ready[0]);
      larder::heap h;
      larder::checkout_stats st;
      if (!lazy_checkout_there(&h, &st).ok()) ::_exit(2);
      char one = 1;
      if (::write(ready[1], &one, 1) != 1) ::_exit(3);
      // Touches every page while the loader fetches the rest behind it.
      const auto* b = static_cast<const blocks*>(h.find_root("blocks"));
      unsigned sum = 0;
      for (std::size_t i = kBlocks; i-- > 0;)
        for (std::size_t k = 0; k < kBlockSize; k += 4096) sum += b->at[i][k];
      ::_exit(larder::finish_checkout(h).ok() && sum != 0 ? 0 : 4);
    }
    ::close(ready[1]);
    char got = 0;
    const bool started = ::read(ready[0], &got, 1) == 1;
    ::close(ready[0]);
    // Up to 20 ms, then up to 40, ...: early in the loading, up to its end.
    if (started) ::usleep(static_cast<useconds_t>(rng() % (20000 * (round + 1))));
    ASSERT_GT(child, 0);
    ::kill(child, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(started) << "the child's checkout failed: " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    killed += WIFSIGNALED(status);
    larder::version_store s;
    larder::throw_if_error(larder::version_store::open(there(), &s));
    larder::store_verify_report report;
    larder::throw_if_error(s.verify(&report));
    EXPECT_TRUE(report.clean()) << "round " << round << ": " << report.problems.front().file << ": "
                                << report.problems.front().what;
  }
  std::printf("%d of %d children killed before they finished\n", killed, kRounds);
  // The heap, part old and part new as a killed checkout of a shm heap
  // leaves it, is checked out again from the remote.
  larder::heap h;
  larder::throw_if_error(open_there(&h));
  larder::checkout_stats st;
  larder::status s = larder::checkout(h, "main", {.remote = remote()}, &st);
  ASSERT_TRUE(s.ok()) << s.to_string();
  expect_version(h);
  ASSERT_TRUE(h.close().ok());
  expect_store(full_id_);
}

TEST_F(RemoteCheckoutTest, ErrorsComeBeforeAnythingChanges) {
  larder::heap h;
  larder::throw_if_error(open_there(&h));
  auto first_byte = [&] { return static_cast<blocks*>(h.find_root("blocks"))->at[0][0]; };
  static_cast<blocks*>(h.find_root("blocks"))->at[0][0] = 42;
  larder::checkout_stats st;
  EXPECT_TRUE(larder::checkout(h, "main", {.remote = dir_.file("nothing")}, &st).is(larder::errc::not_a_heap));
  EXPECT_TRUE(larder::checkout(h, "nosuch", {.remote = remote()}, &st).is(larder::errc::not_found));
  larder::checkout_options some_pods{.pods = {1}, .remote = remote()};
  EXPECT_TRUE(larder::checkout(h, "main", some_pods, &st).is(larder::errc::invalid_argument));
  // heads/main there names a version of its own, which the remote's does
  // not descend from: it is not moved.
  const std::string local_id = larder::checkpoint(h, "there").id;
  larder::status refused = larder::checkout(h, "main", {.remote = remote()}, &st);
  EXPECT_TRUE(refused.is(larder::errc::already_exists)) << refused.to_string();
  EXPECT_EQ(first_byte(), 42);
  // A damaged chunk: named with its remote.
  damage_remote(false);
  larder::status damaged = larder::checkout(h, full_id_.substr(0, 8), {.remote = remote()}, &st);
  EXPECT_TRUE(damaged.is_corruption()) << damaged.to_string();
  EXPECT_NE(damaged.message().find(remote()), std::string::npos) << damaged.message();
  EXPECT_EQ(first_byte(), 42);
  ASSERT_TRUE(h.close().ok());
  expect_store(local_id);
}

}  // namespace
