// `larder clone`: the command-line front end of larder::clone_version
// (include/larder/versions.hpp, docs/tools/larder.md).
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

class clone_command {
 public:
  // Adds the subcommand "clone" to `app`.
  explicit clone_command(CLI::App& app);
  bool chosen() const { return static_cast<bool>(*command_); }
  // Exit status: 0 done, 1 a damaged store, 2 could not run.
  int run();

 private:
  CLI::App* command_;
  std::string source_, version_, out_;
  std::uint64_t reserve_ = 0;
  bool json_ = false;
};
