// Opens a file heap with automatic placement and runs a few epochs of a
// program that allocates two kinds of 64-byte objects at two sites,
// interleaved: session counters written every epoch and settings written
// once. The `larder pods` and `larder stat` test reads what placement
// recorded, after it exits.
#include <larder/larder.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

struct record {
  std::uint64_t words[8];
};

__attribute__((noinline)) record* new_session(larder::heap& h) {
  auto* r = static_cast<record*>(h.allocate(sizeof(record)));
  std::memset(r, 0, sizeof *r);
  return r;
}

__attribute__((noinline)) record* new_setting(larder::heap& h, std::uint64_t value) {
  auto* r = static_cast<record*>(h.allocate(sizeof(record)));
  for (auto& w : r->words) w = value;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: placed_writer HEAP EPOCHS\n");
    return 2;
  }
  larder::heap_options options;
  options.name = argv[1];
  options.reserve = std::size_t{1} << 30;
  options.placement = larder::placement_policy::sites;
  larder::heap heap(options);
  larder::status s = heap.start_tracking();
  if (!s.ok()) {
    std::printf("skipped: %s\n", s.message().c_str());
    return 0;
  }
  std::vector<record*> sessions;
  for (int i = 0; i < 2000; ++i) {
    sessions.push_back(new_session(heap));
    new_setting(heap, static_cast<std::uint64_t>(i));
  }
  larder::dirty_set set;
  const int epochs = std::atoi(argv[2]);
  for (int e = 0; e < epochs; ++e) {
    for (record* r : sessions) ++r->words[0];
    larder::throw_if_error(heap.collect_dirty(&set));
  }
  std::printf("epochs %d, last %zu pages\n", epochs, set.page_count());
  return 0;
}
