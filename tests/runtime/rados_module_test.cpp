// Ceph support's module (tiers/rados_module.hpp) as liblarder finds it,
// with no cluster: $LARDER_RADOS_MODULE naming a missing file, or a library
// that is not the module, refuses a rados: push and pull and a remote tier
// policy with unsupported, naming the file and the loader's reason, and the
// heap keeps working; unset, the module beside liblarder is loaded, and the
// error is Ceph's own (a missing ceph.conf). A build without librados
// refuses all of them saying so.
#include "migration_test_util.hpp"
#include "runtime_test_util.hpp"

#include "larder_config.h"

#include <larder/tiers.hpp>
#include <larder/versions.hpp>

#include <string>
#include <vector>

namespace {

using larder_test::scoped_env;
using larder_test::temp_dir;
using namespace larder_migration_test;

constexpr char kWithoutCeph[] = "built without Ceph support (librados)";

// Fails unless `s` is unsupported and its message holds every one of `words`.
void expect_refused(const larder::status& s, const std::vector<std::string>& words) {
  EXPECT_TRUE(s.is(larder::errc::unsupported)) << s.to_string();
  for (const std::string& w : words)
    EXPECT_NE(s.message().find(w), std::string::npos) << "no \"" << w << "\" in " << s.message();
}

// A heap file with one checkpoint: the store `<path>.versions` to push.
std::string store_with_a_version(const temp_dir& dir) {
  const std::string path = dir.file("heap");
  larder::heap_options o;
  o.kind = larder::backing::file;
  o.name = path;
  o.reserve = std::size_t{64} << 20;
  larder::heap h(o);
  *h.root<int>("x") = 7;
  larder::checkpoint(h, "one");
  EXPECT_TRUE(h.close().ok());
  return path + ".versions";
}

larder::migration_policy remote_policy(const std::string& spec) {
  larder::migration_policy p;
  p.tiers.push_back({larder::tier_kind::remote, spec, std::size_t{64} << 20});
  return p;
}

TEST(rados_module, a_missing_module_file_refuses_push_and_pull_clearly) {
  temp_dir dir;
  const std::string store = store_with_a_version(dir);
  const std::string missing = dir.file("no-such-module.so");
  scoped_env env("LARDER_RADOS_MODULE", missing);
  larder::transfer_stats st;
  larder::status pushed = larder::push_versions(store, "rados:larder", "", {}, &st);
  larder::status pulled =
      larder::pull_versions("rados:larder@" + dir.file("ceph.conf"), dir.file("pulled"), "", {}, &st);
  if (!LARDER_HAVE_RADOS) {
    expect_refused(pushed, {"rados:larder", kWithoutCeph});
    expect_refused(pulled, {"rados:larder", kWithoutCeph});
    return;
  }
  for (const larder::status& s : {pushed, pulled})
    expect_refused(s, {"rados:larder", "could not be loaded (LARDER_RADOS_MODULE names it)", missing,
                       "No such file or directory"});
  // The store pushed from is untouched, and a directory remote still works.
  ASSERT_TRUE(larder::push_versions(store, dir.file("remote"), "", {}, &st).ok());
  EXPECT_EQ(st.versions_sent, 1u);
}

TEST(rados_module, a_library_that_is_not_the_module_is_refused) {
  if (!LARDER_HAVE_RADOS) GTEST_SKIP() << "this build has no Ceph support";
  temp_dir dir;
  const std::string store = store_with_a_version(dir);
  scoped_env env("LARDER_RADOS_MODULE", "libc.so.6");
  larder::transfer_stats st;
  expect_refused(larder::push_versions(store, "rados:larder", "", {}, &st),
                 {"rados:larder", "not larder's Ceph support module", "libc.so.6", "larder_rados_store_open"});
}

TEST(rados_module, a_missing_module_file_refuses_a_remote_tier_policy_clearly) {
  if (!migration_works(larder::backing::anonymous)) GTEST_SKIP() << "userfaultfd missing faults are not available here";
  temp_dir dir;
  pod_heap ph;
  ph.open(larder::backing::anonymous, 2, 16, 201);
  model m = model_of(ph);
  const std::string missing = dir.file("no-such-module.so");
  {
    scoped_env env("LARDER_RADOS_MODULE", missing);
    larder::status s = larder::set_migration_policy(ph.h, remote_policy("larder@" + dir.file("ceph.conf")));
    if (LARDER_HAVE_RADOS)
      expect_refused(s, {"remote tier larder@", "could not be loaded (LARDER_RADOS_MODULE names it)", missing,
                         "No such file or directory"});
    else
      expect_refused(s, {"remote tier larder@", kWithoutCeph});
  }
  // The heap is left with no tiers, and still moves pods to a disk tier.
  EXPECT_TRUE(larder::migration_policy_of(ph.h).tiers.empty());
  larder::migration_policy p;
  p.tiers.push_back({larder::tier_kind::disk, dir.file("tier"), std::size_t{64} << 20});
  ASSERT_TRUE(larder::set_migration_policy(ph.h, p).ok());
  for (larder::pod pod : ph.pods) ASSERT_TRUE(larder::evict_pod(ph.h, pod).ok());
  expect_equal(ph, m);
}

// Unset, the variable leaves the search: the module beside liblarder
// loads, and what fails is the cluster's configuration, named by Ceph
// support's own error.
TEST(rados_module, the_module_beside_the_library_is_found) {
  if (!LARDER_HAVE_RADOS) GTEST_SKIP() << "this build has no Ceph support";
  temp_dir dir;
  const std::string store = store_with_a_version(dir);
  const std::string conf = dir.file("no-ceph.conf");
  scoped_env env("LARDER_RADOS_MODULE", "");
  larder::transfer_stats st;
  larder::status s = larder::push_versions(store, "rados:larder@" + conf, "", {}, &st);
  EXPECT_TRUE(s.is(larder::errc::not_found)) << s.to_string();
  EXPECT_NE(s.message().find("no configuration file " + conf), std::string::npos) << s.message();
  if (migration_works(larder::backing::anonymous)) {
    pod_heap ph;
    ph.open(larder::backing::anonymous, 1, 4, 202);
    larder::status t = larder::set_migration_policy(ph.h, remote_policy("larder@" + conf));
    EXPECT_TRUE(t.is(larder::errc::not_found)) << t.to_string();
    EXPECT_NE(t.message().find("no configuration file " + conf), std::string::npos) << t.message();
  }
}

}  // namespace
