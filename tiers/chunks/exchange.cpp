// Chunks and versions as they travel between two stores (push and pull,
// transfer.hpp): which chunks a store lacks, chunks read and added as
// stored (no second compression), and versions published byte for byte
// so that they keep their ids.
#include "tiers/chunks/chunk_store.hpp"

#include "tiers/chunks/files.hpp"
#include "tiers/chunks/pack_reader.hpp"
#include "tiers/chunks/pack_writer.hpp"

namespace larder::chunks {

status chunk_store::contains(const fingerprint* names, std::size_t count, std::vector<bool>* present) {
  if (status s = ensure_locked(); !s.ok()) return s;
  present->assign(count, false);
  for (std::size_t i = 0; i < count; ++i) (*present)[i] = names[i] == zero_page() || index_.contains(names[i]);
  return {};
}

status chunk_store::get_stored(const fingerprint* names, std::size_t count, std::vector<stored_chunk>* out) {
  out->assign(count, stored_chunk{});
  return read_records(names, count, nullptr, out->data(), true);
}

status chunk_store::put_stored(const stored_chunk* chunks, std::size_t count) {
  if (status s = ensure_locked(); !s.ok()) return s;
  char page[kPageSize];
  for (std::size_t i = 0; i < count; ++i) {
    const stored_chunk& c = chunks[i];
    if (c.name == zero_page() || index_.contains(c.name)) continue;
    if (const char* why = check_payload(c.name, c.how, c.payload, zstd_, page)) {
      return status(errc::corrupt, "chunk " + c.name.hex() + " as received: " + why);
    }
    if (status s = ensure_writer(); !s.ok()) return s;
    index_entry e;
    if (status s = note_added(writer_->add_stored(c.name, c.how, c.payload, &e), c.name, e); !s.ok()) return s;
  }
  return {};
}

status chunk_store::import_version(std::string_view manifest, std::string_view table, version_id* id) {
  *id = fingerprint_of(manifest.data(), manifest.size());
  const std::string name = "versions/" + id->hex();
  version_record v;
  status s = decode_manifest(manifest, name, true, &v);
  std::string held;
  const bool table_given = !table.empty();
  if (s.ok() && v.has_table && !table_given) {
    s = read_named("tables/" + v.table.hex(), v.table, &held);
    if (s.is(errc::not_found)) s = status(errc::not_found, name + ": its base tables/" + v.table.hex() + " is not in the store");
    table = held;
  }
  if (s.ok()) s = decode_version(manifest, table, name, &v);
  if (s.ok()) s = ensure_locked();
  if (s.ok()) s = flush();
  for (std::size_t i = 0; s.ok() && i < v.pages.size(); ++i) {
    if (!index_.contains(v.pages[i].chunk)) {
      s = status(errc::not_found, name + " names chunk " + v.pages[i].chunk.hex() + ", which is not in the store");
    }
  }
  if (s.ok() && v.has_table && table_given) s = publish_table(std::string(table), v.table);
  if (s.ok()) s = publish_file(*files_, versions_dir_, id->hex(), manifest, false);
  status r = release();
  return s.ok() ? r : s;
}

bool chunk_store::holds_table(const fingerprint& id) const { return exists(tables_dir_ + "/" + id.hex()); }

}  // namespace larder::chunks
