// larder_remote_checkout_bench: a version checked out on another machine
// straight from a remote (checkout_options::remote, lazily or not) against
// pulling it first and checking it out from the local store: the time
// until the heap is usable, the latency of first touches, and what was
// fetched.
//
//   larder_remote_checkout_bench [--size BYTES] [--touches N] [--remote REMOTE]
//                                [--dir DIR] [--workloads=a,b,c]
//
// Here: a shm heap of --size bytes (default 256 MiB) in 4 MiB blocks,
// checkpointed as allocated (its data pages zero) and again filled with
// pages zstd cannot shrink; both pushed to REMOTE (default DIR/remote, a
// directory; or rados:POOL[@CONF], which must hold no store yet). Before
// each workload the other machine's heap is the first version, restored
// into it and checked out (not timed) into an empty store of its own, and
// the workload brings it to the second, whose data pages all differ:
//   pull_checkout  pull_versions, then checkout from the local store
//   pull_lazy      pull_versions, then a lazy checkout from the local store
//   remote_eager   checkout straight from the remote
//   remote_lazy    the same, lazy; then --touches (default 200) reads of
//                  distinct random data pages while the loader fetches the
//                  rest behind them, then finish_checkout
//   remote_touch   remote_lazy with LARDER_LAZY_PREFETCH=0: every touch
//                  waits for its own fetch
// One line each: workload, ms until usable (the pull included), ms until
// every page was in, median and 99th percentile of a first touch (µs; "-"
// where the heap was whole at once), chunks and MB fetched from the remote.
#include <larder/larder.hpp>
#include <larder/versions.hpp>

#include "bench_common.hpp"
#include "bench_setup.hpp"

#include <sys/utsname.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

using larder_bench::bench_clock;
using larder_bench::millis;

constexpr std::size_t kPage = 4096;
constexpr std::size_t kBlockBytes = std::size_t{4} << 20;

struct block_table {
  std::uint64_t* blocks[4096];  // up to 16 GiB
};

struct options {
  std::size_t size = std::size_t{256} << 20;
  std::size_t touches = 200;
  std::string remote, dir;
  std::set<std::string> workloads;
};

bool parse(int argc, char** argv, options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* flag) -> const char* { return a == flag && i + 1 < argc ? argv[++i] : nullptr; };
    if (const char* v = value("--size")) {
      o->size = std::strtoull(v, nullptr, 10);
    } else if (const char* v = value("--touches")) {
      o->touches = std::strtoull(v, nullptr, 10);
    } else if (const char* v = value("--remote")) {
      o->remote = v;
    } else if (const char* v = value("--dir")) {
      o->dir = v;
    } else if (a.starts_with("--workloads=")) {
      larder_bench::add_workloads(a.substr(12), &o->workloads);
    } else {
      return false;
    }
  }
  return o->size >= kBlockBytes && o->size / kBlockBytes <= std::size(block_table{}.blocks) &&
         o->touches <= o->size / kPage;
}

void print_header(const options& o) {
  utsname u{};
  ::uname(&u);
  const std::string cpu = larder_bench::cpu_model();
  std::printf("# larder_remote_checkout_bench: cpu %s; %ld cores; kernel %s %s; shm heap %zu MiB, every data page "
              "differs; remote %s\n",
              cpu.c_str(), ::sysconf(_SC_NPROCESSORS_ONLN), u.sysname, u.release, o.size >> 20, o.remote.c_str());
  std::printf("%-14s %10s %10s %10s %10s %10s %10s\n", "workload", "usable_ms", "loaded_ms", "touch_p50", "touch_p99",
              "fetched", "MB");
}

struct result {
  double usable_ms = 0, loaded_ms = 0;
  std::vector<double> touch_us;  // empty: whole at once
  std::uint64_t chunks = 0, bytes = 0;
};

void report(const char* name, result r) {
  char p50[32] = "-", p99[32] = "-";
  if (!r.touch_us.empty()) {
    std::sort(r.touch_us.begin(), r.touch_us.end());
    std::snprintf(p50, sizeof p50, "%.1f", r.touch_us[r.touch_us.size() / 2]);
    std::snprintf(p99, sizeof p99, "%.1f", r.touch_us[r.touch_us.size() * 99 / 100]);
  }
  std::printf("%-14s %10.1f %10.1f %10s %10s %10llu %10.1f\n", name, r.usable_ms, r.loaded_ms, p50, p99,
              static_cast<unsigned long long>(r.chunks), static_cast<double>(r.bytes) / 1e6);
  std::fflush(stdout);
}

int fail(const larder::status& s) {
  std::fprintf(stderr, "larder_remote_checkout_bench: %s\n", s.to_string().c_str());
  return 1;
}

class bench {
 public:
  explicit bench(options o) : o_(std::move(o)), name_("/larder-rcb-" + std::to_string(::getpid())) {}
  ~bench() { (void)larder::heap::remove(larder::backing::shm, name_); }

  larder::heap_options heap_options() const {
    larder::heap_options ho;
    ho.kind = larder::backing::shm;
    ho.name = name_;
    ho.reserve = o_.size * 2 + (std::size_t{64} << 20);
    return ho;
  }
  std::string here() const { return o_.dir + "/here"; }

  // Here: the two versions, pushed.
  larder::status prepare() {
    larder::heap h;
    if (larder::status s = larder::heap::open(heap_options(), &h); !s.ok()) return s;
    if (larder::status s = larder::use_version_store(h, here()); !s.ok()) return s;
    auto* table = h.root<block_table>("blocks");
    blocks_ = o_.size / kBlockBytes;
    for (std::size_t b = 0; b < blocks_; ++b) {
      table->blocks[b] = static_cast<std::uint64_t*>(h.allocate(kBlockBytes));
      if (table->blocks[b] == nullptr) return larder::status(larder::errc::out_of_space, "filling the heap");
    }
    larder::checkpoint_stats st;
    if (larder::status s = larder::checkpoint(h, "allocated", &st); !s.ok()) return s;
    base_ = st.id;
    for (std::size_t b = 0; b < blocks_; ++b)
      for (std::size_t i = 0; i < kBlockBytes / 8; ++i) table->blocks[b][i] = larder_bench::mix64(b * kBlockBytes + i);
    if (larder::status s = larder::checkpoint(h, "filled", &st); !s.ok()) return s;
    target_ = st.id;
    if (larder::status s = h.close(); !s.ok()) return s;
    larder::transfer_stats sent;
    return larder::push_versions(here(), o_.remote, "", {.all = true}, &sent);
  }

  // The other machine before a workload: the first version, restored into
  // the heap, then checked out from the remote into a store of its own, so
  // that it is current and a checkout compares tables, not every page's
  // bytes (which costs the same whatever follows: docs/versions.md).
  larder::status reset(larder::heap* h, std::string* store) {
    *store = o_.dir + "/there-" + std::to_string(++runs_);
    if (larder::status s = larder::restore_version(larder::backing::shm, name_, base_, here()); !s.ok()) return s;
    if (larder::status s = larder::heap::open(heap_options(), h); !s.ok()) return s;
    if (larder::status s = larder::use_version_store(*h, *store); !s.ok()) return s;
    larder::checkout_stats st;
    return larder::checkout(*h, base_, {.remote = o_.remote}, &st);
  }

  // `checkout` from the moment the clock starts until the heap is usable.
  larder::status run(const char* name, bool lazy, bool touch,
                     const std::function<larder::status(larder::heap&, const std::string&, result*)>& checkout) {
    if (!o_.workloads.empty() && !o_.workloads.contains(name)) return {};
    larder::heap h;
    std::string store;
    if (larder::status s = reset(&h, &store); !s.ok()) return s;
    result r;
    const auto start = bench_clock::now();
    if (larder::status s = checkout(h, store, &r); !s.ok()) return s;
    r.usable_ms = millis(start, bench_clock::now());
    if (touch) touch_pages(h, &r);
    if (lazy) {
      if (larder::status s = larder::finish_checkout(h); !s.ok()) return s;
      const larder::lazy_checkout_state done = larder::lazy_checkout_progress(h);
      if (r.chunks == 0) r.chunks = done.chunks_fetched, r.bytes = done.bytes_fetched;
    }
    r.loaded_ms = millis(start, bench_clock::now());
    report(name, r);
    if (larder::status s = h.close(); !s.ok()) return s;
    std::filesystem::remove_all(store);
    return {};
  }

  const std::string& target() const { return target_; }
  const std::string& remote() const { return o_.remote; }

 private:
  // First reads of distinct random data pages, one at a time.
  void touch_pages(larder::heap& h, result* r) const {
    const auto* table = static_cast<const block_table*>(h.find_root("blocks"));
    const std::size_t pages = blocks_ * kBlockBytes / kPage;
    std::mt19937_64 rng(7);
    std::set<std::size_t> chosen;
    while (chosen.size() < o_.touches) chosen.insert(rng() % pages);
    std::vector<std::size_t> order(chosen.begin(), chosen.end());
    std::shuffle(order.begin(), order.end(), rng);
    std::uint64_t sum = 0;
    for (std::size_t page : order) {
      const auto t = bench_clock::now();
      sum += *static_cast<const volatile std::uint64_t*>(table->blocks[page / (kBlockBytes / kPage)] +
                                                        page % (kBlockBytes / kPage) * (kPage / 8));
      r->touch_us.push_back(millis(t, bench_clock::now()) * 1e3);
    }
    if (sum == 42) std::printf("#\n");  // keeps the reads
  }

  options o_;
  std::string name_, base_, target_;
  std::size_t blocks_ = 0;
  int runs_ = 0;
};

class env_setting {
 public:
  env_setting(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~env_setting() { ::unsetenv(name_); }

 private:
  const char* name_;
};

}  // namespace

int main(int argc, char** argv) {
  options o;
  if (!parse(argc, argv, &o)) {
    std::fprintf(stderr,
                 "usage: larder_remote_checkout_bench [--size BYTES] [--touches N] [--remote REMOTE] [--dir DIR] "
                 "[--workloads=pull_checkout,pull_lazy,remote_eager,remote_lazy,remote_touch]\n");
    return 64;
  }
  const bool own_dir = o.dir.empty();
  if (own_dir) {
    o.dir = larder_bench::make_scratch_dir("larder-remote-checkout");
    if (o.dir.empty()) return 1;
  }
  if (o.remote.empty()) o.remote = o.dir + "/remote";
  print_header(o);
  int code = 0;
  {
    bench b(o);
    const std::string& id = b.target();
    auto pull = [&](const std::string& store, result* r) {
      larder::transfer_stats st;
      larder::status s = larder::pull_versions(b.remote(), store, id, {}, &st);
      r->chunks = st.chunks_sent;
      r->bytes = st.chunk_bytes_sent;
      return s;
    };
    auto from_remote = [&](bool lazy) {
      return [&, lazy](larder::heap& h, const std::string&, result* r) {
        larder::checkout_stats st;
        larder::status s = larder::checkout(h, id, {.lazy = lazy, .remote = b.remote()}, &st);
        if (!lazy) r->chunks = st.chunks_fetched, r->bytes = st.bytes_fetched;
        return s;
      };
    };
    larder::status s = b.prepare();
    if (s.ok())
      s = b.run("pull_checkout", false, false, [&](larder::heap& h, const std::string& store, result* r) {
        larder::status p = pull(store, r);
        larder::checkout_stats st;
        return p.ok() ? larder::checkout(h, id, &st) : p;
      });
    if (s.ok())
      s = b.run("pull_lazy", true, true, [&](larder::heap& h, const std::string& store, result* r) {
        larder::status p = pull(store, r);
        larder::checkout_stats st;
        return p.ok() ? larder::checkout(h, id, {.lazy = true}, &st) : p;
      });
    if (s.ok()) s = b.run("remote_eager", false, false, from_remote(false));
    if (s.ok()) s = b.run("remote_lazy", true, true, from_remote(true));
    if (s.ok()) {
      env_setting quiet("LARDER_LAZY_PREFETCH", "0");
      s = b.run("remote_touch", true, true, from_remote(true));
    }
    if (!s.ok()) code = fail(s);
  }
  if (own_dir) std::filesystem::remove_all(o.dir);
  return code;
}
