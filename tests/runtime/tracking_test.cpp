// Page-write tracking of heaps: pages attributed to pods, growth, kernel
// writes, threads, fork, the statistics kept in the heap, and the errors.
// Every backend on every backing; one this machine lacks is skipped with
// its reason printed.
#include "runtime_test_util.hpp"

#include <larder/tracking.hpp>

#include <sys/wait.h>

#include <atomic>
#include <random>
#include <set>
#include <thread>
#include <tuple>
#include <vector>

namespace {

using larder_test::describe;
using larder_test::temp_dir;

constexpr std::size_t kPage = 4096;

struct heap_under_test {
  temp_dir dir;
  std::string shm_name;
  larder::heap heap;

  larder::heap_options options(larder::backing kind, bool read_only = false) {
    larder::heap_options o;
    o.kind = kind;
    o.read_only = read_only;
    o.reserve = std::size_t{4} << 30;
    if (kind == larder::backing::file) o.name = dir.file("tracked.heap");
    if (kind == larder::backing::shm) {
      if (shm_name.empty()) shm_name = larder_test::unique_shm_name("track");
      o.name = shm_name;
    }
    return o;
  }
  ~heap_under_test() {
    (void)heap.close();
    if (!shm_name.empty()) ::shm_unlink(shm_name.c_str());
  }
};

using param = std::tuple<larder::tracker_backend, larder::backing>;

class HeapTracking : public ::testing::TestWithParam<param> {
 protected:
  void SetUp() override {
    backend_ = std::get<0>(GetParam());
    kind_ = std::get<1>(GetParam());
    for (const auto& support : larder::tracker_backends())
      if (support.backend == backend_ && !support.available)
        GTEST_SKIP() << larder::to_string(backend_) << " is not available here: " << support.reason;
    larder::status s = larder::heap::open(h_.options(kind_), &h_.heap);
    ASSERT_TRUE(s.ok()) << describe(s);
  }

  // pkey reports whole pods; the others report exactly the pages written.
  bool exact() const { return backend_ != larder::tracker_backend::pkey; }

  larder::dirty_set collect() {
    larder::dirty_set set;
    larder::status s = h_.heap.collect_dirty(&set);
    EXPECT_TRUE(s.ok()) << describe(s);
    return set;
  }

  larder::tracker_backend backend_{};
  larder::backing kind_{};
  heap_under_test h_;
};

TEST_P(HeapTracking, WritesAreReportedWithTheirPods) {
  larder::pod a, b;
  ASSERT_TRUE(h_.heap.make_pod("a", &a).ok());
  ASSERT_TRUE(h_.heap.make_pod("b", &b).ok());
  auto* in_a = static_cast<char*>(a.allocate(64 * 1024));
  auto* in_b = static_cast<char*>(b.allocate(64 * 1024));
  ASSERT_NE(in_a, nullptr);
  ASSERT_NE(in_b, nullptr);
  std::memset(in_a, 1, 64 * 1024);
  std::memset(in_b, 1, 64 * 1024);

  ASSERT_TRUE(h_.heap.start_tracking(backend_).ok());
  EXPECT_EQ(h_.heap.tracking(), backend_);
  larder::dirty_set first = collect();
  EXPECT_EQ(first.page_count(a.id()), 0u) << "nothing was written in epoch 1";

  in_a[0] = 2;
  in_b[3 * kPage + 17] = 2;
  larder::dirty_set second = collect();
  EXPECT_EQ(second.epoch(), first.epoch() + 1);
  EXPECT_TRUE(second.contains(in_a));
  EXPECT_TRUE(second.contains(in_b + 3 * kPage + 17));
  for (const larder::dirty_run& run : second.runs()) {
    auto at = reinterpret_cast<std::uintptr_t>(in_a);
    if (at >= run.start && at < run.start + run.pages * kPage) {
      EXPECT_EQ(run.pod, a.id());
    }
  }
  std::vector<std::uint32_t> pods = second.pods();
  EXPECT_TRUE(std::count(pods.begin(), pods.end(), a.id()) == 1);
  EXPECT_TRUE(std::count(pods.begin(), pods.end(), b.id()) == 1);
  if (exact()) {
    EXPECT_EQ(second.page_count(a.id()), 1u);
    EXPECT_EQ(second.page_count(b.id()), 1u);
    EXPECT_FALSE(second.contains(in_a + kPage));
  }
  larder::dirty_set third = collect();
  EXPECT_EQ(third.page_count(a.id()), 0u);
  EXPECT_EQ(third.page_count(b.id()), 0u);
  EXPECT_EQ(in_a[0], 2);
}

TEST_P(HeapTracking, SegmentsClaimedWhileTrackingAreTracked) {
  ASSERT_TRUE(h_.heap.start_tracking(backend_).ok());
  (void)collect();
  // Far more than the heap held when tracking started: new segments.
  std::vector<char*> blocks;
  for (int i = 0; i < 24; ++i) {
    auto* p = static_cast<char*>(h_.heap.allocate(1 << 20));
    ASSERT_NE(p, nullptr);
    blocks.push_back(p);
  }
  auto* huge = static_cast<char*>(h_.heap.allocate(std::size_t{10} << 20));
  ASSERT_NE(huge, nullptr);
  (void)collect();  // the allocations themselves
  for (char* p : blocks) p[5 * kPage] = 1;
  huge[9 << 20] = 1;
  larder::dirty_set set = collect();
  for (char* p : blocks) EXPECT_TRUE(set.contains(p + 5 * kPage));
  EXPECT_TRUE(set.contains(huge + (9 << 20)));
  if (exact()) {
    EXPECT_LE(set.page_count(0), blocks.size() + 1);
  }
}

TEST_P(HeapTracking, KernelWritesIntoTheHeapAreReportedAndLand) {
  auto* buffer = static_cast<char*>(h_.heap.allocate(4 * kPage));
  ASSERT_NE(buffer, nullptr);
  std::memset(buffer, 0, 4 * kPage);
  ASSERT_TRUE(h_.heap.start_tracking(backend_).ok());
  (void)collect();
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const char message[] = "written by the kernel";
  ASSERT_EQ(::write(fds[1], message, sizeof message), static_cast<ssize_t>(sizeof message));
  char* target = buffer + 2 * kPage - 5;  // crosses a page boundary
  ASSERT_EQ(::read(fds[0], target, sizeof message), static_cast<ssize_t>(sizeof message)) << std::strerror(errno);
  ::close(fds[0]);
  ::close(fds[1]);
  EXPECT_EQ(std::memcmp(target, message, sizeof message), 0);
  larder::dirty_set set = collect();
  EXPECT_TRUE(set.contains(target));
  EXPECT_TRUE(set.contains(target + sizeof message - 1));
}

TEST_P(HeapTracking, ManyThreadsNoMisses) {
  constexpr std::size_t kPages = 2048;
  auto* area = static_cast<char*>(h_.heap.allocate(kPages * kPage, kPage));
  ASSERT_NE(area, nullptr);
  std::memset(area, 0, kPages * kPage);
  ASSERT_TRUE(h_.heap.start_tracking(backend_).ok());
  (void)collect();
  for (int epoch = 0; epoch < 4; ++epoch) {
    std::vector<std::set<std::size_t>> written(4);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        std::mt19937_64 rng(static_cast<std::uint64_t>(epoch * 16 + t));
        for (int i = 0; i < 200; ++i) {
          std::size_t page = (rng() % (kPages / 4)) * 4 + static_cast<std::size_t>(t);  // disjoint per thread
          area[page * kPage + rng() % kPage] = static_cast<char>(epoch + 1);
          written[static_cast<std::size_t>(t)].insert(page);
        }
      });
    }
    for (auto& th : threads) th.join();
    larder::dirty_set set = collect();
    std::size_t expected = 0;
    for (const auto& pages : written) {
      expected += pages.size();
      for (std::size_t page : pages) ASSERT_TRUE(set.contains(area + page * kPage)) << "missed page " << page;
    }
    if (exact()) {
      EXPECT_EQ(set.page_count(0), expected);
    }
  }
}

TEST_P(HeapTracking, ForkedChildSeesItsOwnWritesAndTheParentGoesOn) {
  auto* area = static_cast<char*>(h_.heap.allocate(16 * kPage, kPage));
  ASSERT_NE(area, nullptr);
  std::memset(area, 0, 16 * kPage);
  ASSERT_TRUE(h_.heap.start_tracking(backend_).ok());
  (void)collect();
  area[0] = 1;  // A, before the fork
  int code = larder_test::run_in_child([&] {
    area[5 * kPage] = 1;  // B
    larder::dirty_set set = collect();
    EXPECT_TRUE(set.contains(area));
    EXPECT_TRUE(set.contains(area + 5 * kPage));
    area[9 * kPage] = 1;  // C
    larder::dirty_set next = collect();
    EXPECT_TRUE(next.contains(area + 9 * kPage));
  });
  EXPECT_EQ(code, 0);
  area[12 * kPage] = 1;  // D
  larder::dirty_set set = collect();
  EXPECT_TRUE(set.contains(area));
  EXPECT_TRUE(set.contains(area + 12 * kPage));
}

TEST_P(HeapTracking, StatisticsAreKeptInTheHeap) {
  larder::pod hot;
  ASSERT_TRUE(h_.heap.make_pod("hot", &hot).ok());
  auto* p = static_cast<char*>(hot.allocate(8 * kPage, kPage));
  ASSERT_NE(p, nullptr);
  std::memset(p, 0, 8 * kPage);
  ASSERT_TRUE(h_.heap.start_tracking(backend_).ok());
  (void)collect();
  for (int i = 0; i < 8; ++i) p[i * kPage] = 1;
  larder::dirty_set set = collect();
  larder::write_stats stats = h_.heap.write_statistics();
  EXPECT_EQ(stats.backend, backend_);
  EXPECT_EQ(stats.pid, ::getpid());
  EXPECT_EQ(stats.epoch, set.epoch());
  EXPECT_EQ(stats.pages_last_epoch, set.page_count());
  bool found = false;
  for (const auto& pod : stats.pods) {
    if (pod.pod != hot.id()) continue;
    found = true;
    EXPECT_EQ(pod.name, "hot");
    EXPECT_EQ(pod.pages_last_epoch, set.page_count(hot.id()));
    EXPECT_GE(pod.pages_last_epoch, 8u);
    EXPECT_EQ(pod.last_written_epoch, set.epoch());
  }
  EXPECT_TRUE(found);
  if (kind_ == larder::backing::anonymous) return;

  // Saved with the heap: a read-only opener sees them, with no tracker.
  ASSERT_TRUE(h_.heap.close().ok());
  larder::heap reader;
  larder::status s = larder::heap::open(h_.options(kind_, true), &reader);
  ASSERT_TRUE(s.ok()) << describe(s);
  larder::write_stats saved = reader.write_statistics();
  EXPECT_EQ(saved.backend, larder::tracker_backend::none);
  EXPECT_EQ(saved.epoch, set.epoch());
  EXPECT_EQ(saved.pages_total, stats.pages_total);
  EXPECT_EQ(reader.start_tracking(backend_).code(), static_cast<int>(larder::errc::read_only));
}

TEST_P(HeapTracking, StopLeavesTheHeapWritableAndCollectRefuses) {
  auto* p = static_cast<char*>(h_.heap.allocate(kPage));
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(h_.heap.start_tracking(backend_).ok());
  EXPECT_EQ(h_.heap.start_tracking(backend_).code(), static_cast<int>(larder::errc::invalid_argument));
  h_.heap.stop_tracking();
  EXPECT_EQ(h_.heap.tracking(), larder::tracker_backend::none);
  p[0] = 7;
  larder::dirty_set set;
  EXPECT_EQ(h_.heap.collect_dirty(&set).code(), static_cast<int>(larder::errc::invalid_argument));
  // And again, then closing while tracking.
  ASSERT_TRUE(h_.heap.start_tracking(backend_).ok());
  p[1] = 7;
  EXPECT_TRUE(h_.heap.close().ok());
}

TEST_P(HeapTracking, StartRacingSegmentClaimsMissesNothing) {
  for (int round = 0; round < 8; ++round) {
    heap_under_test h;
    ASSERT_TRUE(larder::heap::open(h.options(larder::backing::anonymous), &h.heap).ok());
    std::vector<char*> blocks(64);
    std::atomic<bool> go{false};
    std::thread allocator([&] {
      while (!go.load()) {
      }
      for (auto& b : blocks) b = static_cast<char*>(h.heap.allocate(std::size_t{3} << 20));
    });
    go.store(true);
    ASSERT_TRUE(h.heap.start_tracking(backend_).ok());
    allocator.join();
    larder::dirty_set set;
    ASSERT_TRUE(h.heap.collect_dirty(&set).ok());
    for (char* b : blocks) {
      ASSERT_NE(b, nullptr);
      b[kPage] = 1;
    }
    ASSERT_TRUE(h.heap.collect_dirty(&set).ok());
    for (char* b : blocks) ASSERT_TRUE(set.contains(b + kPage)) << "round " << round;
  }
}

TEST_P(HeapTracking, StartAndStopWhileOtherThreadsWriteAndRead) {
  auto* area = static_cast<char*>(h_.heap.allocate(64 * kPage, kPage));
  ASSERT_NE(area, nullptr);
  std::memset(area, 0, 64 * kPage);
  std::atomic<bool> stop{false};
  std::atomic<long> bad_reads{0};
  std::thread writer([&] {
    for (unsigned i = 0; !stop.load(); ++i) area[(i % 32) * kPage + i % 100] = static_cast<char>(i);
  });
  std::thread reader([&] {
    int fds[2];
    if (::pipe(fds) != 0) return;
    for (unsigned i = 0; !stop.load(); ++i) {
      char message[16];
      std::snprintf(message, sizeof message, "m%u", i);
      if (::write(fds[1], message, sizeof message) != static_cast<ssize_t>(sizeof message)) break;
      char* target = area + (32 + i % 32) * kPage - 3;
      if (::read(fds[0], target, sizeof message) != static_cast<ssize_t>(sizeof message) ||
          std::memcmp(target, message, sizeof message) != 0)
        bad_reads.fetch_add(1);
    }
    ::close(fds[0]);
    ::close(fds[1]);
  });
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(h_.heap.start_tracking(backend_).ok());
    larder::dirty_set set;
    ASSERT_TRUE(h_.heap.collect_dirty(&set).ok());
    h_.heap.stop_tracking();
  }
  stop.store(true);
  writer.join();
  reader.join();
  EXPECT_EQ(bad_reads.load(), 0);
  // The fault handler is still in place for the next tracker.
  ASSERT_TRUE(h_.heap.start_tracking(backend_).ok());
  area[0] = 9;
  larder::dirty_set set;
  ASSERT_TRUE(h_.heap.collect_dirty(&set).ok());
  EXPECT_TRUE(set.contains(area));
}

TEST_P(HeapTracking, RestartWhileAForkedChildLives) {
  auto* p = static_cast<char*>(h_.heap.allocate(kPage));
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(h_.heap.start_tracking(backend_).ok());
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    char c = 0;
    (void)!::read(ready[0], &c, 1);  // until the parent is done
    ::_exit(0);
  }
  h_.heap.stop_tracking();
  larder::status s = h_.heap.start_tracking(backend_);
  EXPECT_TRUE(s.ok()) << describe(s);
  p[0] = 1;
  larder::dirty_set set;
  EXPECT_TRUE(h_.heap.collect_dirty(&set).ok());
  EXPECT_TRUE(set.contains(p));
  (void)!::write(ready[1], "x", 1);
  int status = 0;
  ::waitpid(child, &status, 0);
  ::close(ready[0]);
  ::close(ready[1]);
}

std::string param_name(const ::testing::TestParamInfo<param>& info) {
  std::string name = larder::to_string(std::get<0>(info.param));
  name.erase(std::remove(name.begin(), name.end(), '-'), name.end());
  switch (std::get<1>(info.param)) {
    case larder::backing::anonymous: return name + "_anonymous";
    case larder::backing::shm: return name + "_shm";
    case larder::backing::file: return name + "_file";
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Backends, HeapTracking,
                         ::testing::Combine(::testing::Values(larder::tracker_backend::uffd_async,
                                                              larder::tracker_backend::mprotect,
                                                              larder::tracker_backend::pkey),
                                            ::testing::Values(larder::backing::anonymous, larder::backing::shm,
                                                              larder::backing::file)),
                         param_name);

TEST(TrackingChoice, EnvironmentForcesABackendAndIgnoresUnknownOnes) {
  heap_under_test h;
  ASSERT_TRUE(larder::heap::open(h.options(larder::backing::anonymous), &h.heap).ok());
  ::setenv("LARDER_TRACKER", "mprotect", 1);
  larder::status s = h.heap.start_tracking();
  ASSERT_TRUE(s.ok()) << describe(s);
  EXPECT_EQ(h.heap.tracking(), larder::tracker_backend::mprotect);
  h.heap.stop_tracking();
  // An unknown word warns on stderr and leaves the choice automatic.
  ::setenv("LARDER_TRACKER", "soft-dirty", 1);
  testing::internal::CaptureStderr();
  s = h.heap.start_tracking();
  std::string warned = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(s.ok()) << describe(s);
  EXPECT_NE(h.heap.tracking(), larder::tracker_backend::none);
  EXPECT_NE(warned.find("ignoring LARDER_TRACKER=soft-dirty: expected uffd-async, mprotect or pkey"), std::string::npos)
      << warned;
  h.heap.stop_tracking();
  ::unsetenv("LARDER_TRACKER");
  ASSERT_TRUE(h.heap.start_tracking().ok());
  EXPECT_NE(h.heap.tracking(), larder::tracker_backend::none);
}

TEST(TrackingChoice, AnUnavailableBackendSaysWhy) {
  for (const auto& support : larder::tracker_backends()) {
    if (support.available) continue;
    heap_under_test h;
    ASSERT_TRUE(larder::heap::open(h.options(larder::backing::anonymous), &h.heap).ok());
    larder::status s = h.heap.start_tracking(support.backend);
    EXPECT_EQ(s.code(), static_cast<int>(larder::errc::unsupported));
    EXPECT_NE(s.message().find(support.reason), std::string::npos) << s.message();
    std::printf("%s unavailable: %s\n", larder::to_string(support.backend), support.reason.c_str());
  }
}

}  // namespace
