// Opens (or creates) a file heap, begins a transaction that changes a root,
// says "in transaction" on standard output and waits there forever: the
// `larder info` test kills it with SIGKILL to leave a pending transaction.
// With --shared it opens the heap as one of its shared writers.
#include <larder/larder.hpp>

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string_view>

int main(int argc, char** argv) {
  bool shared = argc == 3 && std::string_view(argv[1]) == "--shared";
  if (argc != 2 && !shared) {
    std::fprintf(stderr, "usage: pending_writer [--shared] HEAP\n");
    return 2;
  }
  larder::heap_options options;
  options.name = argv[argc - 1];
  options.shared_writers = shared;
  options.reserve = std::size_t{1} << 30;
  larder::heap heap(options);
  auto* counter = heap.root<std::uint64_t>("counter", std::uint64_t{0});
  larder::transaction tx(heap);
  tx.snapshot(counter);
  ++*counter;
  std::printf("in transaction\n");
  std::fflush(stdout);
  for (;;) ::pause();
}
