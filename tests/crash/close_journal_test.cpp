// A power failure in the middle of close's write-back (docs/persistence.md,
// "Plain allocation and power failure"). plain_alloc_sample's run phase is
// stopped at the persistence point of the write-back, with a seeded subset
// of its lines landed, which leaves a heap with a complete close journal.
// The checker judges the heap as the journal leaves it and says so; a
// read-only open and salvage complete the close in their private copies
// and leave the file alone; the next writer open (or check --repair)
// completes it in the file.
#include <larder/check.hpp>
#include <larder/heap.hpp>

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

namespace fs = std::filesystem;

constexpr int kCrashExitCode = 86;  // docs/crashtest.md
constexpr const char* kOperations = "300";
constexpr const char* kWorkloadSeed = "9";

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  std::string bytes(static_cast<std::size_t>(std::max<std::streamoff>(in.tellg(), 0)), '\0');
  in.seekg(0);
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return bytes;
}

class CloseJournal : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::exists("/dev/shm") ? std::string("/dev/shm") : fs::temp_directory_path().string()) +
                          "/larder-close-journal-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    heap_ = dir_ + "/heap";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // The sample's run phase with LARDER_CRASH_AT=point (0: only count) and
  // the tear seed; returns its exit status.
  int run_phase(std::uint64_t point, std::uint64_t seed) {
    fs::remove(heap_);
    pid_t child = ::fork();
    if (child == 0) {
      ::setenv("LARDER_CRASHTEST_PHASE", "run", 1);
      ::setenv("LARDER_CRASHTEST_HEAP", heap_.c_str(), 1);
      ::setenv("LARDER_CRASHTEST_ACK", (dir_ + "/ack").c_str(), 1);
      ::setenv("LARDER_CRASH_AT", std::to_string(point).c_str(), 1);
      ::setenv("LARDER_CRASH_SEED", std::to_string(seed).c_str(), 1);
      ::setenv("LARDER_CRASH_REPORT", (dir_ + "/report").c_str(), 1);
      if (std::freopen("/dev/null", "w", stdout) == nullptr) ::_exit(126);
      ::execl(PLAIN_SAMPLE, PLAIN_SAMPLE, kOperations, kWorkloadSeed, "power", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  std::uint64_t points() {
    EXPECT_EQ(run_phase(0, 0), 0);
    std::string report = read_all(dir_ + "/report");  // "points N"
    EXPECT_EQ(report.rfind("points", 0), 0u) << report;
    return std::strtoull(report.c_str() + 6, nullptr, 10);
  }

  larder::heap_options options(bool read_only) const {
    larder::heap_options o;
    o.name = heap_;
    o.mode = larder::open_mode::open;
    o.read_only = read_only;
    return o;
  }

  std::string dir_, heap_;
};

std::string describe(const larder::check_report& r) {
  std::string text;
  for (const auto& p : r.problems) text += "problem: " + p + "\n";
  for (const auto& n : r.notes) text += "note: " + n + "\n";
  return text;
}

TEST_F(CloseJournal, TornWriteBackIsCompletedByTheNextOpen) {
  std::uint64_t total = points();
  // A close ends: the journal, the write-back, then the journal retired
  // together with the last-close time.
  std::uint64_t write_back = total - 1;
  for (std::uint64_t seed = 1; seed <= 4 && !HasFailure(); ++seed) {
    SCOPED_TRACE("tear seed " + std::to_string(seed));
    ASSERT_EQ(run_phase(write_back, seed), kCrashExitCode);
    const std::string torn = read_all(heap_);

    larder::check_report r;
    ASSERT_TRUE(larder::check_heap(heap_, false, &r).ok());
    EXPECT_TRUE(r.clean()) << describe(r);
    EXPECT_EQ(r.interrupted_closes, 1u) << describe(r);
    EXPECT_EQ(read_all(heap_), torn) << "the check changed the file";

    {
      larder::heap reader(options(true));
      EXPECT_TRUE(reader.stats().private_rollback);
      EXPECT_NE(reader.find_root("plain"), nullptr);
      EXPECT_EQ(reader.stats().last_close_ns, 0u) << "the close did not finish";
      std::size_t interrupted = 0;
      for (const larder::lane_info& l : reader.lanes()) interrupted += l.state == larder::lane_state::interrupted_close;
      EXPECT_EQ(interrupted, 1u) << "the lanes as the file holds them";
    }
    EXPECT_EQ(read_all(heap_), torn) << "a read-only open changed the file";

    {
      larder::salvage_report salvaged;
      const std::string copy = dir_ + "/salvaged";
      ASSERT_TRUE(larder::salvage_heap(larder::backing::file, heap_, copy, &salvaged).ok());
      EXPECT_EQ(salvaged.lost(), 0u);
      EXPECT_TRUE(std::any_of(salvaged.notes.begin(), salvaged.notes.end(), [](const std::string& n) {
        return n.find("completed a close that a crash cut short") != std::string::npos;
      })) << "salvage reads the heap as the journal leaves it";
      larder::check_report c;
      ASSERT_TRUE(larder::check_heap(copy, false, &c).ok());
      EXPECT_TRUE(c.clean()) << describe(c);
      fs::remove(copy);
    }
    EXPECT_EQ(read_all(heap_), torn) << "salvage changed the file";

    if (seed % 2 == 0) {
      // `larder check --repair` completes it too, and says so.
      ASSERT_TRUE(larder::check_heap(heap_, true, &r).ok());
      bool said = false;
      for (const auto& x : r.repairs) said |= x.find("completed 1 close(s) that a crash cut short") != std::string::npos;
      EXPECT_TRUE(said) << describe(r);
    } else {
      larder::heap writer(options(false));
      ASSERT_NE(writer.find_root("plain"), nullptr);
      void* fresh = writer.allocate(1000);
      ASSERT_NE(fresh, nullptr);
      larder::heap::deallocate(fresh);
      ASSERT_TRUE(writer.close().ok());
    }
    ASSERT_TRUE(larder::check_heap(heap_, false, &r).ok());
    EXPECT_TRUE(r.clean()) << describe(r);
    EXPECT_EQ(r.interrupted_closes, 0u) << describe(r);
    larder::heap reader(options(true));
    EXPECT_GT(reader.stats().last_close_ns, 0u);
    for (const larder::lane_info& l : reader.lanes()) EXPECT_EQ(l.state, larder::lane_state::clean) << l.index;
  }
}

// A crash at the persistence points next to the write-back (the journal,
// its retirement with the last-close time) leaves a heap that checks
// clean, and once a writer has opened it nothing is left to complete.
TEST_F(CloseJournal, CrashNextToTheWriteBackLeavesACleanHeap) {
  std::uint64_t total = points();
  for (std::uint64_t point : {total - 2, total}) {
    for (std::uint64_t seed = 1; seed <= 3 && !HasFailure(); ++seed) {
      SCOPED_TRACE("point " + std::to_string(point) + " of " + std::to_string(total) + ", tear seed " +
                   std::to_string(seed));
      ASSERT_EQ(run_phase(point, seed), kCrashExitCode);
      larder::check_report r;
      ASSERT_TRUE(larder::check_heap(heap_, false, &r).ok());
      EXPECT_TRUE(r.clean()) << describe(r);
      { larder::heap writer(options(false)); }
      ASSERT_TRUE(larder::check_heap(heap_, false, &r).ok());
      EXPECT_TRUE(r.clean()) << describe(r);
      EXPECT_EQ(r.interrupted_closes, 0u) << describe(r);
    }
  }
}

}  // namespace
