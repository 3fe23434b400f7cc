// larder_close_bench: how long heap::close() takes on a file heap holding
// many live blocks (docs/persistence.md: close makes everything durable,
// through the close journal).
//
//   larder_close_bench [--dir=PATH] [--blocks=N] [--runs=R]
//
// Builds a heap of N live blocks (default 10,000; sizes log-uniform from 16
// bytes to 64 KiB, every third block freed again so that pages hold free
// lists), then measures two closes, each R times (default 9), and prints the
// median, the fastest and the slowest in milliseconds:
//   fresh   create the heap, allocate, close: every page is dirty.
//   reopen  open the heap again, free and reallocate 1% of the blocks,
//           close: few pages are dirty, so what close does beside writing
//           them back (the journal of the allocator's metadata) shows most.
// The heap lives in PATH (default: the current directory, which is usually
// on a disk; /dev/shm measures the work without the device).
#include <larder/larder.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

struct settings {
  std::string dir = ".";
  std::size_t blocks = 10000;
  int runs = 9;
};

struct block_table {
  std::size_t count;
  void* blocks[1];  // `count` of them
};

std::size_t draw_size(std::mt19937_64& r) {
  unsigned shift = 4 + static_cast<unsigned>(r() % 12);  // 16 B .. 64 KiB
  std::size_t low = std::size_t{1} << shift;
  return low + r() % low;
}

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

larder::heap open(const std::string& path, larder::open_mode mode) {
  larder::heap_options o;
  o.name = path;
  o.mode = mode;
  return larder::heap(o);
}

// Creates the heap with `s.blocks` live blocks; returns the close time.
double fresh_close(const settings& s, const std::string& path, std::mt19937_64& r) {
  (void)larder::heap::remove(larder::backing::file, path);
  larder::heap h = open(path, larder::open_mode::create);
  auto* table = static_cast<block_table*>(h.allocate(sizeof(block_table) + s.blocks * sizeof(void*)));
  table->count = s.blocks;
  for (std::size_t i = 0; i < s.blocks; ++i) {
    table->blocks[i] = h.allocate(draw_size(r));
    std::memset(table->blocks[i], static_cast<int>(i), 16);
  }
  for (std::size_t i = 0; i < s.blocks; i += 3) {
    larder::heap::deallocate(table->blocks[i]);
    table->blocks[i] = h.allocate(16);
  }
  larder::throw_if_error(h.set_root("blocks", table, sizeof(block_table)));
  auto start = std::chrono::steady_clock::now();
  larder::throw_if_error(h.close());
  return ms_since(start);
}

double reopen_close(const settings& s, const std::string& path, std::mt19937_64& r) {
  larder::heap h = open(path, larder::open_mode::open);
  auto* table = static_cast<block_table*>(h.find_root("blocks"));
  for (std::size_t n = 0; n < s.blocks / 100; ++n) {
    std::size_t i = r() % table->count;
    larder::heap::deallocate(table->blocks[i]);
    table->blocks[i] = h.allocate(draw_size(r));
  }
  auto start = std::chrono::steady_clock::now();
  larder::throw_if_error(h.close());
  return ms_since(start);
}

void report(const char* name, std::vector<double> times) {
  std::sort(times.begin(), times.end());
  std::printf("%-7s median %8.2f ms   min %8.2f   max %8.2f   (%zu runs)\n", name, times[times.size() / 2],
              times.front(), times.back(), times.size());
}

}  // namespace

int main(int argc, char** argv) {
  settings s;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--dir=", 0) == 0) {
      s.dir = a.substr(6);
    } else if (a.rfind("--blocks=", 0) == 0) {
      s.blocks = std::strtoull(a.c_str() + 9, nullptr, 10);
    } else if (a.rfind("--runs=", 0) == 0) {
      s.runs = std::atoi(a.c_str() + 7);
    } else {
      std::fprintf(stderr, "usage: %s [--dir=PATH] [--blocks=N] [--runs=R]\n", argv[0]);
      return 64;
    }
  }
  if (s.blocks == 0 || s.runs <= 0) {
    std::fprintf(stderr, "--blocks and --runs must be positive\n");
    return 64;
  }
  std::string path = s.dir + "/larder-close-bench-" + std::to_string(getpid());
  std::mt19937_64 r(42);
  std::vector<double> fresh, reopen;
  try {
    for (int i = 0; i < s.runs; ++i) fresh.push_back(fresh_close(s, path, r));
    for (int i = 0; i < s.runs; ++i) reopen.push_back(reopen_close(s, path, r));
  } catch (const larder::error& e) {
    std::fprintf(stderr, "larder_close_bench: %s\n", e.what());
    (void)larder::heap::remove(larder::backing::file, path);
    return 2;
  }
  (void)larder::heap::remove(larder::backing::file, path);
  std::printf("close of a file heap with %zu live blocks in %s\n", s.blocks, s.dir.c_str());
  report("fresh", fresh);
  report("reopen", reopen);
  return 0;
}
