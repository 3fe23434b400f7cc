// Linux implementation of port/directory.hpp.
#include "port/directory.hpp"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <system_error>

namespace larder::port {

int make_directory(const char* path, bool* created) {
  if (created != nullptr) *created = false;
  if (::mkdir(path, 0700) == 0) {
    if (created != nullptr) *created = true;
    return 0;
  }
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

int remove_tree(const char* path) {
  std::error_code error;
  std::filesystem::remove_all(path, error);
  return error.value();
}

int rename_file(const char* from, const char* to, bool replace) {
  if (replace) return ::rename(from, to) == 0 ? 0 : errno;
  if (::renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0) return 0;
  if (errno != EINVAL && errno != ENOSYS) return errno;
  // File systems without RENAME_NOREPLACE: link fails on an existing name.
  if (::link(from, to) != 0) return errno;
  ::unlink(from);
  return 0;
}

int set_file_size(int fd, std::uint64_t size) {
  return ::ftruncate(fd, static_cast<off_t>(size)) == 0 ? 0 : errno;
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
