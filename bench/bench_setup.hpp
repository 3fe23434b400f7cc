// Helpers shared by the benchmark binaries that keep their files in a
// folder (larder_persist_bench, larder_tx_bench, larder_push_pull_bench,
// larder_remote_checkout_bench): naming and removing those files, a scratch
// folder, reading FLAG=VALUE arguments and --workloads lists, and the file
// system and CPU for the report's context. Kept apart from
// bench_common.hpp because these allocate (std::string), which
// larder_alloc_bench, measuring malloc, must not pull in.
#pragma once

#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
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

// The names of --workloads=a,b,c into `out`.
inline void add_workloads(const std::string& list, std::set<std::string>* out) {
  for (std::size_t at = 0; at <= list.size();) {
    std::size_t end = list.find(',', at);
    if (end == std::string::npos) end = list.size();
    out->insert(list.substr(at, end - at));
    at = end + 1;
  }
}

// The CPU's model name, for the report's context.
inline std::string cpu_model() {
  std::ifstream info("/proc/cpuinfo");
  for (std::string line; std::getline(info, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

// A fresh folder /tmp/STEM-XXXXXX; empty when it cannot be made.
inline std::string make_scratch_dir(const char* stem) {
  std::string pattern = std::string("/tmp/") + stem + "-XXXXXX";
  return ::mkdtemp(pattern.data()) != nullptr ? pattern : std::string();
}

// A 64-bit mixer (MurmurHash3's finaliser): page contents from a number.
inline std::uint64_t mix64(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return x;
}

}  // namespace larder_bench
