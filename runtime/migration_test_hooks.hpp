// Test-only: kill points of tier migration, for the sweep that stops a
// migrating process at each of them in turn (tests/runtime/
// migration_sweep_test.cpp). The process ends with _exit at the chosen
// point, as a SIGKILL there would end it: nothing after it runs.
#pragma once

namespace larder::migration_test {

// The process ends at the `steps`-th kill point from now (1: the next);
// 0: never.
void stop_after(int steps) noexcept;
// The exit status of a process ended at a kill point.
inline constexpr int kStoppedStatus = 86;

}  // namespace larder::migration_test

namespace larder {
// Counts a kill point down (runtime/migration*.cpp call it at each step
// whose order matters to a crash).
void migration_kill_point() noexcept;
}  // namespace larder
