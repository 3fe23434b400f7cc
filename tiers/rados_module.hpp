// Ceph support as larder opens it: push and pull to a pool
// (tiers/chunks/rados_store.hpp) and the remote tier (tiers/rados), built
// as a module of their own, liblarder_rados.so
// (tiers/rados/rados_module_entry.cpp), which links librados, so that
// liblarder and liblarder_malloc never depend on Ceph. The module is loaded
// on the first rados: remote or remote tier opened. Entry points:
// open_rados_remote, open_remote_tier.
#pragma once

#include "tiers/chunks/remote_store.hpp"
#include "tiers/tier.hpp"

#include <larder/status.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace larder::tiers {

inline constexpr char kRadosModule[] = "liblarder_rados.so";
// Names the module's file, in place of the search (read at each open).
inline constexpr char kRadosModuleVariable[] = "LARDER_RADOS_MODULE";
inline constexpr char kRadosStoreEntry[] = "larder_rados_store_open";
inline constexpr char kRadosTierEntry[] = "larder_rados_tier_open";

// The chunk store in a Ceph pool that SPEC names, what follows "rados:":
// POOL or POOL@CONF (CONF the cluster's ceph.conf; without one, $CEPH_CONF
// or Ceph's default places). With `create`, an empty pool becomes a store
// (tiers/chunks/rados_store.hpp). The module is the file
// $LARDER_RADOS_MODULE names where it is set; else the first that loads of
// liblarder_rados.so beside the shared object or executable that holds
// this code, in the libdir larder was configured to install to, and
// through the loader's search (port::find_module_entry). Errors:
// unsupported (a build without librados; no module loads, with each file
// tried and the loader's reason; a module without the entry point or of
// another larder version), invalid_argument (no pool named), and those of
// the store's open.
status open_rados_remote(const std::string& spec, bool create, std::unique_ptr<chunks::remote_store>* out);

// The remote tier in the pool a tier_config's path names, "POOL[@CONF]",
// through the same module. `heap_id` names the tier's objects (no '/'):
// unique to the heap and the process, as the objects are scratch that a
// tier of the same id removes. Errors: those of open_rados_remote, and of
// rados_tier::open.
status open_remote_tier(const std::string& spec, const std::string& heap_id, std::uint64_t capacity_bytes,
                        std::unique_ptr<tier>* out);

}  // namespace larder::tiers

// The module's entry points, found by name with dlsym (hence C linkage):
// each opens its object into *out, its status into *result, for the pool
// `pool` of the cluster whose ceph.conf is `conf` (empty: Ceph's default).
// A module built as another larder version than `version` (the caller's
// LARDER_VERSION_STRING) refuses with unsupported. The module and the
// library are built from the same tree, so the C++ objects passed across
// (status, the store or tier and their virtual functions) have the same
// layout on both sides; their code stays in the module, which is never
// unloaded.
extern "C" void larder_rados_store_open(const char* version, const char* pool, const char* conf, bool create,
                                        larder::status* result, std::unique_ptr<larder::chunks::remote_store>* out);
extern "C" void larder_rados_tier_open(const char* version, const char* pool, const char* conf, const char* heap_id,
                                       std::uint64_t capacity_bytes, larder::status* result,
                                       std::unique_ptr<larder::tiers::tier>* out);
