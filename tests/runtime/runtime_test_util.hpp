// Shared helpers of the runtime tests: temporary directories, unique shm
// names, environment variables set for a scope, running checks in a forked
// child, and reading files back.
#pragma once

#include <gtest/gtest.h>

#include <larder/larder.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace larder_test {

// A directory under /tmp made with mkdtemp, removed with its contents.
// `in_memory` puts it on /dev/shm where there is one: tests that sync heap
// files many times then cost no disk flushes.
class temp_dir {
 public:
  explicit temp_dir(bool in_memory = false) {
    for (const char* root : {"/dev/shm", "/tmp"}) {
      if (!in_memory && std::string_view(root) == "/dev/shm") continue;
      std::string pattern = std::string(root) + "/larder-runtime-XXXXXX";
      if (::mkdtemp(pattern.data()) != nullptr) {
        path_ = pattern;
        return;
      }
    }
    ADD_FAILURE() << "mkdtemp: " << std::strerror(errno);
  }
  ~temp_dir() {
    if (path_.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

// "/larder-rt-<tag>-<pid>-<n>": unique within the machine while this
// process lives.
// Whether a heap of `kind` can be checked out lazily here: not a file
// heap, and the uffd write-protect tracker works.
inline bool lazy_checkout_works(larder::backing kind) {
  if (kind == larder::backing::file) return false;
  for (const larder::tracker_support& t : larder::tracker_backends())
    if (t.backend == larder::tracker_backend::uffd_async) return t.available;
  return false;
}

inline std::string unique_shm_name(std::string_view tag) {
  static std::atomic<unsigned> counter{0};
  return "/larder-rt-" + std::string(tag) + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(counter.fetch_add(1));
}

// Sets an environment variable for one scope, putting back what was there.
class scoped_env {
 public:
  scoped_env(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~scoped_env() {
    if (old_) ::setenv(name_, old_->c_str(), 1);
    else ::unsetenv(name_);
  }
  scoped_env(const scoped_env&) = delete;
  scoped_env& operator=(const scoped_env&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// Unlinks a shm object when the test ends, whatever happened.
class shm_guard {
 public:
  explicit shm_guard(std::string name) : name_(std::move(name)) {}
  ~shm_guard() {
    if (!name_.empty()) ::shm_unlink(name_.c_str());
  }
  shm_guard(const shm_guard&) = delete;
  shm_guard& operator=(const shm_guard&) = delete;
  const std::string& name() const { return name_; }

 private:
  std::string name_;
};

// Failures recorded so far in the running test.
inline int failures_so_far() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  if (info == nullptr) return 0;
  int failed = 0;
  for (int i = 0; i < info->result()->total_part_count(); ++i) failed += info->result()->GetTestPartResult(i).failed();
  return failed;
}

// Runs `body` in a forked child. The child exits 0 when `body` returned
// without a new GoogleTest failure, 1 after one (already printed by the
// child), 2 when it threw. Returns that code, or 128 + the signal number.
inline int run_in_child(const std::function<void()>& body) {
  std::fflush(stdout);
  std::fflush(stderr);
  int failed_before = failures_so_far();
  pid_t pid = ::fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    return -1;
  }
  if (pid == 0) {
    int code = 0;
    try {
      body();
      code = failures_so_far() > failed_before ? 1 : 0;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child threw: %s\n", e.what());
      code = 2;
    } catch (...) {
      std::fprintf(stderr, "child threw a non-standard exception\n");
      code = 2;
    }
    std::fflush(stdout);
    std::fflush(stderr);
    ::_exit(code);
  }
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0) {
    if (errno != EINTR) {
      ADD_FAILURE() << "waitpid: " << std::strerror(errno);
      return -1;
    }
  }
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
  return -1;
}

// The whole content of a file ("" and *ok = false when it cannot be read).
inline std::string read_all(const std::string& path, bool* ok = nullptr) {
  std::string data;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (ok) *ok = false;
    return data;
  }
  char buffer[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    data.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  if (ok) *ok = true;
  return data;
}

inline bool write_all(const std::string& path, const void* data, std::size_t size) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return false;
    }
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return ::close(fd) == 0;
}

inline bool path_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

inline std::uint64_t file_size_of(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<std::uint64_t>(st.st_size);
}

// A byte pattern that depends on the block's identity, to find overlaps.
inline unsigned char pattern_byte(std::uint64_t key, std::size_t i) {
  std::uint64_t x = key * 0x9E3779B97F4A7C15ull + i * 0xBF58476D1CE4E5B9ull;
  x ^= x >> 29;
  return static_cast<unsigned char>(x);
}

inline void fill_pattern(void* p, std::size_t size, std::uint64_t key) {
  auto* bytes = static_cast<unsigned char*>(p);
  for (std::size_t i = 0; i < size; ++i) bytes[i] = pattern_byte(key, i);
}

inline bool check_pattern(const void* p, std::size_t size, std::uint64_t key) {
  const auto* bytes = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < size; ++i)
    if (bytes[i] != pattern_byte(key, i)) return false;
  return true;
}

inline larder::heap_options file_options(const std::string& path,
                                         larder::open_mode mode = larder::open_mode::open_or_create) {
  larder::heap_options o;
  o.kind = larder::backing::file;
  o.name = path;
  o.mode = mode;
  return o;
}

inline larder::heap_options shm_options(const std::string& name,
                                        larder::open_mode mode = larder::open_mode::open_or_create) {
  larder::heap_options o;
  o.kind = larder::backing::shm;
  o.name = name;
  o.mode = mode;
  return o;
}

// `prefix` followed by `n` in decimal.
inline std::string numbered(std::string_view prefix, long n) {
  std::string text(prefix);
  text += std::to_string(n);
  return text;
}

// Describes a status for assertion messages.
inline std::string describe(const larder::status& s) {
  return "code " + std::to_string(s.code()) + " (" + s.to_string() + ")";
}

}  // namespace larder_test
