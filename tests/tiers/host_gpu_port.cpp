// port/gpu.hpp over host_device (host_gpu_device.hpp) in place of the CUDA
// runtime: built with tiers/gpu and its module entry point into a GPU tier
// module that runs on any machine (tests/runtime/migration_gpu_test.cpp).
// One device, index 0.
#include "host_gpu_device.hpp"

namespace larder::port {
namespace {
constexpr int kInvalidDevice = 101;  // cudaErrorInvalidDevice's value
}

int open_gpu_device(int index, std::unique_ptr<gpu_device>* out) {
  if (index != 0) return kInvalidDevice;
  *out = std::make_unique<larder_test::host_device>();
  return 0;
}

const char* gpu_error_name(int code) {
  return code == kGpuOutOfMemory ? "hostErrorMemoryAllocation" : "hostErrorInvalidDevice";
}
const char* gpu_error_text(int code) {
  return code == kGpuOutOfMemory ? "host memory limit reached" : "the host device has index 0 only";
}

}  // namespace larder::port
