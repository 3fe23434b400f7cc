// Writes into two pods of a file heap under page-write tracking, collecting
// every `--period` milliseconds, for `--seconds`; the `larder stat` test
// reads the statistics it leaves in the heap, while it runs and after.
#include <larder/larder.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: track_writer HEAP SECONDS PERIOD_MS\n");
    return 2;
  }
  larder::heap_options options;
  options.name = argv[1];
  options.reserve = std::size_t{1} << 30;
  larder::heap heap(options);
  larder::pod hot, cold;
  larder::throw_if_error(heap.make_pod("hot", &hot));
  larder::throw_if_error(heap.make_pod("cold", &cold));
  constexpr std::size_t kPages = 64;
  auto* hot_pages = static_cast<char*>(hot.allocate(kPages * 4096, 4096));
  auto* cold_pages = static_cast<char*>(cold.allocate(kPages * 4096, 4096));
  std::memset(hot_pages, 0, kPages * 4096);
  std::memset(cold_pages, 0, kPages * 4096);
  larder::throw_if_error(heap.start_tracking());
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(std::atof(argv[2]));
  larder::dirty_set set;
  int round = 0;
  do {
    for (std::size_t i = 0; i < kPages; ++i) hot_pages[i * 4096] = static_cast<char>(round);  // every page
    cold_pages[(round % kPages) * 4096] = static_cast<char>(round);                        // one page
    std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(argv[3])));
    larder::throw_if_error(heap.collect_dirty(&set));
    ++round;
  } while (std::chrono::steady_clock::now() < end);
  std::printf("epochs %d hot %zu cold %zu\n", round, set.page_count(hot.id()), set.page_count(cold.id()));
  return 0;
}
