// larder::crashtest: crash-recovery testing of programs that keep their
// data in a larder heap (docs/crashtest.md; `larder crashtest` runs it).
//
// The driver (run) starts the program under test again and again. Each
// time, the program's run phase is stopped at one persistence point, with
// everything not yet made durable thrown away (as a power failure would),
// or is killed with SIGKILL at a random instant. Then the program's check
// phase opens the heap, which recovers it, and checks its data against
// what the program had acknowledged. The driver reports the first crash
// point that the check rejects, with a command line that replays it.
//
// The program under test, in its two phases:
//
//   using namespace larder;
//   if (crashtest::current_phase() == crashtest::phase::run) {
//     heap h(heap_options{.name = crashtest::heap_path()});
//     for (std::uint64_t i = 0; i < n; ++i) {
//       { transaction tx(h); ... }        // commits at the end of scope
//       crashtest::acknowledge(i + 1);     // i + 1 operations are durable
//     }
//   } else {  // phase::check
//     // open, then require every acknowledged operation to be there:
//     // crashtest::acknowledged() <= done <= crashtest::acknowledged() + 1
//   }
//
// The check phase exits 0 when the data is right and nonzero (with a
// message) when it is not.
#pragma once

#include <larder/export.hpp>
#include <larder/status.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace larder::crashtest {

// ---- the program's side --------------------------------------------------
// The driver tells the program what to do through these environment
// variables (read at each call):
//   LARDER_CRASHTEST_PHASE  "run" or "check"
//   LARDER_CRASHTEST_HEAP   the path of the heap file to use
//   LARDER_CRASHTEST_ACK    the file acknowledge() writes and acknowledged() reads
// and tells liblarder where to crash through LARDER_CRASH_AT, LARDER_CRASH_SEED
// and LARDER_CRASH_REPORT (docs/crashtest.md).

enum class phase { none, run, check };

// phase::none when the program does not run under the driver (or the
// variable holds anything else).
LARDER_EXPORT phase current_phase() noexcept;
// The heap file the driver chose; empty when not under the driver.
LARDER_EXPORT std::string heap_path();
// Records that the first `operations_done` operations are durable (call it
// after the transaction that made them durable has committed). The record
// survives the process dying at any instant after this returns; it is not
// meant to survive the machine stopping, which the driver only simulates.
// Does nothing when not under the driver. Thread-safe; the last call wins.
LARDER_EXPORT void acknowledge(std::uint64_t operations_done) noexcept;
// In the check phase: the last number the run phase acknowledged, 0 if it
// acknowledged nothing (or when not under the driver).
LARDER_EXPORT std::uint64_t acknowledged() noexcept;

// ---- the driver ----------------------------------------------------------

enum class mode {
  every_point,    // crash at each persistence point 1..P in turn
  random_points,  // crash at `samples` seeded random points (distinct)
  kill,           // SIGKILL at `samples` seeded random instants
};

struct options {
  std::vector<std::string> command;  // the program and its arguments
  // The heap file the program is told to use; removed before every run
  // phase. Empty: "heap" in work_dir.
  std::string heap_path;
  mode how = mode::every_point;
  std::uint64_t samples = 100;  // random_points and kill
  std::uint64_t seed = 1;       // which random points / instants / torn lines
  // Torn persists: at the crash point a seeded random subset of the
  // persist's 64-byte lines lands, instead of none.
  bool torn = true;
  // Nonzero: crash at this one point only (replays a reported failure).
  std::uint64_t only_point = 0;
  // Where the heap, the acknowledgement and report files and the
  // programs' output go. Empty: a new directory under $TMPDIR, or when
  // that is unset under /dev/shm (a RAM file system, where the check
  // phase's msyncs cost nothing) or else /tmp; removed at the end unless a
  // round failed.
  std::string work_dir;
  double timeout_s = 60;       // per program run; a run past it fails
  bool keep_going = false;     // go on after the first failing point
  // After each check phase that passed, when the heap file exists, check
  // it with larder::check_heap() (what `larder check` does), in this
  // process: it must be clean.
  bool check_heap = true;
  // Receives a line (no newline) for each stage, failure and, at most
  // about twice a second, progress. May be empty.
  std::function<void(const std::string&)> progress;
};

struct outcome {
  std::uint64_t points = 0;    // persistence points of an uncrashed run
  std::uint64_t runs = 0;      // crash-and-check rounds done
  std::uint64_t failures = 0;  // rounds whose check (or run) failed
  // The first failing point (in kill mode, the round's number from 1); 0
  // when none failed or the uncrashed run itself failed.
  std::uint64_t first_failing_point = 0;
  // Rounds in which the program finished before its crash point or kill
  // instant (the point count varies between runs, or the kill came late).
  std::uint64_t ended_early = 0;
  double uncrashed_seconds = 0;  // the uncrashed run phase (kill mode: the shorter of two)
  std::string replay_command;    // replays the first failure; empty if none
  std::string failure_output;    // what went wrong and the failing phase's output
  std::string work_dir;          // where the files are (kept after a failure)
};

// Runs the crash test. First an uncrashed run and check (counting the
// persistence points), then the rounds that `how` chooses. Returns ok when
// the test ran, whether or not rounds failed (see `out->failures`), and an
// error when it could not: invalid_argument (no command, a point past the
// count), not_found (the program cannot be started), or
// the errno of making the work directory or spawning a process. The heap
// path must be a file the caller may delete.
LARDER_EXPORT status run(const options& options, outcome* out);

// The `larder crashtest` command line that reproduces a round of `options`
// crashing at `point` (shell-quoted).
LARDER_EXPORT std::string replay_command(const options& options, std::uint64_t point);

}  // namespace larder::crashtest
