// A chunk store as push and pull see it (transfer.hpp): chunks asked
// about, read and written in batches, versions' manifests and base tables
// moved byte for byte, refs read and moved. Implementations: a chunk
// store in a directory (directory_store.hpp: another disk, a network
// share, or the local store itself), a Ceph pool. Entry point:
// open_remote.
//
// The transfer writes in the order that keeps a store valid at every
// instant: chunks, then (once they are durable) the manifest naming them,
// then refs naming it. An implementation keeps that order durable: a
// version it lists has every chunk it names, so a store killed mid-push
// still reads every version and ref it had. One object is used by one
// thread at a time.
#pragma once

#include "tiers/chunks/chunk_store.hpp"

#include <larder/status.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace larder::chunks {

class remote_store {
 public:
  virtual ~remote_store() = default;
  // What it is, for messages: a directory's path, "rados:POOL".
  virtual const std::string& where() const = 0;

  // present[i]: whether the store holds names[i] (the zero page always).
  // What it reports present stays so until put_version or release.
  virtual status has_chunks(const fingerprint* names, std::size_t count, std::vector<bool>* present) = 0;
  // The chunks as stored, each verified against its name: corrupt naming
  // the chunk; not_found when the store lacks one.
  virtual status get_chunks(const fingerprint* names, std::size_t count, std::vector<stored_chunk>* out) = 0;
  // Stores chunks, each checked against its name first (corrupt). Durable
  // once sync_chunks returns OK.
  virtual status put_chunks(const std::vector<stored_chunk>& chunks) = 0;
  virtual status sync_chunks() = 0;

  // Every version the store holds.
  virtual status list_versions(std::vector<version_id>* out) = 0;
  // A version's manifest and base table (empty when on none), each checked
  // against its id: not_found, corrupt.
  virtual status get_version(const version_id& id, std::string* manifest, std::string* table) = 0;
  // Whether the store holds the base table `id`.
  virtual status has_table(const fingerprint& id, bool* present) = 0;
  // Publishes a manifest and its base table verbatim (`table` empty: the
  // store holds it, or the manifest is on none), once every chunk it names
  // is durable in the store (not_found otherwise); *id is its id. Durable
  // once this returns OK.
  virtual status put_version(std::string_view manifest, std::string_view table, version_id* id) = 0;

  virtual status list_refs(std::vector<ref_entry>* out) = 0;
  // Sets `name` ("heads/<n>", "tags/<n>") to `id` only if it names
  // `expected` now (nullptr: it does not exist): already_exists otherwise.
  // Atomic and durable once this returns OK.
  virtual status set_ref(const std::string& name, const version_id& id, const version_id* expected) = 0;

  // Ends a transfer early: what was put stays (durable where it can be), as
  // garbage until a version names it.
  virtual status release() = 0;
};

// REMOTE as the command line takes it: "rados:POOL[@CONF]" (a Ceph pool,
// CONF the cluster's ceph.conf), else a directory. With `create`, a
// directory that is absent or empty becomes a chunk store. Errors:
// not_a_heap (a directory that is not a chunk store), unsupported (a Ceph
// pool in a build without librados, or without its module: the module is
// loaded here, tiers/rados_module.hpp), or the store's.
status open_remote(const std::string& spec, bool create, std::unique_ptr<remote_store>* out);

}  // namespace larder::chunks
