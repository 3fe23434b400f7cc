// The cut of a checkpoint taken while other threads run (larder/versions.hpp):
// four threads make plain stores and others run transactions that keep an
// invariant, and every version, read straight from the store or cloned,
// holds it: whole transactions only, whatever was copied while they ran.
#include "runtime_test_util.hpp"

#include <larder/transaction.hpp>
#include <larder/versions.hpp>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <iostream>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace {

using larder_test::temp_dir;

constexpr std::size_t kAccounts = 16;
constexpr std::uint64_t kOpening = 1000;
constexpr std::size_t kWriters = 4;
constexpr std::size_t kPlainPages = 512;  // per writer: enough that a round of copies sees many written

// The root. Each account and each sequence number sits on a page of its
// own, so a version torn between pages would show.
struct bank {
  std::uint64_t* accounts[kAccounts];
  std::uint64_t* sequence_a;
  std::uint64_t* sequence_b;
  unsigned char* plain[kWriters];
};

std::uint64_t* own_page(larder::heap& h) {
  auto* p = static_cast<std::uint64_t*>(h.allocate(4096, 4096));
  if (p == nullptr) throw std::bad_alloc();
  *p = 0;
  return p;
}

// What a version must hold, whatever the threads did around its cut.
void expect_whole(const larder::heap& h, const std::string& what) {
  std::size_t size = 0;
  const auto* b = static_cast<const bank*>(h.find_root("bank", &size));
  ASSERT_NE(b, nullptr) << what;
  std::uint64_t sum = 0;
  for (std::uint64_t* a : b->accounts) sum += *a;
  EXPECT_EQ(sum, kAccounts * kOpening) << what << ": a transfer is half in the version";
  EXPECT_EQ(*b->sequence_a, *b->sequence_b) << what << ": a sequence number is half in the version";
}

class CheckpointCutTest : public ::testing::TestWithParam<larder::backing> {};

TEST_P(CheckpointCutTest, EveryVersionHoldsWholeTransactionsWhileThreadsWrite) {
  temp_dir dir;
  const std::string store = dir.file("store");
  larder::heap_options o;
  o.kind = GetParam();
  o.name = dir.file("heap");
  o.reserve = std::size_t{1} << 30;
  larder::heap h(o);
  larder::throw_if_error(larder::use_version_store(h, store));
  auto* b = h.root<bank>("bank");
  for (std::uint64_t*& a : b->accounts) {
    a = own_page(h);
    *a = kOpening;
  }
  b->sequence_a = own_page(h);
  b->sequence_b = own_page(h);
  for (unsigned char*& p : b->plain) {
    p = static_cast<unsigned char*>(h.allocate(kPlainPages * 4096, 4096));
    ASSERT_NE(p, nullptr);
  }

  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> transfers{0}, plain_stores{0};
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < kWriters; ++t) {
    threads.emplace_back([&, t] {
      unsigned char* mine = b->plain[t];
      for (unsigned value = 0; !stop.load(std::memory_order_relaxed); ++value) {
        const auto fill = static_cast<unsigned char>(1 + value % 255);  // never a zero page
        for (std::size_t page = 0; page < kPlainPages; ++page) std::memset(mine + page * 4096, fill, 4096);
        plain_stores.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  // Transactions do not isolate one another: the two threads that move
  // money between the same accounts take turns.
  std::mutex accounts_lock;
  for (unsigned seed = 1; seed <= 2; ++seed) {
    threads.emplace_back([&, seed] {
      std::mt19937 rng(seed);
      while (!stop.load(std::memory_order_relaxed)) {
        const std::size_t from = rng() % kAccounts, to = (from + 1 + rng() % (kAccounts - 1)) % kAccounts;
        std::lock_guard turn(accounts_lock);
        larder::transaction tx(h);
        tx.snapshot(b->accounts[from]);
        tx.snapshot(b->accounts[to]);
        const std::uint64_t amount = std::min<std::uint64_t>(*b->accounts[from], 1 + rng() % 50);
        *b->accounts[from] -= amount;
        std::this_thread::yield();
        *b->accounts[to] += amount;
        transfers.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  threads.emplace_back([&] {
    for (std::uint64_t n = 1; !stop.load(std::memory_order_relaxed); ++n) {
      larder::transaction tx(h);
      tx.snapshot(b->sequence_a);
      tx.snapshot(b->sequence_b);
      *b->sequence_a = n;
      std::this_thread::yield();
      *b->sequence_b = n;
    }
  });

  // The first checkpoint (every used page) and later ones, all while the
  // threads run.
  std::vector<std::string> ids;
  std::vector<std::uint64_t> held;
  for (int i = 0; i < 16; ++i) {
    larder::checkpoint_stats st = larder::checkpoint(h, "while running " + std::to_string(i));
    EXPECT_LE(st.held_ns, st.total_ns);
    EXPECT_GT(st.pages_in_version, kWriters * kPlainPages / 2);
    ids.push_back(st.id);
    held.push_back(st.held_ns);
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
  }
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_GT(transfers.load(), 0u);
  EXPECT_GT(plain_stores.load(), 0u);
  const std::string quiet = larder::checkpoint(h, "quiet").id;
  expect_whole(h, "the live heap");
  ASSERT_TRUE(h.close().ok());

  std::sort(held.begin(), held.end());
  std::cout << "held_ns over " << held.size() << " checkpoints: median " << held[held.size() / 2] << ", max "
            << held.back() << "\n";

  for (const std::string& id : ids) {
    larder::heap version;
    ASSERT_TRUE(larder::open_version(store, id, &version).ok()) << id;
    expect_whole(version, "version " + id);
    ASSERT_TRUE(version.close().ok());
  }
  // A clone of a version taken while the threads ran is a heap that holds it too.
  const std::string clone = dir.file("clone");
  ASSERT_TRUE(larder::clone_version(store, ids[ids.size() / 2], clone).ok());
  larder::heap_options c;
  c.name = clone;
  larder::heap cloned(c);
  expect_whole(cloned, "the clone");
}

INSTANTIATE_TEST_SUITE_P(Backings, CheckpointCutTest,
                         ::testing::Values(larder::backing::file, larder::backing::anonymous),
                         [](const ::testing::TestParamInfo<larder::backing>& info) {
                           return info.param == larder::backing::file ? "file" : "anonymous";
                         });

}  // namespace
