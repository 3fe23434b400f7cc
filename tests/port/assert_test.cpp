// Graded assertions (port/assert.hpp): a failed check goes to the handler a
// program installs (larder::set_assertion_handler), each grade is
// evaluated exactly when the build's level includes it, and the default
// handler aborts after naming the place.
#include "port/assert.hpp"

#include <larder/status.hpp>

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>

namespace {

int run_in_child(void (*body)()) {
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    body();
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void exit_with_line(const char*, int line, const char* condition) {
  ::_exit(std::strcmp(condition, "1 + 1 == 3") == 0 && line > 0 ? 42 : 1);
}

TEST(GradedAssertions, AFailureGoesToTheInstalledHandler) {
  EXPECT_EQ(run_in_child([] {
              larder::set_assertion_handler(&exit_with_line);
              larder::port::assertion_failed(__FILE__, __LINE__, "1 + 1 == 3");
            }),
            42);
}

TEST(GradedAssertions, TheDefaultHandlerAborts) {
  EXPECT_EQ(run_in_child([] { larder::port::assertion_failed(__FILE__, __LINE__, "false"); }), 128 + SIGABRT);
  // Installing nullptr restores it.
  EXPECT_EQ(run_in_child([] {
              larder::set_assertion_handler(&exit_with_line);
              larder::set_assertion_handler(nullptr);
              larder::port::assertion_failed(__FILE__, __LINE__, "1 + 1 == 3");
            }),
            128 + SIGABRT);
}

TEST(GradedAssertions, EachGradeIsEvaluatedOnlyAtItsLevel) {
  int evaluated[4] = {};
  auto holds = [&](int grade) {
    ++evaluated[grade];
    return true;
  };
  LARDER_ASSERT(holds(1));
  LARDER_ASSERT_INTERNAL(holds(2));
  LARDER_ASSERT_EXPENSIVE(holds(3));
  for (int grade = 1; grade <= 3; ++grade) EXPECT_EQ(evaluated[grade], LARDER_DEBUG_LEVEL >= grade ? 1 : 0) << grade;
}

}  // namespace
