// A chunk store in a directory as a remote_store: a backup disk, a network
// share, or the local store itself (push reads from one, pull writes into
// one). Every call goes to the chunk_store (chunk_store.hpp) opened on it.
#pragma once

#include "tiers/chunks/remote_store.hpp"

namespace larder::chunks {

class directory_store final : public remote_store {
 public:
  // Opens the store at `directory`; with options.create, a directory that
  // is absent, empty or holds only a store's layout becomes one, and any
  // other directory that is not a store is refused (not_a_heap) rather
  // than filled.
  static status open(const std::string& directory, const store_options& options,
                     std::unique_ptr<directory_store>* out);
  // The store itself: its HEAD, say, which a remote_store has not.
  chunk_store& store() { return *store_; }

  const std::string& where() const override { return directory_; }
  status has_chunks(const fingerprint* names, std::size_t count, std::vector<bool>* present) override;
  status get_chunks(const fingerprint* names, std::size_t count, std::vector<stored_chunk>* out) override;
  status put_chunks(const std::vector<stored_chunk>& chunks) override;
  status sync_chunks() override;
  status list_versions(std::vector<version_id>* out) override;
  status get_version(const version_id& id, std::string* manifest, std::string* table) override;
  status has_table(const fingerprint& id, bool* present) override;
  status put_version(std::string_view manifest, std::string_view table, version_id* id) override;
  status list_refs(std::vector<ref_entry>* out) override;
  status set_ref(const std::string& name, const version_id& id, const version_id* expected) override;
  status release() override;

 private:
  directory_store() = default;
  std::string directory_;
  std::unique_ptr<chunk_store> store_;
};

}  // namespace larder::chunks
