// Heaps sharing one store: each moves its own branch; and several
// processes checkpointing their own heaps into one store while another
// runs gc in a loop, with kill -9 of the gc and of writers at random
// instants: afterwards the store verifies clean once gc has removed
// what killed writers left, no version a writer saw committed (and did not
// delete) is missing, and every version in the store opens holding exactly
// the bytes its writer had at that checkpoint.
#include "runtime_test_util.hpp"

#include <larder/versions.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using larder_test::temp_dir;

constexpr std::size_t kPages = 8;
constexpr std::size_t kWordsPerPage = 512;

struct data_root {
  std::uint64_t words[kPages * kWordsPerPage];
};

std::uint64_t mix(int writer, int round, std::size_t i) {
  return (0x9E3779B97F4A7C15ull * static_cast<std::uint64_t>(round + 1)) ^
         (static_cast<std::uint64_t>(writer) << 56) ^ (i * 0x100000001b3ull);
}

// Round r rewrites page r % kPages.
void write_round(data_root* root, int writer, int round) {
  std::size_t page = static_cast<std::size_t>(round) % kPages;
  for (std::size_t i = page * kWordsPerPage; i < (page + 1) * kWordsPerPage; ++i) root->words[i] = mix(writer, round, i);
}

std::string differs(const larder::heap& h, int writer, int round) {
  auto* root = static_cast<const data_root*>(h.find_root("data"));
  if (root == nullptr) return "no root";
  for (std::size_t i = 0; i < kPages * kWordsPerPage; ++i) {
    std::size_t page = i / kWordsPerPage;
    int last = -1;
    for (int r = 0; r <= round; ++r)
      if (static_cast<std::size_t>(r) % kPages == page) last = r;
    std::uint64_t want = last < 0 ? 0 : mix(writer, last, i);
    if (root->words[i] != want) return "word " + std::to_string(i);
  }
  return {};
}

// A writer: checkpoints round after round, records each round once its
// checkpoint returned, and deletes the version three rounds back.
[[noreturn]] void writer(const std::string& dir, const std::string& store, int id) {
  larder::heap h({.kind = larder::backing::file, .name = dir + "/heap" + std::to_string(id)});
  larder::throw_if_error(larder::use_version_store(h, store, "w" + std::to_string(id)));
  auto* root = h.root<data_root>("data");
  std::ofstream record(dir + "/record" + std::to_string(id), std::ios::app);
  std::vector<std::string> ids;
  for (int round = 0;; ++round) {
    write_round(root, id, round);
    ids.push_back(larder::checkpoint(h, std::to_string(id) + " " + std::to_string(round)).id);
    record << round << std::endl;
    if (round >= 3) {
      larder::version_store s;
      larder::throw_if_error(larder::version_store::open(store, &s));
      larder::throw_if_error(s.delete_version(ids[static_cast<std::size_t>(round - 3)], false));
    }
  }
}

[[noreturn]] void collector(const std::string& store) {
  larder::version_store s;
  larder::throw_if_error(larder::version_store::open(store, &s));
  for (;;) {
    larder::store_gc_report report;
    larder::throw_if_error(s.gc(&report));
  }
}

pid_t start(const std::function<void()>& body) {
  pid_t pid = ::fork();
  if (pid == 0) {
    try {
      body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child: %s\n", e.what());
    }
    ::_exit(1);
  }
  return pid;
}

void kill_and_reap(pid_t pid) {
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status)) << "a child ended on its own: " << status;
}

TEST(VersionProcesses, WritersAndAGcKilledAtRandomLoseNoCommittedVersion) {
  temp_dir dir(true);
  const std::string store = dir.file("store");
  constexpr int kWriters = 3;
  std::mt19937_64 random(7);
  std::vector<pid_t> writers;
  for (int w = 0; w < kWriters; ++w) writers.push_back(start([&, w] { writer(dir.path(), store, w); }));
  while (!std::filesystem::exists(store + "/store")) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  // The gc, killed and started again 20 times; one writer killed half way.
  for (int kill = 0; kill < 20; ++kill) {
    pid_t gc = start([&] { collector(store); });
    std::this_thread::sleep_for(std::chrono::microseconds(5000 + random() % 60000));
    kill_and_reap(gc);
    if (kill == 10) kill_and_reap(writers[0]);
  }
  for (int w = 1; w < kWriters; ++w) kill_and_reap(writers[static_cast<std::size_t>(w)]);

  larder::version_store s;
  ASSERT_TRUE(larder::version_store::open(store, &s).ok());
  larder::store_gc_report gc;
  ASSERT_TRUE(s.gc(&gc).ok());
  larder::store_verify_report report;
  ASSERT_TRUE(s.verify(&report).ok());
  for (const auto& p : report.problems) ADD_FAILURE() << p.file << ": " << p.what;
  std::vector<larder::version_info> all;
  ASSERT_TRUE(s.log(true, &all).ok());
  std::map<std::pair<int, int>, std::string> present;
  for (const auto& v : all) {
    int w = -1, round = -1;
    ASSERT_EQ(std::sscanf(v.message.c_str(), "%d %d", &w, &round), 2) << v.message;
    present[{w, round}] = v.id;
  }
  for (int w = 0; w < kWriters; ++w) {
    std::ifstream record(dir.file("record" + std::to_string(w)));
    int round = -1, last = -1;
    while (record >> round) last = round;
    ASSERT_GE(last, 1) << "writer " << w << " recorded too few rounds";
    std::printf("writer %d: %d rounds\n", w, last + 1);
    for (int r = last - 1; r <= last; ++r) EXPECT_TRUE(present.contains({w, r})) << "writer " << w << " round " << r;
  }
  for (const auto& [key, id] : present) {
    larder::heap version;
    ASSERT_TRUE(larder::open_version(store, id, &version).ok()) << id;
    EXPECT_EQ(differs(version, key.first, key.second), "") << "writer " << key.first << " round " << key.second;
  }
  std::printf("%zu versions in the store, %llu chunks dropped by the last gc\n", present.size(),
              static_cast<unsigned long long>(gc.chunks_dropped));
}

// Heaps sharing a store each move their own branch: the one they were
// given, or HEAD's when they first checkpointed, whatever HEAD names later.
TEST(VersionProcesses, HeapsSharingAStoreMoveOnlyTheirOwnBranch) {
  temp_dir dir(true);
  const std::string store = dir.file("store");
  larder::heap a({.kind = larder::backing::file, .name = dir.file("a")});
  larder::heap b({.kind = larder::backing::file, .name = dir.file("b")});
  ASSERT_TRUE(larder::use_version_store(a, store, "a").ok());
  write_round(a.root<data_root>("data"), 0, 0);
  const std::string a1 = larder::checkpoint(a, "a 0").id;
  ASSERT_TRUE(larder::use_version_store(b, store, "b").ok());  // HEAD is heads/b now
  write_round(b.root<data_root>("data"), 1, 0);
  const std::string b1 = larder::checkpoint(b, "b 0").id;
  write_round(a.root<data_root>("data"), 0, 1);
  const std::string a2 = larder::checkpoint(a, "a 1").id;
  larder::version_store s;
  ASSERT_TRUE(larder::version_store::open(store, &s).ok());
  std::string id;
  ASSERT_TRUE(s.resolve("heads/a", &id).ok());
  EXPECT_EQ(id, a2);
  ASSERT_TRUE(s.resolve("heads/b", &id).ok());
  EXPECT_EQ(id, b1);
  std::vector<larder::version_info> log;
  ASSERT_TRUE(s.log(true, &log).ok());
  for (const auto& v : log) {
    if (v.id == a2) {
      EXPECT_EQ(v.parent, a1);
    }
  }
}

}  // namespace
