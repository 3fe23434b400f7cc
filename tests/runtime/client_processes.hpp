// The client processes a multi-process test forks (client_processes): the
// waits and kills every such test makes, and a reaper that kills and reaps
// whatever clients are left when the test ends, early or not.
#pragma once

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <vector>

namespace larder_test {

// Entries are pids, or -1 once a client was reaped: no call here signals
// or waits for a pid <= 0, which would reach a whole process group or any
// child.
class client_processes {
 public:
  client_processes() = default;
  ~client_processes() { kill_all(); }
  client_processes(const client_processes&) = delete;
  client_processes& operator=(const client_processes&) = delete;

  // `pid` is what fork returned in the parent; a failed fork fails the test.
  void add(pid_t pid) {
    EXPECT_GT(pid, 0) << "fork: " << std::strerror(errno);
    pids_.push_back(pid);
  }
  pid_t& operator[](std::size_t i) { return pids_[i]; }
  std::size_t size() const { return pids_.size(); }

  // Waits for every client not yet reaped; each must exit with status 0.
  void expect_clean_exits() {
    for (pid_t& pid : pids_) {
      if (pid <= 0) continue;
      int status = 0;
      ASSERT_EQ(waitpid(pid, &status, 0), pid);
      pid = -1;
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "client exit status " << status;
    }
  }

  // SIGKILLs client i and reaps it: it must die of the signal, not have
  // ended by itself.
  void kill_one(std::size_t i) {
    pid_t pid = pids_[i];
    ASSERT_GT(pid, 0);
    kill(pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    pids_[i] = -1;
    ASSERT_TRUE(WIFSIGNALED(status)) << "a client stopped by itself, status " << status;
  }

  // SIGKILLs and reaps every client not yet reaped.
  void kill_all() noexcept {
    for (pid_t& pid : pids_) {
      if (pid > 0 && kill(pid, SIGKILL) == 0) waitpid(pid, nullptr, 0);
      pid = -1;
    }
  }

 private:
  std::vector<pid_t> pids_;
};

}  // namespace larder_test
