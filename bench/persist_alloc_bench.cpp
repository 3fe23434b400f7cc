// larder_persist_bench: allocation in a file-backed persistent heap, larder
// against PMDK's libpmemobj, on the same file system.
//
// Both heaps live in a file in the directory given by --dir=PATH (default
// /dev/shm, a tmpfs, so that neither side waits for a disk). Each workload
// deletes its file before it starts and after it ends. The object handles
// (larder: raw pointers, pmemobj: PMEMoid) are kept in an array in ordinary
// memory, so only the allocators' own persistent-memory work is measured.
//
// Workloads (N = 1,000,000 objects of 64 bytes unless --count=N or the scale
// factor says otherwise; each runs once with its own timing):
//
//   larder_alloc64   creates a heap (untimed), then allocates N blocks of 64
//                    bytes with heap::allocate, writing the first 8 bytes of
//                    each; items_per_second counts allocations.
//   larder_free64    allocates N blocks (untimed), then frees them all with
//                    heap::deallocate; items_per_second counts frees.
//   pmemobj_alloc64  creates a pool (untimed) big enough for N objects, then
//                    allocates N objects of 64 bytes with pmemobj_alloc (no
//                    constructor: the plain, non-transactional allocation),
//                    writing the first 8 bytes of each.
//   pmemobj_free64   allocates N objects (untimed), then frees them all with
//                    pmemobj_free.
//   larder_reuse64,  allocate N objects and free them all (untimed), then
//   pmemobj_reuse64  allocate N again (timed): the steady state of a heap
//                    whose memory the kernel has already faulted in, where
//                    only the allocators' own work is left. The *_alloc64
//                    workloads instead include the first touch of every
//                    page, which on tmpfs costs each side the same kernel
//                    page-clearing work (pmemobj partly inside the untimed
//                    pool creation).
//
// The two libraries promise different things: pmemobj_alloc is failure-atomic
// and durable when it returns, while a larder heap is durable after close().
// So each workload also reports close_ms, the time to close the heap or pool
// (for larder that is the msync that makes everything durable), and
// open_ms, the time to create it; compare.py shows the ratio both without and
// with the close.
//
// libpmemobj settings: on a file system that is not real persistent memory
// (tmpfs included), libpmem msyncs the file for every persist (two system
// calls per pmemobj_alloc), which only costs time on tmpfs. Unless the
// environment says otherwise, this program runs pmemobj with
//   PMEM_IS_PMEM_FORCE=1  treat the mapping as persistent memory: persist
//                         with CPU instructions instead of msync, and
//   PMEM_NO_FLUSH=1       skip the cache-line flushes and keep only the
//                         store fences, as libpmem does on machines whose
//                         CPU caches are inside the persistence domain (eADR).
// That is the fastest configuration in which pmemobj still follows its
// crash-consistency protocol, and the tmpfs underneath keeps nothing across a
// restart anyway, so flushing would buy nothing. Set PMEM_NO_FLUSH=0 (and/or
// PMEM_IS_PMEM_FORCE=0) to measure the slower configurations. libpmem reads
// PMEM_NO_FLUSH when it is loaded, so when the program has to add it to the
// environment it re-executes itself once (see main).
//
// Build switches: LARDER_PERSIST_BENCH_NO_LARDER leaves out the larder half,
// LARDER_PERSIST_BENCH_NO_PMEMOBJ the pmemobj half.
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "bench_setup.hpp"

#if !defined(LARDER_PERSIST_BENCH_NO_LARDER)
#include <larder/larder.hpp>
#endif

#if !defined(LARDER_PERSIST_BENCH_NO_PMEMOBJ)
#include <libpmemobj.h>
#endif

namespace {

using larder_bench::bench_clock;
using larder_bench::millis;
using larder_bench::remove_file;
using larder_bench::seconds_between;

constexpr std::uint64_t kDefaultCount = 1'000'000;
constexpr std::size_t kObjectSize = 64;

std::string g_dir = "/dev/shm";
std::uint64_t g_count = 0;  // 0: kDefaultCount times the scale factor

std::uint64_t object_count() {
  return g_count != 0 ? g_count : larder_bench::scaled(kDefaultCount, 1000);
}

void finish(benchmark::State& state, std::uint64_t items, double open_ms, double close_ms) {
  state.SetItemsProcessed(static_cast<std::int64_t>(items));
  state.counters["objects"] = static_cast<double>(items);
  state.counters["open_ms"] = open_ms;
  state.counters["close_ms"] = close_ms;
  state.counters["peak_rss_mb"] = larder_bench::peak_rss_mib();
}

// Which part of a workload is timed.
enum class phase { alloc, free, reuse };

inline void write_first_word(void* p, std::uint64_t value) noexcept {
  std::memcpy(p, &value, sizeof value);
}

// ---------------------------------------------------------------------------
// larder

#if !defined(LARDER_PERSIST_BENCH_NO_LARDER)

// Runs one larder workload; `timed` says which phase is measured.
void larder_run(benchmark::State& state, phase timed) {
  const std::uint64_t n = object_count();
  const std::string path = larder_bench::bench_file(g_dir, "larder-persist-bench") + ".heap";
  double open_ms = 0.0;
  double close_ms = 0.0;

  for (auto _ : state) {
    remove_file(path);
    std::vector<void*> blocks(n, nullptr);
    std::string failure;
    double elapsed = 0.0;
    try {
      larder::heap_options options;
      options.kind = larder::backing::file;
      options.name = path;
      options.mode = larder::open_mode::create;
      const auto t_open = bench_clock::now();
      larder::heap h(options);
      const auto t_start = bench_clock::now();
      open_ms = millis(t_open, t_start);

      auto allocate_all = [&] {
        std::uint64_t made = 0;
        for (; made < n; ++made) {
          void* p = h.allocate(kObjectSize);
          if (p == nullptr) break;
          write_first_word(p, made);
          blocks[made] = p;
        }
        return made;
      };
      std::uint64_t made = allocate_all();
      auto t_allocated = bench_clock::now();
      if (timed == phase::reuse && made == n) {
        for (std::uint64_t i = 0; i < made; ++i) larder::heap::deallocate(blocks[i]);
        const auto t_again = bench_clock::now();
        made = allocate_all();
        t_allocated = bench_clock::now();
        elapsed = seconds_between(t_again, t_allocated);
      }
      if (made < n) failure = "larder heap::allocate returned null";

      if (timed == phase::free) {
        const auto t_free = bench_clock::now();
        for (std::uint64_t i = 0; i < made; ++i) larder::heap::deallocate(blocks[i]);
        elapsed = seconds_between(t_free, bench_clock::now());
      } else if (timed == phase::alloc) {
        elapsed = seconds_between(t_start, t_allocated);
      }

      const auto t_close = bench_clock::now();
      larder::status s = h.close();
      close_ms = millis(t_close, bench_clock::now());
      if (!s.ok() && failure.empty()) failure = "larder heap::close: " + s.to_string();
    } catch (const std::exception& e) {
      failure = std::string("larder: ") + e.what();
    }
    remove_file(path);
    state.SetIterationTime(elapsed);
    if (!failure.empty()) {
      state.SkipWithError(failure.c_str());
      break;
    }
  }
  finish(state, n, open_ms, close_ms);
}

void larder_alloc64(benchmark::State& state) { larder_run(state, phase::alloc); }
void larder_free64(benchmark::State& state) { larder_run(state, phase::free); }
void larder_reuse64(benchmark::State& state) { larder_run(state, phase::reuse); }

BENCHMARK(larder_alloc64)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(larder_free64)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(larder_reuse64)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

#endif  // !LARDER_PERSIST_BENCH_NO_LARDER

// ---------------------------------------------------------------------------
// pmemobj

#if !defined(LARDER_PERSIST_BENCH_NO_PMEMOBJ)

// A 64-byte object costs pmemobj well under 256 bytes of pool (its header
// and allocation-class rounding included); leave generous room for the pool's
// own metadata.
std::size_t pool_size(std::uint64_t n) {
  std::size_t want = static_cast<std::size_t>(n) * 256 + (std::size_t{256} << 20);
  std::size_t floor = std::size_t{1} << 30;
  return want < floor ? floor : want;
}

std::string pmemobj_failure(const char* what) {
  const char* msg = pmemobj_errormsg();
  return std::string(what) + ": " + (msg != nullptr && *msg != '\0' ? msg : std::strerror(errno));
}

void pmemobj_run(benchmark::State& state, phase timed) {
  const std::uint64_t n = object_count();
  const std::string path = larder_bench::bench_file(g_dir, "pmemobj-persist-bench") + ".pool";
  double open_ms = 0.0;
  double close_ms = 0.0;

  for (auto _ : state) {
    remove_file(path);
    std::vector<PMEMoid> oids(n, OID_NULL);
    std::string failure;
    double elapsed = 0.0;

    const auto t_open = bench_clock::now();
    PMEMobjpool* pool = pmemobj_create(path.c_str(), "larder_persist_bench", pool_size(n), 0600);
    const auto t_start = bench_clock::now();
    open_ms = millis(t_open, t_start);
    if (pool == nullptr) {
      failure = pmemobj_failure("pmemobj_create");
    } else {
      auto allocate_all = [&] {
        std::uint64_t made = 0;
        for (; made < n; ++made) {
          if (pmemobj_alloc(pool, &oids[made], kObjectSize, 0, nullptr, nullptr) != 0) break;
          write_first_word(pmemobj_direct(oids[made]), made);
        }
        return made;
      };
      std::uint64_t made = allocate_all();
      auto t_allocated = bench_clock::now();
      if (timed == phase::reuse && made == n) {
        for (std::uint64_t i = 0; i < made; ++i) pmemobj_free(&oids[i]);
        const auto t_again = bench_clock::now();
        made = allocate_all();
        t_allocated = bench_clock::now();
        elapsed = seconds_between(t_again, t_allocated);
      }
      if (made < n) failure = pmemobj_failure("pmemobj_alloc");

      if (timed == phase::free) {
        const auto t_free = bench_clock::now();
        for (std::uint64_t i = 0; i < made; ++i) pmemobj_free(&oids[i]);
        elapsed = seconds_between(t_free, bench_clock::now());
      } else if (timed == phase::alloc) {
        elapsed = seconds_between(t_start, t_allocated);
      }

      const auto t_close = bench_clock::now();
      pmemobj_close(pool);
      close_ms = millis(t_close, bench_clock::now());
    }
    remove_file(path);
    state.SetIterationTime(elapsed);
    if (!failure.empty()) {
      state.SkipWithError(failure.c_str());
      break;
    }
  }
  finish(state, n, open_ms, close_ms);
}

void pmemobj_alloc64(benchmark::State& state) { pmemobj_run(state, phase::alloc); }
void pmemobj_free64(benchmark::State& state) { pmemobj_run(state, phase::free); }
void pmemobj_reuse64(benchmark::State& state) { pmemobj_run(state, phase::reuse); }

BENCHMARK(pmemobj_alloc64)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(pmemobj_free64)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(pmemobj_reuse64)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

#endif  // !LARDER_PERSIST_BENCH_NO_PMEMOBJ

}  // namespace

int main(int argc, char** argv) {
#if !defined(LARDER_PERSIST_BENCH_NO_PMEMOBJ)
  // libpmem reads PMEM_NO_FLUSH in its load-time constructor, before main, so
  // adding it takes a fresh start of the program with the new environment.
  // PMEM_IS_PMEM_FORCE is read on first use, but is set the same way.
  if (std::getenv("PMEM_NO_FLUSH") == nullptr) {
    setenv("PMEM_IS_PMEM_FORCE", "1", /*overwrite=*/0);
    setenv("PMEM_NO_FLUSH", "1", /*overwrite=*/0);
    ::execv("/proc/self/exe", argv);
    std::fprintf(stderr, "warning: cannot restart with PMEM_NO_FLUSH=1 (%s); pmemobj keeps flushing\n",
                 std::strerror(errno));
  }
  setenv("PMEM_IS_PMEM_FORCE", "1", /*overwrite=*/0);
#endif

  benchmark::Initialize(&argc, argv);
  for (int i = 1; i < argc; ++i) {
    const char* value = nullptr;
    bool taken = false;
    if (!larder_bench::take_scale_flag(argv[i], &taken)) {
      std::fprintf(stderr, "%s: bad value in %s (want a positive number)\n", argv[0], argv[i]);
      return 1;
    }
    if (taken) continue;
    if (larder_bench::take_value(argv[i], "--dir=", &value)) {
      if (*value == '\0') {
        std::fprintf(stderr, "%s: --dir needs a path\n", argv[0]);
        return 1;
      }
      g_dir = value;
    } else if (larder_bench::take_value(argv[i], "--count=", &value)) {
      char* end = nullptr;
      unsigned long long v = std::strtoull(value, &end, 10);
      if (end == value || *end != '\0' || v == 0) {
        std::fprintf(stderr, "%s: bad value in %s\n", argv[0], argv[i]);
        return 1;
      }
      g_count = v;
    } else {
      std::fprintf(stderr, "%s: unknown argument %s\n", argv[0], argv[i]);
      return 1;
    }
  }

  const char* force = std::getenv("PMEM_IS_PMEM_FORCE");
  const char* no_flush = std::getenv("PMEM_NO_FLUSH");
  benchmark::AddCustomContext("dir", g_dir);
  benchmark::AddCustomContext("dir_fs", larder_bench::file_system_of(g_dir));
  benchmark::AddCustomContext("objects", std::to_string(object_count()));
  benchmark::AddCustomContext("PMEM_IS_PMEM_FORCE", force != nullptr ? force : "");
  benchmark::AddCustomContext("PMEM_NO_FLUSH", no_flush != nullptr ? no_flush : "");
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
