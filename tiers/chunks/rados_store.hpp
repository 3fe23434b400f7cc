// A chunk store in a Ceph pool (port/rados.hpp), as a remote_store: where
// `larder push ... rados:POOL` sends versions. Built where librados is
// found, into liblarder (not liblarder_malloc, which answers such remotes
// with `unsupported`: rados_absent.cpp). Entry point: open_rados_store.
//
// One object per thing, named so that the pool may hold other objects:
//   chunks.store         the marker: a store_header (format.hpp)
//   chunk.<32 hex>       a chunk: its record (record_header, then payload)
//   version.<32 hex>     a manifest, byte for byte as in a directory store
//   table.<32 hex>       a base table, likewise
//   ref.heads/<n>, ref.tags/<n>   a version id and a newline
// Each write is durable once the cluster acknowledges it, and push writes
// chunks, then the manifest, then the ref (transfer.hpp). A ref's move is
// a read and a write: not atomic against another push of the same ref at
// the same instant.
#pragma once

#include "tiers/chunks/remote_store.hpp"

namespace larder::chunks {

// SPEC is what follows "rados:": POOL or POOL@CONF (CONF: the cluster's
// ceph.conf; without one, $CEPH_CONF or Ceph's default places). With
// `create`, a pool that is empty becomes a store; one holding other
// objects and no marker is refused (not_a_heap), as is one without a
// marker when not creating.
status open_rados_store(const std::string& spec, bool create, std::unique_ptr<remote_store>* out);

}  // namespace larder::chunks
