// Transactions of several threads at once on one heap (docs/transactions.md,
// "Concurrent transactions"): random transactions on disjoint data with
// random aborts, every committed value checked after reopening; two
// transactions open at once in two threads; two in flight when the process
// dies, both rolled back; page capture in a nested transaction needs the
// heap alone. Each on a file heap, a shm heap and a file heap with shared
// writers (where a client's threads take a lane each).
#include "runtime_test_util.hpp"

#include <larder/check.hpp>
#include <larder/transaction.hpp>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

namespace {

using larder_test::run_in_child;
using larder_test::shm_guard;
using larder_test::temp_dir;
using larder_test::unique_shm_name;

constexpr std::size_t kThreads = 4;
constexpr std::size_t kValues = 8;

struct node {
  std::uint64_t value;
  node* next;
};

// What one thread owns; no other thread touches it.
struct alignas(64) lot {
  std::uint64_t values[kValues];
  node* head;
  std::uint64_t count;
};

struct board {
  lot lots[kThreads];
};

enum class setup { file, shm, file_shared_writers };

std::string setup_name(const testing::TestParamInfo<setup>& info) {
  switch (info.param) {
    case setup::file: return "file";
    case setup::shm: return "shm";
    case setup::file_shared_writers: return "file_shared_writers";
  }
  return "unknown";
}

struct rollback : std::runtime_error {
  rollback() : std::runtime_error("rolled back on purpose") {}
};

// One thread's view of its lot as committed transactions left it.
struct lot_model {
  std::uint64_t values[kValues] = {};
  std::vector<std::uint64_t> list;  // head first
};

class ConcurrentTransactions : public testing::TestWithParam<setup> {
 protected:
  ConcurrentTransactions() : dir_(true), shm_(unique_shm_name("ctx")) {}

  larder::heap_options options() const {
    larder::heap_options o;
    o.reserve = std::size_t{1} << 30;
    if (GetParam() == setup::shm) {
      o.kind = larder::backing::shm;
      o.name = shm_.name();
    } else {
      o.kind = larder::backing::file;
      o.name = dir_.file("h");
      o.shared_writers = GetParam() == setup::file_shared_writers;
    }
    return o;
  }

  static std::size_t bytes_in_use(const larder::heap& h) {
    std::size_t total = 0;
    for (const auto& p : h.pods()) total += p.bytes_in_use;
    return total;
  }

  // `larder check` of the closed heap.
  void expect_checks_clean() const {
    larder::heap_options o = options();
    larder::check_report report;
    ASSERT_TRUE(larder::check_heap(o.kind, o.name, false, &report).ok());
    EXPECT_TRUE(report.clean()) << report.problems.front();
  }

  static void expect_lot(const lot& l, const lot_model& m, std::size_t t) {
    for (std::size_t i = 0; i < kValues; ++i) EXPECT_EQ(l.values[i], m.values[i]) << "thread " << t << " value " << i;
    EXPECT_EQ(l.count, m.list.size()) << "thread " << t;
    std::size_t at = 0;
    for (const node* n = l.head; n != nullptr && at <= m.list.size(); n = n->next, ++at) {
      if (at < m.list.size()) {
        EXPECT_EQ(n->value, m.list[at]) << "thread " << t << " node " << at;
      }
    }
    EXPECT_EQ(at, m.list.size()) << "thread " << t << ": list length";
  }

  temp_dir dir_;
  shm_guard shm_;
};

// One random transaction of thread t on its lot: a few values snapshotted
// and rewritten, sometimes a node allocated and linked or the head freed,
// and a quarter of them rolled back (abort, or an exception).
void random_transaction(larder::heap& h, lot& l, lot_model& m, std::mt19937_64& rng) {
  lot_model next = m;
  int ending = static_cast<int>(rng() % 8);  // 0: abort, 1: exception, else commit
  try {
    larder::transaction tx(h);
    std::size_t writes = 1 + rng() % 4;
    for (std::size_t k = 0; k < writes; ++k) {
      std::size_t i = rng() % kValues;
      tx.snapshot(&l.values[i]);
      l.values[i] = next.values[i] = rng();
    }
    std::uint64_t what = rng() % 10;
    if (what < 3) {
      std::uint64_t v = rng();
      tx.snapshot(&l.head);
      tx.snapshot(&l.count);
      l.head = tx.make<node>(node{v, l.head});
      ++l.count;
      next.list.insert(next.list.begin(), v);
    } else if (what < 5 && l.head != nullptr) {
      tx.snapshot(&l.head);
      tx.snapshot(&l.count);
      node* gone = l.head;
      l.head = gone->next;
      --l.count;
      tx.free(gone);
      next.list.erase(next.list.begin());
    }
    if (ending == 0) {
      tx.abort();
      return;
    }
    if (ending == 1) throw rollback();
  } catch (const rollback&) {
    return;
  }
  m = std::move(next);
}

TEST_P(ConcurrentTransactions, RandomTransactionsOnDisjointDataSurviveReopen) {
  constexpr int kPerThread = 400;
  std::vector<lot_model> models(kThreads);
  {
    larder::heap h(options());
    board* b = h.root<board>("board");
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (std::size_t t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        std::mt19937_64 rng(0x5eed + t);
        try {
          for (int i = 0; i < kPerThread; ++i) random_transaction(h, b->lots[t], models[t], rng);
        } catch (const std::exception& e) {
          ADD_FAILURE() << "thread " << t << ": " << e.what();
          failures.fetch_add(1);
        }
      });
    }
    for (auto& th : threads) th.join();
    ASSERT_EQ(failures.load(), 0);
    for (std::size_t t = 0; t < kThreads; ++t) expect_lot(b->lots[t], models[t], t);
  }
  {
    larder::heap h(options());
    board* b = h.root<board>("board");
    for (std::size_t t = 0; t < kThreads; ++t) expect_lot(b->lots[t], models[t], t);
  }
  expect_checks_clean();
}

// Thread A keeps a transaction open while thread B runs a whole one: B
// does not wait for A (each has a lane of its own).
TEST_P(ConcurrentTransactions, TwoThreadsHaveTransactionsOpenAtOnce) {
  {
    larder::heap h(options());
    board* b = h.root<board>("board");
    std::promise<void> a_open, b_done;
    std::thread a([&] {
      larder::transaction tx(h);
      tx.snapshot(&b->lots[0].values[0]);
      b->lots[0].values[0] = 11;
      a_open.set_value();
      // Bounded: if B could not commit, A still ends and the test fails.
      (void)b_done.get_future().wait_for(std::chrono::seconds(20));
    });
    a_open.get_future().wait();
    auto b_commit = std::async(std::launch::async, [&] {
      larder::transaction tx(h);
      tx.snapshot(&b->lots[1].values[0]);
      b->lots[1].values[0] = 22;
      larder::throw_if_error(tx.commit());
    });
    EXPECT_EQ(b_commit.wait_for(std::chrono::seconds(10)), std::future_status::ready)
        << "a transaction waited for another thread's to end";
    b_done.set_value();
    a.join();
    b_commit.get();
  }
  larder::heap h(options());
  board* b = h.root<board>("board");
  EXPECT_EQ(b->lots[0].values[0], 11u);
  EXPECT_EQ(b->lots[1].values[0], 22u);
}

// The process dies with two transactions in flight on two lanes (one of
// them allocating) and one that committed meanwhile: reopening rolls back
// both in-flight ones, and keeps the committed one and what it allocated.
TEST_P(ConcurrentTransactions, ProcessDeathWithTwoTransactionsInFlightRollsBothBack) {
  std::size_t before = 0;
  {
    larder::heap h(options());
    board* b = h.root<board>("board");
    larder::transaction tx(h);
    for (std::size_t t = 0; t < kThreads; ++t) {
      tx.snapshot(&b->lots[t]);
      for (std::size_t i = 0; i < kValues; ++i) b->lots[t].values[i] = t * 100 + i;
    }
  }
  {
    larder::heap h(options());
    before = bytes_in_use(h);
  }
  int code = run_in_child([&] {
    larder::heap h(options());
    board* b = h.root<board>("board");
    std::atomic<int> in_flight{0};
    auto pending = [&](std::size_t t, bool allocate) {
      larder::transaction tx(h);
      tx.snapshot(&b->lots[t]);
      for (std::size_t i = 0; i < kValues; ++i) b->lots[t].values[i] = ~std::uint64_t{0};
      if (allocate)
        for (int i = 0; i < 100; ++i) b->lots[t].head = tx.make<node>(node{std::uint64_t(i), b->lots[t].head});
      in_flight.fetch_add(1);
      for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));  // until the process dies
    };
    // An allocating transaction holds the allocator until it ends: the
    // one that commits allocates before the other in-flight one begins.
    std::thread second(pending, 1, false);
    while (in_flight.load() < 1) std::this_thread::yield();
    {
      larder::transaction tx(h);
      tx.snapshot(&b->lots[2]);
      b->lots[2].values[0] = 7;
      b->lots[2].head = tx.make<node>(node{7, nullptr});
    }
    std::thread first(pending, 0, true);
    while (in_flight.load() < 2) std::this_thread::yield();
    ::_exit(0);  // with two transactions open
  });
  ASSERT_EQ(code, 0);
  {
    larder::heap h(options());
    board* b = h.root<board>("board");
    for (std::size_t t = 0; t < 2; ++t) {
      for (std::size_t i = 0; i < kValues; ++i) EXPECT_EQ(b->lots[t].values[i], t * 100 + i);
      EXPECT_EQ(b->lots[t].head, nullptr);
    }
    EXPECT_EQ(b->lots[2].values[0], 7u);
    ASSERT_NE(b->lots[2].head, nullptr);
    EXPECT_EQ(b->lots[2].head->value, 7u);
    EXPECT_GT(bytes_in_use(h), before);
  }
  expect_checks_clean();
}

// Page capture needs the heap to itself: a nested transaction cannot start
// it while another thread has a transaction open, and can once it is alone.
TEST_P(ConcurrentTransactions, NestedPageCaptureNeedsTheHeapAlone) {
  if (GetParam() == setup::file_shared_writers) GTEST_SKIP() << "page capture needs a heap with one writer";
  larder::heap h(options());
  board* b = h.root<board>("board");
  std::promise<void> other_open, release_other;
  std::thread other([&] {
    larder::transaction tx(h);
    tx.snapshot(&b->lots[1].values[0]);
    b->lots[1].values[0] = 5;
    other_open.set_value();
    release_other.get_future().wait();
  });
  other_open.get_future().wait();
  {
    larder::transaction outer(h);
    EXPECT_THROW(larder::transaction inner(h, larder::capture::pages), larder::error);
    outer.abort();
  }
  release_other.set_value();
  other.join();
  {
    larder::transaction outer(h);
    larder::transaction inner(h, larder::capture::pages);
    b->lots[0].values[0] = 9;  // captured, no snapshot
  }
  EXPECT_EQ(b->lots[0].values[0], 9u);
  EXPECT_EQ(b->lots[1].values[0], 5u);
}

INSTANTIATE_TEST_SUITE_P(Setups, ConcurrentTransactions,
                         testing::Values(setup::file, setup::shm, setup::file_shared_writers), setup_name);

}  // namespace
