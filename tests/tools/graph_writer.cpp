// Creates a file heap whose pods point into each other, for the test of
// `larder pods --graph`: an object of pod "left" points into "middle" and
// "right", one of "middle" into "right", and pod "alone" holds only
// numbers. Each pointing object lies on one page.
#include <larder/larder.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>

namespace {

void* object_of(larder::heap& h, const char* pod_name) {
  larder::pod pod;
  larder::throw_if_error(h.make_pod(pod_name, &pod));
  void* object = pod.allocate(64, 8);
  if (object == nullptr) throw larder::error(larder::status(larder::errc::out_of_space, "allocating"));
  std::memset(object, 0, 64);
  return object;
}

void point(void* from, std::size_t word, const void* to) {
  const auto value = reinterpret_cast<std::uintptr_t>(to);
  std::memcpy(static_cast<char*>(from) + word * 8, &value, sizeof(value));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: graph_writer HEAP\n");
    return 2;
  }
  larder::heap_options options;
  options.name = argv[1];
  options.reserve = std::size_t{1} << 30;
  larder::heap heap(options);
  void* left = object_of(heap, "left");
  void* middle = object_of(heap, "middle");
  void* right = object_of(heap, "right");
  void* alone = object_of(heap, "alone");
  point(left, 0, middle);
  point(left, 1, static_cast<char*>(right) + 40);
  point(middle, 3, right);
  for (std::uint64_t i = 0; i < 8; ++i) std::memcpy(static_cast<char*>(alone) + i * 8, &i, sizeof(i));
  larder::throw_if_error(heap.set_root("start", left, 64));
  std::printf("made\n");
  return 0;
}
