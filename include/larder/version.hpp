// The version of larder these headers belong to. CMake reads the project's
// version from here, so this is its one source; larder::version() tells the
// version of the library a program actually runs with.
#pragma once

#include <larder/export.hpp>

#define LARDER_VERSION_MAJOR 0
#define LARDER_VERSION_MINOR 2
#define LARDER_VERSION_PATCH 0
#define LARDER_VERSION_STRING "0.2.0"

namespace larder {
// "MAJOR.MINOR.PATCH" of the loaded library.
LARDER_EXPORT const char* version() noexcept;
}  // namespace larder
