// Graded assertions (docs/ARCHITECTURE.md, "Assertions"). The level is
// chosen at build time:
//   LARDER_ASSERT            cheap checks; on in builds without NDEBUG
//   LARDER_ASSERT_INTERNAL   checks of internal consistency; on with
//                            -DLARDER_DEBUG_INTERNAL=ON (or FULL)
//   LARDER_ASSERT_EXPENSIVE  full invariant walks (region::is_valid());
//                            on with -DLARDER_DEBUG_FULL=ON
// A check that is off is not evaluated. A failed one calls the handler a
// program installs with larder::set_assertion_handler (include/larder/
// status.hpp), by default one that prints it and aborts.
#pragma once

#include "larder_config.h"

#if LARDER_DEBUG_FULL
#define LARDER_DEBUG_LEVEL 3
#elif LARDER_DEBUG_INTERNAL
#define LARDER_DEBUG_LEVEL 2
#elif !defined(NDEBUG)
#define LARDER_DEBUG_LEVEL 1
#else
#define LARDER_DEBUG_LEVEL 0
#endif

namespace larder::port {

// Calls the installed assertion handler; aborts if it returns.
[[noreturn]] void assertion_failed(const char* file, int line, const char* condition) noexcept;

}  // namespace larder::port

#define LARDER_ASSERT_AT_LEVEL(level, condition)                                                                      \
  ((LARDER_DEBUG_LEVEL >= (level) && !(condition)) ? ::larder::port::assertion_failed(__FILE__, __LINE__, #condition) \
                                                   : (void)0)
#define LARDER_ASSERT(condition) LARDER_ASSERT_AT_LEVEL(1, condition)
#define LARDER_ASSERT_INTERNAL(condition) LARDER_ASSERT_AT_LEVEL(2, condition)
#define LARDER_ASSERT_EXPENSIVE(condition) LARDER_ASSERT_AT_LEVEL(3, condition)
