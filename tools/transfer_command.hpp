// `larder push` and `larder pull`: the command-line front ends of
// larder::push_versions and pull_versions (include/larder/versions.hpp,
// docs/tools/larder.md).
#pragma once

#include <CLI/CLI.hpp>

#include <string>

class transfer_command {
 public:
  // Adds the subcommands "push" and "pull" to `app`.
  explicit transfer_command(CLI::App& app);
  bool chosen() const { return static_cast<bool>(*push_) || static_cast<bool>(*pull_); }
  // Exit status: 0 done, 1 a damaged store, 2 could not run.
  int run();

 private:
  CLI::App* push_;
  CLI::App* pull_;
  std::string local_, remote_, version_;
  bool all_ = false, force_ = false, json_ = false;
};
