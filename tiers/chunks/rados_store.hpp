// A chunk store in a Ceph pool (port/rados.hpp), as a remote_store: where
// `larder push ... rados:POOL` sends versions. Built where librados is
// found, into liblarder (not liblarder_malloc, which answers such remotes
// with `unsupported`: rados_absent.cpp). Entry point: open_rados_store.
//
// Objects (docs/format/chunks.md, "In a Ceph pool"), named so that the
// pool may hold others beside them:
//   chunks.store         the marker: a store_header (format.hpp)
//   pack.<16 hex>        chunk records, about 4 MiB of them
//   index.<16 hex>       that pack's index (the format of "<id>.index")
//   version.<32 hex>     a manifest, byte for byte as in a directory store
//   table.<32 hex>       a base table, likewise
//   ref.heads/<n>, ref.tags/<n>   a version id and a newline
// Each write is durable once the cluster acknowledges it; a pack is
// written before its index, and push writes chunks before the manifest
// naming them, and that before the ref (transfer.hpp). A ref's move is a
// read and a write: not atomic against another push of the same ref at
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
