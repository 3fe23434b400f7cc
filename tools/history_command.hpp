// `larder diff`, `tag` and `branch`: a store's history compared and named
// (larder/versions.hpp, docs/tools/larder.md).
#pragma once

#include <CLI/CLI.hpp>

#include <string>

class history_command {
 public:
  // Adds the subcommands "diff", "tag" and "branch".
  explicit history_command(CLI::App& app);
  bool chosen() const;
  // Exit status: 0 ok, 2 could not run.
  int run();

 private:
  int diff();
  int refs(const std::string& kind);
  std::string store() const;

  CLI::App* diff_;
  CLI::App* tag_;
  CLI::App* branch_;
  std::string heap_, store_, from_, to_, name_, version_;
  bool shm_ = false;
  bool json_ = false;
  bool remove_ = false;
};
