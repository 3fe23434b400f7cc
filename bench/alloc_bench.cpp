// larder_alloc_bench: general-purpose malloc/free workloads.
//
// This program calls nothing but the C allocation functions (malloc and free;
// the C++ runtime's operator new lands in malloc too), and it does not link
// larder. Which allocator it measures is chosen from outside by preloading
// one: LD_PRELOAD=/path/to/liblarder_malloc.so ./larder_alloc_bench, and the
// same for jemalloc, mimalloc or tcmalloc; without LD_PRELOAD it measures the
// C library's malloc. bench/compare.py does that for every allocator.
//
// Object sizes: unless said otherwise, a workload draws sizes from 16 to 1024 bytes,
// log-uniformly (the logarithm of the size is uniform, so each doubling
// 16-32, 32-64, ..., 512-1024 is equally likely and the mean request is about
// 242 bytes). Sizes come from a 4096-entry table of the distribution's
// quantiles indexed by random bits. All randomness comes from fixed seeds, so
// every allocator gets exactly the same sequence of requests. Every new block
// has its first 16 bytes written, as a program initialising it would.
//
// Workloads (Google Benchmark names; each runs one fixed amount of work once,
// with its own wall-clock timing of the measured part only):
//
//   churn     One thread. First fills a table of 1,000,000 live blocks
//             (untimed), then, 10,000,000 times: picks a random slot, frees
//             its block and puts a new block of a random size in it. Models
//             a long-running program with a large, fragmented heap: frees
//             scatter over the whole heap and allocations must reuse the
//             holes. items_per_second counts free+malloc pairs.
//
//   pairs2t   Two threads, independent of each other. Each keeps a window
//             of 512 live blocks and, 50,000,000 times, frees a random one
//             and allocates a replacement of a random size (the window
//             keeps it from being simple last-in-first-out reuse).
//             Measures the thread-local fast paths and whether two threads
//             slow each other down. items_per_second counts the pairs of
//             both threads together, per second of wall time.
//
//   prodcons  Two threads. A producer allocates 5,000,000 blocks and hands
//             each to a consumer through a bounded single-producer
//             single-consumer ring of 1024 slots; the consumer reads each
//             block and frees it. Every free is of memory allocated by the
//             other thread, so this measures the cross-thread free path and
//             how freed memory flows back to the allocating thread.
//             items_per_second counts blocks passed, per second of wall time.
//
//   large     One thread. Keeps 4 live blocks of 1 to 32 MiB (log-uniform,
//             so each doubling is equally likely; mean about 9 MiB) and,
//             1,000 times, frees a random one and allocates a replacement,
//             writing one byte to every 4 KiB page of it, as a program
//             filling a buffer would. Blocks this large are where
//             allocators hand memory back to the kernel and fault it in
//             again; items_per_second counts the pages written (about
//             2,300 a block), since a block takes milliseconds.
//
//   bursty    Three threads. An allocating thread makes 2,000 bursts of
//             1,024 blocks each, sizes 16 B to 256 KiB (log-uniform, mean
//             about 27 KiB), and hands every burst whole to one of two
//             freeing threads, alternately, which free it; at most 4
//             bursts are in flight. Every free is cross-thread, of small
//             and large blocks alike; items_per_second counts blocks.
//
//   shortlived  A short program that allocates heavily and exits: a child
//             process (this binary, run again with --shortlived-child)
//             allocates 1,000,000 blocks of the usual sizes, freeing a
//             random quarter of them along the way as temporaries, then
//             exits without freeing the rest. The workload runs it 10 times
//             and times each from the spawn to the parent's wait, so
//             process start, allocator set-up and teardown at exit all
//             count; items_per_second counts the children's allocations,
//             and peak_rss_mb is the largest child's resident set.
//
// Counters: items_per_second as above, and peak_rss_mb, the process's
// resident-set high-water mark (getrusage ru_maxrss) at the end of the run.
// The high-water mark covers the whole process and never drops, so run one
// workload per process when comparing it:
//     larder_alloc_bench --benchmark_filter='^churn/'
// (Google Benchmark appends "/iterations:1/manual_time" to the names.)
//
// Run size: --scale=X (or the environment variable LARDER_BENCH_SCALE)
// multiplies every object and operation count above; bench/compare.py
// --quick uses a small scale for smoke tests.
#include <benchmark/benchmark.h>

#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "bench_common.hpp"

namespace {

using larder_bench::bench_clock;
using larder_bench::rng;
using larder_bench::scaled;
using larder_bench::seconds_between;

constexpr std::uint64_t kSeed = 0x6c61726465720001ull;

constexpr std::uint64_t kChurnLive = 1'000'000;
constexpr std::uint64_t kChurnOps = 10'000'000;
constexpr std::uint32_t kPairWindow = 512;
constexpr std::uint64_t kPairOpsPerThread = 50'000'000;
constexpr int kPairThreads = 2;
constexpr std::uint64_t kProdConsBlocks = 5'000'000;
constexpr std::size_t kRingSlots = 1024;

constexpr std::uint64_t kLargeOps = 1'000;
constexpr std::uint32_t kLargeLive = 4;
constexpr std::uint64_t kBursts = 2'000;
constexpr std::size_t kBurstBlocks = 1024;
constexpr std::size_t kBurstsInFlight = 4;
constexpr std::uint64_t kShortBlocks = 1'000'000;
constexpr int kShortRuns = 10;

constexpr std::size_t kMinSize = 16;
constexpr std::size_t kMaxSize = 1024;

// Quantiles of the log-uniform distribution over [min, max].
class size_table {
 public:
  static constexpr std::size_t kEntries = 4096;

  size_table(std::size_t min, std::size_t max) {
    const double ratio = static_cast<double>(max) / static_cast<double>(min);
    for (std::size_t i = 0; i < kEntries; ++i) {
      double u = (static_cast<double>(i) + 0.5) / static_cast<double>(kEntries);
      double v = static_cast<double>(min) * std::pow(ratio, u);
      std::size_t s = static_cast<std::size_t>(v);
      if (s < min) s = min;
      if (s > max) s = max;
      sizes_[i] = static_cast<std::uint32_t>(s);
    }
  }
  // Uses the low 12 bits of `r`; callers take slot indices from the high bits.
  std::size_t pick(std::uint64_t r) const noexcept { return sizes_[r & (kEntries - 1)]; }

 private:
  std::uint32_t sizes_[kEntries];
};

const size_table& sizes() {
  static const size_table table(kMinSize, kMaxSize);
  return table;
}

// Writes the first 16 bytes of a new block (every block is at least 16).
inline void touch(void* p, std::uint64_t value) noexcept {
  std::uint64_t words[2] = {value, ~value};
  std::memcpy(p, words, sizeof words);
}

inline std::uint64_t first_word(const void* p) noexcept {
  std::uint64_t w;
  std::memcpy(&w, p, sizeof w);
  return w;
}

void finish(benchmark::State& state, std::uint64_t items, double threads) {
  state.SetItemsProcessed(static_cast<std::int64_t>(items));
  state.counters["peak_rss_mb"] = larder_bench::peak_rss_mib();
  state.counters["threads"] = threads;
}

// Spins until `flag` is set, yielding now and then so that a descheduled
// partner thread on a busy machine gets to run.
void wait_for(const std::atomic<bool>& flag) {
  for (unsigned spins = 0; !flag.load(std::memory_order_acquire); ++spins) {
    if ((spins & 255) == 255) {
      std::this_thread::yield();
    } else {
      larder_bench::cpu_relax();
    }
  }
}

// ---------------------------------------------------------------------------
// churn

void churn(benchmark::State& state) {
  const auto live = static_cast<std::uint32_t>(scaled(kChurnLive, 4096));
  const std::uint64_t ops = scaled(kChurnOps, 10'000);
  const size_table& table = sizes();

  for (auto _ : state) {
    rng random(kSeed);
    std::vector<void*> slots(live, nullptr);
    bool failed = false;
    for (std::uint32_t i = 0; i < live && !failed; ++i) {
      void* p = std::malloc(table.pick(random.next()));
      if (p == nullptr) {
        failed = true;
        break;
      }
      touch(p, i);
      slots[i] = p;
    }

    double elapsed = 0.0;
    if (!failed) {
      const auto start = bench_clock::now();
      for (std::uint64_t i = 0; i < ops; ++i) {
        const std::uint64_t r = random.next();
        const std::uint32_t slot = rng::below(r, live);
        std::free(slots[slot]);
        void* p = std::malloc(table.pick(r));
        slots[slot] = p;
        if (__builtin_expect(p == nullptr, 0)) {
          failed = true;
          break;
        }
        touch(p, i);
      }
      elapsed = seconds_between(start, bench_clock::now());
    }
    state.SetIterationTime(elapsed);

    for (void* p : slots) std::free(p);
    if (failed) {
      state.SkipWithError("malloc returned null");
      break;
    }
  }
  finish(state, ops, 1);
  state.counters["live_objects"] = live;
}

// ---------------------------------------------------------------------------
// pairs2t

void pairs2t(benchmark::State& state) {
  const std::uint64_t ops = scaled(kPairOpsPerThread, 10'000);
  const size_table& table = sizes();

  for (auto _ : state) {
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::atomic<bool> failed{false};
    bench_clock::time_point finished[kPairThreads];

    auto worker = [&](int index) {
      rng random(kSeed + 0x1000 + static_cast<std::uint64_t>(index));
      void* window[kPairWindow] = {};
      bool ok = true;
      for (std::uint32_t i = 0; i < kPairWindow; ++i) {
        window[i] = std::malloc(table.pick(random.next()));
        if (window[i] == nullptr) {
          ok = false;
          break;
        }
        touch(window[i], i);
      }
      ready.fetch_add(1, std::memory_order_acq_rel);
      wait_for(go);
      for (std::uint64_t i = 0; ok && i < ops; ++i) {
        const std::uint64_t r = random.next();
        const std::uint32_t slot = rng::below(r, kPairWindow);
        std::free(window[slot]);
        void* p = std::malloc(table.pick(r));
        window[slot] = p;
        if (__builtin_expect(p == nullptr, 0)) {
          ok = false;
          break;
        }
        touch(p, i);
      }
      finished[index] = bench_clock::now();
      for (void* p : window) std::free(p);
      if (!ok) failed.store(true, std::memory_order_relaxed);
    };

    std::thread threads[kPairThreads];
    for (int t = 0; t < kPairThreads; ++t) threads[t] = std::thread(worker, t);
    while (ready.load(std::memory_order_acquire) < kPairThreads) std::this_thread::yield();
    const auto start = bench_clock::now();
    go.store(true, std::memory_order_release);
    for (auto& t : threads) t.join();

    auto last = finished[0];
    for (const auto& f : finished)
      if (f > last) last = f;
    state.SetIterationTime(seconds_between(start, last));
    if (failed.load()) {
      state.SkipWithError("malloc returned null");
      break;
    }
  }
  finish(state, ops * kPairThreads, kPairThreads);
}

// ---------------------------------------------------------------------------
// prodcons

// A bounded single-producer single-consumer ring. Each side keeps a private
// copy of the other side's index and rereads the shared one only when the
// copy says the ring is full (producer) or empty (consumer), so in the steady
// state the two threads rarely touch each other's cache lines.
template <class T, std::size_t N>
class spsc_ring {
  static_assert(N >= 2 && (N & (N - 1)) == 0, "capacity must be a power of two");

 public:
  bool try_push(T value) noexcept {
    const std::size_t tail = tail_.load(std::memory_order_relaxed);
    if (tail - head_seen_ == N) {
      head_seen_ = head_.load(std::memory_order_acquire);
      if (tail - head_seen_ == N) return false;
    }
    slots_[tail & (N - 1)] = value;
    tail_.store(tail + 1, std::memory_order_release);
    return true;
  }

  bool try_pop(T* out) noexcept {
    const std::size_t head = head_.load(std::memory_order_relaxed);
    if (head == tail_seen_) {
      tail_seen_ = tail_.load(std::memory_order_acquire);
      if (head == tail_seen_) return false;
    }
    *out = slots_[head & (N - 1)];
    head_.store(head + 1, std::memory_order_release);
    return true;
  }

 private:
  // Consumer side: the next slot to read, and its copy of tail_.
  alignas(64) std::atomic<std::size_t> head_{0};
  std::size_t tail_seen_ = 0;
  // Producer side: the next slot to write, and its copy of head_.
  alignas(64) std::atomic<std::size_t> tail_{0};
  std::size_t head_seen_ = 0;
  alignas(64) T slots_[N];
};

void prodcons(benchmark::State& state) {
  const std::uint64_t blocks = scaled(kProdConsBlocks, 10'000);
  const size_table& table = sizes();

  for (auto _ : state) {
    spsc_ring<void*, kRingSlots> ring;
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::atomic<bool> producer_done{false};
    std::atomic<std::uint64_t> produced{0};
    std::atomic<bool> failed{false};
    bench_clock::time_point consumer_finished;
    std::uint64_t checksum = 0;

    std::thread producer([&] {
      rng random(kSeed + 0x2000);
      ready.fetch_add(1, std::memory_order_acq_rel);
      wait_for(go);
      std::uint64_t i = 0;
      for (; i < blocks; ++i) {
        void* p = std::malloc(table.pick(random.next()));
        if (__builtin_expect(p == nullptr, 0)) {
          failed.store(true, std::memory_order_relaxed);
          break;
        }
        touch(p, i);
        for (unsigned spins = 0; !ring.try_push(p); ++spins) {
          if ((spins & 1023) == 1023) {
            std::this_thread::yield();
          } else {
            larder_bench::cpu_relax();
          }
        }
      }
      produced.store(i, std::memory_order_relaxed);
      producer_done.store(true, std::memory_order_release);
    });

    std::thread consumer([&] {
      std::uint64_t sum = 0;
      std::uint64_t consumed = 0;
      ready.fetch_add(1, std::memory_order_acq_rel);
      wait_for(go);
      unsigned spins = 0;
      while (consumed < blocks) {
        void* p;
        if (ring.try_pop(&p)) {
          sum += first_word(p);
          std::free(p);
          ++consumed;
          continue;
        }
        if (producer_done.load(std::memory_order_acquire) &&
            consumed == produced.load(std::memory_order_relaxed)) {
          break;  // the producer stopped early; everything it made is freed
        }
        if ((++spins & 1023) == 0) {
          std::this_thread::yield();
        } else {
          larder_bench::cpu_relax();
        }
      }
      consumer_finished = bench_clock::now();
      checksum = sum;
    });

    while (ready.load(std::memory_order_acquire) < 2) std::this_thread::yield();
    const auto start = bench_clock::now();
    go.store(true, std::memory_order_release);
    producer.join();
    consumer.join();
    benchmark::DoNotOptimize(checksum);

    state.SetIterationTime(seconds_between(start, consumer_finished));
    if (failed.load()) {
      state.SkipWithError("malloc returned null");
      break;
    }
  }
  finish(state, blocks, 2);
}

// ---------------------------------------------------------------------------
// large

void large(benchmark::State& state) {
  static const size_table table(std::size_t{1} << 20, std::size_t{32} << 20);
  const std::uint64_t ops = scaled(kLargeOps, 20);
  constexpr std::size_t kPage = 4096;
  std::uint64_t pages = 0;

  for (auto _ : state) {
    rng random(kSeed + 0x3000);
    void* slots[kLargeLive] = {};
    bool failed = false;
    pages = 0;
    const auto start = bench_clock::now();
    for (std::uint64_t i = 0; i < ops; ++i) {
      const std::uint64_t r = random.next();
      const std::uint32_t slot = rng::below(r, kLargeLive);
      std::free(slots[slot]);
      const std::size_t size = table.pick(r);
      auto* p = static_cast<unsigned char*>(std::malloc(size));
      slots[slot] = p;
      if (__builtin_expect(p == nullptr, 0)) {
        failed = true;
        break;
      }
      for (std::size_t at = 0; at < size; at += kPage) p[at] = static_cast<unsigned char>(i);
      p[size - 1] = static_cast<unsigned char>(i);
      pages += (size + kPage - 1) / kPage;
    }
    state.SetIterationTime(seconds_between(start, bench_clock::now()));
    for (void* p : slots) std::free(p);
    if (failed) {
      state.SkipWithError("malloc returned null");
      break;
    }
  }
  finish(state, pages, 1);
  state.counters["blocks"] = static_cast<double>(ops);
}

// ---------------------------------------------------------------------------
// bursty

// Bursts travel whole from the allocating thread to a freeing thread.
class burst_queue {
 public:
  void push(std::vector<void*>* burst) {
    std::unique_lock<std::mutex> guard(lock_);
    bursts_.push_back(burst);
    ready_.notify_one();
  }
  // nullptr once closed and empty.
  std::vector<void*>* pop() {
    std::unique_lock<std::mutex> guard(lock_);
    ready_.wait(guard, [&] { return !bursts_.empty() || closed_; });
    if (bursts_.empty()) return nullptr;
    std::vector<void*>* burst = bursts_.front();
    bursts_.pop_front();
    return burst;
  }
  void close() {
    std::lock_guard<std::mutex> guard(lock_);
    closed_ = true;
    ready_.notify_all();
  }

 private:
  std::mutex lock_;
  std::condition_variable ready_;
  std::deque<std::vector<void*>*> bursts_;
  bool closed_ = false;
};

void bursty(benchmark::State& state) {
  static const size_table table(kMinSize, std::size_t{256} << 10);
  const std::uint64_t bursts = scaled(kBursts, 20);
  constexpr int kFreers = 2;

  for (auto _ : state) {
    // The burst buffers are made up front and cycle between the threads, so
    // the only allocation in the timed part is the workload's own.
    std::vector<std::vector<void*>> buffers(kBurstsInFlight);
    for (auto& b : buffers) b.reserve(kBurstBlocks);
    burst_queue empty;  // buffers back to the allocating thread
    burst_queue full[kFreers];
    for (auto& b : buffers) empty.push(&b);
    std::atomic<bool> failed{false};
    bench_clock::time_point finished[kFreers];

    auto freer = [&](int index) {
      while (std::vector<void*>* burst = full[index].pop()) {
        for (void* p : *burst) std::free(p);
        burst->clear();
        empty.push(burst);
      }
      finished[index] = bench_clock::now();
    };
    std::thread threads[kFreers];
    for (int t = 0; t < kFreers; ++t) threads[t] = std::thread(freer, t);

    rng random(kSeed + 0x4000);
    const auto start = bench_clock::now();
    std::uint64_t made = 0;
    for (std::uint64_t b = 0; b < bursts && !failed.load(std::memory_order_relaxed); ++b) {
      std::vector<void*>* burst = empty.pop();
      for (std::size_t i = 0; i < kBurstBlocks; ++i) {
        void* p = std::malloc(table.pick(random.next()));
        if (__builtin_expect(p == nullptr, 0)) {
          failed.store(true, std::memory_order_relaxed);
          break;
        }
        touch(p, made++);
        burst->push_back(p);
      }
      full[b % kFreers].push(burst);
    }
    for (auto& q : full) q.close();
    for (auto& t : threads) t.join();
    auto last = finished[0];
    for (const auto& f : finished)
      if (f > last) last = f;
    state.SetIterationTime(seconds_between(start, last));
    if (failed.load()) {
      state.SkipWithError("malloc returned null");
      break;
    }
  }
  finish(state, bursts * kBurstBlocks, 1 + kFreers);
}

// ---------------------------------------------------------------------------
// shortlived

// The child's whole program. Returns from main afterwards, so the C
// library's exit (atexit handlers, the allocator's teardown) runs as in a
// real program.
int shortlived_child() {
  const std::uint64_t blocks = scaled(kShortBlocks, 10'000);
  const size_table& table = sizes();
  rng random(kSeed + 0x5000);
  constexpr std::uint32_t kTemporaries = 64;
  void* temporaries[kTemporaries] = {};
  std::uint64_t sum = 0;
  for (std::uint64_t i = 0; i < blocks; ++i) {
    const std::uint64_t r = random.next();
    void* p = std::malloc(table.pick(r));
    if (p == nullptr) return 2;
    touch(p, i);
    // A quarter are temporaries, freed a while later; the rest live until
    // the exit, which frees nothing.
    if ((r >> 40) % 4 == 0) {
      const std::uint32_t slot = rng::below(r >> 12, kTemporaries);
      if (temporaries[slot] != nullptr) sum += first_word(temporaries[slot]);
      std::free(temporaries[slot]);
      temporaries[slot] = p;
    } else {
      sum += first_word(p);
    }
  }
  benchmark::DoNotOptimize(sum);
  return 0;
}

void shortlived(benchmark::State& state) {
  const std::uint64_t blocks = scaled(kShortBlocks, 10'000);
  char scale_arg[64];
  std::snprintf(scale_arg, sizeof scale_arg, "--scale=%.17g", larder_bench::scale_factor());
  char child_flag[] = "--shortlived-child";
  char* child_argv[] = {const_cast<char*>("/proc/self/exe"), child_flag, scale_arg, nullptr};
  double peak_kib = 0.0;

  for (auto _ : state) {
    double elapsed = 0.0;
    bool failed = false;
    for (int run = 0; run < kShortRuns && !failed; ++run) {
      const auto start = bench_clock::now();
      pid_t pid = 0;
      if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, child_argv, environ) != 0) {
        failed = true;
        break;
      }
      int status = 0;
      struct rusage usage;
      std::memset(&usage, 0, sizeof usage);
      if (wait4(pid, &status, 0, &usage) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) failed = true;
      elapsed += seconds_between(start, bench_clock::now());
      if (static_cast<double>(usage.ru_maxrss) > peak_kib) peak_kib = static_cast<double>(usage.ru_maxrss);
    }
    state.SetIterationTime(elapsed);
    if (failed) {
      state.SkipWithError("the child program failed");
      break;
    }
  }
  finish(state, blocks * kShortRuns, 1);
  state.counters["peak_rss_mb"] = peak_kib / 1024.0;
}

BENCHMARK(churn)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(pairs2t)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(prodcons)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(large)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(bursty)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(shortlived)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  // The shortlived child: nothing but its own allocations, before Google
  // Benchmark sets anything up.
  if (argc >= 2 && std::strcmp(argv[1], "--shortlived-child") == 0) {
    bool taken = false;
    if (argc >= 3 && !larder_bench::take_scale_flag(argv[2], &taken)) return 1;
    return shortlived_child();
  }
  benchmark::Initialize(&argc, argv);
  for (int i = 1; i < argc; ++i) {
    bool taken = false;
    if (!larder_bench::take_scale_flag(argv[i], &taken)) {
      std::fprintf(stderr, "%s: bad value in %s (want a positive number)\n", argv[0], argv[i]);
      return 1;
    }
    if (!taken) {
      std::fprintf(stderr, "%s: unknown argument %s\n", argv[0], argv[i]);
      return 1;
    }
  }
  const char* preload = std::getenv("LD_PRELOAD");
  benchmark::AddCustomContext("ld_preload", preload != nullptr ? preload : "");
  benchmark::AddCustomContext("scale", std::to_string(larder_bench::scale_factor()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
