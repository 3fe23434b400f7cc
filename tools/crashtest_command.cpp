// `larder crashtest [--heap PATH] [--every | --random N | --kill N] [--seed S]
//  [--point N] [--no-tear] [--timeout S] [--keep-going] -- PROGRAM ARGS...`:
// crashes PROGRAM at its persistence points (or kills it) and runs its check
// phase after each crash; see docs/tools/larder.md and docs/crashtest.md.
#include "crashtest_command.hpp"

#include <chrono>
#include <cstdio>

crashtest_command::crashtest_command(CLI::App& app) {
  command_ = app.add_subcommand("crashtest", "crash a program at its persistence points and check its recovery");
  command_->add_option("--heap", options_.heap_path, "the heap file the program uses (default: in the work directory)");
  auto* every = command_->add_flag("--every", every_, "crash at every persistence point (the default)");
  auto* random = command_->add_option("--random", random_, "crash at N seeded random persistence points")
                     ->check(CLI::PositiveNumber);
  auto* kill = command_->add_option("--kill", kill_, "SIGKILL the run phase at N seeded random instants")
                   ->check(CLI::PositiveNumber);
  every->excludes(random)->excludes(kill);
  random->excludes(kill);
  command_->add_option("--seed", options_.seed, "seed of the random points, instants and torn lines (default 1)");
  command_->add_option("--point", options_.only_point, "replay only this point (with --kill: this round)")
      ->check(CLI::PositiveNumber);
  command_->add_flag("--no-tear", no_tear_, "land none of the crashing persist's lines, rather than a random subset");
  command_->add_option("--timeout", options_.timeout_s, "seconds a program run may take (default 60)")
      ->check(CLI::Range(0.001, 7 * 86400.0))
      ->check(CLI::PositiveNumber);
  command_->add_flag("--keep-going", options_.keep_going, "go on after the first failing point");
  command_->add_option("--work-dir", options_.work_dir,
                       "where the heap, logs and acknowledgements go (default: a new directory under $TMPDIR)");
  command_->add_flag("--no-heap-check", no_heap_check_, "do not run `larder check` after each check phase");
  command_->add_flag("-q,--quiet", quiet_, "print failures and the summary only");
  command_->add_option("program", options_.command, "the program to test and its arguments (after --)")
      ->required();
}

int crashtest_command::run() {
  namespace ct = larder::crashtest;
  if (random_ != 0) {
    options_.how = ct::mode::random_points;
    options_.samples = random_;
  } else if (kill_ != 0) {
    options_.how = ct::mode::kill;
    options_.samples = kill_;
  }
  options_.torn = !no_tear_;
  options_.check_heap = !no_heap_check_;
  options_.progress = [this](const std::string& line) {
    if (quiet_ && line.rfind("FAIL", 0) != 0) return;
    std::printf("crashtest: %s\n", line.c_str());
    std::fflush(stdout);
  };
  auto start = std::chrono::steady_clock::now();
  ct::outcome out;
  larder::status s = ct::run(options_, &out);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!s.ok()) {
    std::fprintf(stderr, "larder crashtest: %s\n", s.to_string().c_str());
    return 2;
  }
  if (options_.how == ct::mode::kill)
    std::printf("crashtest: run phase %.3f s, %llu rounds, %llu failed", out.uncrashed_seconds,
                static_cast<unsigned long long>(out.runs), static_cast<unsigned long long>(out.failures));
  else
    std::printf("crashtest: %llu persistence points, %llu rounds, %llu failed",
                static_cast<unsigned long long>(out.points), static_cast<unsigned long long>(out.runs),
                static_cast<unsigned long long>(out.failures));
  if (out.ended_early != 0)
    std::printf(", %llu ended before their %s", static_cast<unsigned long long>(out.ended_early),
                options_.how == ct::mode::kill ? "kill instant" : "crash point");
  std::printf(" (%.1f s)\n", seconds);
  if (out.failures == 0) return 0;
  std::printf("\nfirst failure: %s\n", out.failure_output.c_str());
  if (!out.replay_command.empty()) std::printf("replay it with:\n  %s\n", out.replay_command.c_str());
  if (!out.work_dir.empty()) std::printf("files kept in %s\n", out.work_dir.c_str());
  return 1;
}
