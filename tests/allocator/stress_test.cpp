// Multithreaded stress of the larder_* malloc family: frees by threads that
// do not own the block's page, a producer/consumer pair that must not make
// memory grow without bound, threads that exit while others still hold their
// blocks, and fork() while other threads allocate.
#include "allocator/test_util.hpp"

#include <larder/larder.h>

#include <gtest/gtest.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using larder_test::check_range;
using larder_test::fill_range;
using larder_test::for_each_checked_range;
using larder_test::resident_bytes;

constexpr std::size_t kKiB = 1024;
constexpr std::size_t kMiB = 1024 * 1024;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#if defined(__SANITIZE_THREAD__)
constexpr bool kThreadSanitizer = true;
#else
constexpr bool kThreadSanitizer = false;
#endif

// Every block starts with this header; the rest carries the pattern of
// `tag`. The tag names the allocating thread in its top 16 bits.
struct header {
  std::uint64_t tag;
  std::uint64_t size;
};

constexpr std::size_t kMinBlock = sizeof(header);

std::uint64_t make_tag(unsigned thread, std::uint64_t serial) {
  return (static_cast<std::uint64_t>(thread) << 48) | (serial & ((std::uint64_t{1} << 48) - 1));
}
unsigned tag_thread(std::uint64_t tag) { return static_cast<unsigned>(tag >> 48); }

void stamp(void* p, std::size_t size, std::uint64_t tag) {
  header h{tag, size};
  std::memcpy(p, &h, sizeof(h));
  for_each_checked_range(size, 4 * kKiB, 4 * kKiB, [&](std::size_t begin, std::size_t end) {
    fill_range(p, std::max(begin, kMinBlock), end, tag);
  });
}

// Empty string if the block carries a consistent header and pattern.
std::string inspect(const void* p, std::uint64_t* tag_out = nullptr) {
  header h;
  std::memcpy(&h, p, sizeof(h));
  if (tag_out != nullptr) *tag_out = h.tag;
  if (h.size < kMinBlock || h.size > 64 * kMiB) return "block " + larder_test::hex(p) + ": header was overwritten";
  if (larder_usable_size(p) < h.size)
    return "block " + larder_test::hex(p) + ": usable size " + std::to_string(larder_usable_size(p)) + " < " +
           std::to_string(h.size);
  std::size_t bad = SIZE_MAX;
  for_each_checked_range(h.size, 4 * kKiB, 4 * kKiB, [&](std::size_t begin, std::size_t end) {
    if (bad == SIZE_MAX) bad = check_range(p, std::max(begin, kMinBlock), end, h.tag);
  });
  if (bad == SIZE_MAX) return {};
  return "block " + larder_test::hex(p) + " of " + std::to_string(h.size) + " bytes (thread " +
         std::to_string(tag_thread(h.tag)) + ") was overwritten at offset " + std::to_string(bad);
}

// Collects the first failure seen by any thread.
class failure_log {
 public:
  void add(const std::string& what) {
    if (what.empty()) return;
    std::lock_guard<std::mutex> guard(lock_);
    if (count_++ == 0) first_ = what;
  }
  bool any() const {
    std::lock_guard<std::mutex> guard(lock_);
    return count_ != 0;
  }
  std::string report() const {
    std::lock_guard<std::mutex> guard(lock_);
    return std::to_string(count_) + " failure(s); first: " + first_;
  }

 private:
  mutable std::mutex lock_;
  std::size_t count_ = 0;
  std::string first_;
};

std::size_t random_block_size(std::mt19937_64& rng) {
  unsigned r = static_cast<unsigned>(rng() % 1000);
  if (r < 700) return kMinBlock + rng() % 241;
  if (r < 950) return 257 + rng() % (8 * kKiB - 256);
  if (r < 995) return 8 * kKiB + rng() % (120 * kKiB);
  return 128 * kKiB + rng() % (900 * kKiB);
}

unsigned thread_count() {
  unsigned n = std::thread::hardware_concurrency();
  return std::clamp(n, 4u, 8u);
}

// ---- cross-thread frees ------------------------------------------------------

// Blocks posted to one thread by the others.
struct mailbox {
  static constexpr std::size_t kCapacity = 4096;
  std::mutex lock;
  std::vector<void*> blocks;

  bool post(void* p) {
    std::lock_guard<std::mutex> guard(lock);
    if (blocks.size() >= kCapacity) return false;
    blocks.push_back(p);
    return true;
  }
  void* take() {
    std::lock_guard<std::mutex> guard(lock);
    if (blocks.empty()) return nullptr;
    void* p = blocks.back();
    blocks.pop_back();
    return p;
  }
};

// Threads allocate, keep some blocks for themselves and post others to the
// mailbox of another thread, which frees (or reallocates) them: about half
// of all frees happen on a thread other than the allocating one.
TEST(StressTest, CrossThreadFreesKeepBlocksIntact) {
  const unsigned threads = thread_count();
  const std::size_t ops = kSanitized ? 60000 : 250000;
  std::vector<mailbox> mailboxes(threads + 1);  // threads are numbered from 1
  std::atomic<std::size_t> frees{0}, remote_frees{0}, remote_reallocs{0};
  failure_log failures;

  auto release = [&](void* p, unsigned me) {
    std::uint64_t tag = 0;
    failures.add(inspect(p, &tag));
    if (tag_thread(tag) != me) remote_frees.fetch_add(1, std::memory_order_relaxed);
    frees.fetch_add(1, std::memory_order_relaxed);
    larder_free(p);
  };

  auto worker = [&](unsigned me) {
    std::mt19937_64 rng(1000 + me);
    std::vector<void*> mine;
    std::uint64_t serial = 0;
    for (std::size_t i = 0; i < ops && !failures.any(); ++i) {
      unsigned r = static_cast<unsigned>(rng() % 100);
      if (r < 45) {
        std::size_t size = random_block_size(rng);
        void* p = larder_malloc(size);
        if (p == nullptr) {
          failures.add("malloc(" + std::to_string(size) + ") failed");
          break;
        }
        stamp(p, size, make_tag(me, ++serial));
        bool posted = false;
        if (rng() & 1) {
          unsigned other = 1 + static_cast<unsigned>(rng() % (threads - 1));
          if (other >= me) ++other;
          posted = mailboxes[other].post(p);
        }
        if (!posted) {
          if (mine.size() >= 256) {
            std::size_t k = rng() % mine.size();
            release(mine[k], me);
            mine[k] = p;
          } else {
            mine.push_back(p);
          }
        }
      } else if (r < 90) {
        void* p = (rng() & 1) ? mailboxes[me].take() : nullptr;
        if (p == nullptr && !mine.empty()) {
          std::size_t k = rng() % mine.size();
          p = mine[k];
          mine[k] = mine.back();
          mine.pop_back();
        }
        if (p != nullptr) release(p, me);
      } else if (void* old = mailboxes[me].take()) {
        // Reallocate a block that another thread allocated.
        std::uint64_t tag = 0;
        failures.add(inspect(old, &tag));
        if (tag_thread(tag) != me) remote_reallocs.fetch_add(1, std::memory_order_relaxed);
        std::size_t size = random_block_size(rng);
        void* p = larder_realloc(old, size);
        if (p == nullptr) {
          failures.add("realloc to " + std::to_string(size) + " failed");
          break;
        }
        stamp(p, size, make_tag(me, ++serial));
        if (mine.size() < 256) {
          mine.push_back(p);
        } else {
          release(p, me);
        }
      }
    }
    for (void* p : mine) release(p, me);
  };

  std::vector<std::thread> pool;
  for (unsigned t = 1; t <= threads; ++t) pool.emplace_back(worker, t);
  for (auto& t : pool) t.join();
  for (auto& box : mailboxes)
    while (void* p = box.take()) release(p, 0);
  ASSERT_FALSE(failures.any()) << failures.report();
  std::printf("%u threads, %zu frees, %zu by another thread, %zu cross-thread reallocs\n", threads, frees.load(),
              remote_frees.load(), remote_reallocs.load());
  EXPECT_GT(remote_frees.load() + remote_reallocs.load(), frees.load() / 4)
      << "too few cross-thread frees to mean anything";
  larder_collect();
}

// ---- producer / consumer -------------------------------------------------------

// A bounded single-producer single-consumer queue.
class spsc_queue {
 public:
  bool push(void* p) {
    std::size_t tail = tail_.load(std::memory_order_relaxed);
    if (tail - head_.load(std::memory_order_acquire) == kCapacity) return false;
    items_[tail % kCapacity] = p;
    tail_.store(tail + 1, std::memory_order_release);
    return true;
  }
  void* pop() {
    std::size_t head = head_.load(std::memory_order_relaxed);
    if (head == tail_.load(std::memory_order_acquire)) return nullptr;
    void* p = items_[head % kCapacity];
    head_.store(head + 1, std::memory_order_release);
    return p;
  }

 private:
  static constexpr std::size_t kCapacity = 4096;
  void* items_[kCapacity] = {};
  alignas(64) std::atomic<std::size_t> head_{0};
  alignas(64) std::atomic<std::size_t> tail_{0};
};

// One thread allocates, another frees everything: every free is remote.
// Freed blocks must find their way back to the producer, so resident
// memory stays near what the queue holds, not what was ever allocated.
TEST(StressTest, ProducerConsumerMemoryStaysBounded) {
  const std::size_t blocks = kSanitized ? 1000000 : 3000000;
  spsc_queue queue;
  failure_log failures;
  std::atomic<bool> done{false};
  std::atomic<std::size_t> peak{0};
  std::size_t allocated_bytes = 0;
  const std::size_t baseline = resident_bytes();

  std::thread producer([&] {
    std::mt19937_64 rng(42);
    for (std::size_t i = 0; i < blocks && !failures.any(); ++i) {
      std::size_t size = (i % 64 == 0) ? 4 * kKiB + rng() % (28 * kKiB) : kMinBlock + rng() % 1000;
      void* p = larder_malloc(size);
      if (p == nullptr) {
        failures.add("malloc failed");
        break;
      }
      allocated_bytes += size;
      header h{i, size};
      std::memcpy(p, &h, sizeof(h));
      fill_range(p, kMinBlock, std::min<std::size_t>(size, 256), i);
      while (!queue.push(p)) std::this_thread::yield();
      if (i % 65536 == 0) {
        std::size_t rss = resident_bytes();
        if (rss > peak.load()) peak.store(rss);
      }
    }
    done.store(true, std::memory_order_release);
  });
  std::thread consumer([&] {
    for (;;) {
      void* p = queue.pop();
      if (p == nullptr) {
        if (done.load(std::memory_order_acquire) && (p = queue.pop()) == nullptr) break;
        if (p == nullptr) {
          std::this_thread::yield();
          continue;
        }
      }
      header h;
      std::memcpy(&h, p, sizeof(h));
      std::size_t bad = check_range(p, kMinBlock, std::min<std::size_t>(h.size, 256), h.tag);
      if (bad != SIZE_MAX) failures.add("block " + std::to_string(h.tag) + " was overwritten");
      larder_free(p);
    }
  });
  producer.join();
  consumer.join();
  ASSERT_FALSE(failures.any()) << failures.report();
  const std::size_t after = resident_bytes();
  larder_collect();
  const std::size_t collected = resident_bytes();
  auto mib = [](std::size_t bytes) { return bytes >> 20; };
  std::printf(
      "allocated %zu MiB in total; resident: baseline %zu MiB, peak %zu MiB, after %zu MiB, collected %zu MiB\n",
      mib(allocated_bytes), mib(baseline), mib(peak.load()), mib(after), mib(collected));
  EXPECT_LT(peak.load(), baseline + 256 * kMiB) << "memory grew while running";
  EXPECT_LT(after, baseline + 256 * kMiB);
  EXPECT_LT(collected, baseline + 64 * kMiB) << "larder_collect() did not give memory back";
}

// ---- thread exit -----------------------------------------------------------------

// Rounds of short-lived threads: producers allocate blocks, hand them over
// and exit (possibly while consumers are freeing their blocks); some blocks
// outlive their thread by a whole round and are freed by a thread of the
// next round. Pages of dead threads must be reused: resident memory stays
// flat across rounds.
TEST(StressTest, BlocksOutliveTheirThreads) {
  const int rounds = kSanitized ? 4 : 10;
  const unsigned producers = 4, consumers = 2;
  const std::size_t per_producer = kSanitized ? 8000 : 20000;
  failure_log failures;
  std::vector<void*> held;  // survive into the next round
  std::vector<std::size_t> rss_after_round;

  for (int round = 0; round < rounds; ++round) {
    std::mutex lock;
    std::deque<void*> handed;
    std::atomic<unsigned> running{producers};
    std::vector<void*> previous;
    previous.swap(held);
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < producers; ++t) {
      pool.emplace_back([&, t] {
        std::mt19937_64 rng(round * 100 + t);
        unsigned me = static_cast<unsigned>(round * 16 + t + 1);
        std::vector<void*> batch;
        for (std::size_t i = 0; i < per_producer; ++i) {
          std::size_t size = (rng() % 50 == 0) ? 64 * kKiB : kMinBlock + rng() % 2048;
          void* p = larder_malloc(size);
          if (p == nullptr) {
            failures.add("malloc failed");
            break;
          }
          stamp(p, size, make_tag(me, i));
          batch.push_back(p);
          if (batch.size() == 256) {
            std::lock_guard<std::mutex> guard(lock);
            for (void* b : batch) {
              if (rng() % 10 == 0) {
                held.push_back(b);
              } else {
                handed.push_back(b);
              }
            }
            batch.clear();
          }
        }
        std::lock_guard<std::mutex> guard(lock);
        for (void* b : batch) handed.push_back(b);
        running.fetch_sub(1);
      });
    }
    for (unsigned t = 0; t < consumers; ++t) {
      pool.emplace_back([&, t] {
        std::mt19937_64 rng(round * 100 + 50 + t);
        // Blocks of the previous round's threads, all dead by now.
        for (std::size_t i = t; i < previous.size(); i += consumers) {
          failures.add(inspect(previous[i]));
          larder_free(previous[i]);
        }
        std::vector<void*> own;
        for (;;) {
          void* p = nullptr;
          {
            std::lock_guard<std::mutex> guard(lock);
            if (!handed.empty()) {
              p = handed.front();
              handed.pop_front();
            }
          }
          if (p == nullptr) {
            if (running.load() == 0) {
              std::lock_guard<std::mutex> guard(lock);
              if (handed.empty()) break;
            }
            std::this_thread::yield();
            continue;
          }
          failures.add(inspect(p));
          larder_free(p);
          // Some allocation of their own on the side.
          if (rng() % 4 == 0) {
            std::size_t size = kMinBlock + rng() % 512;
            void* q = larder_malloc(size);
            if (q != nullptr) {
              stamp(q, size, make_tag(200 + t, rng()));
              own.push_back(q);
            }
          }
          if (own.size() > 64) {
            failures.add(inspect(own.front()));
            larder_free(own.front());
            own.erase(own.begin());
          }
        }
        for (void* q : own) {
          failures.add(inspect(q));
          larder_free(q);
        }
      });
    }
    for (auto& t : pool) t.join();
    ASSERT_FALSE(failures.any()) << "round " << round << ": " << failures.report();
    rss_after_round.push_back(resident_bytes());
  }
  for (void* p : held) {
    failures.add(inspect(p));
    larder_free(p);
  }
  ASSERT_FALSE(failures.any()) << failures.report();
  larder_collect();
  std::string trace;
  for (std::size_t rss : rss_after_round) trace += std::to_string(rss >> 20) + " ";
  std::printf("resident MiB after each round: %s\n", trace.c_str());
  // Each round allocates about 4 * per_producer * 1.3 KiB + 64 KiB blocks;
  // had dead threads' pages never been reused, the total would keep rising.
  const std::size_t early = std::max(rss_after_round[1], rss_after_round[2]);
  EXPECT_LT(rss_after_round.back(), early + 64 * kMiB) << trace;
}

// A thread that exits right after allocating: its blocks are freed by the
// main thread afterwards, and the next thread reuses the memory.
TEST(StressTest, ShortLivedThreadsReuseMemory) {
  const int threads = kSanitized ? 200 : 500;
  std::vector<std::size_t> rss;
  for (int i = 0; i < threads; ++i) {
    std::vector<void*> blocks;
    std::thread([&] {
      for (int k = 0; k < 200; ++k) {
        std::size_t size = kMinBlock + static_cast<std::size_t>(k) * 40;
        void* p = larder_malloc(size);
        if (p != nullptr) stamp(p, size, make_tag(1, static_cast<std::uint64_t>(k)));
        blocks.push_back(p);
      }
    }).join();
    for (void* p : blocks) {
      ASSERT_NE(p, nullptr);
      ASSERT_EQ(inspect(p), "");
      larder_free(p);
    }
    if (i % 50 == 49) rss.push_back(resident_bytes());
  }
  ASSERT_GE(rss.size(), 2u);
  EXPECT_LT(rss.back(), rss.front() + 32 * kMiB) << "threads that came later did not reuse memory";
}

// ---- fork --------------------------------------------------------------------------

// What a forked child does: frees blocks that threads which do not exist in
// the child allocated, allocates and frees on its own, in a thread of its
// own too. Returns the exit status.
int child_work(std::array<std::atomic<void*>, 64>& slots, const std::vector<void*>& parent_blocks) {
  int status = 0;
  // Blocks of the parent's main thread, which may not be this thread.
  for (void* p : parent_blocks) {
    if (!inspect(p).empty()) status = 10;
    larder_free(p);
  }
  for (auto& slot : slots) {
    if (void* p = slot.load(std::memory_order_relaxed)) {
      if (!inspect(p).empty()) status = 2;
      larder_free(p);
      slot.store(nullptr, std::memory_order_relaxed);
    }
  }
  std::mt19937_64 rng(static_cast<std::uint64_t>(getpid()));
  std::vector<void*> blocks;
  for (int i = 0; i < 3000; ++i) {
    std::size_t size = random_block_size(rng);
    void* p = larder_malloc(size);
    if (p == nullptr) return 3;
    stamp(p, size, make_tag(7, static_cast<std::uint64_t>(i)));
    blocks.push_back(p);
  }
  void* huge = larder_malloc(8 * kMiB);
  if (huge == nullptr) return 4;
  stamp(huge, 8 * kMiB, make_tag(7, 99999));
  blocks.push_back(huge);
  void* aligned = larder_aligned_alloc(4096, 10000);
  if (aligned == nullptr) return 5;
  stamp(aligned, 10000, make_tag(7, 99998));
  blocks.push_back(aligned);
  // A thread in the child, freeing half of the main thread's blocks.
  int thread_status = 0;
  pthread_t thread;
  struct args {
    std::vector<void*>* blocks;
    int* status;
  } a{&blocks, &thread_status};
  auto body = [](void* raw) -> void* {
    auto* arg = static_cast<args*>(raw);
    for (std::size_t i = 0; i < arg->blocks->size(); i += 2) {
      void* p = (*arg->blocks)[i];
      if (!inspect(p).empty()) *arg->status = 6;
      larder_free(p);
      void* q = larder_malloc(64);
      if (q == nullptr) *arg->status = 7;
      larder_free(q);
    }
    return nullptr;
  };
  // ThreadSanitizer cannot start a thread in the child of a multi-threaded
  // fork (it stops the process, or with die_after_fork=0 takes the new
  // thread for one of the parent's), so there this thread does the work.
  if (kThreadSanitizer) {
    body(&a);
  } else {
    if (pthread_create(&thread, nullptr, body, &a) != 0) return 8;
    pthread_join(thread, nullptr);
  }
  if (thread_status != 0) return thread_status;
  for (std::size_t i = 1; i < blocks.size(); i += 2) {
    if (!inspect(blocks[i]).empty()) status = 9;
    larder_free(blocks[i]);
  }
  return status;
}

// The parent forks 20 times (from the main thread or from a short-lived
// one) while three threads allocate and free without pause; each child
// must be able to use the allocator, free what the parent's threads
// allocated, and exit normally.
TEST(StressTest, ForkWhileThreadsAllocate) {
  constexpr int kForks = 20;
  constexpr int kWorkers = 3;
  std::array<std::atomic<void*>, 64> slots{};
  std::atomic<bool> stop{false};
  failure_log failures;
  std::vector<std::thread> workers;
  for (int t = 0; t < kWorkers; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937_64 rng(77 + t);
      std::uint64_t serial = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        std::size_t size = random_block_size(rng);
        void* p = larder_malloc(size);
        if (p == nullptr) {
          failures.add("malloc failed in a worker");
          return;
        }
        stamp(p, size, make_tag(static_cast<unsigned>(t + 1), ++serial));
        if (void* old = slots[rng() % slots.size()].exchange(p, std::memory_order_acq_rel)) {
          failures.add(inspect(old));
          larder_free(old);
        }
      }
    });
  }

  // Blocks of the main thread that each child frees (in the child only).
  std::vector<void*> main_blocks;
  for (std::size_t i = 0; i < 200; ++i) {
    std::size_t size = kMinBlock + i * 97;
    void* p = larder_malloc(size);
    ASSERT_NE(p, nullptr);
    stamp(p, size, make_tag(9, i));
    main_blocks.push_back(p);
  }
  auto fork_child = [&]() -> pid_t {
    pid_t pid = fork();
    if (pid == 0) {
      alarm(30);  // never outlive a stuck parent
      _exit(child_work(slots, main_blocks));
    }
    return pid;
  };

  for (int i = 0; i < kForks && !failures.any(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    // Every other child is forked from a short-lived thread rather than
    // the main thread.
    pid_t pid = -1;
    if (i % 2 == 0) {
      pid = fork_child();
    } else {
      std::thread([&] { pid = fork_child(); }).join();
    }
    ASSERT_GE(pid, 0) << "fork: " << std::strerror(errno);
    // Poll for the child with a deadline; kill it if it hangs.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kSanitized ? 40 : 20);
    int status = 0;
    pid_t got = 0;
    while ((got = waitpid(pid, &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    if (got == 0) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      failures.add("child " + std::to_string(i) + " hung (deadlock after fork?) and was killed");
      break;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      failures.add("child " + std::to_string(i) + " failed: " +
                   (WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                      : "signal " + std::to_string(WTERMSIG(status))));
    }
  }
  stop.store(true);
  for (auto& t : workers) t.join();
  for (void* p : main_blocks) {
    failures.add(inspect(p));
    larder_free(p);
  }
  for (auto& slot : slots)
    if (void* p = slot.exchange(nullptr)) {
      failures.add(inspect(p));
      larder_free(p);
    }
  ASSERT_FALSE(failures.any()) << failures.report();
}

}  // namespace

// A remote free into a full page holds it in a transient state for a
// moment; a fork in that moment must not leave the child's owner waiting
// for a thread the child does not have. Each child frees the blocks still
// in flight (owner frees into full pages) and churns, under an alarm.
TEST(StressTest, ForkDuringRemoteFreesNeverHangsTheChild) {
  constexpr std::size_t kRing = 1024;
  static std::atomic<void*> ring[kRing];
  std::atomic<bool> done{false};
  std::thread consumer([&] {
    for (std::size_t i = 0;;) {
      void* p = ring[i % kRing].exchange(nullptr, std::memory_order_acquire);
      if (p == nullptr) {
        if (done.load()) break;
        continue;
      }
      larder_free(p);
      ++i;
    }
  });
  int hung = 0, failed = 0;
  std::size_t k = 0;
  for (int f = 0; f < 60; ++f) {
    for (int j = 0; j < 2000; ++j, ++k) {
      void* p = larder_malloc(8000);
      while (ring[k % kRing].load(std::memory_order_relaxed) != nullptr) {
      }
      ring[k % kRing].store(p, std::memory_order_release);
    }
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      alarm(5);
      for (auto& slot : ring)
        if (void* p = slot.load()) larder_free(p);
      for (int j = 0; j < 4000; ++j) larder_free(larder_malloc(8000));
      _exit(0);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) ++hung;
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed;
  }
  done = true;
  consumer.join();
  for (auto& slot : ring)
    if (void* p = slot.exchange(nullptr)) larder_free(p);
  EXPECT_EQ(hung, 0);
  EXPECT_EQ(failed, 0);
}
