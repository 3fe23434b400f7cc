// track_bench: what page-write tracking (port/write_tracker.hpp) costs.
//
// Three families of benchmarks, all in one process so that every backend runs
// side by side on the same machine state:
//
//   collect/<method>/<backing>/<P>pct
//       The cost of one collect over a region of --collect-mib (default
//       1024 MiB = 262,144 pages) of which P % of the pages (distinct,
//       random, fixed seed; the same set every round) were written since the
//       last collect. <method> is a tracker backend (uffd_async, mprotect,
//       pkey: collect() returns the written runs and re-arms them), or
//         pagemap_scan  the bare PAGEMAP_SCAN ioctl over the same range
//                       (registration by a uffd_async tracker, then
//                       port::pagemap_scan_written(start, size, true)
//                       instead of collect), the floor for uffd_async;
//         xxh3          the baseline without any tracker: XXH3_64bits of
//                       every 4 KiB page, compared with the previous round's
//                       hashes, producing the changed runs.
//       Each round writes (increments) one byte of each chosen page, untimed,
//       then times the collect alone. The region is populated (and written
//       once) before tracking starts, so no first-touch cost is measured,
//       and every collect is checked to find exactly the written pages.
//
//   collect_pair/uffd-async/<backing>/<P>pct
//       uffd_async collect and the bare ioctl alternating on one
//       registration, each timed right after the other; the counter
//       paired_ratio (collect / ioctl, median over the iterations) is the
//       steady way to compare them on a noisy machine.
//
//   first_write/<tracker>/<backing>
//       The cost of the first write to a page after a collect armed it:
//       --first-write-pages (default 4,096) distinct random pages of a
//       region of --first-write-mib (default 64 MiB; one page in four),
//       written one byte each in random order (timed), then re-armed by a
//       collect (untimed).
//       Counter ns_per_write = timed time / pages. <tracker> "none" is the
//       baseline: the same writes with no tracker, to resident pages that
//       are already writable, so the fault cost is the difference.
//
// Backings: anon (private anonymous, MADV_NOHUGEPAGE so that pages are
// 4 KiB whatever the THP setting), shm (memfd_create, MAP_SHARED), and for
// first_write an ext4 (or whatever) file in LARDER_BENCH_DIR (default: the
// build folder; --dir=PATH overrides), MAP_SHARED, unlinked once open:
//   file        msync(MS_SYNC) before every round, so every written page is
//               clean (written back) again when it is next written: the
//               realistic state after a checkpoint. Without a tracker, such
//               a write still faults (page_mkwrite, dirty accounting), once
//               per page-cache folio; under a tracker, once per page.
//   file_dirty  no msync between rounds: pages stay dirty, so the no-tracker
//               writes do not fault and the tracker's own cost shows alone.
//
// Timing is manual (UseManualTime): only the collect, or only the writes,
// are inside the timed part, with a fixed number of iterations per
// repetition; --reps=N (default 5, or LARDER_BENCH_REPS) sets the
// repetitions, reported as aggregates only (mean, median, stddev, cv).
// bench/track_compare.py runs this and tabulates the medians.
//
// Options (besides Google Benchmark's): --reps=N, --collect-mib=N,
// --first-write-mib=N, --first-write-pages=N, --dir=PATH, --iter-scale=X
// (multiplies the iteration counts; a smoke run uses a small value).
#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "port/write_tracker.hpp"

#include <larder/larder.hpp>

#ifndef LARDER_BENCH_DEFAULT_DIR
#define LARDER_BENCH_DEFAULT_DIR "."
#endif

namespace {

using larder::port::tracker_kind;
using larder::port::write_tracker;
using larder::port::written_run;
using larder_bench::bench_clock;

constexpr std::size_t kPage = 4096;
static_assert(kPage == larder::port::kOsPageSize);

struct options {
  int reps = 5;
  std::size_t collect_bytes = std::size_t{1} << 30;
  std::size_t first_write_bytes = std::size_t{64} << 20;
  std::size_t first_write_pages = 4096;
  std::string dir;
  double iter_scale = 1.0;
};
options g_opt;

std::string errno_text(const char* what, int e) { return std::string(what) + ": " + std::strerror(e); }

// ---------------------------------------------------------------------------
// regions

enum class backing { anon, shm, file };

const char* backing_name(backing b) {
  switch (b) {
    case backing::anon: return "anon";
    case backing::shm: return "shm";
    case backing::file: return "file";
  }
  return "?";
}

class region {
 public:
  region(backing kind, std::size_t size) : kind_(kind), size_(size) {}
  region(const region&) = delete;
  region& operator=(const region&) = delete;
  ~region() {
    if (base_ != nullptr) ::munmap(base_, size_);
    if (fd_ >= 0) ::close(fd_);
  }

  // Maps and populates (every page resident and written once; a file's
  // pages also written back). Returns "" or what failed.
  std::string init() {
    int flags = MAP_SHARED;
    if (kind_ == backing::anon) {
      flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
    } else if (kind_ == backing::shm) {
      fd_ = ::memfd_create("larder-track-bench", MFD_CLOEXEC);
      if (fd_ < 0) return errno_text("memfd_create", errno);
    } else {
      std::string path = g_opt.dir + "/larder-track-bench." + std::to_string(::getpid()) + ".dat";
      fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd_ < 0) return errno_text(("open " + path).c_str(), errno);
      ::unlink(path.c_str());  // the mapping keeps it; nothing is left behind
    }
    if (fd_ >= 0 && ::ftruncate(fd_, static_cast<off_t>(size_)) != 0) return errno_text("ftruncate", errno);
    void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, flags, fd_, 0);
    if (p == MAP_FAILED) return errno_text("mmap", errno);
    base_ = static_cast<char*>(p);
    if (kind_ == backing::anon) ::madvise(base_, size_, MADV_NOHUGEPAGE);
#ifdef MADV_POPULATE_WRITE
    ::madvise(base_, size_, MADV_POPULATE_WRITE);  // best effort; touch_all does the rest
#endif
    touch_all();
    return sync();
  }

  // Writes one byte of every page, so that every page is resident and
  // mapped writable, whatever an earlier benchmark left behind (a closed
  // userfaultfd may leave write-protected entries that fault once).
  void touch_all() {
    volatile char* b = base_;
    for (std::size_t off = 0; off < size_; off += kPage) b[off + 64] = static_cast<char>(b[off + 64] + 1);
  }

  // Writes a file's dirty pages back and waits (nothing for anon and shm).
  std::string sync() {
    if (kind_ != backing::file) return "";
    if (::msync(base_, size_, MS_SYNC) != 0) return errno_text("msync", errno);
    return "";
  }

  // The mean size, in pages, of the folios (page-cache or anonymous
  // allocation units) behind the region's resident pages, from
  // /proc/self/pagemap and /proc/kpageflags; 0 when they cannot be read
  // (page frame numbers need CAP_SYS_ADMIN). For an ext4 file with large
  // folios this is what a page_mkwrite fault costs in proportion to.
  double mean_folio_pages() {
    if (folio_pages_ >= 0.0) return folio_pages_;
    folio_pages_ = 0.0;
    int pagemap = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    int flags = ::open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
    if (pagemap >= 0 && flags >= 0) {
      std::vector<std::uint64_t> entries(pages());
      std::size_t bytes = entries.size() * sizeof(std::uint64_t);
      if (::pread(pagemap, entries.data(), bytes, static_cast<off_t>(start() / kPage * 8)) == static_cast<ssize_t>(bytes)) {
        std::size_t present = 0, folios = 0;
        for (std::uint64_t e : entries) {
          std::uint64_t pfn = e & ((std::uint64_t{1} << 55) - 1);
          if (!(e >> 63) || pfn == 0) continue;
          std::uint64_t f = 0;
          if (::pread(flags, &f, sizeof f, static_cast<off_t>(pfn * 8)) != sizeof f) continue;
          ++present;
          if (!(f & (std::uint64_t{1} << 16))) ++folios;  // not a compound tail: starts a folio
        }
        if (folios > 0) folio_pages_ = static_cast<double>(present) / static_cast<double>(folios);
      }
    }
    if (pagemap >= 0) ::close(pagemap);
    if (flags >= 0) ::close(flags);
    return folio_pages_;
  }

  backing kind() const { return kind_; }
  std::size_t size() const { return size_; }
  std::size_t pages() const { return size_ / kPage; }
  char* base() const { return base_; }
  std::uintptr_t start() const { return reinterpret_cast<std::uintptr_t>(base_); }

 private:
  backing kind_;
  std::size_t size_;
  char* base_ = nullptr;
  int fd_ = -1;
  double folio_pages_ = -1.0;
};

// Benchmarks run one after the other, repetitions of one benchmark
// consecutively; consecutive benchmarks that want the same region share it,
// so a 1 GiB region is populated once, not once per repetition.
std::unique_ptr<region> g_region;

region* get_region(backing kind, std::size_t size, std::string* error) {
  if (g_region && g_region->kind() == kind && g_region->size() == size) return g_region.get();
  g_region.reset();
  auto r = std::make_unique<region>(kind, size);
  *error = r->init();
  if (!error->empty()) return nullptr;
  g_region = std::move(r);
  return g_region.get();
}

// `k` distinct page indices of [0, n) in random order; the same seed gives
// the same sequence, and a smaller `k` a prefix of a larger one's.
std::vector<std::uint32_t> pick_pages(std::size_t n, std::size_t k, std::uint64_t seed) {
  std::vector<std::uint32_t> all(n);
  for (std::size_t i = 0; i < n; ++i) all[i] = static_cast<std::uint32_t>(i);
  larder_bench::rng rng(seed);
  k = std::min(k, n);
  for (std::size_t i = 0; i < k; ++i) {
    std::size_t j = i + static_cast<std::size_t>(rng.next() % (n - i));
    std::swap(all[i], all[j]);
  }
  all.resize(k);
  return all;
}

std::size_t count_pages(const std::vector<written_run>& runs) {
  std::size_t n = 0;
  for (const auto& r : runs) n += r.pages;
  return n;
}

std::string make_armed_tracker(tracker_kind kind, const region& r, std::unique_ptr<write_tracker>* out) {
  if (int e = larder::port::make_tracker(kind, out)) return errno_text("make_tracker", e);
  if (int e = (*out)->track(r.start(), r.size(), 0)) return errno_text("track", e);
  return "";
}

int iterations(int n) { return std::max(1, static_cast<int>(std::lround(n * g_opt.iter_scale))); }

// ---------------------------------------------------------------------------
// collect

enum class collect_method { tracker, pagemap_scan, xxh3 };

struct xxh3_state {
  std::vector<XXH64_hash_t> hashes;

  void init(const region& r) {
    hashes.resize(r.pages());
    for (std::size_t i = 0; i < r.pages(); ++i) hashes[i] = XXH3_64bits(r.base() + i * kPage, kPage);
  }
  // Hashes every page, appends the runs of changed pages and remembers the
  // new hashes.
  void collect(const region& r, std::vector<written_run>* out) {
    const char* base = r.base();
    const std::size_t n = r.pages();
    for (std::size_t i = 0; i < n; ++i) {
      XXH64_hash_t h = XXH3_64bits(base + i * kPage, kPage);
      if (h == hashes[i]) continue;
      hashes[i] = h;
      std::uintptr_t page = r.start() + i * kPage;
      if (!out->empty() && out->back().start + out->back().pages * kPage == page)
        ++out->back().pages;
      else
        out->push_back({page, 1});
    }
  }
};

// A write round: one byte changed in each chosen page.
auto page_writer(char* base, const std::vector<std::uint32_t>& pages) {
  return [base, &pages] {
    for (std::uint32_t p : pages) {
      volatile char* at = base + std::size_t{p} * kPage;
      *at = static_cast<char>(*at + 1);
    }
  };
}

void bm_collect(benchmark::State& state, collect_method method, tracker_kind kind, backing where,
                double percent) {
  std::string error;
  region* r = get_region(where, g_opt.collect_bytes, &error);
  if (r == nullptr) {
    state.SkipWithError(error.c_str());
    return;
  }
  const std::size_t k = std::max<std::size_t>(1, static_cast<std::size_t>(std::llround(r->pages() * percent / 100.0)));
  const std::vector<std::uint32_t> pages = pick_pages(r->pages(), k, 0x7261636bULL);
  r->touch_all();

  std::unique_ptr<write_tracker> tracker;
  xxh3_state hashing;
  if (method == collect_method::xxh3) {
    hashing.init(*r);
  } else {
    error = make_armed_tracker(method == collect_method::pagemap_scan ? tracker_kind::uffd_async : kind, *r, &tracker);
    if (!error.empty()) {
      state.SkipWithError(error.c_str());
      return;
    }
  }

  std::vector<written_run> runs;
  runs.reserve(k + 16);
  auto write_round = page_writer(r->base(), pages);  // changes the content, so hashing sees it
  // One collect; returns the pages found written, or -errno.
  auto collect = [&]() -> long {
    runs.clear();
    switch (method) {
      case collect_method::tracker:
        if (int e = tracker->collect(&runs)) return -e;
        return static_cast<long>(count_pages(runs));
      case collect_method::pagemap_scan:
        return larder::port::pagemap_scan_written(r->start(), r->size(), true);
      case collect_method::xxh3:
        hashing.collect(*r, &runs);
        return static_cast<long>(count_pages(runs));
    }
    return -EINVAL;
  };
  auto check = [&](long found) {
    if (found == static_cast<long>(k)) return true;
    std::string text = found < 0 ? errno_text("collect", static_cast<int>(-found))
                                 : "collect found " + std::to_string(found) + " written pages, expected " +
                                       std::to_string(k);
    state.SkipWithError(text.c_str());
    return false;
  };

  write_round();  // warm-up round, untimed
  if (!check(collect())) return;
  for (auto _ : state) {
    write_round();
    auto t0 = bench_clock::now();
    long found = collect();
    auto t1 = bench_clock::now();
    state.SetIterationTime(larder_bench::seconds_between(t0, t1));
    if (!check(found)) break;
  }
  state.counters["written_pages"] = static_cast<double>(k);
  state.counters["region_pages"] = static_cast<double>(r->pages());
}

// A collect and the bare ioctl, alternating on one registration: each
// iteration writes the pages and times a collect, then writes them again and
// times the ioctl (in the other order every second iteration). On a shared
// machine, the two measured back to back give a far steadier ratio than two
// benchmarks run seconds apart. Counters (medians over this repetition's
// iterations): collect_ms, ioctl_ms, and paired_ratio, the median of
// collect / ioctl per iteration. The manual time is the collect's.
// `collect` and `ioctl` return the pages they found, or -errno; the ioctl
// may find more than `k` when `ioctl_sees_more` (pages the collect itself
// wrote).
template <class Write, class Collect, class Ioctl>
void run_paired(benchmark::State& state, std::size_t k, Write&& write_round, Collect&& collect, Ioctl&& ioctl,
                bool ioctl_sees_more) {
  auto timed = [&](auto&& call, double* seconds) -> long {
    write_round();
    auto t0 = bench_clock::now();
    long found = call();
    auto t1 = bench_clock::now();
    *seconds = larder_bench::seconds_between(t0, t1);
    return found;
  };
  auto check = [&](long found, const char* what, bool may_see_more) {
    if (found == static_cast<long>(k) || (may_see_more && found > static_cast<long>(k))) return true;
    std::string text = found < 0 ? errno_text(what, static_cast<int>(-found))
                                 : std::string(what) + " found " + std::to_string(found) +
                                       " written pages, expected " + std::to_string(k);
    state.SkipWithError(text.c_str());
    return false;
  };

  double ignored = 0.0;
  if (!check(timed(collect, &ignored), "collect", false) || !check(timed(ioctl, &ignored), "ioctl", ioctl_sees_more))
    return;
  std::vector<double> collect_s, ioctl_s, ratios;
  bool collect_first = true;
  for (auto _ : state) {
    double c = 0.0, i = 0.0;
    long nc = 0, ni = 0;
    if (collect_first) {
      nc = timed(collect, &c);
      ni = timed(ioctl, &i);
    } else {
      ni = timed(ioctl, &i);
      nc = timed(collect, &c);
    }
    collect_first = !collect_first;
    state.SetIterationTime(c);
    if (!check(nc, "collect", false) || !check(ni, "ioctl", ioctl_sees_more)) break;
    collect_s.push_back(c);
    ioctl_s.push_back(i);
    ratios.push_back(i > 0.0 ? c / i : 0.0);
  }
  auto median = [](std::vector<double> v) {
    if (v.empty()) return 0.0;
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
  };
  state.counters["collect_ms"] = median(collect_s) * 1e3;
  state.counters["ioctl_ms"] = median(ioctl_s) * 1e3;
  state.counters["paired_ratio"] = median(ratios);
  state.counters["written_pages"] = static_cast<double>(k);
}

// The uffd_async tracker's collect against the bare ioctl.
void bm_collect_pair(benchmark::State& state, backing where, double percent) {
  std::string error;
  region* r = get_region(where, g_opt.collect_bytes, &error);
  if (r == nullptr) {
    state.SkipWithError(error.c_str());
    return;
  }
  const std::size_t k = std::max<std::size_t>(1, static_cast<std::size_t>(std::llround(r->pages() * percent / 100.0)));
  const std::vector<std::uint32_t> pages = pick_pages(r->pages(), k, 0x7261636bULL);
  r->touch_all();
  std::unique_ptr<write_tracker> tracker;
  error = make_armed_tracker(tracker_kind::uffd_async, *r, &tracker);
  if (!error.empty()) {
    state.SkipWithError(error.c_str());
    return;
  }
  std::vector<written_run> runs;
  runs.reserve(k + 16);
  run_paired(
      state, k, page_writer(r->base(), pages),
      [&]() -> long {
        runs.clear();
        int e = tracker->collect(&runs);
        return e != 0 ? -e : static_cast<long>(count_pages(runs));
      },
      [&] { return larder::port::pagemap_scan_written(r->start(), r->size(), true); }, false);
}

// The whole of larder's collect: heap::collect_dirty over an anonymous heap
// holding one 1 GiB block (pages attributed to pods, statistics recorded),
// against the bare ioctl over the heap's tracked range, which also sees the
// metadata pages the previous collect wrote.
void bm_collect_pair_heap(benchmark::State& state, double percent) {
  larder::heap heap;
  larder::heap_options options;
  options.kind = larder::backing::anonymous;
  options.reserve = std::size_t{4} << 30;
  if (larder::status s = larder::heap::open(options, &heap); !s.ok()) {
    state.SkipWithError(s.to_string().c_str());
    return;
  }
  const std::size_t bytes = g_opt.collect_bytes;
  auto* block = static_cast<char*>(heap.allocate(bytes, kPage));
  if (block == nullptr) {
    state.SkipWithError("heap allocation failed");
    return;
  }
  std::memset(block, 1, bytes);
  const std::size_t n_pages = bytes / kPage;
  const std::size_t k = std::max<std::size_t>(1, static_cast<std::size_t>(std::llround(n_pages * percent / 100.0)));
  const std::vector<std::uint32_t> pages = pick_pages(n_pages, k, 0x7261636bULL);
  if (larder::status s = heap.start_tracking(larder::tracker_backend::uffd_async); !s.ok()) {
    state.SkipWithError(s.to_string().c_str());
    return;
  }
  const auto start = reinterpret_cast<std::uintptr_t>(heap.base());
  const std::size_t segment = std::size_t{4} << 20;
  const std::size_t tracked = (reinterpret_cast<std::uintptr_t>(block) + bytes - start + segment - 1) / segment * segment;
  larder::dirty_set set;
  (void)heap.collect_dirty(&set);  // the allocation and the memset
  run_paired(
      state, k, page_writer(block, pages),
      [&]() -> long { return heap.collect_dirty(&set).ok() ? static_cast<long>(set.page_count(0)) : -EIO; },
      [&] { return larder::port::pagemap_scan_written(start, tracked, true); }, true);
}

// ---------------------------------------------------------------------------
// first write

void bm_first_write(benchmark::State& state, std::optional<tracker_kind> kind, backing where, bool clean) {
  std::string error;
  region* r = get_region(where, g_opt.first_write_bytes, &error);
  if (r == nullptr) {
    state.SkipWithError(error.c_str());
    return;
  }
  const std::size_t k = std::min(g_opt.first_write_pages, r->pages());
  const std::vector<std::uint32_t> pages = pick_pages(r->pages(), k, 0x66697273ULL);
  r->touch_all();
  error = r->sync();

  std::unique_ptr<write_tracker> tracker;
  if (error.empty() && kind) error = make_armed_tracker(*kind, *r, &tracker);
  if (!error.empty()) {
    state.SkipWithError(error.c_str());
    return;
  }

  std::vector<written_run> runs;
  runs.reserve(k + 16);
  // Untimed: write the last round back (file), re-arm (tracker). Returns the
  // pages the tracker found written, or -errno.
  auto prepare = [&]() -> long {
    if (clean) {
      std::string e = r->sync();
      if (!e.empty()) return -EIO;
    }
    if (!tracker) return 0;
    runs.clear();
    if (int e = tracker->collect(&runs)) return -e;
    return static_cast<long>(count_pages(runs));
  };
  volatile char* base = r->base();
  char value = 0;
  auto write_round = [&] {
    ++value;
    for (std::uint32_t p : pages) base[std::size_t{p} * kPage + 128] = value;
  };

  const long expected = tracker ? static_cast<long>(k) : 0;
  long found = prepare();
  write_round();  // warm-up round, untimed
  double total_s = 0.0;
  std::size_t rounds = 0;
  for (auto _ : state) {
    found = prepare();
    if (found != expected) {
      std::string text = found < 0 ? errno_text("prepare", static_cast<int>(-found))
                                   : "collect found " + std::to_string(found) + " written pages, expected " +
                                         std::to_string(expected);
      state.SkipWithError(text.c_str());
      break;
    }
    auto t0 = bench_clock::now();
    write_round();
    auto t1 = bench_clock::now();
    double s = larder_bench::seconds_between(t0, t1);
    state.SetIterationTime(s);
    total_s += s;
    ++rounds;
  }
  if (rounds > 0) state.counters["ns_per_write"] = total_s * 1e9 / static_cast<double>(rounds * k);
  state.counters["pages_per_round"] = static_cast<double>(k);
  if (double folio = r->mean_folio_pages(); folio > 0.0) state.counters["folio_pages"] = folio;
}

// ---------------------------------------------------------------------------
// registration and main

std::string percent_label(double p) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", p);
  return text;
}

void finish(benchmark::internal::Benchmark* b, int iters) {
  b->Unit(benchmark::kMillisecond)
      ->UseManualTime()
      ->Iterations(iterations(iters))
      ->Repetitions(g_opt.reps)
      ->ReportAggregatesOnly(true);
}

void register_all() {
  using larder::port::probe_tracker;
  std::vector<tracker_kind> kinds;
  for (tracker_kind k : {tracker_kind::uffd_async, tracker_kind::mprotect, tracker_kind::pkey}) {
    auto probe = probe_tracker(k);
    std::string key = std::string("tracker_") + larder::port::tracker_name(k);
    benchmark::AddCustomContext(key, probe.available ? "available" : std::string("unavailable: ") + probe.reason);
    if (probe.available) kinds.push_back(k);
  }
  bool have_uffd = std::find(kinds.begin(), kinds.end(), tracker_kind::uffd_async) != kinds.end();

  // collect: per backing, then per method, so each region is set up once.
  const double percents[] = {0.1, 1.0, 10.0};
  for (backing where : {backing::anon, backing::shm}) {
    for (double percent : percents) {
      if (where == backing::shm && percent != 1.0) continue;  // shm: 1 % only
      std::string suffix = std::string("/") + backing_name(where) + "/" + percent_label(percent) + "pct";
      // Iterations: enough for a steady mean while the untimed writes (a
      // signal and an mprotect per page for mprotect) stay affordable.
      const int iters = percent >= 10.0 ? 20 : 50;
      for (tracker_kind k : kinds) {
        auto* b = benchmark::RegisterBenchmark(
            (std::string("collect/") + larder::port::tracker_name(k) + suffix).c_str(),
            [=](benchmark::State& s) { bm_collect(s, collect_method::tracker, k, where, percent); });
        finish(b, k == tracker_kind::uffd_async ? iters : percent >= 10.0 ? 5 : 10);
      }
      if (have_uffd) {
        auto* b = benchmark::RegisterBenchmark(
            ("collect/pagemap_scan" + suffix).c_str(),
            [=](benchmark::State& s) { bm_collect(s, collect_method::pagemap_scan, tracker_kind::uffd_async, where, percent); });
        finish(b, iters);
        b = benchmark::RegisterBenchmark(("collect_pair/uffd-async" + suffix).c_str(), [=](benchmark::State& s) {
          bm_collect_pair(s, where, percent);
        });
        finish(b, iters);
        if (where == backing::anon) {
          b = benchmark::RegisterBenchmark(("collect_pair/heap-uffd-async" + suffix).c_str(),
                                           [=](benchmark::State& s) { bm_collect_pair_heap(s, percent); });
          finish(b, iters);
        }
      }
      auto* b = benchmark::RegisterBenchmark(("collect/xxh3" + suffix).c_str(), [=](benchmark::State& s) {
        bm_collect(s, collect_method::xxh3, tracker_kind::uffd_async, where, percent);
      });
      finish(b, 3);
    }
  }

  // first write: per backing, the no-tracker baseline first.
  struct fw_case {
    const char* name;
    backing where;
    bool clean;
  };
  const fw_case cases[] = {
      {"anon", backing::anon, false},
      {"shm", backing::shm, false},
      {"file", backing::file, true},
      {"file_dirty", backing::file, false},
  };
  for (const fw_case& c : cases) {
    std::vector<std::optional<tracker_kind>> trackers{std::nullopt};
    for (tracker_kind k : kinds) trackers.push_back(k);
    for (auto k : trackers) {
      std::string name = std::string("first_write/") + (k ? larder::port::tracker_name(*k) : "none") + "/" + c.name;
      auto* b = benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& s) {
        bm_first_write(s, k, c.where, c.clean);
      });
      // The file rounds wait for a writeback each (and take a page_mkwrite
      // fault per page under a tracker): fewer of them.
      finish(b, c.where != backing::file ? 20 : c.clean ? 3 : 10);
    }
  }
}

bool take_size(const char* arg, const char* flag, std::size_t* out, std::size_t unit) {
  std::size_t n = std::strlen(flag);
  if (std::strncmp(arg, flag, n) != 0) return false;
  char* end = nullptr;
  unsigned long long v = std::strtoull(arg + n, &end, 10);
  if (end == arg + n || *end != '\0' || v == 0) {
    std::fprintf(stderr, "track_bench: bad value in %s\n", arg);
    std::exit(2);
  }
  *out = static_cast<std::size_t>(v) * unit;
  return true;
}

std::string file_system_of(const std::string& dir) {
  struct statfs fs;
  if (::statfs(dir.c_str(), &fs) != 0) return "unknown";
  switch (static_cast<unsigned long>(fs.f_type)) {
    case 0xEF53UL: return "ext4";
    case 0x01021994UL: return "tmpfs";
    case 0x58465342UL: return "xfs";
    case 0x9123683EUL: return "btrfs";
    case 0x794c7630UL: return "overlayfs";
    default: {
      char text[32];
      std::snprintf(text, sizeof text, "0x%lx", static_cast<unsigned long>(fs.f_type));
      return text;
    }
  }
}

std::string read_first_line(const char* path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (const char* text = std::getenv("LARDER_BENCH_REPS")) g_opt.reps = std::max(1, std::atoi(text));
  const char* dir_env = std::getenv("LARDER_BENCH_DIR");
  g_opt.dir = dir_env != nullptr && *dir_env != '\0' ? dir_env : LARDER_BENCH_DEFAULT_DIR;
  std::size_t mib = 0;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    if (std::strncmp(a, "--reps=", 7) == 0) {
      g_opt.reps = std::max(1, std::atoi(a + 7));
    } else if (take_size(a, "--collect-mib=", &mib, std::size_t{1} << 20)) {
      g_opt.collect_bytes = mib;
    } else if (take_size(a, "--first-write-mib=", &mib, std::size_t{1} << 20)) {
      g_opt.first_write_bytes = mib;
    } else if (take_size(a, "--first-write-pages=", &g_opt.first_write_pages, 1)) {
    } else if (std::strncmp(a, "--dir=", 6) == 0) {
      g_opt.dir = a + 6;
    } else if (std::strncmp(a, "--iter-scale=", 13) == 0) {
      g_opt.iter_scale = std::strtod(a + 13, nullptr);
      if (!(g_opt.iter_scale > 0.0)) g_opt.iter_scale = 1.0;
    } else {
      std::fprintf(stderr, "track_bench: unknown argument %s\n", a);
      return 2;
    }
  }

  std::string fs = file_system_of(g_opt.dir);
  if (fs == "tmpfs")
    std::fprintf(stderr, "track_bench: %s is a tmpfs; the file backing will not measure a disk file system "
                 "(set LARDER_BENCH_DIR)\n", g_opt.dir.c_str());
  benchmark::AddCustomContext("reps", std::to_string(g_opt.reps));
  benchmark::AddCustomContext("collect_region_mib", std::to_string(g_opt.collect_bytes >> 20));
  benchmark::AddCustomContext("first_write_region_mib", std::to_string(g_opt.first_write_bytes >> 20));
  benchmark::AddCustomContext("first_write_pages", std::to_string(g_opt.first_write_pages));
  benchmark::AddCustomContext("file_dir", g_opt.dir);
  benchmark::AddCustomContext("file_dir_fs", fs);
  benchmark::AddCustomContext("thp_enabled", read_first_line("/sys/kernel/mm/transparent_hugepage/enabled"));
  benchmark::AddCustomContext("iter_scale", std::to_string(g_opt.iter_scale));

  register_all();
  benchmark::RunSpecifiedBenchmarks();
  g_region.reset();
  benchmark::Shutdown();
  return 0;
}
