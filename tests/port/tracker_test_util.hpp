// What the tracker tests share: the backends and their names.
#pragma once

#include "port/write_tracker.hpp"

#include <cstddef>

namespace larder_test {

inline constexpr std::size_t kPage = 4096;
inline constexpr larder::port::tracker_kind kKinds[] = {
    larder::port::tracker_kind::uffd_async, larder::port::tracker_kind::mprotect, larder::port::tracker_kind::pkey};

// Names usable in test names (tracker_name has a dash).
inline const char* label(larder::port::tracker_kind kind) {
  switch (kind) {
    case larder::port::tracker_kind::uffd_async: return "uffd_async";
    case larder::port::tracker_kind::mprotect: return "mprotect";
    case larder::port::tracker_kind::pkey: return "pkey";
  }
  return "unknown";
}

// Page-precise backends report exactly the pages written; pkey reports
// whole groups.
inline bool precise(larder::port::tracker_kind kind) { return kind != larder::port::tracker_kind::pkey; }

}  // namespace larder_test
