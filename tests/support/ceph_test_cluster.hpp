// A throwaway single-node Ceph cluster for a test program
// (scripts/ceph-cluster.sh: one mon, one memstore OSD on 127.0.0.1), started
// once before its tests and stopped after them. Tests skip, printing why,
// where the ceph binaries are not installed. Needs LARDER_SOURCE_DIR.
#pragma once

#include <gtest/gtest.h>

#include <stdlib.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace larder_test {

inline constexpr const char* kCephNotInstalled = "the ceph binaries are not installed";

inline bool ceph_installed() {
  return std::system("command -v ceph-mon >/dev/null && command -v ceph-osd >/dev/null") == 0;
}

// A cluster in a fresh temporary folder, stopped and removed by the
// destructor.
class ceph_test_cluster {
 public:
  // Empty when it started; the script's output otherwise.
  std::string start(const std::string& pool) {
    char pattern[] = "/tmp/larder_rados_XXXXXX";
    if (::mkdtemp(pattern) == nullptr) return std::string("mkdtemp: ") + std::strerror(errno);
    dir_ = pattern;
    pool_ = pool;
    std::string log = dir_ + ".log";
    int rc = script("start", " --pool " + pool + " >" + log + " 2>&1");
    std::stringstream output;
    output << std::ifstream(log).rdbuf();
    std::filesystem::remove(log);
    return rc == 0 ? std::string() : "ceph-cluster.sh start failed: " + output.str();
  }
  void stop() {
    if (!dir_.empty()) (void)script("stop", " >/dev/null 2>&1");
  }
  ~ceph_test_cluster() {
    stop();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  std::string conf() const { return dir_ + "/ceph.conf"; }
  const std::string& pool() const { return pool_; }

 private:
  int script(const char* command, const std::string& rest) const {
    std::string line = std::string(LARDER_SOURCE_DIR "/scripts/ceph-cluster.sh ") + command + " " + dir_ + rest;
    return std::system(line.c_str());
  }
  std::string dir_;
  std::string pool_;
};

// The program's cluster, with one pool: register it once with
// ceph_environment::add("pool"); a test's SetUp calls skip_or_check().
class ceph_environment : public ::testing::Environment {
 public:
  explicit ceph_environment(std::string pool) : pool_(std::move(pool)) {}
  void SetUp() override {
    if (!ceph_installed()) return;
    installed_ = true;
    start_error_ = cluster_.start(pool_);
  }
  void TearDown() override { cluster_.stop(); }
  static ceph_environment* add(const std::string& pool) {
    instance() = new ceph_environment(pool);
    ::testing::AddGlobalTestEnvironment(instance());
    return instance();
  }
  static ceph_environment*& instance() {
    static ceph_environment* the_one = nullptr;
    return the_one;
  }
  const ceph_test_cluster& cluster() const { return cluster_; }
  bool installed() const { return installed_; }
  const std::string& start_error() const { return start_error_; }

 private:
  std::string pool_;
  bool installed_ = false;
  std::string start_error_;
  ceph_test_cluster cluster_;
};

}  // namespace larder_test

// In a test fixture's SetUp: skips where ceph is not installed, fails where
// the cluster did not start.
#define LARDER_NEED_CEPH_CLUSTER()                                                                         \
  do {                                                                                                     \
    ::larder_test::ceph_environment* env_ = ::larder_test::ceph_environment::instance();                 \
    if (!env_->installed())                                                                                \
      GTEST_SKIP() << ::larder_test::kCephNotInstalled << " (scripts/install-deps.sh installs them)";      \
    ASSERT_TRUE(env_->start_error().empty()) << env_->start_error();                                       \
  } while (0)
