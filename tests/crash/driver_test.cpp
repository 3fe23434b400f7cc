// Tests of the crash-test driver (larder::crashtest::run) and of the
// program-side protocol: a correct sample passes at every point, a sample
// with a missing snapshot is caught and its replay command reproduces the
// failure, and programs that fail, hang or never open a heap are reported.
#include <larder/crashtest.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <sys/wait.h>

namespace {

namespace ct = larder::crashtest;
namespace fs = std::filesystem;

ct::options options_for(std::vector<std::string> command) {
  ct::options o;
  o.command = std::move(command);
  o.timeout_s = 60;
  return o;
}

struct cleanup {
  std::string dir;
  ~cleanup() {
    std::error_code ec;
    if (!dir.empty()) fs::remove_all(dir, ec);
  }
};

TEST(CrashtestDriverTest, CorrectSamplePassesAtEveryPoint) {
  ct::options o = options_for({LIST_SAMPLE, "20", "7"});
  ct::outcome out;
  ASSERT_TRUE(ct::run(o, &out).ok());
  cleanup c{out.work_dir};
  EXPECT_GT(out.points, 20u);  // at least one per transaction
  EXPECT_EQ(out.runs, out.points);
  EXPECT_EQ(out.failures, 0u) << out.failure_output;
  EXPECT_EQ(out.ended_early, 0u);
  EXPECT_TRUE(out.replay_command.empty());
  EXPECT_TRUE(out.work_dir.empty()) << "a passing run removes its own work directory";
}

TEST(CrashtestDriverTest, MissingSnapshotIsCaughtAndReplayed) {
  ct::options o = options_for({BROKEN_SAMPLE, "60", "1"});
  ct::outcome out;
  ASSERT_TRUE(ct::run(o, &out).ok());
  cleanup c{out.work_dir};
  ASSERT_EQ(out.failures, 1u) << "the broken sample passed every point";
  std::uint64_t point = out.first_failing_point;
  ASSERT_GT(point, 0u);
  EXPECT_LT(out.runs, out.points) << "the driver stops at the first failure";
  EXPECT_NE(out.failure_output.find("check phase exited with 1"), std::string::npos) << out.failure_output;
  EXPECT_NE(out.failure_output.find("check failed:"), std::string::npos) << out.failure_output;
  const std::string& replay = out.replay_command;
  EXPECT_EQ(replay.rfind("larder crashtest --heap ", 0), 0u) << replay;
  EXPECT_NE(replay.find(" --point " + std::to_string(point) + " --seed 1 -- "), std::string::npos) << replay;
  EXPECT_NE(replay.find(std::string(BROKEN_SAMPLE) + " 60 1"), std::string::npos) << replay;
  ASSERT_FALSE(out.work_dir.empty());
  EXPECT_TRUE(fs::exists(out.work_dir)) << "a failing run keeps its files";

  // Replaying that one point fails the same way, and the point before it passes.
  o.only_point = point;
  ct::outcome again;
  ASSERT_TRUE(ct::run(o, &again).ok());
  cleanup c2{again.work_dir};
  EXPECT_EQ(again.runs, 1u);
  EXPECT_EQ(again.failures, 1u);
  EXPECT_EQ(again.first_failing_point, point);
  if (point > 1) {
    o.only_point = point - 1;
    ct::outcome before;
    ASSERT_TRUE(ct::run(o, &before).ok());
    cleanup c3{before.work_dir};
    EXPECT_EQ(before.failures, 0u) << before.failure_output;
  }

#ifdef LARDER_TOOL
  // The replay command itself, with "larder" being the tool built here.
  std::string command = std::string(LARDER_TOOL) + replay.substr(std::string("larder").size()) + " > /dev/null";
  int raw = std::system(command.c_str());
  ASSERT_TRUE(WIFEXITED(raw)) << command;
  EXPECT_EQ(WEXITSTATUS(raw), 1) << command;
#endif
}

TEST(CrashtestDriverTest, RandomPointsAreDistinctAndTheSameForASeed) {
  ct::options o = options_for({LIST_SAMPLE, "30", "2"});
  o.how = ct::mode::random_points;
  o.samples = 12;
  o.seed = 5;
  std::vector<std::string> lines;
  o.progress = [&](const std::string& line) { lines.push_back(line); };
  ct::outcome out;
  ASSERT_TRUE(ct::run(o, &out).ok());
  cleanup c{out.work_dir};
  ASSERT_GT(out.points, 12u);
  EXPECT_EQ(out.runs, 12u);
  EXPECT_EQ(out.failures, 0u) << out.failure_output;
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.front().find("persistence points"), std::string::npos) << lines.front();

  // More samples than points: every point once.
  o.samples = out.points + 10;
  ct::outcome all;
  ASSERT_TRUE(ct::run(o, &all).ok());
  cleanup c2{all.work_dir};
  EXPECT_EQ(all.failures, 0u) << all.failure_output;
  EXPECT_EQ(all.runs, all.points);
}

TEST(CrashtestDriverTest, KillModeChecksAfterEachKill) {
  ct::options o = options_for({LIST_SAMPLE, "300", "3"});
  o.how = ct::mode::kill;
  o.samples = 6;
  ct::outcome out;
  ASSERT_TRUE(ct::run(o, &out).ok());
  cleanup c{out.work_dir};
  EXPECT_EQ(out.runs, 6u);
  EXPECT_EQ(out.failures, 0u) << out.failure_output;
  EXPECT_GT(out.uncrashed_seconds, 0.0);
}

TEST(CrashtestDriverTest, ProgramFailingWithoutACrashIsReported) {
  ct::options o = options_for({"false"});
  ct::outcome out;
  ASSERT_TRUE(ct::run(o, &out).ok());
  cleanup c{out.work_dir};
  EXPECT_EQ(out.failures, 1u);
  EXPECT_EQ(out.first_failing_point, 0u);
  EXPECT_EQ(out.runs, 0u);
  EXPECT_NE(out.failure_output.find("without a crash"), std::string::npos) << out.failure_output;
}

TEST(CrashtestDriverTest, ProgramWithoutAHeapIsAnError) {
  ct::outcome out;
  larder::status s = ct::run(options_for({"true"}), &out);
  cleanup c{out.work_dir};
  EXPECT_TRUE(s.is(larder::errc::invalid_argument)) << s.to_string();
}

TEST(CrashtestDriverTest, MissingProgramIsAnError) {
  ct::outcome out;
  larder::status s = ct::run(options_for({"/nonexistent/larder-crash-sample"}), &out);
  cleanup c{out.work_dir};
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), ENOENT) << s.to_string();
}

TEST(CrashtestDriverTest, HangingProgramTimesOut) {
  ct::options o = options_for({"sleep", "30"});
  o.timeout_s = 0.3;
  ct::outcome out;
  ASSERT_TRUE(ct::run(o, &out).ok());
  cleanup c{out.work_dir};
  EXPECT_EQ(out.failures, 1u);
  EXPECT_NE(out.failure_output.find("did not finish"), std::string::npos) << out.failure_output;
}

TEST(CrashtestDriverTest, PointPastTheEndIsRejected) {
  ct::options o = options_for({LIST_SAMPLE, "5"});
  o.only_point = 1000000;
  ct::outcome out;
  larder::status s = ct::run(o, &out);
  cleanup c{out.work_dir};
  EXPECT_TRUE(s.is(larder::errc::invalid_argument)) << s.to_string();
}

TEST(CrashtestDriverTest, ReplayCommandQuotesWords) {
  ct::options o = options_for({"/bin/prog", "two words", "it's"});
  o.heap_path = "/tmp/h";
  o.torn = false;
  EXPECT_EQ(ct::replay_command(o, 12),
            "larder crashtest --heap /tmp/h --point 12 --seed 1 --no-tear -- /bin/prog 'two words' 'it'\\''s'");
}

TEST(CrashtestProtocolTest, PhaseHeapAndAcknowledgements) {
  fs::path dir = fs::temp_directory_path() / ("larder-ack-test-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  cleanup c{dir.string()};
  std::string ack = (dir / "ack").string();
  ::unsetenv("LARDER_CRASHTEST_PHASE");
  EXPECT_EQ(ct::current_phase(), ct::phase::none);
  ::setenv("LARDER_CRASHTEST_PHASE", "run", 1);
  EXPECT_EQ(ct::current_phase(), ct::phase::run);
  ::setenv("LARDER_CRASHTEST_PHASE", "check", 1);
  EXPECT_EQ(ct::current_phase(), ct::phase::check);
  ::setenv("LARDER_CRASHTEST_PHASE", "bogus", 1);
  EXPECT_EQ(ct::current_phase(), ct::phase::none);
  ::setenv("LARDER_CRASHTEST_HEAP", "/some/heap", 1);
  EXPECT_EQ(ct::heap_path(), "/some/heap");

  ::setenv("LARDER_CRASHTEST_ACK", ack.c_str(), 1);
  EXPECT_EQ(ct::acknowledged(), 0u) << "no file yet";
  ct::acknowledge(7);
  EXPECT_EQ(ct::acknowledged(), 7u);
  ct::acknowledge(1000000007);
  EXPECT_EQ(ct::acknowledged(), 1000000007u);
  EXPECT_EQ(fs::file_size(ack), 24u);
  ::unsetenv("LARDER_CRASHTEST_PHASE");
  ::unsetenv("LARDER_CRASHTEST_HEAP");
  ::unsetenv("LARDER_CRASHTEST_ACK");
  EXPECT_EQ(ct::acknowledged(), 0u);
}

}  // namespace
