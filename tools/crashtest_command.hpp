// `larder crashtest`: the command-line front end of larder::crashtest::run
// (include/larder/crashtest.hpp, docs/tools/larder.md).
#pragma once

#include <larder/crashtest.hpp>

#include <CLI/CLI.hpp>

#include <cstdint>

class crashtest_command {
 public:
  // Adds the subcommand "crashtest" to `app`.
  explicit crashtest_command(CLI::App& app);
  bool chosen() const { return static_cast<bool>(*command_); }
  // Runs it, checking the heap as `larder check` does after each check
  // phase unless --no-heap-check. Exit status: 0 when every round passed, 1 when one failed, 2 when the
  // test could not run.
  int run();

 private:
  CLI::App* command_;
  larder::crashtest::options options_;
  bool every_ = false;
  std::uint64_t random_ = 0;
  std::uint64_t kill_ = 0;
  bool no_tear_ = false;
  bool no_heap_check_ = false;
  bool quiet_ = false;
};
