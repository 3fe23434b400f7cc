// The tiers the migrator moves pods to: today the disk tier, where it is
// built (LARDER_TIER_DISK). The other kinds have backends of their own
// that the migrator does not open yet.
#include "runtime/migration_state.hpp"

#include "larder_config.h"

#if LARDER_HAVE_DISK_TIER
#include "tiers/disk/disk_tier.hpp"
#endif

namespace larder {

namespace {
constexpr std::size_t kDefaultCapacity = std::size_t{1} << 30;
}

status open_migration_tier(const tier_config& config, bool keep, std::unique_ptr<tiers::tier>* out) {
  if (config.kind != tier_kind::disk)
    return status(errc::unsupported, "the migrator moves pods to a disk tier only; other tier kinds are not wired to it yet");
  if (config.path.empty()) return status(errc::invalid_argument, "a disk tier needs a path");
  if (config.path.size() > layout::kTierPathMax)
    return status(errc::invalid_argument, "a tier's path is at most " + std::to_string(layout::kTierPathMax) + " bytes");
#if LARDER_HAVE_DISK_TIER
  tiers::disk_tier_options options;
  options.capacity_bytes = config.capacity != 0 ? config.capacity : kDefaultCapacity;
  options.capacity_bytes -= options.capacity_bytes % tiers::kTierPageSize;
  // A kept tier holds a shm heap's pages, which outlive the process but
  // not the machine: the tier need only outlive the process too.
  options.keep = keep;
  options.device_sync = false;
  std::unique_ptr<tiers::disk_tier> disk;
  if (status s = tiers::disk_tier::open(config.path, options, &disk); !s.ok()) return s;
  *out = std::move(disk);
  return {};
#else
  (void)keep;
  (void)out;
  return status(errc::unsupported, "this build has no disk tier (LARDER_TIER_DISK=OFF)");
#endif
}

void remove_migration_tier(const tier_config& config) noexcept {
#if LARDER_HAVE_DISK_TIER
  if (config.kind == tier_kind::disk && !config.path.empty()) tiers::disk_tier::remove(config.path);
#else
  (void)config;
#endif
}

}  // namespace larder
