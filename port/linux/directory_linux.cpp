// Linux implementation of port/directory.hpp.
#include "port/directory.hpp"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace larder::port {

int make_directory(const char* path) {
  if (::mkdir(path, 0700) == 0) return 0;
  if (errno != EEXIST) return errno;
  struct stat st;
  if (::stat(path, &st) != 0) return errno;
  return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

int sync_directory(const char* path) {
  int dir = ::open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return errno;
  int err = ::fsync(dir) == 0 ? 0 : errno;
  ::close(dir);
  return err;
}

int replace_durably(const char* from, const char* to, const char* directory) {
  if (::rename(from, to) != 0) return errno;
  return sync_directory(directory);
}

int lock_file(int fd, bool exclusive, bool wait) {
  int operation = (exclusive ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB);
  while (::flock(fd, operation) != 0) {
    if (errno != EINTR) return errno;
  }
  return 0;
}

int unlock_file(int fd) { return ::flock(fd, LOCK_UN) == 0 ? 0 : errno; }

}  // namespace larder::port
