// The GPU tier in the migrator (larder/tiers.hpp, docs/tiers.md): a policy
// naming a GPU tier loads liblarder_gpu_tier.so. Where there is no CUDA
// device or driver, the policy is refused naming the CUDA error and the
// heap keeps working; where there is one, pods evicted to [gpu] and to
// [gpu (small), disk] come back with every byte, as they do everywhere
// through the module built on a device of host memory. $LARDER_GPU_TIER_MODULE
// naming a missing file, or a library that is no GPU tier module, is
// refused saying so; a shm heap is refused a GPU tier.
#include "migration_test_util.hpp"
#include "runtime_test_util.hpp"

#include "larder_config.h"

#include <larder/tiers.hpp>

#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

namespace {

using larder_test::scoped_env;
using larder_test::temp_dir;
using namespace larder_migration_test;

larder::migration_policy gpu_policy(std::size_t capacity) {
  larder::migration_policy p;
  p.tiers.push_back({larder::tier_kind::gpu, "0", capacity});
  return p;
}

// The refusal where the machine has no CUDA device or driver (or the build
// no GPU tier): the reason to skip a test that needs a device. Empty for
// any other outcome, which such a test must not skip.
std::string no_device_reason(const larder::status& s) {
  if (!s.is(larder::errc::unsupported)) return {};
  const std::string& m = s.message();
  bool no_device = m.find("no CUDA device") != std::string::npos || m.find("no GPU tier") != std::string::npos;
  return no_device ? "no GPU tier here: " + m : std::string();
}

// The heap still serves its bytes, and moves pods to a disk tier.
void expect_heap_works(pod_heap& ph, model& m, const temp_dir& dir) {
  EXPECT_TRUE(larder::migration_policy_of(ph.h).tiers.empty()) << "a refused policy leaves no tiers behind";
  std::memset(ph.blocks[0][0], 0x5a, kPage);
  std::memset(m[0][0].data(), 0x5a, kPage);
  larder::migration_policy p;
  p.tiers.push_back({larder::tier_kind::disk, dir.file("tier"), std::size_t{64} << 20});
  ASSERT_TRUE(larder::set_migration_policy(ph.h, p).ok());
  for (larder::pod pod : ph.pods) ASSERT_TRUE(larder::evict_pod(ph.h, pod).ok());
  expect_equal(ph, m);
}

TEST(migration_gpu, refused_without_a_device_naming_the_cuda_error) {
  if (!migration_works(larder::backing::anonymous)) GTEST_SKIP() << "userfaultfd missing faults are not available here";
  temp_dir dir;
  pod_heap ph;
  ph.open(larder::backing::anonymous, 2, 16, 101);
  model m = model_of(ph);
  larder::status s = larder::set_migration_policy(ph.h, gpu_policy(std::size_t{64} << 20));
  if (s.ok()) GTEST_SKIP() << "a CUDA device is present: the GPU tier opened";
  EXPECT_TRUE(s.is(larder::errc::unsupported)) << s.to_string();
#if LARDER_HAVE_GPU_TIER
  // The module was found and loaded; the tier's open names the runtime's
  // error (cudaErrorInsufficientDriver without a driver, cudaErrorNoDevice
  // without a device).
  EXPECT_NE(s.message().find("GPU tier: no CUDA device 0 to use: cudaError"), std::string::npos) << s.message();
#else
  EXPECT_NE(s.message().find("this build has no GPU tier"), std::string::npos) << s.message();
#endif
  expect_heap_works(ph, m, dir);
}

TEST(migration_gpu, module_variable_naming_no_module_is_refused_clearly) {
  if (!migration_works(larder::backing::anonymous)) GTEST_SKIP() << "userfaultfd missing faults are not available here";
  temp_dir dir;
  pod_heap ph;
  ph.open(larder::backing::anonymous, 2, 16, 102);
  model m = model_of(ph);
  const std::string missing = dir.file("no-such-module.so");
  {
    scoped_env env("LARDER_GPU_TIER_MODULE", missing);
    larder::status s = larder::set_migration_policy(ph.h, gpu_policy(std::size_t{64} << 20));
    EXPECT_TRUE(s.is(larder::errc::unsupported)) << s.to_string();
#if LARDER_HAVE_GPU_TIER
    for (const std::string& words : {std::string("could not be loaded (LARDER_GPU_TIER_MODULE names it)"), missing,
                                     std::string("No such file or directory")})
      EXPECT_NE(s.message().find(words), std::string::npos) << "no \"" << words << "\" in " << s.message();
#else
    EXPECT_NE(s.message().find("this build has no GPU tier"), std::string::npos) << s.message();
#endif
  }
#if LARDER_HAVE_GPU_TIER
  {
    // A shared object that loads but is not the module.
    scoped_env env("LARDER_GPU_TIER_MODULE", "libc.so.6");
    larder::status s = larder::set_migration_policy(ph.h, gpu_policy(std::size_t{64} << 20));
    EXPECT_TRUE(s.is(larder::errc::unsupported)) << s.to_string();
    for (const char* words : {"not larder's GPU tier module", "libc.so.6", "larder_gpu_tier_open"})
      EXPECT_NE(s.message().find(words), std::string::npos) << "no \"" << words << "\" in " << s.message();
  }
#endif
  expect_heap_works(ph, m, dir);
}

// GPU tiers hold an anonymous heap's pages only: a shm heap's evicted
// pages must outlive its process. A device is named by its index, and an
// empty path is device 0.
TEST(migration_gpu, shm_heap_and_bad_devices_refused) {
  if (!migration_works(larder::backing::anonymous)) GTEST_SKIP() << "userfaultfd missing faults are not available here";
  pod_heap ph;
  ph.open(larder::backing::anonymous, 1, 4, 103);
  larder::migration_policy p = gpu_policy(0);
  p.tiers.push_back({larder::tier_kind::gpu, "", 0});
  larder::status s = larder::set_migration_policy(ph.h, p);
  EXPECT_TRUE(s.is(larder::errc::invalid_argument)) << s.to_string();
  EXPECT_NE(s.message().find("names tier 0 twice"), std::string::npos) << s.message();
  p.tiers.resize(1);
  p.tiers[0].path = "first";
  s = larder::set_migration_policy(ph.h, p);
#if LARDER_HAVE_GPU_TIER
  EXPECT_TRUE(s.is(larder::errc::invalid_argument)) << s.to_string();
  EXPECT_NE(s.message().find("CUDA device index"), std::string::npos) << s.message();
#else
  EXPECT_TRUE(s.is(larder::errc::unsupported)) << s.to_string();
#endif
  if (!migration_works(larder::backing::shm)) return;
  pod_heap shm;
  shm.open(larder::backing::shm, 1, 4, 104);
  s = larder::set_migration_policy(shm.h, gpu_policy(0));
  EXPECT_TRUE(s.is(larder::errc::unsupported)) << s.to_string();
  EXPECT_NE(s.message().find("only a disk tier keeps them"), std::string::npos) << s.message();
}

larder::migration_policy gpu_over_disk(const temp_dir& dir) {
  // A quarter of what is evicted: the coldest pods' pages cascade down.
  larder::migration_policy p = gpu_policy(std::size_t{512} << 10);
  p.tiers.push_back({larder::tier_kind::disk, dir.file("lower"), std::size_t{64} << 20});
  return p;
}

// A heap of 2 MiB of blocks in 8 pods moved to `p`'s tiers round after
// round; with a second tier, pages reached it. Returns the refusal of `p`.
larder::status round_trips(const larder::migration_policy& p, std::uint64_t seed) {
  pod_heap ph;
  ph.open(larder::backing::anonymous, 8, 64, seed);
  model m = model_of(ph);
  if (larder::status s = larder::set_migration_policy(ph.h, p); !s.ok()) return s;
  evict_write_and_check(ph, m, seed + 1);
  if (p.tiers.size() > 1) {
    larder::migration_stats st = larder::migration_info(ph.h);
    EXPECT_GT(st.tiers.at(1).used_bytes, 0u) << "nothing cascaded to the lower tier";
  }
  return {};
}

TEST(migration_gpu, pods_evicted_to_the_gpu_come_back_with_every_byte) {
  if (!migration_works(larder::backing::anonymous)) GTEST_SKIP() << "userfaultfd missing faults are not available here";
  if (larder::status s = round_trips(gpu_policy(std::size_t{64} << 20), 111); !s.ok()) {
    std::string why = no_device_reason(s);
    ASSERT_FALSE(why.empty()) << s.to_string();
    GTEST_SKIP() << why;
  }
}

TEST(migration_gpu, a_small_gpu_tier_cascades_to_disk) {
  if (!migration_works(larder::backing::anonymous)) GTEST_SKIP() << "userfaultfd missing faults are not available here";
  temp_dir dir;
  if (larder::status s = round_trips(gpu_over_disk(dir), 121); !s.ok()) {
    std::string why = no_device_reason(s);
    ASSERT_FALSE(why.empty()) << s.to_string();
    GTEST_SKIP() << why;
  }
}

#ifdef LARDER_HOST_GPU_TIER_MODULE
// The GPU tier's module built with a device of host memory in place of
// CUDA (tests/tiers/host_gpu_port.cpp), named by $LARDER_GPU_TIER_MODULE:
// the migrator's whole GPU path, from loading the module to the bytes
// coming back, on any machine.
TEST(migration_gpu, pods_come_back_through_a_module_on_host_memory) {
  if (!migration_works(larder::backing::anonymous)) GTEST_SKIP() << "userfaultfd missing faults are not available here";
  scoped_env env("LARDER_GPU_TIER_MODULE", LARDER_HOST_GPU_TIER_MODULE);
  temp_dir dir;
  larder::status s = round_trips(gpu_policy(std::size_t{64} << 20), 131);
  EXPECT_TRUE(s.ok()) << s.to_string();
  s = round_trips(gpu_over_disk(dir), 141);
  EXPECT_TRUE(s.ok()) << s.to_string();
  larder::migration_policy p = gpu_policy(0);
  p.tiers[0].path = "1";
  pod_heap ph;
  ph.open(larder::backing::anonymous, 1, 4, 151);
  s = larder::set_migration_policy(ph.h, p);
  EXPECT_TRUE(s.is(larder::errc::unsupported)) << s.to_string();
  EXPECT_NE(s.message().find("no CUDA device 1 to use: hostErrorInvalidDevice"), std::string::npos) << s.message();
}
#endif

}  // namespace
