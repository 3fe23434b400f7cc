// The entry point of liblarder_gpu_tier.so, the GPU tier as a module that
// the migrator loads (tiers/gpu_module.hpp): the only symbol the module
// exports.
#include "tiers/gpu/gpu_tier.hpp"
#include "tiers/gpu_module.hpp"

#include <larder/export.hpp>
#include <larder/version.hpp>

#include <cstring>

extern "C" LARDER_EXPORT void larder_gpu_tier_open(const char* version, int device, std::uint64_t capacity_bytes,
                                                   larder::status* result,
                                                   std::unique_ptr<larder::tiers::tier>* out) {
  using namespace larder;
  if (std::strcmp(version, LARDER_VERSION_STRING) != 0) {
    *result = status(errc::unsupported, std::string("GPU tier: the module is larder ") + LARDER_VERSION_STRING +
                                            ", the library larder " + version);
    return;
  }
  tiers::gpu_tier_options options;
  options.device = device;
  options.capacity_bytes = capacity_bytes;
  std::unique_ptr<tiers::gpu_tier> tier;
  *result = tiers::gpu_tier::open(options, &tier);
  if (result->ok()) *out = std::move(tier);
}
