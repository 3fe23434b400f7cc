// Manifests: what a version of one heap is (its pages' chunks, parent,
// time, message, caller's metadata), and their bytes; the base tables a
// manifest lists its pages against, and theirs.
#pragma once

#include "tiers/chunks/fingerprint.hpp"

#include <larder/status.hpp>

#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace larder::chunks {

using version_id = fingerprint;

struct page_entry {
  std::uint64_t page;  // index of the heap page (offset / kPageSize)
  fingerprint chunk;
  friend bool operator==(const page_entry&, const page_entry&) = default;
};

struct version_record {
  std::array<std::uint8_t, 16> heap_uuid{};
  std::uint64_t base_address = 0;
  std::uint64_t heap_size = 0;
  std::uint64_t created_ns = 0;  // 0 in a record given to commit: now
  bool has_parent = false;
  version_id parent;
  std::string message;
  std::string metadata;  // opaque to the store
  // Pages not listed read as zero. Sorted by page, each page once, no
  // zero-page chunk, every page below heap_size.
  std::vector<page_entry> pages;
  // Read back: the base table the manifest lists its pages against
  // (tables/<id>), if any. Ignored by commit, which chooses.
  bool has_table = false;
  fingerprint table;
};

// The pages of `to` that differ from `from` (both as version_record::
// pages), ascending; a page `to` lacks is listed with the zero page.
std::vector<page_entry> table_changes(const std::vector<page_entry>& from, const std::vector<page_entry>& to);
// `changes` (from table_changes) applied to `table`.
std::vector<page_entry> apply_changes(const std::vector<page_entry>& table, const std::vector<page_entry>& changes);

// invalid_argument when `v` breaks the rules above. With `table`, the
// manifest lists only `changes` against that base table instead of
// v.pages (1.1).
status encode_manifest(const version_record& v, const fingerprint* table, const std::vector<page_entry>& changes,
                       std::string* out);
// corrupt (naming `what`) when the bytes are not a well-formed manifest;
// newer_format for a later major version. With `header_only`, the page
// table is skipped (v->pages stays empty). For a manifest on a base table,
// v->pages gets the changes, to be applied to that table, and
// *page_count (when given) the number of pages they must come to.
status decode_manifest(std::string_view bytes, const std::string& what, bool header_only, version_record* v,
                       std::uint64_t* page_count = nullptr);

// A base table's bytes ("tables/<id>"), and back: corrupt naming `what`.
status encode_table(const std::vector<page_entry>& pages, std::string* out);
status decode_table(std::string_view bytes, const std::string& what, std::vector<page_entry>* out);

// A whole version from its manifest's bytes (named `what`) and, for a
// manifest on a base table, that table's bytes (empty otherwise): out->pages
// is the version's whole table. corrupt when the table's bytes do not match
// the id the manifest names, or its pages do not add up with the manifest's.
status decode_version(std::string_view manifest, std::string_view table, const std::string& what,
                      version_record* out);

}  // namespace larder::chunks
