// `larder store info|ls|stat|check`: the command-line view of an object
// store (include/larder/store.hpp, docs/store.md, docs/tools/larder.md).
#pragma once

#include <CLI/CLI.hpp>

#include <string>

class store_command {
 public:
  // Adds the subcommand "store" and its four subcommands to `app`.
  explicit store_command(CLI::App& app);
  bool chosen() const { return static_cast<bool>(*command_); }
  // Exit status: 0 done, 1 check found problems (or the store is damaged),
  // 2 could not run.
  int run();

 private:
  CLI::App* command_;
  CLI::App* info_;
  CLI::App* ls_;
  CLI::App* stat_;
  CLI::App* check_;
  std::string heap_;
  bool shm_ = false;
  bool json_ = false;
};
