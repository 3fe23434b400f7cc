// Sets the root "value" of a file heap to a number, or prints it: the
// changes between checkpoints that the versions test of the larder tool
// checks out again. Usage: value_writer HEAP [NUMBER]
#include <larder/larder.hpp>

#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: value_writer HEAP [NUMBER]\n");
    return 2;
  }
  larder::heap_options options;
  options.name = argv[1];
  options.reserve = std::size_t{1} << 30;
  larder::heap heap(options);
  auto* value = heap.root<long>("value");
  if (argc > 2) {
    larder::transaction tx(heap);
    tx.snapshot(value);
    *value = std::strtol(argv[2], nullptr, 10);
  } else {
    std::printf("%ld\n", *value);
  }
  return 0;
}
