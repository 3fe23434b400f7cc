// Fault-back latency of tier migration (larder/tiers.hpp, docs/tiers.md):
// the time from touching an evicted page to reading it, for one page of a
// pod, and for every page of a pod touched in order (with the pod's rest
// prefetched after its second fault, and without). The pod is evicted
// before each timed step (not timed). The tier's file lies in
// LARDER_BENCH_DIR (default: the build folder, a disk; /tmp may be a
// tmpfs). Public API only.
//
//   fault_back/one_page/shm:<0|1>              time per touch
//   fault_back/whole_pod/prefetch:<0|1>/shm:<0|1>  time per pod of 1 MiB,
//                                              counters ns_per_page, bytes/s
#include <larder/larder.hpp>
#include <larder/tiers.hpp>

#include <benchmark/benchmark.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr std::size_t kPage = 4096;
constexpr std::size_t kPodPages = 256;  // 1 MiB

struct evicted_pod {
  larder::heap h;
  larder::pod pod;
  std::vector<volatile unsigned char*> pages;
  std::string shm;

  bool open(larder::backing kind, bool prefetch) {
    larder::heap_options o;
    o.kind = kind;
    o.mode = larder::open_mode::create;
    o.reserve = std::size_t{1} << 30;
    if (kind == larder::backing::shm) {
      shm = "/larder-fault-back-" + std::to_string(::getpid());
      o.name = shm;
    }
    if (!larder::heap::open(o, &h).ok() || !h.make_pod("cold", &pod).ok()) return false;
    for (std::size_t i = 0; i < kPodPages; ++i) {
      auto* p = static_cast<unsigned char*>(pod.allocate(kPage, kPage));
      if (p == nullptr) return false;
      std::memset(p, static_cast<int>(i), kPage);
      pages.push_back(p);
    }
    const char* dir = std::getenv("LARDER_BENCH_DIR");
    larder::migration_policy policy;
    policy.prefetch_pod = prefetch;
    policy.tiers.push_back({larder::tier_kind::disk,
                            std::string(dir != nullptr ? dir : LARDER_BENCH_DEFAULT_DIR) + "/fault_back_bench.tier",
                            std::size_t{64} << 20});
    return larder::set_migration_policy(h, policy).ok();
  }
  ~evicted_pod() {
    (void)h.close();
    if (!shm.empty()) (void)larder::heap::remove(larder::backing::shm, shm);
  }
};

larder::backing backing_of(std::int64_t arg) { return arg == 0 ? larder::backing::anonymous : larder::backing::shm; }

void one_page(benchmark::State& state) {
  evicted_pod e;
  if (!e.open(backing_of(state.range(0)), false)) {
    state.SkipWithError("no heap with a disk tier and userfaultfd missing faults here");
    return;
  }
  std::size_t next = 0;
  for (auto _ : state) {
    if (!larder::evict_pod(e.h, e.pod).ok()) {
      state.SkipWithError("evict_pod failed");
      return;
    }
    auto start = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(e.pages[next][17]);
    auto took = std::chrono::steady_clock::now() - start;
    state.SetIterationTime(std::chrono::duration<double>(took).count());
    next = (next + 37) % kPodPages;
  }
}

void whole_pod(benchmark::State& state) {
  evicted_pod e;
  if (!e.open(backing_of(state.range(1)), state.range(0) != 0)) {
    state.SkipWithError("no heap with a disk tier and userfaultfd missing faults here");
    return;
  }
  for (auto _ : state) {
    if (!larder::evict_pod(e.h, e.pod).ok()) {
      state.SkipWithError("evict_pod failed");
      return;
    }
    auto start = std::chrono::steady_clock::now();
    for (volatile unsigned char* p : e.pages) benchmark::DoNotOptimize(p[17]);
    auto took = std::chrono::steady_clock::now() - start;
    state.SetIterationTime(std::chrono::duration<double>(took).count());
  }
  state.counters["ns_per_page"] = benchmark::Counter(static_cast<double>(state.iterations() * kPodPages),
                                                     benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kPodPages * kPage));
}

}  // namespace

BENCHMARK(one_page)->Name("fault_back/one_page")->ArgNames({"shm"})->Arg(0)->Arg(1)->UseManualTime()->Iterations(2000)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(whole_pod)
    ->Name("fault_back/whole_pod")
    ->ArgNames({"prefetch", "shm"})
    ->Args({1, 0})
    ->Args({0, 0})
    ->Args({1, 1})
    ->Args({0, 1})
    ->UseManualTime()
    ->Iterations(100)
    ->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
