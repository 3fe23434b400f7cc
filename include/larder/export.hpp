// Symbol visibility for larder's public API.
// The library is built with -fvisibility=hidden; only declarations marked
// LARDER_EXPORT are reachable from outside it.
#pragma once

#if defined(__GNUC__)
#define LARDER_EXPORT __attribute__((visibility("default")))
#else
#define LARDER_EXPORT
#endif
