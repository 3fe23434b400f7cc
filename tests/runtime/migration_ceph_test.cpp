// Tier migration to a Ceph cluster (docs/tiers.md, "Several tiers"): an
// anonymous heap's pods evicted to a remote tier, alone or below a small
// disk tier, come back on touch with every byte, against a real
// single-node cluster this program starts (scripts/ceph-cluster.sh).
// Skipped, printing why, where ceph is not installed.
#include "migration_test_util.hpp"
#include "tests/support/ceph_test_cluster.hpp"

#include <larder/tiers.hpp>

namespace {

using larder_test::temp_dir;
using namespace larder_migration_test;

larder_test::ceph_environment* const cluster = larder_test::ceph_environment::add("migration");

class migration_ceph : public ::testing::Test {
 protected:
  void SetUp() override {
    LARDER_NEED_CEPH_CLUSTER();
    if (!migration_works(larder::backing::anonymous)) GTEST_SKIP() << "userfaultfd missing faults are not available here";
  }
  static std::string remote() { return cluster->cluster().pool() + "@" + cluster->cluster().conf(); }
};

TEST_F(migration_ceph, pods_evicted_to_the_cluster_come_back) {
  pod_heap ph;
  ph.open(larder::backing::anonymous, 4, 64, 101);
  model m = model_of(ph);
  larder::migration_policy p;
  p.tiers.push_back({larder::tier_kind::remote, remote(), std::size_t{64} << 20});
  larder::status s = larder::set_migration_policy(ph.h, p);
  ASSERT_TRUE(s.ok()) << s.to_string();
  evict_write_and_check(ph, m, 102, 3);
  larder::migration_stats st = larder::migration_info(ph.h);
  ASSERT_EQ(st.tiers.size(), 1u);
  EXPECT_EQ(st.tiers[0].kind, larder::tier_kind::remote);
  EXPECT_GT(st.tiers[0].used_bytes, 0u);
}

// A 512 KiB disk tier over the cluster: 1 MiB of pods evicted overflows
// it, and its coldest pods go on to the cluster.
TEST_F(migration_ceph, a_full_disk_tier_cascades_to_the_cluster) {
  temp_dir dir;
  pod_heap ph;
  ph.open(larder::backing::anonymous, 4, 64, 103);
  model m = model_of(ph);
  larder::migration_policy p;
  p.tiers.push_back({larder::tier_kind::disk, dir.file("upper"), std::size_t{512} << 10});
  p.tiers.push_back({larder::tier_kind::remote, remote(), std::size_t{64} << 20});
  larder::status s = larder::set_migration_policy(ph.h, p);
  ASSERT_TRUE(s.ok()) << s.to_string();
  evict_write_and_check(ph, m, 104, 3);
  larder::migration_stats st = larder::migration_info(ph.h);
  ASSERT_EQ(st.tiers.size(), 2u);
  EXPECT_LE(st.tiers[0].used_bytes, st.tiers[0].capacity_bytes);
  EXPECT_GT(st.tiers[1].used_bytes, 0u) << "nothing cascaded to the cluster";
}

TEST_F(migration_ceph, a_missing_pool_is_refused_clearly) {
  pod_heap ph;
  ph.open(larder::backing::anonymous, 1, 4, 105);
  larder::migration_policy p;
  p.tiers.push_back({larder::tier_kind::remote, "nosuchpool@" + cluster->cluster().conf(), 0});
  larder::status s = larder::set_migration_policy(ph.h, p);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("nosuchpool"), std::string::npos) << s.to_string();
}

}  // namespace
