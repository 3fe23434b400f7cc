// `larder checkpoint`, `log`, `checkout` and `versions verify|gc|du|delete`: the
// command-line front ends of larder/versions.hpp (docs/tools/larder.md).
#pragma once

#include <CLI/CLI.hpp>
#include <larder/heap.hpp>
#include <larder/status.hpp>

#include <string>
#include <vector>

class versions_command {
 public:
  // Adds the subcommands "checkpoint", "log", "checkout" and "versions".
  explicit versions_command(CLI::App& app);
  bool chosen() const;
  // Exit status: 0 ok, 1 a damaged store (verify found problems), 2 could
  // not run.
  int run();

 private:
  int checkpoint();
  int log();
  int checkout();
  int restore(const larder::status& why);
  // The ids of --pod (ids or names of the open heap's pods) and of the pods
  // holding --root's objects in the version.
  larder::status chosen_pods(larder::heap& h, std::vector<std::uint32_t>* out) const;
  int housekeeping();
  // --store, or the default beside a file heap; "" when there is none.
  std::string store() const;

  CLI::App* checkpoint_;
  CLI::App* log_;
  CLI::App* checkout_;
  CLI::App* versions_;
  std::string heap_, store_, message_, version_, action_, from_;
  bool shm_ = false;
  bool json_ = false;
  bool all_ = false;
  bool force_ = false;
  bool offline_ = false;
  bool lazy_ = false;
  std::vector<std::string> pods_, roots_;
};
