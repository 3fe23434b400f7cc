// Shared objects loaded at run time (port/module.hpp): a missing file and a
// missing symbol give the loader's reason, a loaded library's symbols are
// found, and the directory holding code is the executable's or the
// library's own.
#include "port/module.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <climits>
#include <filesystem>
#include <string>

namespace {

using larder::port::directory_of_code;
using larder::port::load_module;
using larder::port::module_symbol;

TEST(module, missing_file_gives_the_loaders_reason) {
  std::string why;
  EXPECT_EQ(load_module("/nonexistent-dir/libnothing.so", &why), nullptr);
  EXPECT_NE(why.find("/nonexistent-dir/libnothing.so"), std::string::npos) << why;
  EXPECT_NE(why.find("No such file or directory"), std::string::npos) << why;
  why.clear();
  EXPECT_EQ(load_module("libnothing-at-all.so", &why), nullptr);
  EXPECT_NE(why.find("libnothing-at-all.so"), std::string::npos) << why;
}

TEST(module, symbols_of_a_loaded_library) {
  std::string why;
  void* libc = load_module("libc.so.6", &why);
  ASSERT_NE(libc, nullptr) << why;
  EXPECT_EQ(load_module("libc.so.6", &why), libc) << "loading again gives the same handle";
  void* getpid_symbol = module_symbol(libc, "getpid", &why);
  ASSERT_NE(getpid_symbol, nullptr) << why;
  EXPECT_EQ(reinterpret_cast<pid_t (*)()>(getpid_symbol)(), ::getpid());
  EXPECT_EQ(module_symbol(libc, "larder_no_such_symbol", &why), nullptr);
  EXPECT_NE(why.find("larder_no_such_symbol"), std::string::npos) << why;

  std::string directory = directory_of_code(getpid_symbol);
  ASSERT_FALSE(directory.empty());
  EXPECT_TRUE(std::filesystem::exists(directory + "/libc.so.6")) << directory;
}

TEST(module, directory_of_the_executables_code) {
  // This test links larder statically: its code is in the executable.
  char exe[PATH_MAX];
  ssize_t length = ::readlink("/proc/self/exe", exe, sizeof exe);
  ASSERT_GT(length, 0);
  std::string expected = std::filesystem::path(std::string(exe, static_cast<std::size_t>(length))).parent_path();
  EXPECT_EQ(directory_of_code(reinterpret_cast<const void*>(&directory_of_code)), expected);
  EXPECT_EQ(directory_of_code(nullptr), "");
}

}  // namespace
