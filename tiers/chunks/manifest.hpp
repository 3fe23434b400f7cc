// Manifests: what a version of one heap is (its pages' chunks, parent,
// time, message, caller's metadata), and their bytes.
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
};

// invalid_argument when `v` breaks the rules above.
status encode_manifest(const version_record& v, std::string* out);
// corrupt (naming `what`) when the bytes are not a well-formed manifest;
// newer_format for a later major version. With `header_only`, the page
// table is skipped (v->pages stays empty).
status decode_manifest(std::string_view bytes, const std::string& what, bool header_only, version_record* v);

}  // namespace larder::chunks
