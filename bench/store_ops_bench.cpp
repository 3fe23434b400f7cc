// Latency of the object store's operations in one process, one client
// (include/larder/store.hpp). Workloads (Google Benchmark names; /0 on an
// anonymous heap, /1 on a shm heap):
//   BM_CreateSeal   create a 1 KiB object, write nothing, seal it
//   BM_Get          get a sealed object (one reference more each time)
//   BM_Release      release one of the references taken by gets
//   BM_GetRelease   a get and its release
//   BM_Delete       delete a sealed, unreferenced 1 KiB object
//   BM_GetReleaseThreads  a get and its release in 1 and 2 threads at once,
//                   each a client of its own on objects of its own (anonymous
//                   heap): items_per_second shows whether they contend
// Objects are created and deleted in batches of 1024 outside the timed part
// where a workload needs them. Public API only.
#include <benchmark/benchmark.h>

#include <larder/store.hpp>

#include <unistd.h>

#include <cstdlib>
#include <string>

namespace {

constexpr std::size_t kBatch = 1024;
constexpr std::size_t kObjectSize = 1024;

// The store of one run, on an anonymous heap (/0) or on a shm heap (/1)
// that is removed when the run ends. A run that cannot open it is skipped.
class run_store : public larder::store {
 public:
  explicit run_store(benchmark::State& state) {
    larder::store_options options;
    options.heap.reserve = std::size_t{16} << 30;
    if (state.range(0) == 1) {
      shm_name_ = "/larder-store-bench-" + std::to_string(::getpid());
      options.heap.kind = larder::backing::shm;
      options.heap.name = shm_name_;
      options.heap.mode = larder::open_mode::create;
    } else {
      options.heap.kind = larder::backing::anonymous;
    }
    if (larder::status st = open(options, this); !st.ok()) state.SkipWithError(st.to_string().c_str());
  }
  ~run_store() {
    if (!is_open()) return;
    (void)close();
    if (!shm_name_.empty()) (void)larder::heap::remove(larder::backing::shm, shm_name_);
  }

 private:
  std::string shm_name_;  // empty on an anonymous heap
};

// Makes a sealed 1 KiB object; returns its id.
larder::object_id make(larder::store& s, std::uint64_t id) {
  larder::object_id oid(id);
  larder::object_buffer b;
  if (!s.create(oid, kObjectSize, 0, &b).ok() || !s.seal(oid).ok()) std::abort();
  return oid;
}

void BM_CreateSeal(benchmark::State& state) {
  run_store s(state);
  std::uint64_t id = 0;
  for (auto _ : state) {
    larder::object_buffer b;
    larder::object_id oid(id++);
    if (!s.create(oid, kObjectSize, 0, &b).ok() || !s.seal(oid).ok()) std::abort();
    if (id % (64 * kBatch) == 0) {
      state.PauseTiming();
      for (std::uint64_t k = id - 64 * kBatch; k < id; ++k) (void)s.remove(larder::object_id(k));
      state.ResumeTiming();
    }
  }
}

void BM_Get(benchmark::State& state) {
  run_store s(state);
  larder::object_id oid = make(s, 1);
  std::uint64_t got = 0;
  for (auto _ : state) {
    larder::object_view v;
    if (!s.get(oid, &v).ok()) std::abort();
    benchmark::DoNotOptimize(v.data.data());
    ++got;
  }
  for (std::uint64_t i = 0; i < got; ++i) (void)s.release(oid);
}

void BM_Release(benchmark::State& state) {
  run_store s(state);
  larder::object_id oid = make(s, 1);
  std::size_t left = 0;
  for (auto _ : state) {
    if (left == 0) {
      state.PauseTiming();
      larder::object_view v;
      for (std::size_t i = 0; i < kBatch; ++i) (void)s.get(oid, &v);
      left = kBatch;
      state.ResumeTiming();
    }
    if (!s.release(oid).ok()) std::abort();
    --left;
  }
  for (; left > 0; --left) (void)s.release(oid);
}

void BM_GetRelease(benchmark::State& state) {
  run_store s(state);
  larder::object_id oid = make(s, 1);
  for (auto _ : state) {
    larder::object_view v;
    if (!s.get(oid, &v).ok() || !s.release(oid).ok()) std::abort();
  }
}

void BM_Delete(benchmark::State& state) {
  run_store s(state);
  std::uint64_t next = 0, to_delete = 0;
  for (auto _ : state) {
    if (to_delete == next) {
      state.PauseTiming();
      for (std::size_t i = 0; i < kBatch; ++i) make(s, next++);
      state.ResumeTiming();
    }
    if (!s.remove(larder::object_id(to_delete++)).ok()) std::abort();
  }
}

// One store for every thread of BM_GetReleaseThreads; each thread opens a
// handle of its own on it.
larder::store& shared_store() {
  static larder::store* s = [] {
    larder::store_options options;
    options.heap.kind = larder::backing::anonymous;
    options.heap.reserve = std::size_t{16} << 30;
    auto* made = new larder::store;
    if (!larder::store::open(options, made).ok()) std::abort();
    return made;
  }();
  return *s;
}

void BM_GetReleaseThreads(benchmark::State& state) {
  larder::store s;
  if (!larder::store::open(shared_store().owner(), {}, &s).ok()) std::abort();
  std::uint64_t id = 1000 + state.thread_index();
  larder::object_id oid(id);
  if (!s.contains(oid)) make(s, id);
  for (auto _ : state) {
    larder::object_view v;
    if (!s.get(oid, &v).ok() || !s.release(oid).ok()) std::abort();
  }
  state.SetItemsProcessed(state.iterations());
  (void)s.close();
}

BENCHMARK(BM_CreateSeal)->Arg(0)->Arg(1);
BENCHMARK(BM_Get)->Arg(0)->Arg(1);
BENCHMARK(BM_Release)->Arg(0)->Arg(1);
BENCHMARK(BM_GetRelease)->Arg(0)->Arg(1);
BENCHMARK(BM_Delete)->Arg(0)->Arg(1);
BENCHMARK(BM_GetReleaseThreads)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
