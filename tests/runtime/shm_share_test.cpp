// Several processes on one shared-memory heap: a reader in a fresh process
// sees the writer's objects at the same addresses; a writer in another
// process changes the heap after this one closed it; a read-only view
// follows a writer's changes while both are open.
//
// A forked child still has the parent's mapping at the heap's address, so
// the other processes here are fresh ones: this test binary started again
// with a filter that selects one of the *Child tests below and environment
// variables that tell it what to do. Run directly, those tests do nothing.
#include "runtime/runtime_test_util.hpp"

#include <larder/larder.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

extern char** environ;

namespace {

using larder::errc;
using larder::open_mode;
using larder_test::describe;

constexpr const char* kNameVar = "LARDER_RT_SHARE_NAME";      // the shm object
constexpr const char* kExpectVar = "LARDER_RT_SHARE_EXPECT";  // "base head count node,node,..."
constexpr const char* kResultVar = "LARDER_RT_SHARE_RESULT";  // file the child writes "ok" to
constexpr const char* kAppendVar = "LARDER_RT_SHARE_APPEND";  // nodes the writer child adds
constexpr const char* kPipesVar = "LARDER_RT_SHARE_PIPES";    // "to_parent from_parent" fds

struct shared_node {
  shared_node* next;
  std::uint64_t value;
  char text[40];
};

struct shared_head {
  shared_node* first;
  shared_node* last;
  std::uint64_t count;
  char banner[64];
};

std::uint64_t value_of(std::uint64_t i) { return i * 2654435761u + 17; }

void append_nodes(larder::heap& h, shared_head* head, std::uint64_t how_many) {
  for (std::uint64_t k = 0; k < how_many; ++k) {
    auto* n = static_cast<shared_node*>(h.allocate(sizeof(shared_node)));
    ASSERT_NE(n, nullptr);
    std::uint64_t i = head->count;
    n->next = nullptr;
    n->value = value_of(i);
    std::snprintf(n->text, sizeof(n->text), "node %" PRIu64, i);
    if (head->last != nullptr) {
      head->last->next = n;
    } else {
      head->first = n;
    }
    head->last = n;
    ++head->count;
  }
}

// Walks the list and checks every node; returns the node addresses.
std::vector<std::uintptr_t> walk(const larder::heap& h, const shared_head* head) {
  std::vector<std::uintptr_t> nodes;
  std::uint64_t i = 0;
  for (const shared_node* n = head->first; n != nullptr; n = n->next, ++i) {
    EXPECT_TRUE(h.contains(n)) << i;
    if (!h.contains(n) || i > head->count) break;
    EXPECT_EQ(n->value, value_of(i)) << i;
    char text[40];
    std::snprintf(text, sizeof(text), "node %" PRIu64, i);
    EXPECT_STREQ(n->text, text);
    nodes.push_back(reinterpret_cast<std::uintptr_t>(n));
  }
  EXPECT_EQ(nodes.size(), head->count);
  return nodes;
}

std::string hex(std::uintptr_t v) {
  char text[32];
  std::snprintf(text, sizeof(text), "%" PRIxPTR, v);
  return text;
}

std::string describe_expectation(const larder::heap& h, const shared_head* head,
                                 const std::vector<std::uintptr_t>& nodes) {
  std::string text = hex(reinterpret_cast<std::uintptr_t>(h.base()));
  text += ' ';
  text += hex(reinterpret_cast<std::uintptr_t>(head));
  text += ' ';
  text += std::to_string(nodes.size());
  text += ' ';
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    if (i > 0) text += ',';
    text += hex(nodes[i]);
  }
  return text;
}

// Starts this test binary again, running only `test`, with `vars` added to
// the environment.
pid_t start_self(const std::string& test, const std::vector<std::pair<std::string, std::string>>& vars) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    bool ours = false;
    for (const auto& v : vars) ours |= std::strncmp(*e, (v.first + "=").c_str(), v.first.size() + 1) == 0;
    if (!ours) env.emplace_back(*e);
  }
  for (const auto& v : vars) env.push_back(v.first + "=" + v.second);
  std::vector<char*> envp;
  for (auto& s : env) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string exe = "/proc/self/exe";
  std::string filter = "--gtest_filter=RuntimeShmShare." + test;
  std::vector<char*> argv{exe.data(), filter.data(), nullptr};
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execve(exe.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
  return pid;
}

int wait_for(pid_t pid) {
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
  return -1;
}

// Runs `test` in a fresh process and expects it to pass and to have
// written "ok" (so it really ran, rather than matching no test).
void run_child(const larder_test::temp_dir& dir, const std::string& test,
               std::vector<std::pair<std::string, std::string>> vars) {
  std::string result = dir.file(test + ".result");
  ::unlink(result.c_str());
  vars.emplace_back(kResultVar, result);
  pid_t pid = start_self(test, vars);
  ASSERT_GT(pid, 0);
  EXPECT_EQ(wait_for(pid), 0) << test << " failed in the child process";
  EXPECT_EQ(larder_test::read_all(result), "ok") << test << " did not run to its end";
}

void report_ok() {
  const char* result = std::getenv(kResultVar);
  if (result != nullptr && !::testing::Test::HasFailure()) larder_test::write_all(result, "ok", 2);
}

// One byte over a pipe, waiting at most 30 s.
bool send_byte(int fd, char c) { return ::write(fd, &c, 1) == 1; }
bool receive_byte(int fd, char expected) {
  struct pollfd p = {fd, POLLIN, 0};
  if (::poll(&p, 1, 30000) != 1) return false;
  char c = 0;
  return ::read(fd, &c, 1) == 1 && c == expected;
}

// Every test here, the child entry points included, uses this fixture.
class RuntimeShmShare : public ::testing::Test {
 protected:
  larder_test::temp_dir dir_;
  larder_test::shm_guard shm_{larder_test::unique_shm_name("share")};
};

// ---- the other processes ----------------------------------------------------

// Opens the heap read-only and checks that it holds exactly the expected
// list at the expected addresses.
TEST_F(RuntimeShmShare, ReaderChild) {
  const char* name = std::getenv(kNameVar);
  const char* expect = std::getenv(kExpectVar);
  if (name == nullptr || expect == nullptr) return;  // not started by the tests below

  std::istringstream in(expect);
  std::string base_text, head_text, count_text, nodes_text;
  in >> base_text >> head_text >> count_text >> nodes_text;
  std::uintptr_t base = std::stoull(base_text, nullptr, 16);
  std::uintptr_t head_address = std::stoull(head_text, nullptr, 16);
  std::size_t count = std::stoull(count_text);
  std::vector<std::uintptr_t> nodes;
  std::istringstream list(nodes_text);
  for (std::string item; std::getline(list, item, ',');) nodes.push_back(std::stoull(item, nullptr, 16));
  ASSERT_EQ(nodes.size(), count);

  // The writer still has it open.
  larder::heap h;
  larder::status s = larder::heap::open(larder_test::shm_options(name, open_mode::open), &h);
  EXPECT_TRUE(s.is(errc::heap_busy)) << describe(s);

  larder::heap_options ro = larder_test::shm_options(name, open_mode::open);
  ro.read_only = true;
  s = larder::heap::open(ro, &h);
  ASSERT_TRUE(s.ok()) << describe(s);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(h.base()), base);
  std::size_t size = 0;
  auto* head = static_cast<shared_head*>(h.find_root("head", &size));
  ASSERT_EQ(reinterpret_cast<std::uintptr_t>(head), head_address);
  EXPECT_EQ(size, sizeof(shared_head));
  EXPECT_STREQ(head->banner, "written by the parent");
  std::vector<std::uintptr_t> seen = walk(h, head);
  EXPECT_EQ(seen, nodes) << "the nodes are not at the same addresses";

  errno = 0;
  EXPECT_EQ(h.allocate(16), nullptr);
  EXPECT_EQ(errno, EROFS);
  larder::status s2 = h.set_root("reader", head, 8);
  EXPECT_TRUE(s2.is(errc::read_only)) << describe(s2);
  EXPECT_TRUE(h.close().ok());
  report_ok();
}

// Opens the heap for writing, checks the list and appends to it.
TEST_F(RuntimeShmShare, WriterChild) {
  const char* name = std::getenv(kNameVar);
  const char* append = std::getenv(kAppendVar);
  if (name == nullptr || append == nullptr) return;  // not started by the tests below

  larder::heap h;
  larder::status s = larder::heap::open(larder_test::shm_options(name, open_mode::open), &h);
  ASSERT_TRUE(s.ok()) << describe(s);
  auto* head = h.root<shared_head>("head");
  walk(h, head);
  append_nodes(h, head, std::stoull(append));
  std::strcpy(head->banner, "changed by the writer child");
  walk(h, head);
  EXPECT_TRUE(h.close().ok());
  report_ok();
}

// Holds the heap open for writing and changes it in steps, waiting for the
// parent (a read-only viewer) between them.
TEST_F(RuntimeShmShare, SteppingWriterChild) {
  const char* name = std::getenv(kNameVar);
  const char* pipes = std::getenv(kPipesVar);
  if (name == nullptr || pipes == nullptr) return;  // not started by the tests below
  int to_parent = -1, from_parent = -1;
  ASSERT_EQ(std::sscanf(pipes, "%d %d", &to_parent, &from_parent), 2);

  larder::heap h;
  larder::status s = larder::heap::open(larder_test::shm_options(name, open_mode::open), &h);
  ASSERT_TRUE(s.ok()) << describe(s);
  auto* head = h.root<shared_head>("head");
  append_nodes(h, head, 10);
  ASSERT_TRUE(send_byte(to_parent, '1'));  // the parent opens and looks
  ASSERT_TRUE(receive_byte(from_parent, 'a'));

  // Grow the heap while the viewer has it mapped, and publish a new root.
  auto* late = static_cast<std::uint64_t*>(h.allocate(std::size_t{12} << 20));
  ASSERT_NE(late, nullptr);
  for (std::size_t i = 0; i < (std::size_t{12} << 20) / 8; i += 512) late[i] = i;
  ASSERT_TRUE(h.set_root("late", late, std::size_t{12} << 20).ok());
  append_nodes(h, head, 90);
  std::strcpy(head->banner, "second step");
  ASSERT_TRUE(send_byte(to_parent, '2'));
  ASSERT_TRUE(receive_byte(from_parent, 'b'));
  EXPECT_TRUE(h.close().ok());
  report_ok();
}

// ---- the tests --------------------------------------------------------------

TEST_F(RuntimeShmShare, ReaderInAnotherProcessSeesTheSameAddresses) {
  larder::heap h;
  larder::status s = larder::heap::open(larder_test::shm_options(shm_.name(), open_mode::create), &h);
  ASSERT_TRUE(s.ok()) << describe(s);
  auto* head = h.root<shared_head>("head");
  std::strcpy(head->banner, "written by the parent");
  append_nodes(h, head, 200);
  std::vector<std::uintptr_t> nodes = walk(h, head);

  run_child(dir_, "ReaderChild", {{kNameVar, shm_.name()}, {kExpectVar, describe_expectation(h, head, nodes)}});

  // Changes made while the heap stays open are seen by the next reader.
  append_nodes(h, head, 300);
  nodes = walk(h, head);
  run_child(dir_, "ReaderChild", {{kNameVar, shm_.name()}, {kExpectVar, describe_expectation(h, head, nodes)}});

  // Readers leave the heap as it was.
  EXPECT_EQ(walk(h, head), nodes);
  EXPECT_STREQ(head->banner, "written by the parent");
  EXPECT_TRUE(h.close().ok());
}

TEST_F(RuntimeShmShare, WriterInAnotherProcessAfterThisOneCloses) {
  void* head_address = nullptr;
  {
    larder::heap h(larder_test::shm_options(shm_.name(), open_mode::create));
    auto* head = h.root<shared_head>("head");
    append_nodes(h, head, 50);
    head_address = head;
    ASSERT_TRUE(h.close().ok());
  }
  // A fresh process, then a forked one: both open it for writing in turn.
  run_child(dir_, "WriterChild", {{kNameVar, shm_.name()}, {kAppendVar, "150"}});
  int code = larder_test::run_in_child([&] {
    larder::heap h(larder_test::shm_options(shm_.name(), open_mode::open));
    auto* head = h.root<shared_head>("head");
    EXPECT_EQ(head->count, 200u);
    append_nodes(h, head, 100);
    walk(h, head);
  });
  EXPECT_EQ(code, 0);

  larder::heap h(larder_test::shm_options(shm_.name(), open_mode::open));
  auto* head = h.root<shared_head>("head");
  EXPECT_EQ(static_cast<void*>(head), head_address);
  EXPECT_STREQ(head->banner, "changed by the writer child");
  EXPECT_EQ(head->count, 300u);
  EXPECT_EQ(walk(h, head).size(), 300u);
  append_nodes(h, head, 10);  // and this process can still allocate in it
  EXPECT_EQ(walk(h, head).size(), 310u);
}

TEST_F(RuntimeShmShare, ReadOnlyViewFollowsAWriterInAnotherProcess) {
  {
    larder::heap h(larder_test::shm_options(shm_.name(), open_mode::create));
    (void)h.root<shared_head>("head");
  }
  int to_parent[2], from_parent[2];
  ASSERT_EQ(::pipe(to_parent), 0);
  ASSERT_EQ(::pipe(from_parent), 0);
  std::string result = dir_.file("stepping.result");
  pid_t pid = start_self("SteppingWriterChild",
                         {{kNameVar, shm_.name()},
                          {kPipesVar, std::to_string(to_parent[1]) + " " + std::to_string(from_parent[0])},
                          {kResultVar, result}});
  ::close(to_parent[1]);
  ::close(from_parent[0]);
  ASSERT_GT(pid, 0);

  bool stepped = receive_byte(to_parent[0], '1');
  EXPECT_TRUE(stepped) << "the writer did not reach its first step";
  if (stepped) {
    larder::heap_options ro = larder_test::shm_options(shm_.name(), open_mode::open);
    ro.read_only = true;
    larder::heap view;
    larder::status s = larder::heap::open(ro, &view);
    ASSERT_TRUE(s.ok()) << describe(s);
    auto* head = static_cast<shared_head*>(view.find_root("head"));
    ASSERT_NE(head, nullptr);
    EXPECT_EQ(walk(view, head).size(), 10u);
    EXPECT_EQ(view.find_root("late"), nullptr);
    EXPECT_TRUE(send_byte(from_parent[1], 'a'));

    EXPECT_TRUE(receive_byte(to_parent[0], '2')) << "the writer did not reach its second step";
    // The same mapping now shows the writer's new root, in memory the heap
    // grew into after this view was opened, and the longer list.
    std::size_t size = 0;
    auto* late = static_cast<std::uint64_t*>(view.find_root("late", &size));
    ASSERT_NE(late, nullptr);
    EXPECT_TRUE(view.contains(late));
    EXPECT_EQ(size, std::size_t{12} << 20);
    std::size_t bad = 0;
    for (std::size_t i = 0; i < size / 8; i += 512) bad += late[i] != i;
    EXPECT_EQ(bad, 0u);
    EXPECT_EQ(walk(view, head).size(), 100u);
    EXPECT_STREQ(head->banner, "second step");
    EXPECT_TRUE(view.close().ok());
  }
  send_byte(from_parent[1], 'b');
  ::close(to_parent[0]);
  ::close(from_parent[1]);
  EXPECT_EQ(wait_for(pid), 0);
  EXPECT_EQ(larder_test::read_all(result), "ok");
}

}  // namespace
