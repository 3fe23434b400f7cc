// The GPU tier (tiers/gpu) against a model of what each pod holds
// (tier_checks.hpp). Without a CUDA device, opening refuses with the CUDA
// error named, and the round trips on a real device skip saying so. The
// same checks run everywhere on host_device (host_gpu_device.hpp), a device
// made of host memory whose copies run only when waited for, as a GPU's
// may: a staging half reused before its copies are done reads back wrong
// bytes.
#include "tiers/gpu/gpu_tier.hpp"
#include "host_gpu_device.hpp"
#include "port/gpu.hpp"
#include "tier_checks.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

namespace larder::tiers {
namespace {

using namespace checks;
using larder_test::host_device;

// Small chunks and staging, so that transfers cross chunks and take many
// batches: 7 pages of staging per half.
gpu_tier_options small_steps() {
  gpu_tier_options options;
  options.capacity_bytes = 1024 * kPage;
  options.chunk_bytes = 40 * kPage;
  options.staging_bytes = 14 * kPage;
  return options;
}

std::unique_ptr<gpu_tier> open_on_host(gpu_tier_options options, host_device** device = nullptr,
                                       std::size_t memory_limit = ~std::size_t{0}) {
  auto made = std::make_unique<host_device>(memory_limit);
  if (device != nullptr) *device = made.get();
  std::unique_ptr<gpu_tier> tier;
  status s = gpu_tier::open_on(std::move(made), options, &tier);
  EXPECT_TRUE(s.ok()) << s.to_string();
  return tier;
}

// The tier on CUDA device 0, or nullptr and why not.
std::unique_ptr<gpu_tier> open_on_device(gpu_tier_options options, std::string* why_not) {
  std::unique_ptr<gpu_tier> tier;
  status s = gpu_tier::open(options, &tier);
  if (!s.ok()) *why_not = s.to_string();
  return tier;
}

TEST(GpuTierTest, WithoutADeviceOpenRefusesNamingTheCudaError) {
  std::unique_ptr<gpu_tier> tier;
  status s = gpu_tier::open({}, &tier);
  if (s.ok()) GTEST_SKIP() << "a CUDA device is present: the refusal cannot be seen here";
  EXPECT_TRUE(s.is(errc::unsupported)) << s.to_string();
  EXPECT_NE(std::string::npos, s.message().find("no CUDA device 0")) << s.message();
  EXPECT_NE(std::string::npos, s.message().find("cudaError")) << "names the CUDA error: " << s.message();
  EXPECT_FALSE(tier);
  gpu_tier_options past_the_last;
  past_the_last.device = 1000;
  EXPECT_TRUE(gpu_tier::open(past_the_last, &tier).is(errc::unsupported));
}

TEST(GpuTierTest, BadSizesAreRefusedBeforeAnyDeviceIsOpened) {
  std::unique_ptr<gpu_tier> tier;
  gpu_tier_options odd;
  odd.staging_bytes = 3 * kPage;
  EXPECT_TRUE(gpu_tier::open(odd, &tier).is(errc::invalid_argument));
  odd = {};
  odd.chunk_bytes = 0;
  EXPECT_TRUE(gpu_tier::open_on(std::make_unique<host_device>(), odd, &tier).is(errc::invalid_argument));
}

TEST(GpuTierTest, RoundTripsOnADevice) {
  std::string why_not;
  auto tier = open_on_device({}, &why_not);
  if (!tier) GTEST_SKIP() << "no CUDA device to run on: " << why_not;
  round_trips(*tier);
}

TEST(GpuTierTest, FourThreadsOnADevice) {
  std::string why_not;
  auto tier = open_on_device({}, &why_not);
  if (!tier) GTEST_SKIP() << "no CUDA device to run on: " << why_not;
  four_threads(*tier);
}

TEST(GpuTierTest, SlotReuseAndClearErrorsOnADevice) {
  std::string why_not;
  gpu_tier_options options = small_steps();
  options.capacity_bytes = 64 * kPage;
  auto tier = open_on_device(options, &why_not);
  if (!tier) GTEST_SKIP() << "no CUDA device to run on: " << why_not;
  reuses_slots(*tier);
  options.capacity_bytes = 16 * kPage;
  tier = open_on_device(options, &why_not);
  ASSERT_TRUE(tier) << why_not;
  refuses_clearly(*tier);
}

TEST(GpuTierTest, RoundTripsThroughStagingMatchTheModel) {
  auto tier = open_on_host(small_steps());
  ASSERT_TRUE(tier);
  round_trips(*tier);
}

TEST(GpuTierTest, DroppedSlotsAreReusedAndBadArgumentsGiveClearErrors) {
  gpu_tier_options options = small_steps();
  options.capacity_bytes = 64 * kPage;
  auto tier = open_on_host(options);
  ASSERT_TRUE(tier);
  reuses_slots(*tier);
  options.capacity_bytes = 16 * kPage;
  tier = open_on_host(options);
  ASSERT_TRUE(tier);
  refuses_clearly(*tier);
}

TEST(GpuTierTest, FullDeviceMemoryIsAClearErrorAndLosesNothing) {
  // Room for 3 chunks of 40 pages: the fourth 64-page pod needs a fourth.
  auto tier = open_on_host(small_steps(), nullptr, 3 * 40 * kPage);
  ASSERT_TRUE(tier);
  fill_until_refused(*tier, "memory is full");
}

TEST(GpuTierTest, FourThreadsEachTakeAStreamOfTheirOwn) {
  host_device* device = nullptr;
  gpu_tier_options options = small_steps();
  options.capacity_bytes = 4 * 3 * 128 * kPage;  // each thread's three pods at their largest
  auto tier = open_on_host(options, &device);
  ASSERT_TRUE(tier);
  four_threads(*tier);
  EXPECT_GE(device->streams_created.load(), 1);
  EXPECT_LE(device->streams_created.load(), 4) << "streams are reused by later transfers";
}

}  // namespace
}  // namespace larder::tiers
