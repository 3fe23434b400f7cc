// Transactions: commit, rollback on exception and abort, flat nesting,
// allocation and free inside a transaction, page capture, and recovery of
// a transaction cut short by the process dying (a forked child that exits
// in the middle, with the heap mapped shared: what a kill -9 leaves).
#include "runtime_test_util.hpp"

#include <larder/transaction.hpp>

#include <unistd.h>

#include <cstring>
#include <functional>
#include <map>
#include <stdexcept>
#include <vector>

namespace {

using larder_test::run_in_child;
using larder_test::temp_dir;

struct account {
  std::uint64_t balance;
  std::uint64_t history[7];
};

struct node {
  std::uint64_t value;
  node* next;
};

struct list_root {
  node* head;
  std::uint64_t count;
};

larder::heap_options file_options(const std::string& path) {
  larder::heap_options o;
  o.kind = larder::backing::file;
  o.name = path;
  o.reserve = std::size_t{1} << 30;
  return o;
}

std::size_t bytes_in_use(const larder::heap& h) {
  std::size_t total = 0;
  for (const auto& p : h.pods()) total += p.bytes_in_use;
  return total;
}

TEST(Transaction, CommittedChangesSurviveReopen) {
  temp_dir dir;
  {
    larder::heap h(file_options(dir.file("h")));
    auto* a = h.root<account>("account");
    larder::transaction tx(h);
    tx.snapshot(a);
    a->balance = 100;
    a->history[0] = 7;
  }
  larder::heap h(file_options(dir.file("h")));
  auto* a = h.root<account>("account");
  EXPECT_EQ(a->balance, 100u);
  EXPECT_EQ(a->history[0], 7u);
}

TEST(Transaction, ExceptionRollsBackInPlaceWrites) {
  temp_dir dir;
  larder::heap h(file_options(dir.file("h")));
  auto* a = h.root<account>("account");
  a->balance = 5;
  try {
    larder::transaction tx(h);
    tx.snapshot(&a->balance, sizeof(a->balance));
    a->balance = 999;
    throw std::runtime_error("stop");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(a->balance, 5u);
  // The heap takes new transactions afterwards.
  {
    larder::transaction tx(h);
    tx.snapshot(&a->balance, sizeof(a->balance));
    a->balance = 6;
  }
  EXPECT_EQ(a->balance, 6u);
}

TEST(Transaction, AbortFreesAllocationsAndRestoresSnapshots) {
  temp_dir dir;
  larder::heap h(file_options(dir.file("h")));
  auto* root = h.root<list_root>("list");
  std::size_t before = bytes_in_use(h);
  {
    larder::transaction tx(h);
    tx.snapshot(root);
    for (int i = 0; i < 100; ++i) {
      node* n = tx.make<node>(node{static_cast<std::uint64_t>(i), root->head});
      root->head = n;
      ++root->count;
    }
    tx.abort();
    EXPECT_THROW(tx.snapshot(root), larder::error);
  }
  EXPECT_EQ(root->head, nullptr);
  EXPECT_EQ(root->count, 0u);
  EXPECT_EQ(bytes_in_use(h), before);
}

TEST(Transaction, NestingIsFlatAndAnInnerAbortEndsTheWhole) {
  temp_dir dir;
  larder::heap h(file_options(dir.file("h")));
  auto* a = h.root<account>("account");
  {
    larder::transaction outer(h);
    outer.snapshot(a);
    a->balance = 1;
    {
      larder::transaction inner(h);
      EXPECT_EQ(inner.depth(), 2u);
      EXPECT_EQ(larder::current_transaction(h), &outer);
      a->history[1] = 2;  // covered by the outer snapshot
    }
    EXPECT_EQ(outer.depth(), 1u);
  }
  EXPECT_EQ(a->balance, 1u);
  {
    larder::transaction outer(h);
    outer.snapshot(a);
    a->balance = 50;
    {
      larder::transaction inner(h);
      inner.abort();
    }
    EXPECT_EQ(a->balance, 1u);
    EXPECT_THROW(outer.snapshot(a), larder::error);
  }
  EXPECT_EQ(a->balance, 1u);
  EXPECT_EQ(larder::current_transaction(h), nullptr);
}

TEST(Transaction, FreeHappensAtCommitOnly) {
  temp_dir dir;
  larder::heap h(file_options(dir.file("h")));
  auto* root = h.root<list_root>("list");
  {
    larder::transaction tx(h);
    tx.snapshot(root);
    root->head = tx.make<node>(node{42, nullptr});
  }
  std::size_t with_node = bytes_in_use(h);
  node* n = root->head;
  {
    larder::transaction tx(h);
    tx.snapshot(root);
    root->head = nullptr;
    tx.free(n);
    EXPECT_EQ(n->value, 42u);  // still there until commit
    tx.abort();
  }
  EXPECT_EQ(root->head, n);
  EXPECT_EQ(n->value, 42u);
  EXPECT_EQ(bytes_in_use(h), with_node);
  {
    larder::transaction tx(h);
    tx.snapshot(root);
    root->head = nullptr;
    tx.free(n);
  }
  EXPECT_LT(bytes_in_use(h), with_node);
}

TEST(Transaction, ProcessDeathMidTransactionIsRolledBackOnOpen) {
  temp_dir dir;
  std::string path = dir.file("h");
  std::size_t before = 0;
  {
    larder::heap h(file_options(path));
    auto* root = h.root<list_root>("list");
    larder::transaction tx(h);
    tx.snapshot(root);
    root->head = tx.make<node>(node{1, nullptr});
    root->count = 1;
  }
  {
    larder::heap h(file_options(path));
    before = bytes_in_use(h);
  }
  int code = run_in_child([&] {
    larder::heap h(file_options(path));
    auto* root = h.root<list_root>("list");
    larder::transaction tx(h);
    tx.snapshot(root);
    for (int i = 0; i < 1000; ++i) {
      root->head = tx.make<node>(node{static_cast<std::uint64_t>(i + 2), root->head});
      ++root->count;
    }
    tx.free(root->head->next);
    ::_exit(0);  // dies with the transaction open
  });
  ASSERT_EQ(code, 0);
  larder::heap h(file_options(path));
  auto* root = h.root<list_root>("list");
  ASSERT_NE(root->head, nullptr);
  EXPECT_EQ(root->count, 1u);
  EXPECT_EQ(root->head->value, 1u);
  EXPECT_EQ(root->head->next, nullptr);
  EXPECT_EQ(bytes_in_use(h), before);
  // And the heap goes on: a new transaction commits.
  {
    larder::transaction tx(h);
    tx.snapshot(root);
    root->count = 2;
  }
  EXPECT_EQ(root->count, 2u);
}

TEST(Transaction, PageCaptureMakesUnmodifiedCodeFailureAtomic) {
  temp_dir dir;
  std::string path = dir.file("h");
  {
    larder::heap h(file_options(path));
    auto* a = h.root<account>("account");
    larder::transaction tx(h);
    tx.snapshot(a);
    a->balance = 10;
  }
  // Abort restores what plain stores changed.
  {
    larder::heap h(file_options(path));
    auto* a = h.root<account>("account");
    {
      larder::transaction tx(h, larder::capture::pages);
      a->balance = 20;
      std::memset(a->history, 0xAB, sizeof(a->history));
      tx.abort();
    }
    EXPECT_EQ(a->balance, 10u);
    EXPECT_EQ(a->history[3], 0u);
    {
      larder::transaction tx(h, larder::capture::pages);
      a->balance = 30;
    }
    EXPECT_EQ(a->balance, 30u);
  }
  // A process dying in the middle loses the uncommitted stores.
  int code = run_in_child([&] {
    larder::heap h(file_options(path));
    auto* a = h.root<account>("account");
    larder::transaction tx(h, larder::capture::pages);
    a->balance = 40;
    a->history[6] = 40;
    ::_exit(0);
  });
  ASSERT_EQ(code, 0);
  larder::heap h(file_options(path));
  auto* a = h.root<account>("account");
  EXPECT_EQ(a->balance, 30u);
  EXPECT_EQ(a->history[6], 0u);
}

// A std::map built with larder::allocator inside a capturing transaction:
// its rebalancing stores are captured, its nodes are the transaction's.
using int_map = std::map<int, int, std::less<>, larder::allocator<std::pair<const int, int>>>;

TEST(Transaction, PageCaptureCoversContainersThatAllocate) {
  temp_dir dir;
  std::string path = dir.file("h");
  {
    larder::heap h(file_options(path));
    auto* m = h.root<int_map>("map");
    larder::transaction tx(h, larder::capture::pages);
    for (int i = 0; i < 100; ++i) (*m)[i] = i;
  }
  larder::heap h(file_options(path));
  auto* m = h.root<int_map>("map");
  ASSERT_EQ(m->size(), 100u);
  std::size_t before = bytes_in_use(h);
  {
    larder::transaction tx(h, larder::capture::pages);
    for (int i = 100; i < 3000; ++i) (*m)[i] = i;
    m->erase(5);
    tx.abort();
  }
  EXPECT_EQ(m->size(), 100u);
  EXPECT_EQ(m->count(5), 1u);
  EXPECT_EQ(bytes_in_use(h), before);
  // The allocator is sound afterwards: more inserts, then a clean reopen.
  {
    larder::transaction tx(h, larder::capture::pages);
    for (int i = 100; i < 200; ++i) (*m)[i] = -i;
  }
  int sum = 0;
  for (const auto& [k, v] : *m) sum += v;
  EXPECT_EQ(m->size(), 200u);
  EXPECT_EQ(sum, 4950 - (19900 - 4950));
}

TEST(Transaction, PageCaptureCrashLeaksNothing) {
  temp_dir dir;
  std::string path = dir.file("h");
  std::size_t before = 0;
  {
    larder::heap h(file_options(path));
    auto* m = h.root<int_map>("map");
    larder::transaction tx(h, larder::capture::pages);
    for (int i = 0; i < 100; ++i) (*m)[i] = i;
  }
  {
    larder::heap h(file_options(path));
    before = bytes_in_use(h);
  }
  int code = run_in_child([&] {
    larder::heap c(file_options(path));
    auto* cm = c.root<int_map>("map");
    larder::transaction tx(c, larder::capture::pages);
    for (int i = 1000; i < 5000; ++i) (*cm)[i] = i;
    cm->erase(7);
    ::_exit(0);
  });
  ASSERT_EQ(code, 0);
  larder::heap h(file_options(path));
  auto* m = h.root<int_map>("map");
  EXPECT_EQ(m->size(), 100u);
  EXPECT_EQ(m->count(7), 1u);
  EXPECT_EQ(bytes_in_use(h), before);
}

TEST(Transaction, LargeSnapshotsGrowTheLane) {
  temp_dir dir;
  std::string path = dir.file("h");
  constexpr std::size_t kBytes = std::size_t{24} << 20;
  unsigned char* block = nullptr;
  {
    larder::heap h(file_options(path));
    block = static_cast<unsigned char*>(h.allocate(kBytes));
    ASSERT_NE(block, nullptr);
    std::memset(block, 1, kBytes);
    ASSERT_TRUE(h.set_root("block", block, kBytes).ok());
  }
  int code = run_in_child([&] {
    larder::heap h(file_options(path));
    auto* b = static_cast<unsigned char*>(h.find_root("block"));
    larder::transaction tx(h);
    tx.snapshot(b, kBytes);
    std::memset(b, 2, kBytes);
    ::_exit(0);
  });
  ASSERT_EQ(code, 0);
  larder::heap h(file_options(path));
  auto* b = static_cast<unsigned char*>(h.find_root("block"));
  ASSERT_EQ(b, block);
  std::vector<unsigned char> expected(kBytes, 1);
  EXPECT_EQ(std::memcmp(b, expected.data(), kBytes), 0);
}

// The reader rolls the crashed transaction back in a private copy: it sees
// the committed state, and the file is left for the next writer.
TEST(Transaction, ReadOnlyOpenOfAHeapWithAPendingTransactionSeesTheCommittedState) {
  temp_dir dir;
  std::string path = dir.file("h");
  {
    larder::heap h(file_options(path));
    (void)h.root<account>("account");
  }
  int code = run_in_child([&] {
    larder::heap h(file_options(path));
    auto* a = h.root<account>("account");
    larder::transaction tx(h);
    tx.snapshot(a);
    a->balance = 77;
    ::_exit(0);
  });
  ASSERT_EQ(code, 0);
  larder::heap_options o = file_options(path);
  o.read_only = true;
  larder::heap h;
  larder::status s = larder::heap::open(o, &h);
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(h.root<account>("account")->balance, 0u);
  EXPECT_TRUE(h.close().ok());
  larder::heap w(file_options(path));
  EXPECT_EQ(w.root<account>("account")->balance, 0u);
}

// Allocations after a rollback never overlap each other or the log, even
// when the rolled-back transaction both claimed segments and grew the log.
TEST(Transaction, RollbackOfSegmentClaimsAndLogGrowthKeepsSegmentsApart) {
  temp_dir dir;
  std::string path = dir.file("h");
  constexpr std::size_t kBig = std::size_t{5} << 20;
  {
    larder::heap h(file_options(path));
    void* big = h.allocate(kBig);
    ASSERT_NE(big, nullptr);
    ASSERT_TRUE(h.set_root("big", big, kBig).ok());
  }
  int code = run_in_child([&] {
    larder::heap h(file_options(path));
    larder::transaction tx(h);
    ASSERT_NE(h.allocate(std::size_t{6} << 20), nullptr);  // claims segments
    tx.snapshot(h.find_root("big"), kBig);                  // grows the lane past them
    ::_exit(0);
  });
  ASSERT_EQ(code, 0);
  larder::heap h(file_options(path));
  std::vector<unsigned char*> blocks;
  for (int i = 0; i < 6; ++i) {
    auto* p = static_cast<unsigned char*>(h.allocate(std::size_t{3} << 20));
    ASSERT_NE(p, nullptr);
    std::memset(p, i + 1, std::size_t{3} << 20);
    blocks.push_back(p);
  }
  // A transaction with a large log after those allocations must not write
  // into them.
  {
    larder::transaction tx(h);
    tx.snapshot(h.find_root("big"), kBig);
  }
  for (int i = 0; i < 6; ++i)
    for (std::size_t at = 0; at < (std::size_t{3} << 20); at += 4096) ASSERT_EQ(blocks[i][at], i + 1) << i;
}

// Allocator writes inside a capturing transaction go to pages the capture
// leaves alone, so an abort cannot rewind them under the live allocator.
TEST(Transaction, AbortOfACapturingTransactionThatClaimedSegments) {
  temp_dir dir;
  larder::heap h(file_options(dir.file("h")));
  std::size_t before = bytes_in_use(h);
  {
    larder::transaction tx(h, larder::capture::pages);
    for (int i = 0; i < 60; ++i) ASSERT_NE(h.allocate(100000), nullptr);
    tx.abort();
  }
  EXPECT_EQ(bytes_in_use(h), before);
  auto* small = static_cast<unsigned char*>(h.allocate(100000));
  auto* large = static_cast<unsigned char*>(h.allocate(std::size_t{8} << 20));
  ASSERT_NE(small, nullptr);
  ASSERT_NE(large, nullptr);
  std::memset(small, 1, 100000);
  std::memset(large, 2, std::size_t{8} << 20);
  EXPECT_EQ(small[99999], 1);
  EXPECT_TRUE(small + 100000 <= large || large + (std::size_t{8} << 20) <= small);
}

TEST(Transaction, ANewTransactionCanFollowACommitInTheSameScope) {
  temp_dir dir;
  larder::heap h(file_options(dir.file("h")));
  auto* a = h.root<account>("account");
  larder::transaction first(h);
  first.snapshot(a);
  a->balance = 1;
  ASSERT_TRUE(first.commit().ok());
  larder::transaction second(h);
  second.snapshot(a);
  a->balance = 2;
  second.abort();
  EXPECT_EQ(a->balance, 1u);
}

TEST(Transaction, CloseRefusesWhileATransactionIsOpen) {
  temp_dir dir;
  larder::heap h(file_options(dir.file("h")));
  {
    larder::transaction tx(h);
    larder::status s = h.close();
    EXPECT_TRUE(s.is(larder::errc::invalid_argument)) << s.to_string();
    EXPECT_TRUE(h.is_open());
  }
  EXPECT_TRUE(h.close().ok());
}

TEST(Transaction, EachBackingSaysHowDurableItIs) {
  temp_dir dir;
  larder::heap file(file_options(dir.file("h")));
  EXPECT_TRUE(file.durable());
  EXPECT_STREQ(file.persistence_domain(), "file (msync/fdatasync)");
  larder::heap_options o;
  o.kind = larder::backing::anonymous;
  larder::heap anonymous(o);
  EXPECT_FALSE(anonymous.durable());
  EXPECT_STREQ(anonymous.persistence_domain(), "memory (not durable)");
  // libpmem2 told to treat any file as byte-addressable persistent memory:
  // the heap then persists with cache-line flushes, and transactions work.
  int code = run_in_child([&] {
    ::setenv("PMEM2_FORCE_GRANULARITY", "CACHE_LINE", 1);
    larder::heap h(file_options(dir.file("pmem")));
    EXPECT_STREQ(h.persistence_domain(), "persistent memory (libpmem2)");
    auto* a = h.root<account>("account");
    {
      larder::transaction tx(h);
      tx.snapshot(a);
      a->balance = 3;
    }
    ASSERT_TRUE(h.close().ok());
    larder::heap again(file_options(dir.file("pmem")));
    EXPECT_EQ(again.root<account>("account")->balance, 3u);
  });
  EXPECT_EQ(code, 0);
}

TEST(Transaction, ErrorsAreClear) {
  temp_dir dir;
  larder::heap h(file_options(dir.file("h")));
  larder::heap other(file_options(dir.file("other")));
  std::uint64_t outside = 0;
  larder::transaction tx(h);
  EXPECT_THROW(tx.snapshot(&outside, sizeof(outside)), larder::error);
  EXPECT_THROW(larder::transaction nested_other(other), larder::error);
  EXPECT_THROW(tx.free(&outside), larder::error);
}

}  // namespace
