// The remote tier as the migrator opens it, from a tier_config's path
// "POOL[@CONF]" (a Ceph pool, CONF the cluster's ceph.conf): tiers/rados
// where librados is part of the library, else a clear refusal
// (tiers/chunks/rados_absent.cpp).
#pragma once

#include "tiers/tier.hpp"

#include <larder/status.hpp>

#include <memory>
#include <string>

namespace larder::tiers {

// `heap_id` names the tier's objects (no '/'): unique to the heap and the
// process, as the objects are scratch that a tier of the same id removes.
status open_remote_tier(const std::string& spec, const std::string& heap_id, std::uint64_t capacity_bytes,
                        std::unique_ptr<tier>* out);

}  // namespace larder::tiers
