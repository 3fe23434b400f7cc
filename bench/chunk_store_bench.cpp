// chunk_store_bench: throughput of the chunk store (tiers/chunks), in MB/s
// of 4 KiB pages. bench/micro-style: it reaches into tiers/chunks directly.
//
//   BM_PutNewPages        write and commit pages never seen before (hash,
//                         compress attempt, pack writes, fsync, index)
//   BM_PutDuplicatePages  the same pages again: hashing and lookups only
//   BM_GetBatch           batch read of committed pages (sorted, io_uring,
//                         decompress, verify)
// The store lives in LARDER_BENCH_DIR (default: the build folder).
#include "tiers/chunks/chunk_store.hpp"

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>

namespace {

using namespace larder::chunks;
constexpr std::size_t kBatch = 4096;  // 16 MiB of pages per iteration

std::string store_dir() {
  const char* base = std::getenv("LARDER_BENCH_DIR");
  std::string dir = std::string(base != nullptr ? base : LARDER_BENCH_DEFAULT_DIR) + "/chunk_store_bench.store";
  std::filesystem::remove_all(dir);
  return dir;
}

std::unique_ptr<chunk_store> open_store(const std::string& dir) {
  store_options o;
  o.create = true;
  std::unique_ptr<chunk_store> s;
  if (!chunk_store::open(dir, o, &s).ok()) std::abort();
  return s;
}

// Half incompressible, half text-like pages (zstd shrinks those).
void fill(std::mt19937_64& r, std::vector<char>* pages) {
  for (std::size_t p = 0; p < pages->size() / kPageSize; ++p) {
    char* page = pages->data() + p * kPageSize;
    if (p % 2 == 0) {
      for (std::size_t i = 0; i < kPageSize; i += 8) {
        std::uint64_t v = r();
        std::memcpy(page + i, &v, 8);
      }
    } else {
      for (std::size_t i = 0; i < kPageSize; ++i) page[i] = static_cast<char>('a' + (r() % 4 == 0 ? r() % 26 : i % 7));
    }
  }
}

void commit(chunk_store& s, const std::vector<fingerprint>& names) {
  version_record v;
  v.heap_size = names.size() * kPageSize;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] != zero_page()) v.pages.push_back(page_entry{i, names[i]});
  }
  version_id id;
  if (!s.commit(v, &id).ok()) std::abort();
}

// Stores one batch of `pages` (filled from `r`) as a version; `names` gets its chunks.
void put_batch(chunk_store& s, std::mt19937_64& r, std::vector<char>* pages, std::vector<fingerprint>* names) {
  fill(r, pages);
  if (!s.put(pages->data(), kBatch, names->data()).ok()) std::abort();
  commit(s, *names);
}

void BM_PutNewPages(benchmark::State& state) {
  std::string dir = store_dir();
  auto s = open_store(dir);
  std::mt19937_64 r(1);
  std::vector<char> pages(kBatch * kPageSize);
  std::vector<fingerprint> names(kBatch);
  for (auto _ : state) {
    state.PauseTiming();
    fill(r, &pages);
    state.ResumeTiming();
    if (!s->put(pages.data(), kBatch, names.data()).ok()) std::abort();
    commit(*s, names);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * pages.size()));
  state.counters["direct_io"] = s->info().direct_io;
  state.counters["uring"] = s->info().uring;
  std::filesystem::remove_all(dir);
}

void BM_PutDuplicatePages(benchmark::State& state) {
  std::string dir = store_dir();
  auto s = open_store(dir);
  std::mt19937_64 r(2);
  std::vector<char> pages(kBatch * kPageSize);
  std::vector<fingerprint> names(kBatch);
  put_batch(*s, r, &pages, &names);
  for (auto _ : state) {
    if (!s->put(pages.data(), kBatch, names.data()).ok()) std::abort();
    commit(*s, names);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * pages.size()));
  std::filesystem::remove_all(dir);
}

void BM_GetBatch(benchmark::State& state) {
  std::string dir = store_dir();
  auto s = open_store(dir);
  std::mt19937_64 r(3);
  std::vector<char> pages(kBatch * kPageSize);
  std::vector<fingerprint> names(kBatch);
  put_batch(*s, r, &pages, &names);
  std::shuffle(names.begin(), names.end(), r);
  for (auto _ : state) {
    if (!s->get_batch(names.data(), kBatch, pages.data()).ok()) std::abort();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * pages.size()));
  state.counters["uring"] = s->info().uring;
  std::filesystem::remove_all(dir);
}

BENCHMARK(BM_PutNewPages)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_PutDuplicatePages)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_GetBatch)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
