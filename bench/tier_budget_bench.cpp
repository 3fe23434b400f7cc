// tier_budget_bench: one workload over a data set several times larger than
// the memory it may use, run either in a larder heap whose migrator keeps it
// under a DRAM budget (cold pods written to the disk tier, faulted back on
// touch) or in a plain MAP_SHARED file mapping that the kernel pages in and
// out itself (bench/tier_budget_compare.py caps that process's memory with a
// cgroup). One JSON object on stdout per run.
//
// The data: --pods pods of --pod-mib MiB, each of 4 KiB objects. Objects
// that are used together share a pod, which is what pods are for: the
// popular pods are drawn by a Zipfian distribution over pod numbers (YCSB's
// θ = 0.99, bench/ycsb.hpp) or uniformly, and within a pod every object is
// as likely. An operation reads 64 bytes of its object (summing them) or,
// with probability --writes, adds to 8 of them. The same --seed gives both
// systems the same operations, and the final checksum over every byte must
// match between them.
//
// Options (--key=value):
//   --system=larder|mmap      (default larder)
//   --workload=zipfian|uniform
//   --pods=N --pod-mib=M      data set N x M MiB (default 256 x 4 = 1 GiB)
//   --budget-mib=B            larder's DRAM budget (default 256)
//   --ops=N                   operations timed (default 2,000,000)
//   --writes=F                fraction of writes (default 0.5)
//   --threads=T               threads running operations (default 1)
//   --dir=PATH                where the mapped file (mmap) or the disk tier
//                             (larder) lives (default /var/tmp)
//   --tiers=1|2               larder: one disk tier holding everything, or
//                             (2) a disk tier of the budget's size over a
//                             second one it cascades to (default 1)
//   --seed=S
#include <larder/larder.hpp>
#include <larder/tiers.hpp>

#include "ycsb.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using larder_bench::ycsb::random64;
using larder_bench::ycsb::zipfian;

constexpr std::size_t kObject = 4096;

struct settings {
  std::string system = "larder";
  std::string workload = "zipfian";
  std::size_t pods = 256;
  std::size_t pod_mib = 4;
  std::size_t budget_mib = 256;
  std::uint64_t ops = 2'000'000;
  double writes = 0.5;
  unsigned threads = 1;
  std::string dir = "/var/tmp";
  std::uint64_t seed = 1;
  unsigned tiers = 1;
};

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "tier_budget_bench: %s\n", what.c_str());
  std::exit(1);
}

settings parse(int argc, char** argv) {
  settings s;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto eq = arg.find('=');
    if (arg.substr(0, 2) != "--" || eq == std::string_view::npos) fail("unknown argument " + std::string(arg));
    std::string key(arg.substr(2, eq - 2));
    std::string value(arg.substr(eq + 1));
    if (key == "system") s.system = value;
    else if (key == "workload") s.workload = value;
    else if (key == "pods") s.pods = std::stoull(value);
    else if (key == "pod-mib") s.pod_mib = std::stoull(value);
    else if (key == "budget-mib") s.budget_mib = std::stoull(value);
    else if (key == "ops") s.ops = std::stoull(value);
    else if (key == "writes") s.writes = std::stod(value);
    else if (key == "threads") s.threads = static_cast<unsigned>(std::stoul(value));
    else if (key == "dir") s.dir = value;
    else if (key == "seed") s.seed = std::stoull(value);
    else if (key == "tiers") s.tiers = static_cast<unsigned>(std::stoul(value));
    else fail("unknown option --" + key);
  }
  if (s.system != "larder" && s.system != "mmap") fail("--system is larder or mmap");
  if (s.workload != "zipfian" && s.workload != "uniform") fail("--workload is zipfian or uniform");
  if (s.pods == 0 || s.pod_mib == 0 || s.threads == 0) fail("--pods, --pod-mib and --threads must be positive");
  if (s.tiers != 1 && s.tiers != 2) fail("--tiers is 1 or 2");
  return s;
}

// The objects of every pod, where the system under test keeps them.
struct data_set {
  std::vector<std::uint64_t*> objects;  // objects_per_pod per pod, pod after pod
  std::size_t objects_per_pod = 0;
};

std::uint64_t initial_word(std::size_t object, std::size_t word) {
  return (object * 0x9E3779B97F4A7C15ull) ^ (word * 0xC2B2AE3D27D4EB4Full);
}

void fill(std::uint64_t* object, std::size_t number) {
  for (std::size_t w = 0; w < kObject / 8; ++w) object[w] = initial_word(number, w);
}

// Runs settings.ops operations over `data` on settings.threads threads
// (each its own stream); returns the sum of what the reads saw.
std::uint64_t run_operations(const settings& s, const data_set& data) {
  std::atomic<std::uint64_t> seen{0};
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < s.threads; ++t) {
    threads.emplace_back([&, t] {
      random64 rng(s.seed * 1000 + t);
      zipfian pods(s.pods);
      std::uint64_t sum = 0;
      std::uint64_t share = s.ops / s.threads + (t < s.ops % s.threads ? 1 : 0);
      for (std::uint64_t i = 0; i < share; ++i) {
        std::size_t pod = s.workload == "zipfian" ? pods.next(rng) : rng.below(s.pods);
        std::uint64_t* object = data.objects[pod * data.objects_per_pod + rng.below(data.objects_per_pod)];
        std::size_t word = rng.below(kObject / 8 - 8);
        if (rng.unit() < s.writes) {
          // Additions commute: the final bytes do not depend on how the
          // threads interleave.
          reinterpret_cast<std::atomic<std::uint64_t>*>(object + word)->fetch_add(i | 1, std::memory_order_relaxed);
        } else {
          for (std::size_t w = 0; w < 8; ++w) sum += object[word + w];
        }
      }
      seen.fetch_add(sum);
    });
  }
  for (auto& thread : threads) thread.join();
  return seen.load();
}

std::uint64_t checksum(const data_set& data) {
  std::uint64_t h = 1469598103934665603ull;
  for (const std::uint64_t* object : data.objects)
    for (std::size_t w = 0; w < kObject / 8; ++w) h = (h ^ object[w]) * 1099511628211ull;
  return h;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

long peak_rss_mib() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024;
}

struct outcome {
  double fill_s = 0, run_s = 0;
  long rss_mib = 0;  // peak resident memory through the fill and the run
  std::uint64_t sum = 0, check = 0;
  std::string extra;  // more JSON members, each with a leading comma
};

outcome run_mmap(const settings& s) {
  std::string path = s.dir + "/tier_budget_bench." + std::to_string(::getpid()) + ".map";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) fail("cannot create " + path + ": " + std::strerror(errno));
  ::unlink(path.c_str());
  std::size_t bytes = s.pods * (s.pod_mib << 20);
  if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0) fail(std::string("ftruncate: ") + std::strerror(errno));
  void* base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) fail(std::string("mmap: ") + std::strerror(errno));
  data_set data;
  data.objects_per_pod = (s.pod_mib << 20) / kObject;
  for (std::size_t i = 0; i < s.pods * data.objects_per_pod; ++i)
    data.objects.push_back(reinterpret_cast<std::uint64_t*>(static_cast<char*>(base) + i * kObject));
  outcome o;
  auto start = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < data.objects.size(); ++i) fill(data.objects[i], i);
  o.fill_s = seconds_since(start);
  start = std::chrono::steady_clock::now();
  o.sum = run_operations(s, data);
  o.run_s = seconds_since(start);
  o.rss_mib = peak_rss_mib();
  o.check = checksum(data);
  ::munmap(base, bytes);
  ::close(fd);
  return o;
}

outcome run_larder(const settings& s) {
  larder::heap h;
  larder::heap_options options;
  options.kind = larder::backing::anonymous;
  options.mode = larder::open_mode::create;
  if (larder::status st = larder::heap::open(options, &h); !st.ok()) fail("cannot create the heap: " + st.to_string());
  data_set data;
  data.objects_per_pod = (s.pod_mib << 20) / kObject;
  outcome o;
  larder::migration_policy policy;
  policy.dram_budget = s.budget_mib << 20;
  std::string tier_path = s.dir + "/tier_budget_bench." + std::to_string(::getpid()) + ".tier";
  const std::size_t data_bytes = s.pods * (s.pod_mib << 20);
  if (s.tiers == 2)
    policy.tiers.push_back({.kind = larder::tier_kind::disk, .path = tier_path + ".upper", .capacity = s.budget_mib << 20});
  policy.tiers.push_back({.kind = larder::tier_kind::disk, .path = tier_path, .capacity = 2 * data_bytes});
  if (larder::status st = larder::set_migration_policy(h, policy); !st.ok()) fail("set_migration_policy: " + st.to_string());
  auto start = std::chrono::steady_clock::now();
  for (std::size_t p = 0; p < s.pods; ++p) {
    larder::pod pod;
    if (larder::status st = h.make_pod("pod" + std::to_string(p), &pod); !st.ok()) fail("make_pod: " + st.to_string());
    for (std::size_t i = 0; i < data.objects_per_pod; ++i) {
      auto* object = static_cast<std::uint64_t*>(pod.allocate(kObject, kObject));
      if (!object) fail("allocation failed");
      fill(object, data.objects.size());
      data.objects.push_back(object);
    }
  }
  o.fill_s = seconds_since(start);
  start = std::chrono::steady_clock::now();
  o.sum = run_operations(s, data);
  o.run_s = seconds_since(start);
  o.rss_mib = peak_rss_mib();
  larder::migration_stats stats = larder::migration_info(h);
  o.extra = ",\"resident_mib\":" + std::to_string(stats.resident_bytes >> 20) +
            ",\"evicted_mib\":" + std::to_string(stats.evicted_bytes >> 20) +
            ",\"evictions\":" + std::to_string(stats.evictions) + ",\"faults\":" + std::to_string(stats.faults) +
            ",\"lowest_tier_mib\":" + std::to_string(stats.tiers.empty() ? 0 : stats.tiers.back().used_bytes >> 20);
  o.check = checksum(data);
  ::unlink(tier_path.c_str());
  ::unlink((tier_path + ".upper").c_str());
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  settings s = parse(argc, argv);
  outcome o = s.system == "mmap" ? run_mmap(s) : run_larder(s);
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);  // the checksum's faults included
  std::printf(
      "{\"system\":\"%s\",\"workload\":\"%s\",\"data_mib\":%zu,\"budget_mib\":%zu,\"threads\":%u,\"ops\":%llu,"
      "\"fill_s\":%.3f,\"run_s\":%.3f,\"ops_per_s\":%.1f,\"read_sum\":%llu,\"checksum\":\"%016llx\","
      "\"max_rss_mib\":%ld,\"major_faults\":%ld%s}\n",
      s.system.c_str(), s.workload.c_str(), s.pods * s.pod_mib, s.budget_mib, s.threads,
      static_cast<unsigned long long>(s.ops), o.fill_s, o.run_s, static_cast<double>(s.ops) / o.run_s,
      static_cast<unsigned long long>(o.sum), static_cast<unsigned long long>(o.check), o.rss_mib,
      usage.ru_majflt, o.extra.c_str());
  return 0;
}
