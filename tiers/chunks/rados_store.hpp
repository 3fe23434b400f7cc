// A chunk store in a Ceph pool (port/rados.hpp), as a remote_store: where
// `larder push ... rados:POOL` sends versions. Built where librados is
// found, into the module liblarder_rados.so, through which liblarder and
// liblarder_malloc open it (tiers/rados_module.hpp). Entry point:
// open_rados_store.
//
// An object for each file of a directory store, under the same name
// (docs/format/chunks.md, "In a Ceph pool"): the marker "store", packs and
// their indexes ("packs/<id>.pack": records only, about 4 MiB), manifests,
// base tables and refs; the pool may hold other objects beside them.
// Each write is durable once the cluster acknowledges it; a pack is
// written before its index, and push writes chunks before the manifest
// naming them, and that before the ref (transfer.hpp). A ref moves in one
// conditional write (its old value compared, or its absence checked, in
// the same operation), atomic against another push of the same ref.
#pragma once

#include "tiers/chunks/remote_store.hpp"

namespace larder::chunks {

// The store in `pool` of the cluster whose ceph.conf is `conf` (empty:
// $CEPH_CONF or Ceph's default places). With `create`, a pool that is
// empty becomes a store; one holding other objects and no marker is
// refused (not_a_heap), as is one without a marker when not creating.
status open_rados_store(const std::string& pool, const std::string& conf, bool create,
                        std::unique_ptr<remote_store>* out);

}  // namespace larder::chunks
