// The GPU tier as the migrator opens it: tiers/gpu built as a module of its
// own, liblarder_gpu_tier.so (tiers/gpu/gpu_tier_module.cpp), which links
// the CUDA runtime statically, so that liblarder and liblarder_malloc never
// depend on it. Entry point: open_gpu_tier.
#pragma once

#include "tiers/tier.hpp"

#include <larder/status.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace larder::tiers {

inline constexpr char kGpuTierModule[] = "liblarder_gpu_tier.so";
// Names the module's file, in place of the search (read at each open).
inline constexpr char kGpuTierModuleVariable[] = "LARDER_GPU_TIER_MODULE";
inline constexpr char kGpuTierEntry[] = "larder_gpu_tier_open";

// Opens the GPU tier on CUDA device `device` ("0", "1", ...; empty: 0),
// holding at most `capacity_bytes` (a nonzero page multiple). The module is
// the file $LARDER_GPU_TIER_MODULE names where it is set; else the first
// that loads of liblarder_gpu_tier.so beside the shared object or
// executable that holds this code, in the libdir larder was configured to
// install to, and through the loader's search. Errors: unsupported (a build
// without the GPU tier; no module loads, with each file tried and the
// loader's reason; a module without the entry point or of another larder
// version; no such CUDA device or no driver, with the CUDA error),
// invalid_argument (a device that is no index).
status open_gpu_tier(const std::string& device, std::uint64_t capacity_bytes, std::unique_ptr<tier>* out);

}  // namespace larder::tiers

// The module's one entry point, found by name with dlsym (hence C linkage):
// opens the GPU tier on `device` with `capacity_bytes` into *out, its
// status into *result. A module built as another larder version than
// `version` (the caller's LARDER_VERSION_STRING) refuses with unsupported.
// The module and the library are built from the same tree, so the C++
// objects passed across (status, the tier and its virtual functions) have
// the same layout on both sides; the tier's code stays in the module, which
// is never unloaded.
extern "C" void larder_gpu_tier_open(const char* version, int device, std::uint64_t capacity_bytes,
                                     larder::status* result, std::unique_ptr<larder::tiers::tier>* out);
