// The entry points of liblarder_rados.so, Ceph support as a module that
// larder loads on first use (tiers/rados_module.hpp): the only symbols the
// module exports.
#include "tiers/chunks/rados_store.hpp"
#include "tiers/rados/rados_tier.hpp"
#include "tiers/rados_module.hpp"

#include <larder/export.hpp>
#include <larder/version.hpp>

#include <cstring>

namespace {

// The objects passed across have one layout only between the same versions.
bool same_version(const char* version, larder::status* result) {
  if (std::strcmp(version, LARDER_VERSION_STRING) == 0) return true;
  *result = larder::status(larder::errc::unsupported, std::string("Ceph support: the module is larder ") +
                                                          LARDER_VERSION_STRING + ", the library larder " + version);
  return false;
}

}  // namespace

extern "C" LARDER_EXPORT void larder_rados_store_open(const char* version, const char* pool, const char* conf,
                                                      bool create, larder::status* result,
                                                      std::unique_ptr<larder::chunks::remote_store>* out) {
  if (same_version(version, result)) *result = larder::chunks::open_rados_store(pool, conf, create, out);
}

extern "C" LARDER_EXPORT void larder_rados_tier_open(const char* version, const char* pool, const char* conf,
                                                     const char* heap_id, std::uint64_t capacity_bytes,
                                                     larder::status* result,
                                                     std::unique_ptr<larder::tiers::tier>* out) {
  using namespace larder;
  if (!same_version(version, result)) return;
  tiers::rados_tier_options options;
  options.pool = pool;
  options.conf_path = conf;
  options.heap_id = heap_id;
  options.capacity_bytes = capacity_bytes;
  std::unique_ptr<tiers::rados_tier> tier;
  *result = tiers::rados_tier::open(options, &tier);
  if (result->ok()) *out = std::move(tier);
}
