// open_gpu_tier (gpu_module.hpp): finds liblarder_gpu_tier.so, the GPU
// tier's module, and opens the tier through its entry point; where the
// build has no GPU tier, a clear refusal.
#include "tiers/gpu_module.hpp"

#include "port/module.hpp"
#include "port/os.hpp"

#include "larder_config.h"

#include <larder/version.hpp>

#include <charconv>
#include <vector>

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

// The files to try, in order (gpu_module.hpp), and whether the
// environment named the one file.
std::vector<std::string> module_candidates(bool* named) {
  const char* variable = port::get_env(kGpuTierModuleVariable);
  *named = variable != nullptr && variable[0] != '\0';
  if (*named) return {variable};
  std::vector<std::string> files;
  std::string beside = port::directory_of_code(reinterpret_cast<const void*>(&open_gpu_tier));
  if (!beside.empty()) files.push_back(beside + "/" + kGpuTierModule);
  std::string installed = std::string(LARDER_INSTALL_LIBDIR) + "/" + kGpuTierModule;
  if (files.empty() || files.front() != installed) files.push_back(installed);
  files.push_back(kGpuTierModule);
  return files;
}

// The loader's reasons name the file they are about.
status find_entry(decltype(&larder_gpu_tier_open)* entry) {
  bool named = false;
  std::string reasons;
  for (const std::string& file : module_candidates(&named)) {
    std::string why;
    void* module = port::load_module(file.c_str(), &why);
    if (module == nullptr) {
      if (!reasons.empty()) reasons += "; ";
      reasons += (file.find('/') == std::string::npos ? "through the loader's search, " : "") + why;
      continue;
    }
    void* symbol = port::module_symbol(module, kGpuTierEntry, &why);
    if (symbol == nullptr) return status(errc::unsupported, "GPU tier: not larder's GPU tier module: " + why);
    *entry = reinterpret_cast<decltype(&larder_gpu_tier_open)>(symbol);
    return {};
  }
  return status(errc::unsupported, std::string("GPU tier: its module could not be loaded") +
                                       (named ? std::string(" (") + kGpuTierModuleVariable + " names it)" : "") + ": " +
                                       reasons);
}

}  // namespace

status open_gpu_tier(const std::string& device, std::uint64_t capacity_bytes, std::unique_ptr<tier>* out) {
  if (!LARDER_HAVE_GPU_TIER)
    return status(errc::unsupported, "this build has no GPU tier (LARDER_TIER_GPU=OFF or no CUDA toolkit found)");
  int index = 0;
  if (status s = parse_device(device, &index); !s.ok()) return s;
  decltype(&larder_gpu_tier_open) entry = nullptr;
  if (status s = find_entry(&entry); !s.ok()) return s;
  status result;
  entry(LARDER_VERSION_STRING, index, capacity_bytes, &result, out);
  return result;
}

}  // namespace larder::tiers
