// chunk_store_bench: throughput of the chunk store (tiers/chunks), in MB/s
// of 4 KiB pages and µs per page. bench/micro-style: it reaches into
// tiers/chunks directly.
//
//   BM_PutNewPages/<kind>   write and commit pages never seen before (hash,
//                           compress attempt, pack writes, fsync, index);
//                           kind: incompressible (random bytes), compressible
//                           (text), heap (an object heap's pages, as
//                           versions_bench fills: strings, doubles,
//                           pointers, small integers)
//   BM_PutDuplicatePages    the same pages again: hashing and lookups only
//   BM_GetBatch/<layout>/<cached>  batch read of committed pages (sorted,
//                           io_uring, decompress, verify) of heap-kind
//                           pages; layout: adjacent (every page of a pack,
//                           in any order), scattered (one page in eight of
//                           the packs); cached 0: first read after writing
//                           (from the disk), 1: again (the page cache)
// The store lives in LARDER_BENCH_DIR (default: the build folder).
#include "tiers/chunks/chunk_store.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>

namespace {

using namespace larder::chunks;
constexpr std::size_t kBatch = 4096;  // 16 MiB of pages per iteration
constexpr std::size_t kScatter = 8;   // BM_GetBatch/scattered reads one stored page in this many

enum page_kind : int { incompressible = 0, compressible = 1, heap = 2 };
enum read_layout : int { adjacent = 0, scattered = 1 };

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

void random_bytes(std::mt19937_64& r, char* at, std::size_t length) {
  for (std::size_t i = 0; i + 8 <= length; i += 8) {
    std::uint64_t v = r();
    std::memcpy(at + i, &v, 8);
  }
}

void text_bytes(std::mt19937_64& r, char* at, std::size_t length) {
  for (std::size_t i = 0; i < length; ++i) at[i] = static_cast<char>('a' + (r() % 4 == 0 ? r() % 26 : i % 7));
}

// Objects as versions_bench's heap holds them, one after another: a
// header of pointers and sizes, a string of 16-255 letters, 4-127 doubles
// in [0, 1000), map nodes of an int key and a double.
void heap_bytes(std::mt19937_64& r, char* at, std::size_t length) {
  std::size_t i = 0;
  auto put = [&](const void* v, std::size_t n) {
    n = std::min(n, length - i);
    std::memcpy(at + i, v, n);
    i += n;
  };
  const std::uint64_t base = 0x7f0000000000;
  while (i < length) {
    std::uint64_t header[4] = {base + (r() % (1 << 28)) * 16, base + (r() % (1 << 28)) * 16, r() % 256, r() % 128};
    put(header, sizeof header);
    char name[256];
    std::size_t name_size = 16 + r() % 240;
    for (std::size_t k = 0; k < name_size; ++k) name[k] = static_cast<char>('a' + r() % 26);
    put(name, name_size);
    for (std::size_t k = 4 + r() % 124; k > 0 && i < length; --k) {
      double d = std::uniform_real_distribution<double>(0, 1000)(r);
      put(&d, sizeof d);
    }
    for (std::size_t k = 2 + r() % 10; k > 0 && i < length; --k) {
      std::uint64_t node[4] = {base + (r() % (1 << 28)) * 16, base + (r() % (1 << 28)) * 16, r() % 1000, 0};
      double d = std::uniform_real_distribution<double>(0, 1000)(r);
      std::memcpy(&node[3], &d, 8);
      put(node, sizeof node);
    }
  }
}

void fill(std::mt19937_64& r, page_kind kind, std::vector<char>* pages) {
  for (std::size_t p = 0; p < pages->size() / kPageSize; ++p) {
    char* page = pages->data() + p * kPageSize;
    switch (kind) {
      case incompressible: random_bytes(r, page, kPageSize); break;
      case compressible: text_bytes(r, page, kPageSize); break;
      case heap: heap_bytes(r, page, kPageSize); break;
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

void per_page_counters(benchmark::State& state, std::size_t pages) {
  auto total = static_cast<double>(state.iterations() * pages);
  state.SetBytesProcessed(static_cast<std::int64_t>(total) * static_cast<std::int64_t>(kPageSize));
  // Seconds per page, printed with a µ prefix.
  state.counters["per_page"] = benchmark::Counter(total, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_PutNewPages(benchmark::State& state) {
  const auto kind = static_cast<page_kind>(state.range(0));
  std::string dir = store_dir();
  auto s = open_store(dir);
  std::mt19937_64 r(1);
  std::vector<char> pages(kBatch * kPageSize);
  std::vector<fingerprint> names(kBatch);
  for (auto _ : state) {
    state.PauseTiming();
    fill(r, kind, &pages);
    state.ResumeTiming();
    if (!s->put(pages.data(), kBatch, names.data()).ok()) std::abort();
    commit(*s, names);
  }
  per_page_counters(state, kBatch);
  store_info i = s->info();
  state.counters["stored_ratio"] = static_cast<double>(i.stored_bytes) / static_cast<double>(i.chunks * kPageSize);
  state.counters["direct_io"] = i.direct_io;
  state.counters["uring"] = i.uring;
  std::filesystem::remove_all(dir);
}

void BM_PutDuplicatePages(benchmark::State& state) {
  std::string dir = store_dir();
  auto s = open_store(dir);
  std::mt19937_64 r(2);
  std::vector<char> pages(kBatch * kPageSize);
  std::vector<fingerprint> names(kBatch);
  fill(r, heap, &pages);
  if (!s->put(pages.data(), kBatch, names.data()).ok()) std::abort();
  commit(*s, names);
  for (auto _ : state) {
    if (!s->put(pages.data(), kBatch, names.data()).ok()) std::abort();
    commit(*s, names);
  }
  per_page_counters(state, kBatch);
  std::filesystem::remove_all(dir);
}

// A fresh store per iteration unless `cached`: packs are written with
// O_DIRECT where the file system takes it, so the first read of a chunk
// goes to the disk, as a checkout's reads of a recent checkpoint do; the
// later ones of the cached case find the page cache.
void BM_GetBatch(benchmark::State& state) {
  const auto layout = static_cast<read_layout>(state.range(0));
  const bool cached = state.range(1) != 0;
  std::string dir = store_dir();
  std::unique_ptr<chunk_store> s;
  std::mt19937_64 r(3);
  const std::size_t stored = layout == scattered ? kBatch * kScatter : kBatch;
  std::vector<char> pages(kBatch * kPageSize);
  std::vector<fingerprint> names;
  auto make_store = [&] {
    s.reset();
    std::filesystem::remove_all(dir);
    s = open_store(dir);
    std::vector<fingerprint> all(stored);
    for (std::size_t done = 0; done < stored; done += kBatch) {
      fill(r, heap, &pages);
      if (!s->put(pages.data(), kBatch, all.data() + done).ok()) std::abort();
    }
    commit(*s, all);
    std::shuffle(all.begin(), all.end(), r);
    names.assign(all.begin(), all.begin() + kBatch);
  };
  if (cached) make_store();
  for (auto _ : state) {
    if (!cached) {
      state.PauseTiming();
      make_store();
      state.ResumeTiming();
    }
    if (!s->get_batch(names.data(), kBatch, pages.data()).ok()) std::abort();
  }
  per_page_counters(state, kBatch);
  state.counters["uring"] = s->info().uring;
  state.counters["direct_io"] = s->info().direct_io;
  s.reset();
  std::filesystem::remove_all(dir);
}

BENCHMARK(BM_PutNewPages)->ArgName("kind")->Arg(incompressible)->Arg(compressible)->Arg(heap)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_PutDuplicatePages)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_GetBatch)->ArgNames({"layout", "cached"})->ArgsProduct({{adjacent, scattered}, {0, 1}})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
