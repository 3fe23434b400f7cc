// tier_bench: write and read throughput of the persistent-memory tier
// (tiers/pmem) and the GPU tier (tiers/gpu), in bytes per second, for one
// pod of --size MiB in pages. bench/micro-style: it reaches into the tiers
// directly. The disk tier has its own (tier_disk_bench, beside fio).
//
//   BM_PmemWritePod   the pod written (non-temporal copies, then drained;
//                     on an emulated file each run of pages is msync'ed),
//                     then dropped untimed: the next write reuses the same
//                     slots, so the file's growth is not what is measured
//                     (one untimed write lays it out first)
//   BM_PmemReadPod    the same pod read back into the same memory
//   BM_GpuWritePod    the pod copied to device memory through pinned
//                     staging, then dropped untimed
//   BM_GpuReadPod     the same pod read back from the device
//   BM_MemcpyPod      the reference: the pod copied by memcpy into a
//                     buffer of its size, already touched
// The GPU benchmarks are registered only where a CUDA device opens; the
// context line "gpu" says which device, or why there is none.
//
// Options (before Google Benchmark's own):
//   --file=PATH   the pmem tier's file (default: LARDER_BENCH_DIR, else the
//                 build folder, /tier_bench.pmem); removed at the end. On a
//                 DAX file system it is real persistent memory.
//   --size=MIB    pod size (default 64)
#include "tiers/pmem/pmem_tier.hpp"
#if LARDER_BENCH_GPU
#include "tiers/gpu/gpu_tier.hpp"
#endif

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace larder::tiers;

struct settings {
  std::string file;
  std::size_t size_mib = 64;
};

settings& config() {
  static settings s;
  return s;
}

// A pod's pages in one page-aligned buffer of random bytes.
struct pod_pages {
  pod_pages() {
    std::size_t bytes = config().size_mib << 20;
    buffer = static_cast<char*>(std::aligned_alloc(kTierPageSize, bytes));
    std::mt19937_64 random(1);
    for (std::size_t i = 0; i < bytes; i += 8) {
      std::uint64_t v = random();
      std::memcpy(buffer + i, &v, 8);
    }
    for (std::size_t i = 0; i < bytes / kTierPageSize; ++i) pages.push_back(page_ref{i, buffer + i * kTierPageSize});
  }
  ~pod_pages() { std::free(buffer); }
  char* buffer = nullptr;
  std::vector<page_ref> pages;
};

pod_pages& pod() {
  static pod_pages p;
  return p;
}

void check(benchmark::State& state, const larder::status& s) {
  if (!s.ok()) state.SkipWithError(s.to_string().c_str());
}

void write_pod(benchmark::State& state, tier& t) {
  const std::vector<page_ref>& pages = pod().pages;
  for (auto _ : state) {
    check(state, t.write(1, pages.data(), pages.size()));
    state.PauseTiming();
    check(state, t.drop(1));
    state.ResumeTiming();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * pages.size() * kTierPageSize));
}

void read_pod(benchmark::State& state, tier& t) {
  const std::vector<page_ref>& pages = pod().pages;
  check(state, t.write(1, pages.data(), pages.size()));
  for (auto _ : state) check(state, t.read(1, pages.data(), pages.size()));
  check(state, t.drop(1));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * pages.size() * kTierPageSize));
}

// Lays the tier out with one untimed write, as fio lays out its file.
void lay_out(tier& t, const char* what) {
  const std::vector<page_ref>& pages = pod().pages;
  if (!t.write(1, pages.data(), pages.size()).ok() || !t.drop(1).ok()) {
    std::fprintf(stderr, "tier_bench: cannot lay out the %s tier\n", what);
    std::exit(1);
  }
}

void BM_MemcpyPod(benchmark::State& state) {
  std::size_t bytes = pod().pages.size() * kTierPageSize;
  std::vector<char> copy(bytes, 1);
  for (auto _ : state) {
    std::memcpy(copy.data(), pod().buffer, bytes);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
}
BENCHMARK(BM_MemcpyPod)->Unit(benchmark::kMillisecond)->UseRealTime();

std::unique_ptr<pmem_tier>& pmem() {
  static std::unique_ptr<pmem_tier> t;
  return t;
}

void BM_PmemWritePod(benchmark::State& state) { write_pod(state, *pmem()); }
BENCHMARK(BM_PmemWritePod)->Unit(benchmark::kMillisecond)->UseRealTime();
void BM_PmemReadPod(benchmark::State& state) { read_pod(state, *pmem()); }
BENCHMARK(BM_PmemReadPod)->Unit(benchmark::kMillisecond)->UseRealTime();

void open_pmem() {
  pmem_tier_options options;
  options.capacity_bytes = 2 * config().size_mib << 20;
  if (larder::status s = pmem_tier::open(config().file, options, &pmem()); !s.ok()) {
    std::fprintf(stderr, "tier_bench: %s\n", s.to_string().c_str());
    std::exit(1);
  }
  lay_out(*pmem(), "pmem");
  benchmark::AddCustomContext("pmem", std::string(pmem()->mode()) + " on " + config().file);
}

#if LARDER_BENCH_GPU
std::unique_ptr<gpu_tier>& gpu() {
  static std::unique_ptr<gpu_tier> t;
  return t;
}

void BM_GpuWritePod(benchmark::State& state) { write_pod(state, *gpu()); }
void BM_GpuReadPod(benchmark::State& state) { read_pod(state, *gpu()); }

void open_gpu() {
  gpu_tier_options options;
  options.capacity_bytes = 2 * config().size_mib << 20;
  if (larder::status s = gpu_tier::open(options, &gpu()); !s.ok()) {
    benchmark::AddCustomContext("gpu", "none: " + s.to_string());
    return;
  }
  lay_out(*gpu(), "GPU");
  benchmark::AddCustomContext("gpu", "CUDA device 0");
  benchmark::RegisterBenchmark("BM_GpuWritePod", BM_GpuWritePod)->Unit(benchmark::kMillisecond)->UseRealTime();
  benchmark::RegisterBenchmark("BM_GpuReadPod", BM_GpuReadPod)->Unit(benchmark::kMillisecond)->UseRealTime();
}
#else
void open_gpu() { benchmark::AddCustomContext("gpu", "none: built without the CUDA toolkit"); }
#endif

// Takes this benchmark's options out of argv; false on a bad value.
bool parse_options(int* argc, char** argv) {
  settings& s = config();
  const char* dir = std::getenv("LARDER_BENCH_DIR");
  s.file = std::string(dir != nullptr ? dir : LARDER_BENCH_DEFAULT_DIR) + "/tier_bench.pmem";
  int kept = 1;
  for (int i = 1; i < *argc; ++i) {
    std::string_view arg = argv[i];
    if (arg.substr(0, 7) == "--file=") {
      s.file = std::string(arg.substr(7));
    } else if (arg.substr(0, 7) == "--size=") {
      s.size_mib = std::strtoull(argv[i] + 7, nullptr, 10);
    } else {
      argv[kept++] = argv[i];
    }
  }
  *argc = kept;
  return s.size_mib > 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (!parse_options(&argc, argv)) {
    std::fprintf(stderr, "tier_bench: --size must be positive\n");
    return 2;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  open_pmem();
  open_gpu();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  pmem().reset();
#if LARDER_BENCH_GPU
  gpu().reset();
#endif
  return 0;
}
