// Storage for file ranges before they are mapped (port/os.hpp): what a
// mapping that nothing else guards from SIGBUS relies on. The fallback for
// file systems without fallocate (zeros written) cannot be reached here:
// every file system of the test machines has fallocate.
#include "port/os.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace larder::port {
namespace {

constexpr std::uint64_t kPage = 4096;

struct temp_file {
  temp_file() {
    std::string pattern = (std::filesystem::temp_directory_path() / "larder-storage-XXXXXX").string();
    fd = ::mkstemp(pattern.data());
    path = pattern;
  }
  ~temp_file() {
    ::close(fd);
    ::unlink(path.c_str());
  }
  std::uint64_t allocated_bytes() const {
    struct stat st;
    return ::fstat(fd, &st) == 0 ? static_cast<std::uint64_t>(st.st_blocks) * 512 : 0;
  }
  int fd = -1;
  std::string path;
};

// The whole pages a range touches get storage, beyond the end of the file
// too, and read as zero; what lies outside them stays a hole.
TEST(FileStorage, AllocateGivesEveryPageOfTheRangeStorage) {
  temp_file f;
  ASSERT_GE(f.fd, 0);
  ASSERT_EQ(grow_file(f.fd, 64 * kPage), 0);
  ASSERT_EQ(f.allocated_bytes(), 0u);
  // Pages 8..23 (the range starts and ends inside a page), then 64..79 past the end.
  ASSERT_EQ(allocate_file_range(f.fd, 8 * kPage + 100, 15 * kPage), 0);
  EXPECT_GE(f.allocated_bytes(), 16 * kPage);
  EXPECT_LT(f.allocated_bytes(), 32 * kPage);
  ASSERT_EQ(allocate_file_range(f.fd, 64 * kPage, 16 * kPage), 0);
  EXPECT_GE(f.allocated_bytes(), 32 * kPage);
  std::uint64_t size = 0;
  ASSERT_EQ(file_size(f.fd, &size), 0);
  EXPECT_EQ(size, 80 * kPage);
  std::vector<char> page(kPage, 'x');
  for (std::uint64_t p : {8u, 23u, 64u, 79u}) {
    ASSERT_EQ(::pread(f.fd, page.data(), kPage, static_cast<off_t>(p * kPage)), static_cast<ssize_t>(kPage));
    EXPECT_EQ(page, std::vector<char>(kPage, 0)) << "page " << p;
  }
  bool data = true;
  ASSERT_EQ(file_has_data(f.fd, 0, 8 * kPage, &data), 0);
  EXPECT_FALSE(data);
  ASSERT_EQ(file_has_data(f.fd, 24 * kPage, 40 * kPage, &data), 0);
  EXPECT_FALSE(data);
}

// A descriptor that is no file is an error, not a silent success.
TEST(FileStorage, AllocateOnABadDescriptorFails) {
  EXPECT_NE(allocate_file_range(-1, 0, kPage), 0);
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  EXPECT_NE(allocate_file_range(pipe_fds[1], 0, kPage), 0);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
}

}  // namespace
}  // namespace larder::port
