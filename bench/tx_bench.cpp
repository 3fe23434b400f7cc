// larder_tx_bench: larder transactions against libpmemobj transactions, side
// by side in one process, on one file system.
//
// Both the larder heap and the pmemobj pool live in files in --dir=PATH
// (default /var/tmp). bench/tx_compare.py runs this program on a disk file
// system, where both libraries make data durable with msync/fdatasync
// and are bound by the number of those calls a transaction makes; and on
// /dev/shm with persistent memory emulated (PMEM_IS_PMEM_FORCE=1 for
// pmemobj, PMEM2_FORCE_GRANULARITY=CACHE_LINE for larder's libpmem2 domain),
// where both persist with cache-line flushes and fences, so the software
// overhead is compared. Files are deleted before and after each benchmark.
//
// Benchmarks (names as Google Benchmark shows them):
//
//   sync_cost/msync           the price of one sync on this file system:
//   sync_cost/fdatasync       8 bytes written to a page of a mapped file and
//                             msync(MS_SYNC) of that page, or pwrite +
//                             fdatasync; for reading the disk numbers.
//   tx_update64/larder        one transaction that updates a 64-byte field of
//   tx_update64/pmemobj       the root object:
//                               larder:  { larder::transaction tx(h);
//                                          tx.snapshot(root->field, 64);
//                                          write the 64 bytes; }
//                               pmemobj: TX_BEGIN(pop) {
//                                          pmemobj_tx_add_range_direct(
//                                              root->field, 64);
//                                          write the 64 bytes; } TX_END
//   tx_alloc_link64/larder    one transaction that allocates a 64-byte node
//   tx_alloc_link64/pmemobj   and links it at the head of a list in the root:
//                               larder:  tx.make<node>(), tx.snapshot(&head),
//                                        link; pmemobj: pmemobj_tx_alloc,
//                                        pmemobj_tx_add_range_direct(&head),
//                                        link.
//   tx_update64_threads/file/threads:N
//   tx_update64_threads/shm/threads:N
//                             N threads (1, 2, 4) each run tx_update64's
//                             transaction on a 64-byte field of its own in
//                             one larder heap, a file heap in --dir or a
//                             shm heap: transactions of different threads
//                             run at once, and on the file heap commits
//                             that arrive together share their syncs.
//                             items_per_second counts the commits of all
//                             threads together (wall clock).
//   tx_recovery/larder        time to open a heap or pool holding 1 GiB of
//   tx_recovery/pmemobj       data (64 KiB blocks with a known pattern,
//                             --data-mib), (a) after a clean close, with
//                             an empty log (counter open_empty_ms, the
//                             median of --empty-opens opens), and (b) after
//                             a forked child began a transaction, snapshotted
//                             and overwrote as much data as one transaction's
//                             log holds (up to --log-mib, default 256 MiB)
//                             and _exit()ed without committing, so that the
//                             open rolls it back (open_full_ms, the median of
//                             --full-opens crashes). After every rollback the
//                             data is checked against its pattern. log_mib
//                             says how much the child logged (in 64 KiB
//                             snapshots). larder's child logs until its lane
//                             is full (out_of_space; that crash is not
//                             counted and the next ones log that much) or
//                             the cap is reached (lane_full says which);
//                             pmemobj's child logs the same amount as
//                             larder's did when both run in one process, or
//                             up to the cap (tx_compare.py runs them in
//                             separate processes and passes larder's amount
//                             as the cap). The open times are with the file
//                             in the page cache (it was just written and
//                             synced). pmemobj's pool is filled by a helper
//                             process run with PMEM_IS_PMEM_FORCE=1 and
//                             PMEM_NO_FLUSH=1 (an msync per allocation would
//                             make filling 1 GiB on a disk take a minute),
//                             then fsynced.
//
// The throughput benchmarks time the transactions with the wall clock
// (UseRealTime: on a disk the syncs are waiting, not CPU time); setting up
// the heap or pool is outside the timed loop, and one heap or pool serves
// all of a benchmark's runs. After the loop each benchmark checks its effect
// (the field holds the last value written; the list holds one node per
// transaction). Counter: items_per_second (transactions per second).
//
// --probe=NAME --probe-tx=N runs N transactions of NAME (update64/larder,
// update64/pmemobj, alloc_link64/larder, alloc_link64/pmemobj) outside
// Google Benchmark and exits; between the two marker system calls
// faccessat("/larder-tx-bench/probe-begin") and ".../probe-end" there is
// nothing but the N transactions. tx_compare.py runs it under strace to
// count the sync system calls per transaction.
//
// --emulate-pmem sets PMEM_IS_PMEM_FORCE=1 and
// PMEM2_FORCE_GRANULARITY=CACHE_LINE and re-executes the program (libpmem
// and libpmem2 read them when they initialise), for running by hand on
// /dev/shm; tx_compare.py sets them itself. --pmemobj-first registers the
// pmemobj half of each pair first (the script alternates the order between
// rounds).
//
// Build switches: LARDER_TX_BENCH_NO_LARDER leaves out the larder half,
// LARDER_TX_BENCH_NO_PMEMOBJ the pmemobj half (bench/CMakeLists.txt sets it
// when pkg-config finds no libpmemobj).
#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "bench_setup.hpp"

#if !defined(LARDER_TX_BENCH_NO_LARDER)
#include <larder/larder.hpp>
#include <larder/transaction.hpp>
#endif

#if !defined(LARDER_TX_BENCH_NO_PMEMOBJ)
#include <libpmemobj.h>
#endif

namespace {

using larder_bench::bench_clock;
using larder_bench::bench_file;
using larder_bench::file_system_of;
using larder_bench::millis;
using larder_bench::remove_file;
using larder_bench::seconds_between;
using larder_bench::take_value;

constexpr std::size_t kField = 64;           // case 1: bytes updated
constexpr std::size_t kNode = 64;            // case 2: node size
constexpr std::size_t kBlock = 64 << 10;     // recovery: data block size

std::string g_dir = "/var/tmp";
std::size_t g_data_mib = 1024;       // recovery: data in the heap/pool
std::size_t g_log_mib = 256;         // recovery: most a crashed child logs
int g_empty_opens = 10;
int g_full_opens = 3;
std::size_t g_pool_mib = 2048;       // pmemobj pool for the alloc_link case
std::size_t g_larder_logged = 0;     // bytes larder's child logged (0: not run)

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

// The bytes a transaction writes: different for every transaction, so that
// no write is a no-op.
inline void fill_value(unsigned char* dst, std::size_t size, std::uint64_t seq) noexcept {
  for (std::size_t i = 0; i < size; i += 8) {
    std::uint64_t v = seq * 0x9E3779B97F4A7C15ull + i;
    std::memcpy(dst + i, &v, 8);
  }
}
inline bool value_is(const unsigned char* p, std::size_t size, std::uint64_t seq) noexcept {
  unsigned char want[kField];
  fill_value(want, size, seq);
  return std::memcmp(p, want, size) == 0;
}

// Recovery data: each 8-byte word of block b holds a value made of b and
// the word's index, so that a block restored wrongly (or from the wrong
// place) shows.
inline std::uint64_t pattern_word(std::size_t block, std::size_t word) noexcept {
  return (static_cast<std::uint64_t>(block) << 32) ^ word ^ 0x5A5A00005A5A0000ull;
}
void fill_block(void* p, std::size_t block) noexcept {
  auto* w = static_cast<std::uint64_t*>(p);
  for (std::size_t i = 0; i < kBlock / 8; ++i) w[i] = pattern_word(block, i);
}
bool block_ok(const void* p, std::size_t block) noexcept {
  const auto* w = static_cast<const std::uint64_t*>(p);
  for (std::size_t i = 0; i < kBlock / 8; ++i)
    if (w[i] != pattern_word(block, i)) return false;
  return true;
}

// What a crashed child reports to its parent through a pipe.
struct child_report {
  std::uint64_t logged;     // bytes snapshotted (and overwritten)
  std::uint64_t blocks;     // blocks snapshotted
  double ms;                // time the child spent logging
  int full;                 // the log refused more (lane full)
  int error;                // nonzero: the child failed; message follows
  char message[200];
};

int g_child_fd = -1;  // the report pipe, in a crash child

// Called in a crash child: sends the report and stops the process at once,
// without committing, unwinding or running atexit handlers; as far as the
// heap is concerned, the process stopped here.
[[noreturn]] void child_leave(const child_report& r) {
  ssize_t ignored = ::write(g_child_fd, &r, sizeof r);
  (void)ignored;
  ::_exit(0);
}

// Forks a child that runs `body`, which ends with child_leave (a body that
// returns is reported as it is); returns the child's report (error set when
// it died or reported an error).
child_report run_crashing_child(const std::function<void(child_report*)>& body) {
  child_report r{};
  int fds[2];
  if (::pipe(fds) != 0) {
    r.error = 1;
    std::snprintf(r.message, sizeof r.message, "pipe: %s", std::strerror(errno));
    return r;
  }
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    r.error = 1;
    std::snprintf(r.message, sizeof r.message, "fork: %s", std::strerror(errno));
    ::close(fds[0]);
    ::close(fds[1]);
    return r;
  }
  if (pid == 0) {
    ::close(fds[0]);
    g_child_fd = fds[1];
    child_report mine{};
    body(&mine);
    child_leave(mine);
  }
  ::close(fds[1]);
  ssize_t got = 0;
  while (got < static_cast<ssize_t>(sizeof r)) {
    ssize_t n = ::read(fds[0], reinterpret_cast<char*>(&r) + got, sizeof r - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += n;
  }
  ::close(fds[0]);
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (got != static_cast<ssize_t>(sizeof r)) {
    r = child_report{};
    r.error = 1;
    std::snprintf(r.message, sizeof r.message, "the child died without a report (wait status 0x%x)", wstatus);
  }
  return r;
}

// The marker system calls around a probe's transactions (see the header).
void probe_marker(const char* which) {
  std::string path = std::string("/larder-tx-bench/probe-") + which;
  ::syscall(SYS_faccessat, AT_FDCWD, path.c_str(), F_OK, 0);
}

// One heap or pool that the runs of a benchmark share: made by the first run
// of the benchmark, destroyed when another benchmark starts or at the end.
struct bench_env {
  virtual ~bench_env() = default;
  std::uint64_t done = 0;  // transactions run on it so far
  std::string failure;
};
std::string g_env_key;
std::unique_ptr<bench_env> g_env;

template <class Env>
Env* env_for(const std::string& key) {
  if (g_env_key != key || !g_env) {
    g_env.reset();  // the previous benchmark's heap is closed and removed first
    g_env_key = key;
    g_env = std::make_unique<Env>();
  }
  return static_cast<Env*>(g_env.get());
}
void drop_env() {
  g_env.reset();
  g_env_key.clear();
}

// Runs `op` once per iteration; `check` verifies the effect afterwards.
template <class Env, class Op, class Check>
void run_throughput(benchmark::State& state, const std::string& key, Op op, Check check) {
  Env* env = nullptr;
  try {
    env = env_for<Env>(key);
  } catch (const std::exception& e) {
    drop_env();
    state.SkipWithError(e.what());
    return;
  }
  if (!env->failure.empty()) {
    state.SkipWithError(env->failure.c_str());
    return;
  }
  std::uint64_t seq = env->done;
  try {
    for (auto _ : state) {
      if (!op(*env, seq)) break;
      ++seq;
    }
  } catch (const std::exception& e) {
    env->failure = e.what();
  }
  env->done = seq;
  if (env->failure.empty()) check(*env, &env->failure);
  if (!env->failure.empty()) {
    state.SkipWithError(env->failure.c_str());
    return;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["transactions_total"] = static_cast<double>(env->done);
}

std::runtime_error fail(const std::string& text) { return std::runtime_error(text); }

// What a recovery benchmark measures, for either library.
struct recovery_times {
  std::vector<double> empty_ms;  // opens after a clean close
  std::vector<double> full_ms;   // opens that roll a crashed transaction back
  std::vector<double> child_ms;  // the crashed children's logging
  double logged_mib = 0.0;       // what the last counted crashed child logged
};

// The end of a recovery benchmark: removes its file, then reports `failure`
// or the medians. False when it reported a failure.
bool report_recovery(benchmark::State& state, const std::string& path, const std::string& failure,
                     const recovery_times& times) {
  remove_file(path);
  if (!failure.empty()) {
    state.SkipWithError(failure.c_str());
    return false;
  }
  state.counters["open_empty_ms"] = median(times.empty_ms);
  state.counters["open_full_ms"] = median(times.full_ms);
  state.counters["child_log_ms"] = median(times.child_ms);
  state.counters["log_mib"] = times.logged_mib;
  state.counters["data_mib"] = static_cast<double>(g_data_mib);
  return true;
}

// ---------------------------------------------------------------------------
// larder

#if !defined(LARDER_TX_BENCH_NO_LARDER)

struct larder_node {
  larder_node* next;
  unsigned char payload[kNode - sizeof(larder_node*)];
};
static_assert(sizeof(larder_node) == kNode);

struct larder_root {
  unsigned char field[kField];
  larder_node* head;
  std::uint64_t length;
};

larder::heap_options larder_options(const std::string& path, larder::open_mode mode) {
  larder::heap_options options;
  options.kind = larder::backing::file;
  options.name = path;
  options.mode = mode;
  return options;
}

struct larder_env : bench_env {
  std::string path = bench_file(g_dir, "larder-tx-bench") + ".heap";
  larder::heap h;
  larder_root* root = nullptr;
  larder_env() {
    remove_file(path);
    h = larder::heap(larder_options(path, larder::open_mode::create));
    root = h.root<larder_root>("tx_bench");
    std::memset(root, 0, sizeof *root);
  }
  ~larder_env() override {
    if (h.is_open()) (void)h.close();
    remove_file(path);
  }
};

inline bool larder_update64(larder_env& e, std::uint64_t seq) {
  larder::transaction tx(e.h);
  tx.snapshot(e.root->field, kField);
  fill_value(e.root->field, kField, seq);
  return true;
}

inline bool larder_alloc_link64(larder_env& e, std::uint64_t seq) {
  larder::transaction tx(e.h);
  larder_node* n = tx.make<larder_node>();
  n->next = e.root->head;
  std::memcpy(n->payload, &seq, sizeof seq);
  tx.snapshot(&e.root->head, sizeof e.root->head + sizeof e.root->length);
  e.root->head = n;
  e.root->length += 1;
  return true;
}

void larder_check_update(larder_env& e, std::string* failure) {
  if (e.done > 0 && !value_is(e.root->field, kField, e.done - 1))
    *failure = "larder: the field does not hold the last value written";
}

void larder_check_list(larder_env& e, std::string* failure) {
  std::uint64_t n = 0;
  for (larder_node* p = e.root->head; p != nullptr && n <= e.done; p = p->next) ++n;
  if (n != e.done || e.root->length != e.done)
    *failure = "larder: the list holds " + std::to_string(n) + " nodes (length " +
               std::to_string(e.root->length) + ") after " + std::to_string(e.done) + " transactions";
}

void bm_larder_update64(benchmark::State& state) {
  run_throughput<larder_env>(state, "update64/larder", larder_update64, larder_check_update);
}
void bm_larder_alloc_link64(benchmark::State& state) {
  run_throughput<larder_env>(state, "alloc_link64/larder", larder_alloc_link64, larder_check_list);
}

// Concurrent transactions: thread 0 sets a new heap up before the loop
// (the loop's start is a barrier for all threads), after taking down the
// one of the run before, whose threads have all ended; the last goes at
// exit (drop_threads_env).
constexpr int kMaxUpdateThreads = 4;
struct threads_root {
  struct alignas(128) slot {
    unsigned char field[kField];
  } slots[kMaxUpdateThreads];
};
struct threads_env {
  larder::heap h;
  threads_root* root = nullptr;
  std::string failure;
};
threads_env* g_threads_env = nullptr;

larder::heap_options threads_options(larder::backing kind) {
  larder::heap_options o;
  o.kind = kind;
  o.mode = larder::open_mode::create;
  o.name = kind == larder::backing::shm ? "/larder-tx-bench-threads-" + std::to_string(static_cast<long>(getpid()))
                                        : bench_file(g_dir, "larder-tx-bench-threads") + ".heap";
  return o;
}

void remove_threads_heap(larder::backing kind) {
  larder::heap_options o = threads_options(kind);
  if (kind == larder::backing::shm) {
    (void)larder::heap::remove(kind, o.name);
  } else {
    remove_file(o.name);
  }
}

void drop_threads_env() {
  if (g_threads_env == nullptr) return;
  larder::backing kind = g_threads_env->h.kind();
  delete g_threads_env;
  g_threads_env = nullptr;
  remove_threads_heap(kind);
}

template <larder::backing Kind>
void bm_larder_update64_threads(benchmark::State& state) {
  if (state.thread_index() == 0) {
    drop_threads_env();
    remove_threads_heap(Kind);
    g_threads_env = new threads_env;
    try {
      g_threads_env->h = larder::heap(threads_options(Kind));
      g_threads_env->root = g_threads_env->h.root<threads_root>("tx_bench_threads");
    } catch (const std::exception& e) {
      g_threads_env->failure = e.what();
    }
  }
  threads_root::slot* mine = nullptr;
  std::uint64_t seq = 0;
  std::string failure;
  for (auto _ : state) {
    if (mine == nullptr) {
      if (!g_threads_env->failure.empty()) break;
      mine = &g_threads_env->root->slots[state.thread_index()];
    }
    try {
      larder::transaction tx(g_threads_env->h);
      tx.snapshot(mine->field, kField);
      fill_value(mine->field, kField, seq);
    } catch (const std::exception& e) {
      failure = e.what();
      break;
    }
    ++seq;
  }
  if (failure.empty() && seq > 0 && !value_is(mine->field, kField, seq - 1))
    failure = "a thread's field does not hold the last value it wrote";
  if (state.thread_index() == 0 && !g_threads_env->failure.empty()) failure = g_threads_env->failure;
  if (!failure.empty()) state.SkipWithError(failure.c_str());
  state.SetItemsProcessed(static_cast<std::int64_t>(seq));
}

// Recovery. The data blocks' addresses stay valid across opens and in the
// child, since a heap is always mapped at its recorded base.
void bm_larder_recovery(benchmark::State& state) {
  drop_env();
  const std::string path = bench_file(g_dir, "larder-tx-bench-recovery") + ".heap";
  const std::size_t nblocks = (g_data_mib << 20) / kBlock;
  std::vector<void*> blocks(nblocks, nullptr);
  recovery_times times;
  int lane_full = 0;
  std::string failure;
  remove_file(path);

  auto open_heap = [&](larder::heap* out, double* ms) {
    auto t = bench_clock::now();
    larder::status s = larder::heap::open(larder_options(path, larder::open_mode::open), out);
    *ms = millis(t, bench_clock::now());
    if (!s.ok()) failure = "larder heap::open: " + s.to_string();
    return s.ok();
  };

  for (auto _ : state) {
    try {
      {  // fill (untimed)
        larder::heap h(larder_options(path, larder::open_mode::create));
        for (std::size_t b = 0; b < nblocks; ++b) {
          blocks[b] = h.allocate(kBlock);
          if (blocks[b] == nullptr) throw fail("larder: heap::allocate returned null while filling");
          fill_block(blocks[b], b);
        }
        larder::throw_if_error(h.close());
      }
      for (int i = 0; i < g_empty_opens && failure.empty(); ++i) {
        larder::heap h;
        double ms = 0;
        if (!open_heap(&h, &ms)) break;
        times.empty_ms.push_back(ms);
        larder::throw_if_error(h.close());
      }
      // A crash whose lane filled up before the cap (out_of_space) only
      // finds out how much the lane holds; it is not counted, and the
      // following ones log that much.
      std::size_t target = (g_log_mib << 20) / kBlock;
      bool probing = true;
      for (int i = 0; i < g_full_opens && failure.empty(); ++i) {
        child_report r = run_crashing_child([&](child_report* out) {
          try {
            larder::heap h(larder_options(path, larder::open_mode::open));
            larder::transaction tx(h);
            auto t = bench_clock::now();
            std::size_t b = 0;
            for (; b < target && b < nblocks; ++b) {
              try {
                tx.snapshot(blocks[b], kBlock);
              } catch (const larder::error& e) {
                if (e.code() != static_cast<int>(larder::errc::out_of_space)) throw;
                out->full = 1;
                break;
              }
              std::memset(blocks[b], 0xEE, kBlock);
            }
            out->ms = millis(t, bench_clock::now());
            out->blocks = b;
            out->logged = b * kBlock;
            child_leave(*out);  // with the transaction open
          } catch (const std::exception& e) {
            out->error = 1;
            std::snprintf(out->message, sizeof out->message, "%s", e.what());
          }
        });
        if (r.error) throw fail(std::string("larder crash child: ") + r.message);
        if (r.blocks == 0) throw fail("larder crash child: the lane took no 64 KiB snapshot");
        bool counted = true;
        if (r.full && probing) {
          target = r.blocks;
          lane_full = 1;
          counted = false;
          --i;
        }
        probing = false;
        if (counted) {
          times.child_ms.push_back(r.ms);
          times.logged_mib = static_cast<double>(r.logged) / (1 << 20);
        }
        larder::heap h;
        double ms = 0;
        if (!open_heap(&h, &ms)) break;
        if (counted) times.full_ms.push_back(ms);
        for (std::size_t b = 0; b < r.blocks; ++b)
          if (!block_ok(blocks[b], b))
            throw fail("larder: after rollback block " + std::to_string(b) + " of " +
                       std::to_string(r.blocks) + " does not hold its data again");
        larder::throw_if_error(h.close());
      }
      g_larder_logged = static_cast<std::size_t>(times.logged_mib * (1 << 20));
    } catch (const std::exception& e) {
      if (failure.empty()) failure = e.what();
    }
    state.SetIterationTime(median(times.full_ms) / 1000.0);
  }
  if (report_recovery(state, path, failure, times)) state.counters["lane_full"] = lane_full;
}

#endif  // !LARDER_TX_BENCH_NO_LARDER

// ---------------------------------------------------------------------------
// pmemobj

#if !defined(LARDER_TX_BENCH_NO_PMEMOBJ)

constexpr const char* kLayout = "larder_tx_bench";

struct pm_node {
  PMEMoid next;
  unsigned char payload[kNode - sizeof(PMEMoid)];
};
static_assert(sizeof(pm_node) == kNode);

struct pm_root {
  unsigned char field[kField];
  PMEMoid head;
  std::uint64_t length;
};

std::string pmemobj_failure(const char* what) {
  const char* msg = pmemobj_errormsg();
  return std::string(what) + ": " + (msg != nullptr && *msg != '\0' ? msg : std::strerror(errno));
}

struct pmemobj_env : bench_env {
  std::string path = bench_file(g_dir, "pmemobj-tx-bench") + ".pool";
  PMEMobjpool* pop = nullptr;
  pm_root* root = nullptr;
  explicit pmemobj_env(std::size_t pool_mib = 64) {
    remove_file(path);
    pop = pmemobj_create(path.c_str(), kLayout, pool_mib << 20, 0600);
    if (pop == nullptr) throw fail(pmemobj_failure("pmemobj_create"));
    root = static_cast<pm_root*>(pmemobj_direct(pmemobj_root(pop, sizeof(pm_root))));
    if (root == nullptr) throw fail(pmemobj_failure("pmemobj_root"));
  }
  ~pmemobj_env() override {
    if (pop != nullptr) pmemobj_close(pop);
    remove_file(path);
  }
};
struct pmemobj_big_env : pmemobj_env {
  pmemobj_big_env() : pmemobj_env(g_pool_mib) {}
};

inline bool pmemobj_update64(pmemobj_env& e, std::uint64_t seq) {
  volatile bool aborted = false;  // set after pmemobj's longjmp
  TX_BEGIN(e.pop) {
    pmemobj_tx_add_range_direct(e.root->field, kField);
    fill_value(e.root->field, kField, seq);
  }
  TX_ONABORT { aborted = true; }
  TX_END
  if (aborted) e.failure = pmemobj_failure("pmemobj update64 transaction aborted");
  return !aborted;
}

inline bool pmemobj_alloc_link64(pmemobj_env& e, std::uint64_t seq) {
  volatile bool aborted = false;  // set after pmemobj's longjmp
  TX_BEGIN(e.pop) {
    PMEMoid oid = pmemobj_tx_alloc(kNode, 1);
    auto* n = static_cast<pm_node*>(pmemobj_direct(oid));
    n->next = e.root->head;
    std::memcpy(n->payload, &seq, sizeof seq);
    pmemobj_tx_add_range_direct(&e.root->head, sizeof e.root->head + sizeof e.root->length);
    e.root->head = oid;
    e.root->length += 1;
  }
  TX_ONABORT { aborted = true; }
  TX_END
  if (aborted) e.failure = pmemobj_failure("pmemobj alloc_link64 transaction aborted");
  return !aborted;
}

void pmemobj_check_update(pmemobj_env& e, std::string* failure) {
  if (e.done > 0 && !value_is(e.root->field, kField, e.done - 1))
    *failure = "pmemobj: the field does not hold the last value written";
}

void pmemobj_check_list(pmemobj_env& e, std::string* failure) {
  std::uint64_t n = 0;
  for (PMEMoid p = e.root->head; !OID_IS_NULL(p) && n <= e.done;
       p = static_cast<pm_node*>(pmemobj_direct(p))->next)
    ++n;
  if (n != e.done || e.root->length != e.done)
    *failure = "pmemobj: the list holds " + std::to_string(n) + " nodes after " + std::to_string(e.done) +
               " transactions";
}

void bm_pmemobj_update64(benchmark::State& state) {
  run_throughput<pmemobj_env>(state, "update64/pmemobj", pmemobj_update64, pmemobj_check_update);
}
void bm_pmemobj_alloc_link64(benchmark::State& state) {
  run_throughput<pmemobj_big_env>(
      state, "alloc_link64/pmemobj", [](pmemobj_env& e, std::uint64_t s) { return pmemobj_alloc_link64(e, s); },
      [](pmemobj_env& e, std::string* f) { pmemobj_check_list(e, f); });
}

// Creates the recovery pool and fills it with nblocks 64 KiB objects, their
// handles in the root object. Runs in a process of its own that
// spawn_pmemobj_fill starts with PMEM_IS_PMEM_FORCE=1 and PMEM_NO_FLUSH=1:
// on a disk, filling 1 GiB with an msync per allocation would take a
// minute, and the fill only has to leave the data in the file (the page
// cache), not make it durable step by step.
int pmemobj_fill(const std::string& path, std::size_t pool, std::size_t nblocks) {
  PMEMobjpool* pop = pmemobj_create(path.c_str(), kLayout, pool, 0600);
  if (pop == nullptr) {
    std::fprintf(stderr, "%s\n", pmemobj_failure("pmemobj_create").c_str());
    return 1;
  }
  PMEMoid root = pmemobj_root(pop, nblocks * sizeof(PMEMoid));
  auto* table = static_cast<PMEMoid*>(pmemobj_direct(root));
  if (table == nullptr) {
    std::fprintf(stderr, "%s\n", pmemobj_failure("pmemobj_root").c_str());
    pmemobj_close(pop);
    return 1;
  }
  for (std::size_t b = 0; b < nblocks; ++b) {
    if (pmemobj_alloc(pop, &table[b], kBlock, 2, nullptr, nullptr) != 0) {
      std::fprintf(stderr, "%s\n", pmemobj_failure("pmemobj_alloc while filling").c_str());
      pmemobj_close(pop);
      return 1;
    }
    fill_block(pmemobj_direct(table[b]), b);
    pmemobj_persist(pop, pmemobj_direct(table[b]), kBlock);
  }
  pmemobj_close(pop);
  // Written back once, as larder's fill is by its close, so that no
  // writeback of the fill disturbs the timings.
  int fd = ::open(path.c_str(), O_RDWR);
  if (fd < 0 || ::fsync(fd) != 0) {
    std::fprintf(stderr, "fsync %s: %s\n", path.c_str(), std::strerror(errno));
    return 1;
  }
  ::close(fd);
  return 0;
}

std::string spawn_pmemobj_fill(const std::string& path, std::size_t pool, std::size_t nblocks) {
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return std::string("fork: ") + std::strerror(errno);
  if (pid == 0) {
    setenv("PMEM_IS_PMEM_FORCE", "1", 1);
    setenv("PMEM_NO_FLUSH", "1", 1);
    std::string a1 = "--fill-pool=" + path;
    std::string a2 = "--fill-pool-bytes=" + std::to_string(pool);
    std::string a3 = "--fill-blocks=" + std::to_string(nblocks);
    char* args[] = {const_cast<char*>("larder_tx_bench"), a1.data(), a2.data(), a3.data(), nullptr};
    ::execv("/proc/self/exe", args);
    ::_exit(127);
  }
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0)
    return "filling the pmemobj pool failed (wait status " + std::to_string(wstatus) + ")";
  return {};
}

void bm_pmemobj_recovery(benchmark::State& state) {
  drop_env();
  const std::string path = bench_file(g_dir, "pmemobj-tx-bench-recovery") + ".pool";
  const std::size_t nblocks = (g_data_mib << 20) / kBlock;
  const std::size_t want_log = g_larder_logged != 0 ? g_larder_logged : (g_log_mib << 20);
  // Room for the data (each block costs a little more than 64 KiB), the undo
  // log of the crashed transaction and pmemobj's own metadata.
  const std::size_t pool = (g_data_mib << 20) + (g_data_mib << 20) / 16 + 2 * want_log + (std::size_t{256} << 20);
  std::vector<PMEMoid> blocks(nblocks, OID_NULL);
  recovery_times times;
  std::string failure;
  remove_file(path);

  auto open_pool = [&](double* ms) -> PMEMobjpool* {
    auto t = bench_clock::now();
    PMEMobjpool* pop = pmemobj_open(path.c_str(), kLayout);
    *ms = millis(t, bench_clock::now());
    if (pop == nullptr) failure = pmemobj_failure("pmemobj_open");
    return pop;
  };

  for (auto _ : state) {
    try {
      {  // fill (untimed), in a helper process (see pmemobj_fill)
        if (std::string f = spawn_pmemobj_fill(path, pool, nblocks); !f.empty()) throw fail(f);
        PMEMobjpool* pop = pmemobj_open(path.c_str(), kLayout);
        if (pop == nullptr) throw fail(pmemobj_failure("pmemobj_open after filling"));
        const auto* table = static_cast<const PMEMoid*>(pmemobj_direct(pmemobj_root(pop, nblocks * sizeof(PMEMoid))));
        std::copy(table, table + nblocks, blocks.begin());
        pmemobj_close(pop);
      }
      for (int i = 0; i < g_empty_opens && failure.empty(); ++i) {
        double ms = 0;
        PMEMobjpool* pop = open_pool(&ms);
        if (pop == nullptr) break;
        times.empty_ms.push_back(ms);
        pmemobj_close(pop);
      }
      const std::size_t target = want_log / kBlock;
      for (int i = 0; i < g_full_opens && failure.empty(); ++i) {
        child_report r = run_crashing_child([&](child_report* out) {
          PMEMobjpool* pop = pmemobj_open(path.c_str(), kLayout);
          if (pop == nullptr) {
            out->error = 1;
            std::snprintf(out->message, sizeof out->message, "%s", pmemobj_failure("pmemobj_open").c_str());
            return;
          }
          auto t = bench_clock::now();
          TX_BEGIN(pop) {
            for (std::size_t b = 0; b < target && b < nblocks; ++b) {
              void* p = pmemobj_direct(blocks[b]);
              pmemobj_tx_add_range_direct(p, kBlock);
              std::memset(p, 0xEE, kBlock);
              out->blocks = b + 1;
            }
            out->ms = millis(t, bench_clock::now());
            out->logged = out->blocks * kBlock;
            child_leave(*out);  // with the transaction open
          }
          TX_ONABORT {
            out->error = 1;
            std::snprintf(out->message, sizeof out->message, "%s after %llu blocks",
                          pmemobj_failure("transaction aborted").c_str(),
                          static_cast<unsigned long long>(out->blocks));
          }
          TX_END
        });
        if (r.error) throw fail(std::string("pmemobj crash child: ") + r.message);
        times.child_ms.push_back(r.ms);
        times.logged_mib = static_cast<double>(r.logged) / (1 << 20);
        double ms = 0;
        PMEMobjpool* pop = open_pool(&ms);
        if (pop == nullptr) break;
        times.full_ms.push_back(ms);
        for (std::size_t b = 0; b < r.blocks; ++b) {
          if (!block_ok(pmemobj_direct(blocks[b]), b)) {
            pmemobj_close(pop);
            throw fail("pmemobj: after rollback block " + std::to_string(b) + " does not hold its data again");
          }
        }
        pmemobj_close(pop);
      }
    } catch (const std::exception& e) {
      if (failure.empty()) failure = e.what();
    }
    state.SetIterationTime(median(times.full_ms) / 1000.0);
  }
  report_recovery(state, path, failure, times);
}

#endif  // !LARDER_TX_BENCH_NO_PMEMOBJ

// ---------------------------------------------------------------------------
// The price of one sync on this file system: write 8 bytes to a page of a
// mapped 1 MiB file (a different page each time) and msync that page, or
// pwrite 8 bytes and fdatasync the file.

void bm_sync_cost(benchmark::State& state, bool use_msync) {
  drop_env();
  const std::string path = bench_file(g_dir, "tx-bench-sync") + ".dat";
  constexpr std::size_t kSize = 1 << 20;
  remove_file(path);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd < 0 || ::ftruncate(fd, kSize) != 0) {
    state.SkipWithError((path + ": " + std::strerror(errno)).c_str());
    if (fd >= 0) ::close(fd);
    remove_file(path);
    return;
  }
  void* map = ::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) {
    state.SkipWithError((std::string("mmap: ") + std::strerror(errno)).c_str());
    ::close(fd);
    remove_file(path);
    return;
  }
  std::memset(map, 0, kSize);
  ::fdatasync(fd);
  std::uint64_t i = 0;
  std::string failure;
  for (auto _ : state) {
    std::size_t page = (i % (kSize / 4096)) * 4096;
    if (use_msync) {
      std::memcpy(static_cast<char*>(map) + page, &i, sizeof i);
      if (::msync(static_cast<char*>(map) + page, 4096, MS_SYNC) != 0) failure = std::strerror(errno);
    } else {
      if (::pwrite(fd, &i, sizeof i, static_cast<off_t>(page)) != sizeof i || ::fdatasync(fd) != 0)
        failure = std::strerror(errno);
    }
    if (!failure.empty()) break;
    ++i;
  }
  ::munmap(map, kSize);
  ::close(fd);
  remove_file(path);
  if (!failure.empty()) state.SkipWithError(failure.c_str());
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
void bm_sync_msync(benchmark::State& state) { bm_sync_cost(state, true); }
void bm_sync_fdatasync(benchmark::State& state) { bm_sync_cost(state, false); }

// ---------------------------------------------------------------------------
// probes: N transactions between two marker system calls

template <class Env, class Op>
int probe(Op op, std::uint64_t n) {
  try {
    Env env;
    for (std::uint64_t i = 0; i < 3; ++i)  // warm: the first transaction sets up a lane
      if (!op(env, i)) throw fail(env.failure);
    probe_marker("begin");
    for (std::uint64_t i = 3; i < n + 3; ++i)
      if (!op(env, i)) throw fail(env.failure);
    probe_marker("end");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "probe failed: %s\n", e.what());
    return 1;
  }
}

int run_probe(const std::string& name, std::uint64_t n) {
#if !defined(LARDER_TX_BENCH_NO_LARDER)
  if (name == "update64/larder") return probe<larder_env>(larder_update64, n);
  if (name == "alloc_link64/larder") return probe<larder_env>(larder_alloc_link64, n);
#endif
#if !defined(LARDER_TX_BENCH_NO_PMEMOBJ)
  if (name == "update64/pmemobj") return probe<pmemobj_env>(pmemobj_update64, n);
  if (name == "alloc_link64/pmemobj")
    return probe<pmemobj_big_env>([](pmemobj_env& e, std::uint64_t s) { return pmemobj_alloc_link64(e, s); }, n);
#endif
  std::fprintf(stderr, "unknown or not built probe: %s\n", name.c_str());
  return 2;
}

// ---------------------------------------------------------------------------

bool parse_count(const char* text, std::uint64_t* out, bool zero_ok) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(text, &end, 10);
  if (end == text || *end != '\0' || errno != 0 || (!zero_ok && v == 0)) return false;
  *out = v;
  return true;
}

using bench_fn = void (*)(benchmark::State&);
struct pair_entry {
  const char* name;
  bench_fn larder;
  bench_fn pmemobj;
  bool recovery;
};

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--emulate-pmem") == 0 && std::getenv("LARDER_TX_BENCH_REEXEC") == nullptr) {
      setenv("PMEM_IS_PMEM_FORCE", "1", 1);
      setenv("PMEM2_FORCE_GRANULARITY", "CACHE_LINE", 1);
      setenv("LARDER_TX_BENCH_REEXEC", "1", 1);
      ::execv("/proc/self/exe", argv);
      std::fprintf(stderr, "%s: cannot re-execute with the pmem variables: %s\n", argv[0], std::strerror(errno));
      return 1;
    }
  }

#if !defined(LARDER_TX_BENCH_NO_PMEMOBJ)
  // The helper process of bm_pmemobj_recovery.
  if (argc == 4 && std::strncmp(argv[1], "--fill-pool=", 12) == 0) {
    const char* bytes = nullptr;
    const char* blocks = nullptr;
    std::uint64_t pool = 0, n = 0;
    if (!take_value(argv[2], "--fill-pool-bytes=", &bytes) || !take_value(argv[3], "--fill-blocks=", &blocks) ||
        !parse_count(bytes, &pool, false) || !parse_count(blocks, &n, false))
      return 2;
    return pmemobj_fill(argv[1] + 12, pool, n);
  }
#endif

  benchmark::Initialize(&argc, argv);
  std::string probe_name;
  std::uint64_t probe_tx = 1000;
  bool pmemobj_first = false;
  for (int i = 1; i < argc; ++i) {
    const char* value = nullptr;
    std::uint64_t n = 0;
    auto bad = [&] {
      std::fprintf(stderr, "%s: bad value in %s\n", argv[0], argv[i]);
      return 1;
    };
    if (std::strcmp(argv[i], "--emulate-pmem") == 0) continue;
    if (std::strcmp(argv[i], "--pmemobj-first") == 0) {
      pmemobj_first = true;
    } else if (take_value(argv[i], "--dir=", &value)) {
      if (*value == '\0') return bad();
      g_dir = value;
    } else if (take_value(argv[i], "--data-mib=", &value)) {
      if (!parse_count(value, &n, false)) return bad();
      g_data_mib = n;
    } else if (take_value(argv[i], "--log-mib=", &value)) {
      if (!parse_count(value, &n, false)) return bad();
      g_log_mib = n;
    } else if (take_value(argv[i], "--pool-mib=", &value)) {
      if (!parse_count(value, &n, false) || n < 16) return bad();
      g_pool_mib = n;
    } else if (take_value(argv[i], "--empty-opens=", &value)) {
      if (!parse_count(value, &n, false)) return bad();
      g_empty_opens = static_cast<int>(n);
    } else if (take_value(argv[i], "--full-opens=", &value)) {
      if (!parse_count(value, &n, false)) return bad();
      g_full_opens = static_cast<int>(n);
    } else if (take_value(argv[i], "--probe=", &value)) {
      probe_name = value;
    } else if (take_value(argv[i], "--probe-tx=", &value)) {
      if (!parse_count(value, &n, true)) return bad();
      probe_tx = n;
    } else {
      std::fprintf(stderr, "%s: unknown argument %s\n", argv[0], argv[i]);
      return 1;
    }
  }
  if (!probe_name.empty()) return run_probe(probe_name, probe_tx);

  const pair_entry pairs[] = {
#if !defined(LARDER_TX_BENCH_NO_LARDER) && !defined(LARDER_TX_BENCH_NO_PMEMOBJ)
      {"tx_update64", bm_larder_update64, bm_pmemobj_update64, false},
      {"tx_alloc_link64", bm_larder_alloc_link64, bm_pmemobj_alloc_link64, false},
      {"tx_recovery", bm_larder_recovery, bm_pmemobj_recovery, true},
#elif !defined(LARDER_TX_BENCH_NO_LARDER)
      {"tx_update64", bm_larder_update64, nullptr, false},
      {"tx_alloc_link64", bm_larder_alloc_link64, nullptr, false},
      {"tx_recovery", bm_larder_recovery, nullptr, true},
#elif !defined(LARDER_TX_BENCH_NO_PMEMOBJ)
      {"tx_update64", nullptr, bm_pmemobj_update64, false},
      {"tx_alloc_link64", nullptr, bm_pmemobj_alloc_link64, false},
      {"tx_recovery", nullptr, bm_pmemobj_recovery, true},
#endif
  };
  benchmark::RegisterBenchmark("sync_cost/msync", bm_sync_msync)->UseRealTime()->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("sync_cost/fdatasync", bm_sync_fdatasync)
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
#if !defined(LARDER_TX_BENCH_NO_LARDER)
  const std::pair<const char*, bench_fn> threaded[] = {
      {"tx_update64_threads/file", bm_larder_update64_threads<larder::backing::file>},
      {"tx_update64_threads/shm", bm_larder_update64_threads<larder::backing::shm>}};
  for (auto [name, fn] : threaded)
    benchmark::RegisterBenchmark(name, fn)
        ->Threads(1)
        ->Threads(2)
        ->Threads(kMaxUpdateThreads)
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
#endif
  for (const pair_entry& p : pairs) {
    // Recovery always runs larder first: pmemobj's crashed transaction logs
    // as much as larder's lane held.
    bool pm_first = pmemobj_first && !p.recovery;
    for (int k = 0; k < 2; ++k) {
      bool pm = (k == 0) == pm_first;
      bench_fn fn = pm ? p.pmemobj : p.larder;
      if (fn == nullptr) continue;
      std::string name = std::string(p.name) + (pm ? "/pmemobj" : "/larder");
      auto* b = benchmark::RegisterBenchmark(name.c_str(), fn);
      if (p.recovery)
        b->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);
      else
        b->UseRealTime()->Unit(benchmark::kMicrosecond);
    }
  }

  const char* force = std::getenv("PMEM_IS_PMEM_FORCE");
  const char* gran = std::getenv("PMEM2_FORCE_GRANULARITY");
  benchmark::AddCustomContext("dir", g_dir);
  benchmark::AddCustomContext("dir_fs", file_system_of(g_dir));
  benchmark::AddCustomContext("PMEM_IS_PMEM_FORCE", force != nullptr ? force : "");
  benchmark::AddCustomContext("PMEM2_FORCE_GRANULARITY", gran != nullptr ? gran : "");
  benchmark::AddCustomContext("data_mib", std::to_string(g_data_mib));
  benchmark::AddCustomContext("log_cap_mib", std::to_string(g_log_mib));
  benchmark::RunSpecifiedBenchmarks();
#if !defined(LARDER_TX_BENCH_NO_LARDER)
  drop_threads_env();
#endif
  drop_env();
  benchmark::Shutdown();
  return 0;
}
