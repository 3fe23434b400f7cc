// Creates a file heap holding a root and a pod whose names carry a terminal
// escape sequence, a line break, a backslash, a C1 control and plain UTF-8,
// for the test that `larder` lists them escaped; one collect of page-write
// tracking leaves statistics, so that `larder stat` names the pod too.
#include <larder/larder.hpp>
#include <larder/tracking.hpp>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: odd_names HEAP\n");
    return 2;
  }
  larder::heap_options options;
  options.name = argv[1];
  options.reserve = std::size_t{1} << 30;
  larder::heap heap(options);
  const std::string root_name = "red\x1b[31mroot\nsecond line\\end";
  const std::string pod_name = "pod\x1b]0;title\x07\xc2\x9b" "caf\xc3\xa9";
  larder::pod pod;
  larder::throw_if_error(heap.make_pod(pod_name, &pod));
  void* object = pod.allocate(64, 8);
  larder::throw_if_error(heap.set_root(root_name, object, 64));
  if (heap.start_tracking().ok()) {
    static_cast<char*>(object)[0] = 1;
    larder::dirty_set written;
    larder::throw_if_error(heap.collect_dirty(&written));
    heap.stop_tracking();
  }
  std::printf("made\n");
  return 0;
}
