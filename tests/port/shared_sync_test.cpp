// Locks and waits between processes over shared memory: a robust lock
// whose holder is killed is handed to the next taker with the death
// reported, futex wakes cross processes, and a process identity outlives
// neither its process nor a reuse of its id.
#include "port/shared_sync.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace {

using namespace larder::port;

struct shared_area {
  robust_lock lock;
  std::atomic<std::uint32_t> word{0};
  std::atomic<std::uint32_t> child_ready{0};
};

shared_area* map_shared() {
  void* p = mmap(nullptr, sizeof(shared_area), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  EXPECT_NE(p, MAP_FAILED);
  return new (p) shared_area;
}

TEST(SharedSync, KilledHolderIsReportedToTheNextTaker) {
  shared_area* area = map_shared();
  ASSERT_EQ(robust_lock_init(&area->lock), 0);
  pid_t child = fork();
  if (child == 0) {
    bool died = false;
    if (robust_lock_acquire(&area->lock, &died) != 0) _exit(1);
    area->child_ready.store(1);
    pause();
    _exit(0);
  }
  while (area->child_ready.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  bool died = false;
  EXPECT_EQ(robust_lock_try_acquire(&area->lock, &died), EBUSY);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  ASSERT_EQ(robust_lock_acquire(&area->lock, &died), 0);
  EXPECT_TRUE(died);
  robust_lock_mark_consistent(&area->lock);
  robust_lock_release(&area->lock);
  ASSERT_EQ(robust_lock_acquire(&area->lock, &died), 0);
  EXPECT_FALSE(died);
  robust_lock_release(&area->lock);
  munmap(area, sizeof(shared_area));
}

TEST(SharedSync, FutexWakeReachesAnotherProcess) {
  shared_area* area = map_shared();
  pid_t child = fork();
  if (child == 0) {
    area->child_ready.store(1);
    while (area->word.load() == 0) futex_wait(&area->word, 0, -1);
    _exit(area->word.load() == 7 ? 0 : 1);
  }
  while (area->child_ready.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  area->word.store(7);
  futex_wake_all(&area->word);
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(futex_wait(&area->word, 7, 1'000'000), ETIMEDOUT);
  EXPECT_EQ(futex_wait(&area->word, 0, 1'000'000), 0);  // differs: returns at once
  munmap(area, sizeof(shared_area));
}

TEST(SharedSync, IdentityNamesOneLiveProcess) {
  process_identity me = self_identity();
  EXPECT_GT(me.start_ticks, 0u);
  EXPECT_TRUE(identity_alive(me));
  process_identity wrong_start = me;
  wrong_start.start_ticks += 1;  // the same id, another process
  EXPECT_FALSE(identity_alive(wrong_start));
  pid_t child = fork();
  if (child == 0) {
    pause();
    _exit(0);
  }
  process_identity other = identity_of(child);
  EXPECT_TRUE(identity_alive(other));
  kill(child, SIGKILL);
  // A zombie, not yet reaped, no longer runs.
  for (int i = 0; i < 1000 && identity_alive(other); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_FALSE(identity_alive(other));
  waitpid(child, nullptr, 0);
  EXPECT_FALSE(identity_alive(other));
  EXPECT_EQ(identity_of(child).start_ticks, 0u);
}

}  // namespace
