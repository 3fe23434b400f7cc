// `larder salvage`: the command-line front end of larder::salvage_heap
// (include/larder/check.hpp, docs/tools/larder.md).
#pragma once

#include <CLI/CLI.hpp>

#include <string>

class salvage_command {
 public:
  // Adds the subcommand "salvage" to `app`.
  explicit salvage_command(CLI::App& app);
  bool chosen() const { return static_cast<bool>(*command_); }
  // Exit status: 0 when every root was salvaged, 1 when one was lost (the
  // heap is damaged), 2 when it could not run.
  int run();

 private:
  CLI::App* command_;
  std::string heap_;
  std::string out_;
  bool shm_ = false;
  bool json_ = false;
};
