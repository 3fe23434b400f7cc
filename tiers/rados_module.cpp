// open_rados_remote and open_remote_tier (rados_module.hpp): find
// liblarder_rados.so, Ceph support's module, and open through its entry
// points; where the build has no librados, a clear refusal.
#include "tiers/rados_module.hpp"

#include "port/module.hpp"

#include "larder_config.h"

#include <larder/version.hpp>

namespace larder::tiers {
namespace {

// The pool and ceph.conf a spec "POOL[@CONF]" names.
struct pool_spec {
  std::string pool;
  std::string conf;
};

// Parses `spec` and finds the module's entry point `entry`; `what`, what
// the caller opens, heads every error.
status prepare(const std::string& what, const std::string& spec, const char* entry, pool_spec* where,
               void** address) {
  if (!LARDER_HAVE_RADOS)
    return status(errc::unsupported, what + ": this library was built without Ceph support (librados)");
  const std::size_t at = spec.find('@');
  where->pool = spec.substr(0, at);
  where->conf = at == std::string::npos ? "" : spec.substr(at + 1);
  if (where->pool.empty()) return status(errc::invalid_argument, what + ": no pool named (POOL[@CONF])");
  status s = port::find_module_entry({"Ceph support", kRadosModule, kRadosModuleVariable}, entry, address);
  return s.ok() ? s : status(errc::unsupported, what + ": " + s.message());
}

}  // namespace

status open_rados_remote(const std::string& spec, bool create, std::unique_ptr<chunks::remote_store>* out) {
  pool_spec where;
  void* entry = nullptr;
  if (status s = prepare("rados:" + spec, spec, kRadosStoreEntry, &where, &entry); !s.ok()) return s;
  status result;
  reinterpret_cast<decltype(&larder_rados_store_open)>(entry)(LARDER_VERSION_STRING, where.pool.c_str(),
                                                              where.conf.c_str(), create, &result, out);
  return result;
}

status open_remote_tier(const std::string& spec, const std::string& heap_id, std::uint64_t capacity_bytes,
                        std::unique_ptr<tier>* out) {
  pool_spec where;
  void* entry = nullptr;
  if (status s = prepare("remote tier " + spec, spec, kRadosTierEntry, &where, &entry); !s.ok()) return s;
  status result;
  reinterpret_cast<decltype(&larder_rados_tier_open)>(entry)(LARDER_VERSION_STRING, where.pool.c_str(),
                                                             where.conf.c_str(), heap_id.c_str(), capacity_bytes,
                                                             &result, out);
  return result;
}

}  // namespace larder::tiers
