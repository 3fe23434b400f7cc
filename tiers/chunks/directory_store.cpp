// remote_store over a chunk store in a directory (directory_store.hpp).
#include "tiers/chunks/directory_store.hpp"

#include "tiers/chunks/files.hpp"

#include <algorithm>
#include <array>

namespace larder::chunks {
namespace {

// What a store's directory holds before its marker is published: a store
// whose creation was cut short is made again, anything else is refused.
bool may_become_store(const std::string& directory) {
  std::vector<std::string> names;
  if (!list_directory(directory, &names).ok()) return true;  // absent: made
  static constexpr std::array<std::string_view, 5> kLayout = {"packs", "versions", "tables", "refs", "lock"};
  return std::all_of(names.begin(), names.end(), [](const std::string& n) {
    return std::find(kLayout.begin(), kLayout.end(), n) != kLayout.end();
  });
}

}  // namespace

status directory_store::open(const std::string& directory, const store_options& options,
                             std::unique_ptr<directory_store>* out) {
  std::unique_ptr<directory_store> d(new directory_store());
  d->directory_ = directory;
  store_options existing = options;
  existing.create = false;
  status s = chunk_store::open(directory, existing, &d->store_);
  if (s.is(errc::not_a_heap) && options.create) {
    if (!may_become_store(directory)) {
      return status(errc::not_a_heap, directory + " is not a chunk store, and not empty: refused");
    }
    s = chunk_store::open(directory, options, &d->store_);
  }
  if (!s.ok()) return s;
  *out = std::move(d);
  return {};
}

status directory_store::has_chunks(const fingerprint* names, std::size_t count, std::vector<bool>* present) {
  return store_->contains(names, count, present);
}

// Its failures name the store, as a pool's name the pool: a checkout
// reading through it says which remote failed.
status directory_store::get_chunks(const fingerprint* names, std::size_t count, std::vector<stored_chunk>* out) {
  status s = store_->get_stored(names, count, out);
  return s.ok() ? s : status(static_cast<errc>(s.code()), directory_ + ": " + s.message());
}

status directory_store::put_chunks(const std::vector<stored_chunk>& chunks) {
  return store_->put_stored(chunks.data(), chunks.size());
}

status directory_store::sync_chunks() { return store_->flush(); }

status directory_store::list_versions(std::vector<version_id>* out) {
  out->clear();
  std::vector<std::string> names;
  if (status s = list_directory(directory_ + "/versions", &names); !s.ok()) return s;
  for (const std::string& name : names) {
    version_id id;
    if (fingerprint::parse(name, &id)) out->push_back(id);
  }
  return {};
}

status directory_store::get_version(const version_id& id, std::string* manifest, std::string* table) {
  return store_->read_version_files(id, manifest, table);
}

status directory_store::has_table(const fingerprint& id, bool* present) {
  *present = store_->holds_table(id);
  return {};
}

status directory_store::put_version(std::string_view manifest, std::string_view table, version_id* id) {
  return store_->import_version(manifest, table, id);
}

status directory_store::list_refs(std::vector<ref_entry>* out) { return store_->list_refs(out); }

status directory_store::set_ref(const std::string& name, const version_id& id, const version_id* expected) {
  const version_id absent{};
  return store_->set_ref(name, id, expected != nullptr ? expected : &absent);
}

status directory_store::release() { return store_->release(); }

}  // namespace larder::chunks
