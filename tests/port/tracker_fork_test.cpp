// fork() with a page-write tracker, per backend (skipped, with the probe's
// reason, where the backend cannot work here). The child's first collect may
// report every tracked page (the uffd backend's must: the kernel drops the
// registration in the child), but never less than what was written; after it
// the child and the parent both go on tracking precisely. GoogleTest
// assertions do not cross fork, so the child reports through its exit code
// and says what failed on stderr.
#include "port/tracker_test_util.hpp"
#include "port/write_tracker.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using larder::port::make_tracker;
using larder::port::probe_tracker;
using larder::port::tracker_kind;
using larder::port::write_tracker;
using larder::port::written_run;

using larder_test::kKinds;
using larder_test::kPage;
using larder_test::label;
using larder_test::precise;

// Anonymous private, or a memfd mapped shared.
struct region {
  region(bool shared, std::size_t pages) : size(pages * kPage) {
    int flags = MAP_PRIVATE | MAP_ANONYMOUS;
    if (shared) {
      fd = ::memfd_create("larder-tracker-fork-test", MFD_CLOEXEC);
      if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(size)) != 0) return;
      flags = MAP_SHARED;
    }
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, flags, fd, 0);
    if (p != MAP_FAILED) base = static_cast<char*>(p);
  }
  ~region() {
    if (base != nullptr) ::munmap(base, size);
    if (fd >= 0) ::close(fd);
  }
  region(const region&) = delete;
  region& operator=(const region&) = delete;

  std::uintptr_t addr() const { return reinterpret_cast<std::uintptr_t>(base); }
  char* page(std::size_t i) const { return base + i * kPage; }
  void poke(std::size_t i, char value = 1) const { *reinterpret_cast<volatile char*>(page(i) + 100) = value; }

  char* base = nullptr;
  std::size_t size;
  int fd = -1;
};

// Page indices of `r` in the runs.
std::set<std::size_t> pages_in(const std::vector<written_run>& runs, const region& r) {
  std::set<std::size_t> out;
  for (const auto& run : runs)
    for (std::size_t k = 0; k < run.pages; ++k) {
      std::uintptr_t p = run.start + k * kPage;
      if (p >= r.addr() && p < r.addr() + r.size) out.insert((p - r.addr()) / kPage);
    }
  return out;
}

std::string show(const std::set<std::size_t>& pages) {
  std::string s = "{";
  std::size_t n = 0;
  for (std::size_t p : pages) {
    if (n++ > 0) s += ",";
    if (n > 40) {
      s += "...(" + std::to_string(pages.size()) + " pages)";
      break;
    }
    s += std::to_string(p);
  }
  return s + "}";
}

bool has(const std::set<std::size_t>& set, std::size_t page) { return set.count(page) != 0; }

bool transfer(int in, int out, char* dst, std::size_t n) {
  std::vector<char> data(n);
  for (std::size_t i = 0; i < n; ++i) data[i] = static_cast<char>(i * 13 + 5);
  if (::write(in, data.data(), n) != static_cast<ssize_t>(n)) return false;
  std::size_t done = 0;
  while (done < n) {
    ssize_t r = ::read(out, dst + done, n - done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    done += static_cast<std::size_t>(r);
  }
  return std::memcmp(dst, data.data(), n) == 0;
}

int child_fail(int code, const std::string& what) {
  std::fprintf(stderr, "tracker fork child: %s\n", what.c_str());
  std::fflush(stderr);
  return code;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "child exited with " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("child killed by signal ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

constexpr std::size_t kA = 1, kB = 5, kC = 9, kD = 13;

class TrackerFork : public testing::TestWithParam<tracker_kind> {
 protected:
  void SetUp() override {
    auto probe = probe_tracker(GetParam());
    if (!probe.available) GTEST_SKIP() << label(GetParam()) << " unavailable: " << probe.reason;
  }
};

// The child's side of ChildAndParentKeepTracking.
int fork_child(write_tracker& tracker, const region& anon, const region& shm, int pipe_in, int pipe_out, bool exact) {
  anon.poke(kB);
  shm.poke(kB);
  std::vector<written_run> runs;
  if (int e = tracker.collect(&runs)) return child_fail(10, std::string("collect: ") + std::strerror(e));
  for (const region* r : {&anon, &shm}) {
    auto pages = pages_in(runs, *r);
    const char* which = r == &anon ? "anon" : "shm";
    if (!has(pages, kA)) return child_fail(11, std::string(which) + ": first collect lacks A: " + show(pages));
    if (!has(pages, kB)) return child_fail(12, std::string(which) + ": first collect lacks B: " + show(pages));
  }
  // C: by read(2) into the anonymous range, a store into the shared one.
  if (!transfer(pipe_in, pipe_out, anon.page(kC) + 4000, 200)) return child_fail(13, "read(2) into C failed");
  shm.poke(kC);
  runs.clear();
  if (int e = tracker.collect(&runs)) return child_fail(10, std::string("collect: ") + std::strerror(e));
  for (const region* r : {&anon, &shm}) {
    auto pages = pages_in(runs, *r);
    const char* which = r == &anon ? "anon" : "shm";
    if (!has(pages, kC)) return child_fail(14, std::string(which) + ": second collect lacks C: " + show(pages));
    std::set<std::size_t> want{kC};
    if (r == &anon) want.insert(kC + 1);  // the read crossed into the next page
    if (exact && pages != want)
      return child_fail(15, std::string(which) + ": second collect reported " + show(pages) + ", wanted " + show(want));
  }
  runs.clear();
  if (int e = tracker.collect(&runs)) return child_fail(10, std::string("collect: ") + std::strerror(e));
  if (exact && !runs.empty()) return child_fail(16, "a collect with no writes since the last was not empty");
  return 0;
}

TEST_P(TrackerFork, ChildAndParentKeepTracking) {
  const tracker_kind kind = GetParam();
  region anon(false, 32), shm(true, 32);
  ASSERT_NE(anon.base, nullptr);
  ASSERT_NE(shm.base, nullptr);
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  std::unique_ptr<write_tracker> tracker;
  ASSERT_EQ(make_tracker(kind, &tracker), 0);
  ASSERT_EQ(tracker->track(anon.addr(), anon.size, 1), 0);
  ASSERT_EQ(tracker->track(shm.addr(), shm.size, 2), 0);
  {
    std::vector<written_run> runs;
    ASSERT_EQ(tracker->collect(&runs), 0);
    ASSERT_TRUE(runs.empty());
  }
  anon.poke(kA);
  shm.poke(kA);

  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0) << std::strerror(errno);
  if (pid == 0) {
    ::alarm(30);  // a deadlock in the child shows as SIGALRM
    ::_exit(fork_child(*tracker, anon, shm, pipe_fds[1], pipe_fds[0], precise(kind)));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << describe_status(status) << " (see its stderr)";

  // The parent: A from before the fork, D after it. (B and C, written by
  // the child into the shared range, are invisible to the parent's page
  // tables; they are printed, not checked.)
  anon.poke(kD);
  ASSERT_TRUE(transfer(pipe_fds[1], pipe_fds[0], shm.page(kD) + 10, 100));
  std::vector<written_run> runs;
  ASSERT_EQ(tracker->collect(&runs), 0);
  auto anon_pages = pages_in(runs, anon), shm_pages = pages_in(runs, shm);
  EXPECT_TRUE(has(anon_pages, kA) && has(anon_pages, kD)) << "anon: " << show(anon_pages);
  EXPECT_TRUE(has(shm_pages, kA) && has(shm_pages, kD)) << "shm: " << show(shm_pages);
  if (precise(kind)) {
    EXPECT_EQ(anon_pages, (std::set<std::size_t>{kA, kD}));
  }
  std::printf("[ fork     ] %s: parent collect after the child: anon %s, shm %s\n", label(kind),
              show(anon_pages).c_str(), show(shm_pages).c_str());
  runs.clear();
  ASSERT_EQ(tracker->collect(&runs), 0);
  if (precise(kind)) {
    EXPECT_TRUE(runs.empty()) << "a collect with no writes since the last: " << show(pages_in(runs, anon));
  }
  tracker.reset();
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
}

// A thread keeps writing while the main thread forks again and again: no
// child hangs or misses its own writes, and the parent misses none of the
// thread's writes (each checked against its window of collects, as in
// tracker_property_test).
TEST_P(TrackerFork, ForkWhileAnotherThreadWrites) {
  const tracker_kind kind = GetParam();
  constexpr std::size_t kPages = 256;
  constexpr int kForks = 32;
  region anon(false, kPages);
  ASSERT_NE(anon.base, nullptr);
  std::unique_ptr<write_tracker> tracker;
  ASSERT_EQ(make_tracker(kind, &tracker), 0);
  ASSERT_EQ(tracker->track(anon.addr(), anon.size, 1), 0);

  struct record {
    std::uint32_t page, lo, hi;
  };
  std::atomic<std::uint32_t> started{0}, finished{0};
  std::atomic<bool> stop{false};
  std::vector<record> records;
  records.reserve(1 << 20);
  std::thread writer([&] {
    std::mt19937_64 rng(0xf0f0 + static_cast<unsigned>(kind));
    while (!stop.load(std::memory_order_relaxed) && records.size() < records.capacity()) {
      auto page = static_cast<std::uint32_t>(1 + rng() % (kPages - 1));  // page 0 is the children's
      std::uint32_t lo = finished.load(std::memory_order_seq_cst);
      anon.poke(page, static_cast<char>(rng()));
      std::atomic_thread_fence(std::memory_order_seq_cst);
      std::uint32_t hi = started.load(std::memory_order_seq_cst);
      records.push_back({page, lo, hi});
      if (rng() % 64 == 0) std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  });
  std::vector<std::set<std::size_t>> collects;
  auto collect_once = [&] {
    std::uint32_t j = started.fetch_add(1, std::memory_order_seq_cst) + 1;
    std::vector<written_run> runs;
    int rc = tracker->collect(&runs);
    finished.store(j, std::memory_order_seq_cst);
    EXPECT_EQ(rc, 0);
    collects.push_back(pages_in(runs, anon));
  };

  for (int f = 0; f < kForks; ++f) {
    collect_once();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    std::fflush(stdout);
    std::fflush(stderr);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0) << std::strerror(errno);
    if (pid == 0) {
      ::alarm(30);
      int code = 0;
      anon.poke(0);
      std::vector<written_run> runs;
      if (tracker->collect(&runs) != 0)
        code = child_fail(10, "collect failed");
      else if (!has(pages_in(runs, anon), 0))
        code = child_fail(11, "the child's first collect lacks its write: " + show(pages_in(runs, anon)));
      if (code == 0) {
        anon.poke(0, 2);
        anon.poke(kPages - 1, 2);
        runs.clear();
        if (tracker->collect(&runs) != 0) {
          code = child_fail(10, "collect failed");
        } else {
          auto pages = pages_in(runs, anon);
          if (!has(pages, 0) || !has(pages, kPages - 1))
            code = child_fail(12, "the child's second collect lacks its writes: " + show(pages));
          else if (precise(kind) && pages.size() != 2)
            code = child_fail(13, "the child's second collect reported " + show(pages));
        }
      }
      ::_exit(code);
    }
    collect_once();
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "fork " << f << ": " << describe_status(status);
  }
  stop.store(true);
  writer.join();
  collect_once();
  const auto total = static_cast<std::uint32_t>(collects.size());

  std::size_t misses = 0;
  std::string report;
  for (const record& r : records) {
    bool seen = false;
    for (std::uint32_t j = r.lo + 1; j <= r.hi + 1 && j <= total && !seen; ++j) seen = has(collects[j - 1], r.page);
    if (!seen && ++misses <= 10)
      report += "  page " + std::to_string(r.page) + " window " + std::to_string(r.lo + 1) + ".." +
                std::to_string(r.hi + 1) + " of " + std::to_string(total) + "\n";
  }
  std::printf("[ fork     ] %s: %zu writes by the thread across %d forks, %u collects, %zu misses\n", label(kind),
              records.size(), kForks, total, misses);
  EXPECT_EQ(misses, 0u) << report;
  tracker.reset();
}

INSTANTIATE_TEST_SUITE_P(Backends, TrackerFork, testing::ValuesIn(kKinds),
                         [](const testing::TestParamInfo<tracker_kind>& info) { return label(info.param); });

}  // namespace
