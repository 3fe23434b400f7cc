// Linux implementation of port/process_maps.hpp: parses /proc/self/maps.
#include "port/process_maps.hpp"

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace larder::port {

int read_process_mappings(std::vector<process_mapping>* out) {
  out->clear();
  std::FILE* maps = std::fopen("/proc/self/maps", "re");
  if (maps == nullptr) return errno;
  // "start-end perms offset dev inode   name"; a name may hold spaces.
  char line[4096 + 256];
  while (std::fgets(line, sizeof(line), maps) != nullptr) {
    std::uintptr_t start = 0, end = 0;
    char perms[8] = {};
    int name_at = 0;
    if (std::sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s %*s %*s %*s %n", &start, &end, perms, &name_at) < 3) continue;
    process_mapping m;
    m.start = start;
    m.end = end;
    m.writable = perms[1] == 'w';
    m.executable = perms[2] == 'x';
    if (name_at > 0) {
      m.name = line + name_at;
      while (!m.name.empty() && (m.name.back() == '\n' || m.name.back() == ' ')) m.name.pop_back();
    }
    out->push_back(std::move(m));
  }
  int err = std::ferror(maps) ? EIO : 0;
  std::fclose(maps);
  return err;
}

}  // namespace larder::port
