// Several processes writing one heap at once (heap_options::shared_writers):
// four clients trade blocks through slots in the heap, each freeing what
// the others allocated, in plain and transactional steps, and every block
// taken out of a slot holds the bytes its allocator wrote. Clients are
// SIGKILLed at random instants while the others go on; the heap then
// checks clean, nothing a committed transaction published is lost, and
// no byte is leaked. A lone writer and shared writers
// exclude each other, and a client of another build refuses to attach.
//
// The slots are guarded by robust locks in the heap, held from before a
// transaction's first write to after its commit: a client that dies
// holding one is recovered (its transaction rolled back) by the next
// taker before it reads the slots, which is how programs sharing a heap
// must write transactions (docs/shared_writers.md).
#include "client_processes.hpp"
#include "runtime_test_util.hpp"

#include "port/shared_sync.hpp"
#include "recovery/layout.hpp"
#include "runtime/heap_impl.hpp"

#include <larder/check.hpp>
#include <larder/heap.hpp>
#include <larder/transaction.hpp>

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using larder::backing;
using larder::heap;
using larder::heap_options;
using larder::open_mode;
using larder::port::robust_lock;

constexpr std::size_t kSlots = 1024;
constexpr std::size_t kGroups = 64;
constexpr std::size_t kSlotsPerGroup = kSlots / kGroups;
// Beyond the largest size class: a huge block, a run of whole segments.
constexpr std::size_t kLargestBlock = 640 << 10;

struct exchange {
  robust_lock locks[kGroups];
  std::atomic<std::uint64_t> slots[kSlots];
  std::atomic<std::uint64_t> steps;
};

// A block starts with its size and a tag; every later byte follows from the tag.
void fill(void* p, std::size_t size, std::uint64_t tag) {
  auto* words = static_cast<std::uint64_t*>(p);
  words[0] = size;
  words[1] = tag;
  auto* bytes = static_cast<std::uint8_t*>(p);
  for (std::size_t k = 16; k < size; ++k) bytes[k] = static_cast<std::uint8_t>(tag * 31 + k);
}

bool intact(const void* p) {
  const auto* words = static_cast<const std::uint64_t*>(p);
  std::size_t size = words[0];
  std::uint64_t tag = words[1];
  if (size < 16 || size > kLargestBlock) return false;
  const auto* bytes = static_cast<const std::uint8_t*>(p);
  for (std::size_t k = 16; k < size; ++k)
    if (bytes[k] != static_cast<std::uint8_t>(tag * 31 + k)) return false;
  return true;
}

std::size_t random_size(std::mt19937_64& rng) {
  std::uint64_t r = rng() % 100;
  if (r < 80) return 16 + rng() % 1024;
  if (r < 97) return 1024 + rng() % 8192;
  if (r < 99) return 8192 + rng() % (64 << 10);
  return (512 << 10) + 16 + rng() % (kLargestBlock - (512 << 10) - 16);
}

heap_options options_for(backing kind, const std::string& name, bool shared) {
  heap_options o;
  o.kind = kind;
  o.name = name;
  o.mode = open_mode::open;
  o.shared_writers = shared;
  o.reserve = std::size_t{8} << 30;
  return o;
}

class guarded_group {
 public:
  guarded_group(heap& h, exchange* ex, std::size_t group) : lock_(&ex->locks[group]) {
    bool died = false;
    if (larder::port::robust_lock_acquire(lock_, &died) != 0) std::_Exit(20);
    if (died) {
      // The holder died mid-step: its transaction is rolled back before
      // anyone reads what it guarded.
      if (!h.recover_dead_clients().ok()) std::_Exit(21);
      larder::port::robust_lock_mark_consistent(lock_);
    }
  }
  ~guarded_group() { larder::port::robust_lock_release(lock_); }
  guarded_group(const guarded_group&) = delete;
  guarded_group& operator=(const guarded_group&) = delete;

 private:
  robust_lock* lock_;
};

// One client's work: `steps` trades (0: until killed). Exit codes name the
// first thing that went wrong.
void trade(heap& h, exchange* ex, std::uint64_t seed, std::size_t steps, bool transactions_only) {
  std::mt19937_64 rng(seed);
  for (std::size_t step = 0; steps == 0 || step < steps; ++step) {
    std::size_t slot = rng() % kSlots;
    std::size_t size = random_size(rng);
    std::uint64_t tag = rng();
    bool put = rng() % 4 != 0;
    bool in_transaction = transactions_only || rng() % 2 == 0;
    guarded_group guard(h, ex, slot / kSlotsPerGroup);
    auto* old = reinterpret_cast<void*>(ex->slots[slot].load());
    if (old != nullptr && !intact(old)) {
      const auto* words = static_cast<const std::uint64_t*>(old);
      std::fprintf(stderr, "client %d: slot %zu holds damaged bytes (block %p, size word %llu, tag %llx)\n", getpid(),
                   slot, old, static_cast<unsigned long long>(words[0]), static_cast<unsigned long long>(words[1]));
      std::_Exit(4);
    }
    if (in_transaction) {
      larder::transaction tx(h);
      tx.snapshot(&ex->slots[slot], sizeof(ex->slots[slot]));
      void* fresh = nullptr;
      if (put) {
        fresh = tx.allocate(size);
        fill(fresh, size, tag);
      }
      ex->slots[slot].store(reinterpret_cast<std::uint64_t>(fresh));
      if (old != nullptr) tx.free(old);
    } else {
      void* fresh = nullptr;
      if (put) {
        fresh = h.allocate(size);
        if (fresh == nullptr) std::_Exit(5);
        fill(fresh, size, tag);
      }
      ex->slots[slot].store(reinterpret_cast<std::uint64_t>(fresh));
      if (old != nullptr) heap::deallocate(old);
    }
    ex->steps.fetch_add(1);
  }
}

// One client's work: `threads` threads of `steps` trades each (0: until
// killed). Exit codes name the first thing that went wrong.
[[noreturn]] void client_main(backing kind, const std::string& name, std::uint64_t seed, std::size_t steps,
                              bool transactions_only, int threads) {
  heap h;
  larder::status s = heap::open(options_for(kind, name, true), &h);
  if (!s.ok()) {
    std::fprintf(stderr, "client %d: open: %s\n", getpid(), s.to_string().c_str());
    std::_Exit(2);
  }
  auto* ex = static_cast<exchange*>(h.find_root("exchange"));
  if (ex == nullptr) std::_Exit(3);
  std::vector<std::thread> others;
  for (int t = 1; t < threads; ++t)
    others.emplace_back([&, t] { trade(h, ex, seed * 1000 + t, steps, transactions_only); });
  trade(h, ex, seed * 1000, steps, transactions_only);
  for (std::thread& t : others) t.join();
  if (!h.close().ok()) std::_Exit(6);
  std::_Exit(0);
}

pid_t start_client(backing kind, const std::string& name, std::uint64_t seed, std::size_t steps,
                   bool transactions_only, int threads = 1) {
  pid_t pid = fork();
  if (pid == 0) client_main(kind, name, seed, steps, transactions_only, threads);
  return pid;
}

class SharedWriters : public ::testing::TestWithParam<backing> {
 protected:
  void SetUp() override {
    name_ = GetParam() == backing::shm ? larder_test::unique_shm_name("shared") : dir_.file("shared.heap");
    heap_options o = options_for(GetParam(), name_, false);
    o.mode = open_mode::create;
    heap h(o);
    auto* ex = static_cast<exchange*>(h.allocate(sizeof(exchange)));
    ASSERT_NE(ex, nullptr);
    std::memset(static_cast<void*>(ex), 0, sizeof(exchange));
    for (robust_lock& l : ex->locks) ASSERT_EQ(larder::port::robust_lock_init(&l), 0);
    ASSERT_TRUE(h.set_root("exchange", ex, sizeof(exchange)).ok());
    baseline_ = in_use(h);
    ASSERT_TRUE(h.close().ok());
  }
  void TearDown() override {
    if (GetParam() == backing::shm) (void)heap::remove(backing::shm, name_);
  }

  static std::size_t in_use(const heap& h) {
    std::size_t bytes = 0;
    for (const larder::pod_info& p : h.pods()) bytes += p.bytes_in_use;
    return bytes;
  }

  // As a lone writer (recovering every client that died): checks and
  // frees what the slots hold, then returns the bytes still in use beyond
  // the exchange itself.
  std::size_t verify_and_empty(std::size_t* blocks) {
    heap h(options_for(GetParam(), name_, false));
    EXPECT_TRUE(h.clients().empty());
    auto* ex = static_cast<exchange*>(h.find_root("exchange"));
    EXPECT_NE(ex, nullptr);
    *blocks = 0;
    for (auto& slot : ex->slots) {
      auto* p = reinterpret_cast<void*>(slot.load());
      if (p == nullptr) continue;
      EXPECT_TRUE(h.contains(p));
      EXPECT_TRUE(intact(p)) << "a slot holds damaged bytes";
      heap::deallocate(p);
      slot.store(0);
      ++*blocks;
    }
    std::size_t left = in_use(h) - baseline_;
    EXPECT_TRUE(h.close().ok());
    larder::check_report report;
    EXPECT_TRUE(larder::check_heap(GetParam(), name_, false, &report).ok());
    for (const std::string& p : report.problems) ADD_FAILURE() << "check: " << p;
    return left;
  }

  larder_test::temp_dir dir_{true};
  std::string name_;
  std::size_t baseline_ = 0;
};

TEST_P(SharedWriters, FourClientsTradeBlocksAndNothingIsLost) {
  constexpr int kClients = 4;
  larder_test::client_processes clients;
  for (int c = 0; c < kClients; ++c) clients.add(start_client(GetParam(), name_, 1000 + c, 3000, false));
  ASSERT_NO_FATAL_FAILURE(clients.expect_clean_exits());
  std::size_t blocks = 0;
  std::size_t left = verify_and_empty(&blocks);
  EXPECT_GT(blocks, 0u);
  EXPECT_EQ(left, 0u) << "bytes still in use after every block was freed";
}

// Two clients of three threads each: frees by other threads of the same
// client and by other clients, in and out of transactions.
TEST_P(SharedWriters, ClientsWithSeveralThreadsTradeBlocks) {
  larder_test::client_processes clients;
  for (int c = 0; c < 2; ++c) clients.add(start_client(GetParam(), name_, 2000 + c, 1500, false, 3));
  ASSERT_NO_FATAL_FAILURE(clients.expect_clean_exits());
  std::size_t blocks = 0;
  EXPECT_EQ(verify_and_empty(&blocks), 0u) << "bytes still in use after every block was freed";
  EXPECT_GT(blocks, 0u);
}

std::string root_name(int client, int k) {
  char name[32];
  std::snprintf(name, sizeof name, "c%d-%d", client, k);
  return name;
}

// Roots made and removed by four clients at once: each finds its own, and
// a lone writer afterwards finds exactly the ones left, including those
// set inside a transaction of the program (which holds the tables to its
// end).
TEST_P(SharedWriters, ClientsChangeRootsAtOnce) {
  larder_test::client_processes clients;
  for (int c = 0; c < 4; ++c) {
    pid_t pid = fork();
    if (pid == 0) {
      heap h(options_for(GetParam(), name_, true));
      for (int k = 0; k < 100; ++k) {
        std::string root = root_name(c, k);
        void* p = h.allocate(16);
        if (p == nullptr || !h.set_root(root, p, 16).ok()) std::_Exit(30);
        if (k % 3 == 0 && !h.remove_root(root).ok()) std::_Exit(31);
        if (k % 3 == 0) heap::deallocate(p);
      }
      {
        larder::transaction tx(h);  // the tables stay held to its end
        void* p = tx.allocate(16);
        if (!h.set_root(root_name(c, 1000), p, 16).ok()) std::_Exit(32);
      }
      std::_Exit(h.close().ok() ? 0 : 33);
    }
    clients.add(pid);
  }
  ASSERT_NO_FATAL_FAILURE(clients.expect_clean_exits());
  heap h(options_for(GetParam(), name_, false));
  for (int c = 0; c < 4; ++c) {
    for (int k = 0; k < 100; ++k) {
      std::string root = root_name(c, k);
      EXPECT_EQ(h.find_root(root) != nullptr, k % 3 != 0) << root;
    }
  }
  for (int c = 0; c < 4; ++c) EXPECT_NE(h.find_root(root_name(c, 1000)), nullptr);
}

// Clients that attach and leave over and over: one arriving while the
// last one leaves waits for it and then sets the heap up anew, and never
// finds it held by a lone writer.
TEST_P(SharedWriters, ClientsComingAndGoingNeverFindTheHeapBusy) {
  larder_test::client_processes clients;
  for (int c = 0; c < 4; ++c) {
    pid_t pid = fork();
    if (pid == 0) {
      for (int round = 0; round < 150; ++round) {
        larder::heap h;
        if (!heap::open(options_for(GetParam(), name_, true), &h).ok()) std::_Exit(40);
        void* p = h.allocate(64);
        if (p == nullptr) std::_Exit(41);
        heap::deallocate(p);
        if (!h.close().ok()) std::_Exit(42);
      }
      std::_Exit(0);
    }
    clients.add(pid);
  }
  ASSERT_NO_FATAL_FAILURE(clients.expect_clean_exits());
  std::size_t blocks = 0;
  EXPECT_EQ(verify_and_empty(&blocks), 0u);
}

// A client's forked child (which may not write the heap) outlives the
// client's close: the others can still attach and a lone writer can open
// once they are gone, since the child let go of the file locks it shared.
TEST_P(SharedWriters, ForkedChildOfAClientHoldsNoLock) {
  int child_ready[2];
  ASSERT_EQ(pipe(child_ready), 0);
  larder_test::client_processes clients;
  pid_t client = fork();
  if (client == 0) {
    heap h(options_for(GetParam(), name_, true));
    pid_t child = fork();
    if (child == 0) {
      (void)!write(child_ready[1], "x", 1);
      for (;;) pause();
    }
    char c = 0;
    (void)!read(child_ready[0], &c, 1);
    (void)!write(child_ready[1], &child, sizeof child);  // tell the test whom to reap
    std::_Exit(h.close().ok() ? 0 : 1);
  }
  clients.add(client);
  ASSERT_NO_FATAL_FAILURE(clients.expect_clean_exits());
  pid_t grandchild = -1;
  ASSERT_EQ(read(child_ready[0], &grandchild, sizeof grandchild), static_cast<ssize_t>(sizeof grandchild));
  clients.add(grandchild);
  // Another process attaches (the attach lock is free) and, alone, closes
  // as the last one; then a lone writer opens.
  pid_t joiner = fork();
  if (joiner == 0) {
    alarm(20);
    heap h(options_for(GetParam(), name_, true));
    std::_Exit(h.close().ok() ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(joiner, &status, 0), joiner);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the joiner hung or failed: " << status;
  heap lone;
  EXPECT_TRUE(heap::open(options_for(GetParam(), name_, false), &lone).ok());
}

TEST_P(SharedWriters, KilledClientsAreRecoveredWhileOthersGoOn) {
  const char* many = std::getenv("LARDER_TEST_KILLS");
  const int kills = many != nullptr ? std::atoi(many) : 100;
  constexpr int kClients = 4;
  std::mt19937_64 rng(7);
  larder_test::client_processes clients;
  std::uint64_t seed = 1;
  for (int c = 0; c < kClients; ++c) clients.add(start_client(GetParam(), name_, seed++, 0, true));
  for (int k = 0; k < kills; ++k) {
    std::this_thread::sleep_for(std::chrono::microseconds(500 + rng() % 15000));
    std::size_t victim = rng() % clients.size();
    ASSERT_NO_FATAL_FAILURE(clients.kill_one(victim));
    clients[victim] = start_client(GetParam(), name_, seed++, 0, true);
  }
  clients.kill_all();
  std::size_t blocks = 0;
  std::size_t left = verify_and_empty(&blocks);
  EXPECT_GT(blocks, 0u);
  EXPECT_EQ(left, 0u) << "bytes leaked by " << kills + kClients << " kills";
  std::printf("%d kills: %zu blocks intact, %zu bytes leaked\n", kills + kClients, blocks, left);
}

TEST_P(SharedWriters, LoneWriterAndSharedWritersExcludeEachOther) {
  {
    heap shared(options_for(GetParam(), name_, true));
    EXPECT_EQ(shared.stats().client, 1u);
    EXPECT_EQ(shared.clients().size(), 1u);
    EXPECT_TRUE(shared.clients()[0].self);
  }
  // A lone writer open while a shared writer is attached (in another
  // process) fails with heap_busy, and a shared one beside a lone writer too.
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  int release[2];
  ASSERT_EQ(pipe(release), 0);
  pid_t holder = fork();
  if (holder == 0) {
    heap h;
    char c = heap::open(options_for(GetParam(), name_, true), &h).ok() ? 'y' : 'n';
    (void)!write(ready[1], &c, 1);
    (void)!read(release[0], &c, 1);
    std::_Exit(h.close().ok() ? 0 : 1);
  }
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  ASSERT_EQ(c, 'y');
  heap lone;
  larder::status s = heap::open(options_for(GetParam(), name_, false), &lone);
  EXPECT_TRUE(s.is(larder::errc::heap_busy)) << s.to_string();
  EXPECT_NE(s.to_string().find("shared_writers"), std::string::npos) << s.to_string();
  {
    heap second(options_for(GetParam(), name_, true));
    EXPECT_EQ(second.clients().size(), 2u);
    EXPECT_NE(second.stats().client, 0u);
    // Versions, tracking and page capture need the only writer.
    EXPECT_TRUE(second.start_tracking().is(larder::errc::unsupported));
  }
  (void)!write(release[1], "x", 1);
  int status = 0;
  waitpid(holder, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  // Everyone left: a lone writer opens, and a shared writer beside it is refused.
  ASSERT_TRUE(heap::open(options_for(GetParam(), name_, false), &lone).ok());
  pid_t joiner = fork();
  if (joiner == 0) {
    heap h;
    larder::status t = heap::open(options_for(GetParam(), name_, true), &h);
    std::_Exit(t.is(larder::errc::heap_busy) ? 0 : 1);
  }
  ASSERT_EQ(waitpid(joiner, &status, 0), joiner);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST_P(SharedWriters, ClientOfAnotherBuildRefusesToAttach) {
  int go[2];
  ASSERT_EQ(pipe(go), 0);
  pid_t joiner = fork();
  if (joiner == 0) {
    char c = 0;
    (void)!read(go[0], &c, 1);
    heap h;
    larder::status t = heap::open(options_for(GetParam(), name_, true), &h);
    std::fprintf(stderr, "%s\n", t.to_string().c_str());
    std::_Exit(t.is(larder::errc::foreign_build) ? 0 : 1);
  }
  heap first(options_for(GetParam(), name_, true));
  auto* meta = reinterpret_cast<larder::layout::heap_meta*>(static_cast<char*>(first.base()) +
                                                            larder::layout::kMetaOffset);
  std::uint64_t mine = meta->shared.build_signature;
  meta->shared.build_signature = mine ^ 1;  // as another build would have written it
  (void)!write(go[1], "x", 1);
  int status = 0;
  ASSERT_EQ(waitpid(joiner, &status, 0), joiner);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  meta->shared.build_signature = mine;
}

// A client dies holding the segment-table lock halfway through taking
// segments for a huge block: the backing grown, the tail marked, no head
// yet. Another client, attached all along, takes the lock next: it is
// told, and frees the tail that no head covers before it goes on.
TEST_P(SharedWriters, DeathHoldingTheSegmentTableLockIsRepairedByTheNextTaker) {
  int survivor_ready[2], survivor_go[2], holder_ready[2];
  ASSERT_EQ(pipe(survivor_ready), 0);
  ASSERT_EQ(pipe(survivor_go), 0);
  ASSERT_EQ(pipe(holder_ready), 0);
  larder_test::client_processes clients;
  pid_t survivor = fork();
  if (survivor == 0) {
    heap h(options_for(GetParam(), name_, true));
    (void)!write(survivor_ready[1], "x", 1);
    char c = 0;
    (void)!read(survivor_go[0], &c, 1);
    larder::alloc::region& r = h.impl()->region;
    std::size_t tail = r.meta()->segments_high - 1;
    if (larder::layout::entry_state(r.entry(tail)) != larder::layout::kSegmentHugeTail) std::_Exit(10);
    void* big = h.allocate(std::size_t{16} << 20);  // takes the lock
    if (big == nullptr) std::_Exit(11);
    if (larder::layout::entry_state(r.entry(tail)) == larder::layout::kSegmentHugeTail &&
        r.head_segment(reinterpret_cast<void*>(r.base() + (tail << larder::layout::kSegmentShift))) == nullptr)
      std::_Exit(12);  // still a tail of nobody
    heap::deallocate(big);
    std::_Exit(h.close().ok() ? 0 : 13);
  }
  clients.add(survivor);
  char c = 0;
  ASSERT_EQ(read(survivor_ready[0], &c, 1), 1);
  pid_t holder = fork();
  if (holder == 0) {
    heap h(options_for(GetParam(), name_, true));
    larder::alloc::region& r = h.impl()->region;
    r.claim_lock().lock();
    larder::layout::heap_meta* meta = r.meta();
    std::size_t first = meta->segments_high;
    if (h.impl()->grow_backing((first + 2) << larder::layout::kSegmentShift) != 0) std::_Exit(20);
    meta->segments_high = first + 2;
    __atomic_store_n(&meta->segments[first + 1], larder::layout::segment_entry(larder::layout::kSegmentHugeTail, 0),
                     __ATOMIC_RELEASE);
    (void)!write(holder_ready[1], "x", 1);
    for (;;) pause();
  }
  clients.add(holder);
  ASSERT_EQ(read(holder_ready[0], &c, 1), 1);
  ASSERT_NO_FATAL_FAILURE(clients.kill_one(1));
  (void)!write(survivor_go[1], "x", 1);
  clients.expect_clean_exits();
}

INSTANTIATE_TEST_SUITE_P(Backings, SharedWriters, ::testing::Values(backing::shm, backing::file),
                         [](const auto& info) { return info.param == backing::shm ? "shm" : "file"; });

}  // namespace
