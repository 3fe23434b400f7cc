// CHECK for the standalone programs of tests/malloc (they run under a
// preloaded malloc and link no test framework): a failed condition is
// printed and counted in g_failures, which main() turns into the exit code.
#pragma once

#include <cstdio>

inline int g_failures = 0;

#define CHECK(cond)                                                          \
  do {                                                                       \
    if (!(cond)) {                                                           \
      std::fprintf(stderr, "FAILED %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      ++g_failures;                                                          \
    }                                                                        \
  } while (0)
