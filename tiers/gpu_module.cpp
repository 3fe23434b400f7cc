// open_gpu_tier (gpu_module.hpp): finds liblarder_gpu_tier.so, the GPU
// tier's module, and opens the tier through its entry point; where the
// build has no GPU tier, a clear refusal.
#include "tiers/gpu_module.hpp"

#include "port/module.hpp"

#include "larder_config.h"

#include <larder/version.hpp>

#include <charconv>

namespace larder::tiers {
namespace {

status parse_device(const std::string& text, int* device) {
  *device = 0;
  if (text.empty()) return {};
  const char* end = text.data() + text.size();
  auto [stop, error] = std::from_chars(text.data(), end, *device);
  if (error != std::errc() || stop != end || *device < 0)
    return status(errc::invalid_argument, "a GPU tier's path is its CUDA device index (\"0\", \"1\", ...), not \"" +
                                              text + "\"");
  return {};
}

}  // namespace

status open_gpu_tier(const std::string& device, std::uint64_t capacity_bytes, std::unique_ptr<tier>* out) {
  if (!LARDER_HAVE_GPU_TIER)
    return status(errc::unsupported, "this build has no GPU tier (LARDER_TIER_GPU=OFF or no CUDA toolkit found)");
  int index = 0;
  if (status s = parse_device(device, &index); !s.ok()) return s;
  void* entry = nullptr;
  if (status s = port::find_module_entry({"GPU tier", kGpuTierModule, kGpuTierModuleVariable}, kGpuTierEntry, &entry);
      !s.ok())
    return s;
  status result;
  reinterpret_cast<decltype(&larder_gpu_tier_open)>(entry)(LARDER_VERSION_STRING, index, capacity_bytes, &result, out);
  return result;
}

}  // namespace larder::tiers
