// The tiers the migrator moves pods to: the disk tier (LARDER_TIER_DISK),
// and for an anonymous heap the persistent-memory tier (LARDER_TIER_PMEM),
// the remote tier (a Ceph pool) and the GPU tier (each a module loaded
// when a policy names it), where they are built. A shm heap's pages must
// outlive its process in their tier, which only the disk tier's kept form
// does.
#include "runtime/migration_state.hpp"

#include "tiers/gpu_module.hpp"
#include "tiers/rados_module.hpp"

#include "larder_config.h"

#if LARDER_HAVE_DISK_TIER
#include "tiers/disk/disk_tier.hpp"
#endif
#if LARDER_HAVE_PMEM_TIER
#include "tiers/pmem/pmem_tier.hpp"
#endif

namespace larder {

namespace {
constexpr std::size_t kDefaultCapacity = std::size_t{1} << 30;
}

status open_migration_tier(const tier_config& config, bool keep, const std::string& heap_id,
                           std::unique_ptr<tiers::tier>* out) {
  if (keep && config.kind != tier_kind::disk)
    return status(errc::unsupported, "a shm heap's evicted pages must outlive its process: only a disk tier keeps them");
  std::uint64_t capacity = config.capacity != 0 ? config.capacity : kDefaultCapacity;
  capacity -= capacity % tiers::kTierPageSize;
  // Its path is a device index, empty for device 0.
  if (config.kind == tier_kind::gpu) return tiers::open_gpu_tier(config.path, capacity, out);
  if (config.path.empty()) return status(errc::invalid_argument, std::string("a ") + to_string(config.kind) + " tier needs a path");
  if (config.path.size() > layout::kTierPathMax)
    return status(errc::invalid_argument, "a tier's path is at most " + std::to_string(layout::kTierPathMax) + " bytes");
  if (config.kind == tier_kind::remote) return tiers::open_remote_tier(config.path, heap_id, capacity, out);
  if (config.kind == tier_kind::pmem) {
#if LARDER_HAVE_PMEM_TIER
    tiers::pmem_tier_options options;
    options.capacity_bytes = capacity;
    std::unique_ptr<tiers::pmem_tier> pmem;
    if (status s = tiers::pmem_tier::open(config.path, options, &pmem); !s.ok()) return s;
    *out = std::move(pmem);
    return {};
#else
    (void)out;
    return status(errc::unsupported, "this build has no persistent-memory tier (LARDER_TIER_PMEM=OFF or no libpmem2)");
#endif
  }
#if LARDER_HAVE_DISK_TIER
  tiers::disk_tier_options options;
  options.capacity_bytes = capacity;
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
