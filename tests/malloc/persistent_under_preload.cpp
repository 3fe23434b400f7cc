// Persistent heaps in a process whose malloc may be larder's (run plainly,
// with liblarder_malloc.so preloaded, and linked against it): the README's
// root-and-map example, a page-capturing transaction inside a pod_scope
// (committed, and rolled back by an exception), and page-write tracking
// inside a pod_scope. A deadlock or a fault in the engine's own
// bookkeeping shows as a timeout or a crash. Prints "ok" when every check
// passed; otherwise lists the failures and exits with status 1.
//
// With --placement, every heap is opened with automatic pod placement
// (larder/placement.hpp), whose routing runs inside the allocator.
//
// Usage: persistent_under_preload [--placement] [directory]   (default: a fresh one in /tmp)
#include <larder/larder.hpp>
#include <larder/tracking.hpp>
#include <larder/transaction.hpp>

#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>

#include "check.hpp"

namespace {

using counts_map = std::map<int, int, std::less<>, larder::allocator<std::pair<const int, int>>>;

constexpr int kInserts = 4000;
larder::placement_policy g_placement = larder::placement_policy::off;

larder::heap_options file_heap(const std::string& path) {
  larder::heap_options o;
  o.kind = larder::backing::file;
  o.name = path;
  o.reserve = std::size_t{1} << 30;
  o.placement = g_placement;
  return o;
}

// The README example on a fresh file heap, then reopened.
void readme_example(const std::string& dir) {
  std::string path = dir + "/app.heap";
  {
    larder::heap h({.kind = larder::backing::file, .name = path, .placement = g_placement});
    auto* counts = h.root<counts_map>("counts");
    (*counts)[42]++;
    for (int i = 0; i < kInserts; ++i) (*counts)[i * 7] += i;
    CHECK(counts->size() == kInserts);  // 42 is one of the keys
  }
  larder::heap h({.kind = larder::backing::file, .name = path, .placement = g_placement});
  auto* counts = h.root<counts_map>("counts");
  CHECK(counts->size() == kInserts);  // 42 is one of the keys
  CHECK(counts->at(42) == 1 + 6);
  bool all = true;
  for (int i = 0; i < kInserts; ++i) all = all && counts->count(i * 7) == 1;
  CHECK(all);
}

// The map lives in pod `p` and is changed under page capture; one
// transaction commits, the next throws and must leave the map as it was.
void capture_in_pod_scope(const std::string& dir) {
  std::string path = dir + "/capture.heap";
  {
    larder::heap h(file_heap(path));
    larder::pod p;
    CHECK(h.make_pod("captured", &p).ok());
    counts_map* m = nullptr;
    {
      larder::pod_scope scope(p);
      larder::transaction tx(h, larder::capture::pages);
      m = tx.make<counts_map>(larder::allocator<std::pair<const int, int>>(p));
      CHECK(h.set_root("captured_map", m, sizeof(*m)).ok());
      for (int i = 0; i < kInserts; ++i) m->emplace(i, i);
    }
    CHECK(m->size() == kInserts);
    bool threw = false;
    try {
      larder::pod_scope scope(p);
      larder::transaction tx(h, larder::capture::pages);
      for (int i = kInserts; i < 2 * kInserts; ++i) m->emplace(i, i);
      (*m)[0] = -1;
      m->erase(1);
      throw std::runtime_error("roll back");
    } catch (const std::runtime_error& e) {
      threw = std::string(e.what()) == "roll back";
    }
    CHECK(threw);
    CHECK(m->size() == kInserts);
    CHECK(m->count(1) == 1 && m->at(0) == 0 && m->count(kInserts) == 0);
    // The heap takes transactions afterwards.
    {
      larder::pod_scope scope(p);
      larder::transaction tx(h, larder::capture::pages);
      (*m)[kInserts] = 1;
    }
    CHECK(m->size() == kInserts + 1);
  }
  larder::heap h(file_heap(path));
  std::size_t size = 0;
  auto* m = static_cast<counts_map*>(h.find_root("captured_map", &size));
  CHECK(m != nullptr && size == sizeof(counts_map));
  if (m == nullptr) return;
  CHECK(m->size() == kInserts + 1);
  bool all = true;
  for (int i = 0; i < kInserts; ++i) all = all && m->count(i) == 1 && m->at(i) == i;
  CHECK(all);
  CHECK(m->at(kInserts) == 1);
}

// Tracking a heap while this thread allocates in one of its pods.
void tracking_in_pod_scope(const std::string& dir) {
  larder::heap h(file_heap(dir + "/tracked.heap"));
  larder::pod p;
  CHECK(h.make_pod("tracked", &p).ok());
  larder::pod_scope scope(p);
  auto* m = h.root<counts_map>("tracked_map");
  larder::status s = h.start_tracking();
  CHECK(s.ok());
  if (!s.ok()) {
    std::fprintf(stderr, "start_tracking: %s\n", s.message().c_str());
    return;
  }
  for (int round = 0; round < 3; ++round) {
    auto* q = new counts_map(larder::allocator<std::pair<const int, int>>(p));
    for (int i = 0; i < kInserts / 4; ++i) {
      (*m)[round * kInserts + i] = i;
      (*q)[i] = i;
    }
    larder::dirty_set dirty;
    s = h.collect_dirty(&dirty);
    CHECK(s.ok());
    CHECK(dirty.page_count() > 0);
    CHECK(dirty.contains(m));
    delete q;
  }
  // An epoch in which nothing is written to the pod: the tracker's own
  // memory (a collect's results, written by the kernel) is not in it.
  larder::dirty_set quiet;
  CHECK(h.collect_dirty(&quiet).ok());
  CHECK(h.collect_dirty(&quiet).ok());
  CHECK(quiet.page_count(p.id()) == 0);
  h.stop_tracking();
  CHECK(m->size() == 3 * (kInserts / 4));
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  if (argc > 1 && std::string(argv[1]) == "--placement") {
    g_placement = larder::placement_policy::sites;
    --argc;
    ++argv;
  }
  if (argc > 1) {
    dir = argv[1];
  } else {
    char pattern[] = "/tmp/larder-preload-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) {
      std::perror("mkdtemp");
      return 1;
    }
    dir = pattern;
  }
  struct step {
    const char* name;
    void (*run)(const std::string&);
  };
  for (const step& s : {step{"readme_example", readme_example}, step{"capture_in_pod_scope", capture_in_pod_scope},
                        step{"tracking_in_pod_scope", tracking_in_pod_scope}}) {
    try {
      s.run(dir);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "FAILED %s: %s\n", s.name, e.what());
      ++g_failures;
    }
  }
  if (argc <= 1) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  if (g_failures != 0) return 1;
  std::puts("ok");
  return 0;
}
