// tier_disk_bench: write and read throughput of the disk tier
// (tiers/disk), in bytes per second. bench/micro-style: it reaches into
// tiers/disk directly. bench/tier_disk_compare.py runs it beside fio on the
// same file with the same block size and queue depth.
//
//   BM_WritePod/<memory>  one pod of --size MiB (adjacent pages, so
//                 requests of --block KiB), then dropped untimed: the next
//                 write reuses the same slots, as fio rewrites its file (the
//                 file is laid out by one untimed write first, as fio lays
//                 out its own). memory 0 (pod): the pages live in --size MiB
//                 of their own, as a pod's do; 1 (cycled): they cycle over
//                 --depth x --block bytes, as fio's buffers do. Transfers
//                 into fresh memory cost the kernel more (pinning pages the
//                 device has not seen, cold caches), so 1 is the like-for-
//                 like comparison with fio and 0 what a migrator sees.
//   BM_ReadPod/<memory>   the same pod read back into the same memory
//
// Options (before Google Benchmark's own):
//   --file=PATH   the tier's file (default: LARDER_BENCH_DIR, else the build
//                 folder, /tier_disk_bench.file); removed at the end
//   --size=MIB    pod size (default 256)
//   --block=KIB   largest request (default 1024)
//   --depth=N     requests in flight (default 32)
// The context lines say whether the file was opened with O_DIRECT and
// whether io_uring was used.
#include "tiers/disk/disk_tier.hpp"

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace {

using namespace larder::tiers;

struct settings {
  std::string file;
  std::size_t size_mib = 256;
  std::size_t block_kib = 1024;
  unsigned depth = 32;
};

settings& config() {
  static settings s;
  return s;
}

// A pod's pages in one page-aligned buffer of random bytes, and the tier.
struct fixture {
  fixture() {
    const settings& s = config();
    disk_tier_options options;
    options.capacity_bytes = 2 * s.size_mib << 20;
    options.max_request_bytes = s.block_kib << 10;
    options.queue_depth = s.depth;
    if (larder::status st = disk_tier::open(s.file, options, &tier); !st.ok()) {
      std::fprintf(stderr, "tier_disk_bench: %s\n", st.to_string().c_str());
      std::exit(1);
    }
    std::size_t bytes = s.size_mib << 20;
    buffer = static_cast<char*>(std::aligned_alloc(kTierPageSize, bytes));
    std::mt19937_64 random(1);
    for (std::size_t i = 0; i < bytes; i += 8) {
      std::uint64_t v = random();
      std::memcpy(buffer + i, &v, 8);
    }
    std::size_t cycle = s.depth * (s.block_kib << 10) / kTierPageSize;
    for (std::size_t i = 0; i < bytes / kTierPageSize; ++i) {
      pages.push_back(page_ref{i, buffer + i * kTierPageSize});
      cycled.push_back(page_ref{i, buffer + (i % cycle) * kTierPageSize});
    }
    // Lays the file out first, as fio does: writes that extend a file
    // (block allocation, size updates) are not what is measured.
    if (!tier->write(1, pages.data(), pages.size()).ok() || !tier->drop(1).ok()) {
      std::fprintf(stderr, "tier_disk_bench: cannot lay out %s\n", s.file.c_str());
      std::exit(1);
    }
    benchmark::AddCustomContext("direct", tier->direct() ? "yes" : "no (buffered)");
    benchmark::AddCustomContext("io_uring", tier->uses_uring() ? "yes" : "no (pread/pwrite)");
  }
  ~fixture() { std::free(buffer); }
  const std::vector<page_ref>& memory(const benchmark::State& state) const { return state.range(0) ? cycled : pages; }
  std::unique_ptr<disk_tier> tier;
  char* buffer = nullptr;
  std::vector<page_ref> pages;
  std::vector<page_ref> cycled;
};

fixture& shared() {
  static fixture f;
  return f;
}

void check(benchmark::State& state, const larder::status& s) {
  if (!s.ok()) state.SkipWithError(s.to_string().c_str());
}

void BM_WritePod(benchmark::State& state) {
  fixture& f = shared();
  const std::vector<page_ref>& pages = f.memory(state);
  for (auto _ : state) {
    check(state, f.tier->write(1, pages.data(), pages.size()));
    state.PauseTiming();
    check(state, f.tier->drop(1));
    state.ResumeTiming();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * f.pages.size() * kTierPageSize));
}
BENCHMARK(BM_WritePod)->ArgName("memory")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_ReadPod(benchmark::State& state) {
  fixture& f = shared();
  const std::vector<page_ref>& pages = f.memory(state);
  check(state, f.tier->write(1, pages.data(), pages.size()));
  for (auto _ : state) check(state, f.tier->read(1, pages.data(), pages.size()));
  check(state, f.tier->drop(1));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * f.pages.size() * kTierPageSize));
}
BENCHMARK(BM_ReadPod)->ArgName("memory")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

// Takes this benchmark's options out of argv; false on a bad value.
bool parse_options(int* argc, char** argv) {
  settings& s = config();
  const char* dir = std::getenv("LARDER_BENCH_DIR");
  s.file = std::string(dir != nullptr ? dir : LARDER_BENCH_DEFAULT_DIR) + "/tier_disk_bench.file";
  int kept = 1;
  for (int i = 1; i < *argc; ++i) {
    std::string_view arg = argv[i];
    auto number = [&](std::string_view prefix, auto* out) {
      if (arg.substr(0, prefix.size()) != prefix) return false;
      *out = static_cast<std::remove_pointer_t<decltype(out)>>(std::strtoull(argv[i] + prefix.size(), nullptr, 10));
      return true;
    };
    if (arg.substr(0, 7) == "--file=") {
      s.file = std::string(arg.substr(7));
    } else if (!number("--size=", &s.size_mib) && !number("--block=", &s.block_kib) && !number("--depth=", &s.depth)) {
      argv[kept++] = argv[i];
    }
  }
  *argc = kept;
  return s.size_mib > 0 && s.block_kib > 0 && s.block_kib % 4 == 0 && s.depth > 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (!parse_options(&argc, argv)) {
    std::fprintf(stderr, "tier_disk_bench: --size, --block (a multiple of 4) and --depth must be positive\n");
    return 2;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  shared();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
