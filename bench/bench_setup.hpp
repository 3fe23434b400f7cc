// Helpers shared by the benchmark binaries that keep their heap files in a
// folder given on the command line (larder_persist_bench, larder_tx_bench):
// naming and removing those files, reading FLAG=VALUE arguments and naming
// the folder's file system for the report's context. Kept apart from
// bench_common.hpp because these allocate (std::string), which
// larder_alloc_bench, measuring malloc, must not pull in.
#pragma once

#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

namespace larder_bench {

// The path of this process's file `stem` in `dir`: DIR/STEM-PID
// (tx_compare.py finds a failed process's leftovers by its id).
inline std::string bench_file(const std::string& dir, const char* stem) {
  return dir + "/" + stem + "-" + std::to_string(static_cast<long>(getpid()));
}

inline void remove_file(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    std::fprintf(stderr, "warning: cannot remove %s: %s\n", path.c_str(), std::strerror(errno));
}

// A short name for the file system holding `dir`, for the report's context.
inline std::string file_system_of(const std::string& dir) {
  struct statfs info;
  if (::statfs(dir.c_str(), &info) != 0) return std::string("unknown (") + std::strerror(errno) + ")";
  switch (static_cast<unsigned long>(info.f_type)) {
    case 0x01021994ul: return "tmpfs";
    case 0xEF53ul: return "ext4";
    case 0x58465342ul: return "xfs";
    case 0x9123683Eul: return "btrfs";
    default: {
      char hex[32];
      std::snprintf(hex, sizeof hex, "0x%lx", static_cast<unsigned long>(info.f_type));
      return hex;
    }
  }
}

// True when `arg` starts with `flag` (such as "--dir="); `value` is then
// what follows it.
inline bool take_value(const char* arg, const char* flag, const char** value) {
  std::size_t len = std::strlen(flag);
  if (std::strncmp(arg, flag, len) != 0) return false;
  *value = arg + len;
  return true;
}

}  // namespace larder_bench
