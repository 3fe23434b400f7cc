// Ceph support under liblarder_malloc (linked, or preloaded): the process
// maps neither Ceph support's module nor librados until a rados: remote is
// used. A heap, a checkpoint and a push to a directory load nothing of
// Ceph; a push to rados:POOL@CONF with no such ceph.conf then loads the
// module from beside the library and fails with Ceph support's own error
// (in a build without librados: unsupported, and still nothing loaded).
// Prints "ok" when every check passed; otherwise lists the failures and
// exits with status 1.
#include <larder/larder.hpp>
#include <larder/versions.hpp>

#include <stdlib.h>

#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "check.hpp"
#include "larder_config.h"

namespace {

// Whether a file whose path holds `name` is mapped into this process.
bool mapped(const char* name) {
  std::ifstream maps("/proc/self/maps");
  std::stringstream text;
  text << maps.rdbuf();
  return text.str().find(name) != std::string::npos;
}

void check_nothing_of_ceph(const char* when) {
  for (const char* name : {"liblarder_rados", "librados"}) {
    if (mapped(name)) {
      std::fprintf(stderr, "FAILED: %s is mapped %s\n", name, when);
      ++g_failures;
    }
  }
}

void run(const std::string& dir) {
  check_nothing_of_ceph("at start");
  larder::heap_options o;
  o.kind = larder::backing::file;
  o.name = dir + "/heap";
  o.reserve = std::size_t{64} << 20;
  {
    larder::heap h(o);
    *h.root<int>("x") = 7;
    larder::checkpoint(h, "one");
    CHECK(h.close().ok());
  }
  const std::string store = o.name + ".versions";
  larder::transfer_stats st;
  CHECK(larder::push_versions(store, dir + "/remote", "", {}, &st).ok());
  check_nothing_of_ceph("after a checkpoint and a push to a directory");

  const std::string conf = dir + "/no-ceph.conf";
  larder::status s = larder::push_versions(store, "rados:larder@" + conf, "", {}, &st);
  if (LARDER_HAVE_RADOS) {
    CHECK(s.is(larder::errc::not_found));
    CHECK(s.message().find("no configuration file " + conf) != std::string::npos);
    CHECK(mapped("liblarder_rados.so"));
  } else {
    CHECK(s.is(larder::errc::unsupported));
    check_nothing_of_ceph("after a rados: push in a build without Ceph support");
  }
  if (g_failures != 0) std::fprintf(stderr, "the rados: push: %s\n", s.to_string().c_str());
}

}  // namespace

int main() {
  // The module must come from the search, beside the library.
  ::unsetenv("LARDER_RADOS_MODULE");
  char pattern[] = "/tmp/larder-rados-demand-XXXXXX";
  if (::mkdtemp(pattern) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  try {
    run(pattern);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "FAILED: %s\n", e.what());
    ++g_failures;
  }
  std::error_code ec;
  std::filesystem::remove_all(pattern, ec);
  if (g_failures != 0) return 1;
  std::puts("ok");
  return 0;
}
