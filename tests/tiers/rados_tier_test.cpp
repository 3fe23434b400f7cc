// The remote tier (tiers/rados) and its port (port/rados.hpp) against a
// real single-node Ceph cluster that scripts/ceph-cluster.sh starts once
// for the whole program: objects one at a time and in batches, round trips
// of pods against a model at two object sizes, drop and leftovers, four
// threads, and a cluster stopped under the tier. Skipped, with the reason
// printed, where the ceph binaries are not installed.
#include "port/rados.hpp"
#include "tiers/rados/rados_tier.hpp"
#include "tier_checks.hpp"
#include "tests/support/ceph_test_cluster.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

namespace larder::tiers {
namespace {

using namespace checks;
larder_test::ceph_environment* const cluster_environment = larder_test::ceph_environment::add("larder");

class RadosTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LARDER_NEED_CEPH_CLUSTER();
  }
  const larder_test::ceph_test_cluster& cluster() const { return cluster_environment->cluster(); }
  rados_tier_options tier_options(const std::string& heap_id) const {
    rados_tier_options options;
    options.conf_path = cluster().conf();
    options.pool = cluster().pool();
    options.heap_id = heap_id;
    return options;
  }
  std::unique_ptr<rados_tier> open_tier(const rados_tier_options& options) const {
    std::unique_ptr<rados_tier> tier;
    status s = rados_tier::open(options, &tier);
    EXPECT_TRUE(s.ok()) << s.to_string();
    return tier;
  }
  std::unique_ptr<port::rados_pool> connect() const {
    std::unique_ptr<port::rados_pool> pool;
    status s = port::rados_pool::connect(cluster().conf(), cluster().pool(), {}, &pool);
    EXPECT_TRUE(s.ok()) << s.to_string();
    return pool;
  }
};

std::vector<std::string> objects_under(port::rados_pool& pool, const std::string& prefix) {
  std::vector<std::string> names;
  status s = pool.list(prefix, &names);
  EXPECT_TRUE(s.ok()) << s.to_string();
  return names;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

TEST_F(RadosTest, ObjectsRoundTripOneAtATimeAndInBatches) {
  auto pool = connect();
  ASSERT_TRUE(pool);
  const std::string prefix = "larder-test/objects/";
  std::string bytes(10000, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7);
  ASSERT_TRUE(pool->write_full(prefix + "a", bytes.data(), bytes.size()).ok());
  std::uint64_t size = 0;
  ASSERT_TRUE(pool->stat(prefix + "a", &size).ok());
  EXPECT_EQ(bytes.size(), size);
  std::string back(4000, '\0');
  std::size_t got = 0;
  ASSERT_TRUE(pool->read(prefix + "a", 7000, back.data(), back.size(), &got).ok());
  EXPECT_EQ(3000u, got) << "a read past the end stops at the end";
  EXPECT_EQ(0, std::memcmp(back.data(), bytes.data() + 7000, 3000));

  // 40 objects written, listed, read back and removed in batches of 8 in flight.
  std::vector<std::string> contents(40);
  std::vector<port::rados_op> writes(40), reads(40), removals(40);
  std::vector<std::string> landed(40, std::string(5000, '\0'));
  for (std::size_t i = 0; i < 40; ++i) {
    contents[i] = std::string(1000 + i * 100, static_cast<char>('A' + i));
    std::string name = prefix + "batch/" + std::to_string(i);
    writes[i].what = port::rados_op::kind::write_full;
    writes[i].data = contents[i].data();
    writes[i].length = contents[i].size();
    reads[i].what = port::rados_op::kind::read;
    reads[i].buffer = landed[i].data();
    reads[i].length = landed[i].size();
    removals[i].what = port::rados_op::kind::remove;
    writes[i].object = reads[i].object = removals[i].object = name;
  }
  ASSERT_TRUE(pool->run(writes.data(), writes.size(), 8).ok());
  EXPECT_EQ(40u, objects_under(*pool, prefix + "batch/").size());
  ASSERT_TRUE(pool->run(reads.data(), reads.size(), 8).ok());
  for (std::size_t i = 0; i < 40; ++i) {
    ASSERT_EQ(contents[i].size(), reads[i].transferred);
    EXPECT_EQ(contents[i], landed[i].substr(0, contents[i].size()));
  }
  ASSERT_TRUE(pool->run(removals.data(), removals.size(), 8).ok());
  EXPECT_TRUE(objects_under(*pool, prefix + "batch/").empty());

  // Absent objects: not_found, alone and in a batch beside present ones.
  EXPECT_TRUE(pool->stat(prefix + "batch/0", &size).is(errc::not_found));
  EXPECT_TRUE(pool->read(prefix + "none", 0, back.data(), back.size(), &got).is(errc::not_found));
  ASSERT_TRUE(pool->run(writes.data(), 2, 1).ok());
  status missing = pool->run(reads.data(), 3, 2);
  EXPECT_TRUE(missing.is(errc::not_found)) << missing.to_string();
  EXPECT_TRUE(reads[0].result.ok() && reads[1].result.ok());
  EXPECT_TRUE(reads[2].result.is(errc::not_found));
  ASSERT_TRUE(pool->remove(prefix + "a").ok());
  EXPECT_TRUE(pool->remove(prefix + "a").is(errc::not_found));
  ASSERT_TRUE(pool->run(removals.data(), 2, 2).ok());
  EXPECT_TRUE(pool->run(writes.data(), 1, 0).is(errc::invalid_argument));

  // A request past what librados can count is refused, never sent: not one
  // byte of the buffer is touched.
  port::rados_op huge = reads[0];
  huge.length = port::kMaxRadosRequestBytes + 1;
  EXPECT_TRUE(pool->run(&huge, 1, 1).is(errc::invalid_argument));
  EXPECT_TRUE(pool->read(prefix + "a", 0, back.data(), port::kMaxRadosRequestBytes + 1, &got).is(errc::invalid_argument));
  EXPECT_TRUE(pool->write_full(prefix + "a", bytes.data(), std::size_t{4} << 30).is(errc::invalid_argument));
  EXPECT_TRUE(pool->stat(prefix + "a", &size).is(errc::not_found));
}

TEST_F(RadosTest, BadConfigurationPoolOrMonitorIsAClearErrorNotAHang) {
  std::unique_ptr<port::rados_pool> pool;
  status no_file = port::rados_pool::connect("/nonexistent/ceph.conf", "larder", {}, &pool);
  EXPECT_TRUE(no_file.is(errc::not_found)) << no_file.to_string();
  EXPECT_NE(std::string::npos, no_file.message().find("/nonexistent/ceph.conf")) << no_file.message();
  std::string garbled = std::filesystem::temp_directory_path() / ("larder_rados_garbled_" + std::to_string(::getpid()));
  std::ofstream(garbled) << "[global\nmon host\n";
  status unparsed = port::rados_pool::connect(garbled, "larder", {}, &pool);
  std::filesystem::remove(garbled);
  EXPECT_TRUE(unparsed.is(errc::invalid_argument)) << unparsed.to_string();
  status no_pool = port::rados_pool::connect(cluster().conf(), "no-such-pool", {}, &pool);
  EXPECT_TRUE(no_pool.is(errc::not_found)) << no_pool.to_string();
  EXPECT_NE(std::string::npos, no_pool.message().find("no-such-pool")) << no_pool.message();

  // The cluster's configuration with the monitor moved to a port where
  // nothing listens: connect gives up after its timeout.
  std::stringstream text;
  text << std::ifstream(cluster().conf()).rdbuf();
  std::string conf = text.str();
  std::size_t at = conf.find("mon host = ");
  ASSERT_NE(std::string::npos, at);
  conf.replace(at, conf.find('\n', at) - at, "mon host = v2:127.0.0.1:9");
  std::string moved = std::filesystem::temp_directory_path() / ("larder_rados_moved_" + std::to_string(::getpid()));
  std::ofstream(moved) << conf;
  port::rados_options quick;
  quick.connect_timeout_s = 2;
  auto start = std::chrono::steady_clock::now();
  status silent = port::rados_pool::connect(moved, "larder", quick, &pool);
  double waited = seconds_since(start);
  std::filesystem::remove(moved);
  EXPECT_TRUE(silent.is(errc::timed_out)) << silent.to_string();
  EXPECT_LT(waited, 10.0) << "connect waited past its 2 s timeout";
  quick.op_timeout_s = 0;
  EXPECT_TRUE(port::rados_pool::connect(cluster().conf(), "larder", quick, &pool).is(errc::invalid_argument));
}

void round_trips(tier& tier, std::size_t object_pages) {
  std::mt19937_64 random(12 + object_pages);
  std::map<std::uint64_t, pod_model> model;
  for (int round = 0; round < 30; ++round) {
    std::uint64_t pod = random() % 5;
    if (random() % 5 == 0) {
      ASSERT_TRUE(tier.drop(pod).ok());
      model.erase(pod);
    } else if (random() % 4 == 0) {
      drop_random_pages(tier, pod, random, &model[pod]);
    } else {
      write_random_pages(tier, pod, 600, 1 + random() % 400, random, &model[pod], random() % 2 == 0);
    }
    std::uint64_t held = 0;
    for (const auto& [p, pages] : model) {
      expect_pod_equal(tier, p, pages, random() % 2 == 0);
      expect_held_pages(tier, p, pages);
      held += pages.size();
      EXPECT_FALSE(tier.holds(p, 600));
    }
    EXPECT_LE(held, tier.usage().used_pages) << "pages stored count every page held";
  }
  for (const auto& [p, pages] : model) ASSERT_TRUE(tier.drop(p).ok());
  EXPECT_EQ(0u, tier.usage().used_pages);
}

TEST_F(RadosTest, RoundTripsMatchTheModelWithLargeAndSmallObjects) {
  for (std::size_t object_bytes : {std::size_t{1} << 20, std::size_t{16} << 10}) {
    rados_tier_options options = tier_options("round-trips");
    options.object_bytes = object_bytes;
    auto tier = open_tier(options);
    ASSERT_TRUE(tier);
    round_trips(*tier, object_bytes / kPage);
  }
}

TEST_F(RadosTest, WholePodRewritesReplaceEveryObjectAndDropRemovesThem) {
  auto pool = connect();
  rados_tier_options options = tier_options("drop");
  options.object_bytes = 64 << 10;  // 16 pages an object
  auto tier = open_tier(options);
  ASSERT_TRUE(tier && pool);
  std::mt19937_64 random(5);
  pod_model model;
  for (int round = 0; round < 3; ++round) {
    write_random_pages(*tier, 7, 100, 100, random, &model, false);
    EXPECT_EQ(100u, tier->usage().used_pages) << "a rewrite of every page leaves no old object";
    EXPECT_EQ(7u, objects_under(*pool, tier->pod_prefix(7)).size()) << "100 pages in objects of 16";
  }
  pod_model other;
  write_random_pages(*tier, 8, 10, 10, random, &other, false);
  // A partial rewrite keeps the objects that still hold pages in use.
  write_random_pages(*tier, 7, 100, 8, random, &model, true);
  EXPECT_LE(100u, tier->usage().used_pages - 10);
  expect_pod_equal(*tier, 7, model);
  ASSERT_TRUE(tier->drop(7).ok());
  EXPECT_TRUE(objects_under(*pool, tier->pod_prefix(7)).empty());
  EXPECT_FALSE(tier->holds(7, 0));
  EXPECT_EQ(10u, tier->usage().used_pages);
  expect_pod_equal(*tier, 8, other);
  // Dropping pages one by one keeps their object until its last goes.
  const std::uint64_t first_half[] = {0, 1, 2, 3, 4};
  ASSERT_TRUE(tier->drop_pages(8, first_half, 5).ok());
  EXPECT_EQ(1u, objects_under(*pool, tier->pod_prefix(8)).size());
  for (std::uint64_t i : first_half) other.erase(i);
  expect_pod_equal(*tier, 8, other);
  EXPECT_EQ(5u, tier->usage().used_pages);
  const std::uint64_t second_half[] = {5, 6, 7, 8, 9};
  ASSERT_TRUE(tier->drop_pages(8, second_half, 5).ok());
  EXPECT_EQ(0u, tier->usage().used_pages);
  EXPECT_TRUE(tier->held_pages(8).empty());
  // The object goes at the next call that talks to the cluster.
  ASSERT_TRUE(tier->drop(8).ok());
  EXPECT_TRUE(objects_under(*pool, tier->pod_prefix(8)).empty());
  EXPECT_TRUE(tier->drop(7).ok()) << "dropping a pod held nowhere is fine";
  ASSERT_TRUE(tier->sync().ok());

  // The objects are scratch: the tier removes its own when it goes, and
  // a new tier of the same heap id those an earlier one left behind.
  std::string prefix = tier->object_prefix();
  tier.reset();
  EXPECT_TRUE(objects_under(*pool, prefix).empty());
  ASSERT_TRUE(pool->write_full(prefix + "8/0.99", model.begin()->second.data(), kPage).ok());
  tier = open_tier(options);
  ASSERT_TRUE(tier);
  EXPECT_TRUE(objects_under(*pool, prefix).empty());
}

TEST_F(RadosTest, CapacityAndBadArgumentsGiveClearErrors) {
  rados_tier_options small = tier_options("capacity");
  small.capacity_bytes = 16 * kPage;
  auto tier = open_tier(small);
  ASSERT_TRUE(tier);
  std::mt19937_64 random(3);
  pod_model kept;
  write_random_pages(*tier, 1, 10, 10, random, &kept, false);
  page_buffer memory(8);
  std::vector<page_ref> pages;
  for (std::uint64_t i = 0; i < 8; ++i) pages.push_back(page_ref{i, memory.page(i)});
  status full = tier->write(2, pages.data(), pages.size());
  EXPECT_TRUE(full.is(errc::out_of_space)) << full.to_string();
  EXPECT_NE(std::string::npos, full.message().find("full")) << full.message();
  EXPECT_EQ(10u, tier->usage().used_pages);
  EXPECT_FALSE(tier->holds(2, 0));
  expect_pod_equal(*tier, 1, kept);

  page_ref unaligned{0, memory.page(0) + 8};
  EXPECT_TRUE(tier->write(2, &unaligned, 1).is(errc::invalid_argument));
  page_ref twice[2] = {{3, memory.page(0)}, {3, memory.page(1)}};
  EXPECT_TRUE(tier->write(2, twice, 2).is(errc::invalid_argument));
  page_ref missing{11, memory.page(0)};
  EXPECT_TRUE(tier->read(1, &missing, 1).is(errc::not_found));
  EXPECT_TRUE(tier->read(9, &missing, 1).is(errc::not_found));

  std::unique_ptr<rados_tier> none;
  rados_tier_options bad = tier_options("a/b");
  EXPECT_TRUE(rados_tier::open(bad, &none).is(errc::invalid_argument));
  bad = tier_options("odd");
  bad.object_bytes = kPage + 1;
  EXPECT_TRUE(rados_tier::open(bad, &none).is(errc::invalid_argument));
  bad.object_bytes = std::size_t{4} << 30;  // a page multiple, but past what librados counts
  EXPECT_TRUE(rados_tier::open(bad, &none).is(errc::invalid_argument));
  bad = tier_options("no-pool");
  bad.pool = "no-such-pool";
  EXPECT_TRUE(rados_tier::open(bad, &none).is(errc::not_found));
}

TEST_F(RadosTest, FourThreadsWriteAndReadTheirOwnPods) {
  rados_tier_options options = tier_options("threads");
  options.object_bytes = 128 << 10;
  auto tier = open_tier(options);
  ASSERT_TRUE(tier);
  std::vector<std::thread> threads;
  for (std::uint64_t t = 0; t < 4; ++t) {
    threads.emplace_back([&tier, t] {
      std::mt19937_64 random(100 + t);
      std::map<std::uint64_t, pod_model> model;
      for (int round = 0; round < 25; ++round) {
        std::uint64_t pod = t * 100 + random() % 3;
        if (random() % 4 == 0) {
          ASSERT_TRUE(tier->drop(pod).ok());
          model.erase(pod);
        } else {
          write_random_pages(*tier, pod, 128, 1 + random() % 96, random, &model[pod], random() % 2 == 0);
        }
        for (const auto& [p, pages] : model) expect_pod_equal(*tier, p, pages);
      }
    });
  }
  for (std::thread& t : threads) t.join();
}

TEST_F(RadosTest, AClusterStoppedUnderTheTierIsAClearErrorNotAHang) {
  larder_test::ceph_test_cluster doomed;  // a cluster of its own, beside the shared one
  std::string failed = doomed.start("doomed");
  ASSERT_TRUE(failed.empty()) << failed;
  rados_tier_options options;
  options.conf_path = doomed.conf();
  options.pool = doomed.pool();
  options.heap_id = "doomed";
  options.object_bytes = 64 << 10;
  options.timeouts.op_timeout_s = 2;
  auto tier = open_tier(options);
  ASSERT_TRUE(tier);
  std::mt19937_64 random(9);
  pod_model model;
  write_random_pages(*tier, 1, 64, 64, random, &model, false);
  expect_pod_equal(*tier, 1, model);

  doomed.stop();
  page_buffer memory(64);
  std::vector<page_ref> pages;
  for (std::uint64_t i = 0; i < 64; ++i) pages.push_back(page_ref{i, memory.page(i)});
  auto start = std::chrono::steady_clock::now();
  status write = tier->write(2, pages.data(), pages.size());
  EXPECT_TRUE(write.is(errc::timed_out)) << write.to_string();
  EXPECT_NE(std::string::npos, write.message().find("did not answer")) << write.message();
  EXPECT_FALSE(tier->holds(2, 0)) << "a failed write holds nothing";
  EXPECT_EQ(64u, tier->usage().used_pages);
  status read = tier->read(1, pages.data(), pages.size());
  EXPECT_TRUE(read.is(errc::timed_out)) << read.to_string();
  EXPECT_TRUE(tier->holds(1, 0)) << "what was held before is still known";
  status drop = tier->drop(1);
  EXPECT_TRUE(drop.is(errc::timed_out)) << drop.to_string();
  tier.reset();
  EXPECT_LT(seconds_since(start), 30.0) << "each failed call should take about one 2 s timeout";
}

}  // namespace
}  // namespace larder::tiers
