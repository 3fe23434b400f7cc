// tier_rados_bench: put and get throughput of the remote tier
// (tiers/rados) against a running Ceph cluster, in bytes per second.
// bench/micro-style: it reaches into tiers/rados directly.
// bench/tier_rados_compare.py starts a cluster and runs it beside
// `rados bench` with the same object size and requests in flight.
//
//   BM_PutPod   one pod of --size MiB (its pages adjacent in memory, so each
//               object is sent from where its pages are) put as a new pod
//               each time: the cluster only receives new objects, as under
//               rados bench write. None is dropped before the program
//               ends (the tier then removes its objects): removals would
//               leave the OSD busy while later puts and gets are timed,
//               and rados bench removes nothing while it measures. So
//               that the OSD cannot fill up, it puts --put-total MiB in
//               one run rather than as many as a time allows
//   BM_GetPod   one pod read back into the same memory
//
// Options (before Google Benchmark's own):
//   --conf=PATH    the cluster's ceph.conf (default: $CEPH_CONF)
//   --pool=NAME    (default: $LARDER_RADOS_POOL, else larder)
//   --size=MIB     pod size (default 64)
//   --object=KIB   object size (default 1024)
//   --depth=N      requests in flight (default 16, as rados bench's -t)
//   --put-total=MIB  bytes BM_PutPod puts (default 2048; the test
//                  cluster's OSD holds 8 GiB)
#include "tiers/rados/rados_tier.hpp"

#include <benchmark/benchmark.h>

#include <unistd.h>

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
  std::string conf;
  std::string pool;
  std::size_t size_mib = 64;
  std::size_t object_kib = 1024;
  unsigned depth = 16;
  std::size_t put_total_mib = 2048;
};

settings& config() {
  static settings s;
  return s;
}

// A pod's pages in one page-aligned buffer of random bytes, and the tier.
struct fixture {
  fixture() {
    const settings& s = config();
    rados_tier_options options;
    options.conf_path = s.conf;
    options.pool = s.pool;
    options.heap_id = "tier_rados_bench." + std::to_string(::getpid());
    options.capacity_bytes = std::uint64_t{1} << 40;  // what the cluster takes is the limit
    options.object_bytes = s.object_kib << 10;
    options.in_flight = s.depth;
    if (larder::status st = rados_tier::open(options, &tier); !st.ok()) {
      std::fprintf(stderr, "tier_rados_bench: %s\n", st.to_string().c_str());
      std::exit(1);
    }
    std::size_t bytes = s.size_mib << 20;
    buffer = static_cast<char*>(std::aligned_alloc(kTierPageSize, bytes));
    std::mt19937_64 random(1);
    for (std::size_t i = 0; i < bytes; i += 8) {
      std::uint64_t v = random();
      std::memcpy(buffer + i, &v, 8);
    }
    for (std::size_t i = 0; i < bytes / kTierPageSize; ++i) pages.push_back(page_ref{i, buffer + i * kTierPageSize});
    benchmark::AddCustomContext("pool", s.pool);
    benchmark::AddCustomContext("object_kib", std::to_string(s.object_kib));
    benchmark::AddCustomContext("in_flight", std::to_string(s.depth));
  }
  ~fixture() { std::free(buffer); }
  std::unique_ptr<rados_tier> tier;
  char* buffer = nullptr;
  std::vector<page_ref> pages;
  std::uint64_t next_pod = 1;  // BM_PutPod's next; pod 0 is BM_GetPod's
};

fixture& shared() {
  static fixture f;
  return f;
}

void check(benchmark::State& state, const larder::status& s) {
  if (!s.ok()) state.SkipWithError(s.to_string().c_str());
}

void BM_PutPod(benchmark::State& state) {
  fixture& f = shared();
  for (auto _ : state) check(state, f.tier->write(f.next_pod++, f.pages.data(), f.pages.size()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * f.pages.size() * kTierPageSize));
}

void BM_GetPod(benchmark::State& state) {
  fixture& f = shared();
  if (!f.tier->holds(0, 0)) check(state, f.tier->write(0, f.pages.data(), f.pages.size()));
  for (auto _ : state) check(state, f.tier->read(0, f.pages.data(), f.pages.size()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * f.pages.size() * kTierPageSize));
}

// Takes this benchmark's options out of argv; false on a bad value.
bool parse_options(int* argc, char** argv) {
  settings& s = config();
  const char* conf = std::getenv("CEPH_CONF");
  const char* pool = std::getenv("LARDER_RADOS_POOL");
  s.conf = conf != nullptr ? conf : "";
  s.pool = pool != nullptr ? pool : "larder";
  int kept = 1;
  for (int i = 1; i < *argc; ++i) {
    std::string_view arg = argv[i];
    auto number = [&](std::string_view prefix, auto* out) {
      if (arg.substr(0, prefix.size()) != prefix) return false;
      *out = static_cast<std::remove_pointer_t<decltype(out)>>(std::strtoull(argv[i] + prefix.size(), nullptr, 10));
      return true;
    };
    if (arg.substr(0, 7) == "--conf=") {
      s.conf = std::string(arg.substr(7));
    } else if (arg.substr(0, 7) == "--pool=") {
      s.pool = std::string(arg.substr(7));
    } else if (!number("--size=", &s.size_mib) && !number("--object=", &s.object_kib) &&
               !number("--depth=", &s.depth) && !number("--put-total=", &s.put_total_mib)) {
      argv[kept++] = argv[i];
    }
  }
  *argc = kept;
  return s.size_mib > 0 && s.object_kib > 0 && s.object_kib % 4 == 0 && s.depth > 0 && s.put_total_mib >= s.size_mib;
}

}  // namespace

int main(int argc, char** argv) {
  if (!parse_options(&argc, argv)) {
    std::fprintf(stderr,
                 "tier_rados_bench: --size, --object (a multiple of 4) and --depth must be positive, "
                 "--put-total at least --size\n");
    return 2;
  }
  const settings& s = config();
  benchmark::RegisterBenchmark("BM_PutPod", BM_PutPod)
      ->Iterations(static_cast<benchmark::IterationCount>(s.put_total_mib / s.size_mib))
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark("BM_GetPod", BM_GetPod)->Unit(benchmark::kMillisecond)->UseRealTime();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  shared();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
