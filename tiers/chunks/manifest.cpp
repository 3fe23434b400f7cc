// Manifest bytes: a fixed header, the base table's id (1.1), message,
// metadata, and the page table as one zstd frame of page-number deltas
// (LEB128) followed by fingerprints; base tables: a header and such a frame.
#include "tiers/chunks/manifest.hpp"

#include "tiers/chunks/format.hpp"

#include <zstd.h>

#include <cstring>
#include <limits>

namespace larder::chunks {
namespace {

// The page table is written once per checkpoint and read on checkout:
// a middle level trades little time for a smaller manifest.
constexpr int kTableZstdLevel = 3;
constexpr std::size_t kMaxVarint = 10;
// Pages of the largest heap (2 TiB of 4 KiB pages): a bound on a base
// table, which records no heap size of its own.
constexpr std::uint64_t kMaxTablePages = std::uint64_t{1} << 29;

void put_varint(std::string* out, std::uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

bool get_varint(std::string_view* in, std::uint64_t* v) {
  std::uint64_t value = 0;
  for (unsigned shift = 0; shift < 64 && !in->empty(); shift += 7) {
    auto byte = static_cast<std::uint8_t>(in->front());
    in->remove_prefix(1);
    value |= std::uint64_t{byte & 0x7fu} << shift;
    if ((byte & 0x80) == 0) {
      *v = value;
      return true;
    }
  }
  return false;
}

// Sorted, each page once, below `page_limit`; the zero page only where
// it means "no longer listed" (a manifest's changes to a base table).
status check_pages(const std::vector<page_entry>& pages, std::uint64_t page_limit, bool zero_allowed) {
  for (std::size_t i = 0; i < pages.size(); ++i) {
    const page_entry& e = pages[i];
    if (i > 0 && e.page <= pages[i - 1].page) return status(errc::invalid_argument, "manifest pages not sorted and distinct");
    if (!zero_allowed && e.chunk == zero_page()) return status(errc::invalid_argument, "manifest lists a zero page");
    if (e.page >= page_limit) return status(errc::invalid_argument, "manifest page beyond the heap's size");
  }
  return {};
}

status check_record(const version_record& v) {
  if (v.message.size() > std::numeric_limits<std::uint32_t>::max() ||
      v.metadata.size() > std::numeric_limits<std::uint32_t>::max()) {
    return status(errc::invalid_argument, "manifest message or metadata too large");
  }
  return check_pages(v.pages, v.heap_size / kPageSize, false);
}

// A page table's zstd frame: page-number deltas (LEB128), then the fingerprints.
status encode_frame(const std::vector<page_entry>& pages, std::string* frame) {
  std::string table;
  table.reserve(pages.size() * (16 + 2));
  std::uint64_t next = 0;
  for (const page_entry& e : pages) {
    put_varint(&table, e.page - next);
    next = e.page + 1;
  }
  for (const page_entry& e : pages) {
    fingerprint_bytes b = e.chunk.bytes();
    table.append(reinterpret_cast<const char*>(b.bytes), sizeof b.bytes);
  }
  frame->resize(ZSTD_compressBound(table.size()));
  std::size_t n = ZSTD_compress(frame->data(), frame->size(), table.data(), table.size(), kTableZstdLevel);
  if (ZSTD_isError(n) || n > std::numeric_limits<std::uint32_t>::max()) {
    return status(errc::invalid_argument, "manifest page table too large");
  }
  frame->resize(n);
  return {};
}

status decode_frame(std::string_view frame, std::uint64_t count, std::uint64_t page_limit, const std::string& what,
                    std::vector<page_entry>* out) {
  unsigned long long content = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (content == ZSTD_CONTENTSIZE_ERROR || content == ZSTD_CONTENTSIZE_UNKNOWN || count > page_limit ||
      content > count * (16 + kMaxVarint) || content < count * 17) {
    return status(errc::corrupt, what + ": damaged page table");
  }
  std::string table(content, '\0');
  std::size_t n = ZSTD_decompress(table.data(), table.size(), frame.data(), frame.size());
  if (ZSTD_isError(n) || n != content) return status(errc::corrupt, what + ": damaged page table");
  std::string_view deltas(table.data(), table.size() - count * 16);
  const char* chunks = table.data() + deltas.size();
  out->resize(count);
  std::uint64_t next = 0;
  for (std::uint64_t i = 0; i < count; ++i) {
    std::uint64_t delta = 0;
    if (!get_varint(&deltas, &delta)) return status(errc::corrupt, what + ": damaged page table");
    fingerprint_bytes b;
    std::memcpy(b.bytes, chunks + i * 16, 16);
    (*out)[i] = page_entry{next + delta, fingerprint::from(b)};
    next = (*out)[i].page + 1;
  }
  if (!deltas.empty()) return status(errc::corrupt, what + ": damaged page table");
  return {};
}

}  // namespace

std::vector<page_entry> table_changes(const std::vector<page_entry>& from, const std::vector<page_entry>& to) {
  std::vector<page_entry> out;
  std::size_t i = 0, j = 0;
  while (i < from.size() || j < to.size()) {
    if (j == to.size() || (i < from.size() && from[i].page < to[j].page)) {
      out.push_back({from[i++].page, zero_page()});
    } else if (i == from.size() || to[j].page < from[i].page) {
      out.push_back(to[j++]);
    } else {
      if (from[i].chunk != to[j].chunk) out.push_back(to[j]);
      ++i;
      ++j;
    }
  }
  return out;
}

std::vector<page_entry> apply_changes(const std::vector<page_entry>& table, const std::vector<page_entry>& changes) {
  std::vector<page_entry> out;
  out.reserve(table.size() + changes.size());
  std::size_t j = 0;
  auto add_changes = [&](std::uint64_t upto) {
    for (; j < changes.size() && changes[j].page < upto; ++j)
      if (changes[j].chunk != zero_page()) out.push_back(changes[j]);
  };
  for (const page_entry& e : table) {
    add_changes(e.page);
    if (j < changes.size() && changes[j].page == e.page) continue;  // changed: added above
    out.push_back(e);
  }
  add_changes(~std::uint64_t{0});
  return out;
}

status encode_manifest(const version_record& v, const fingerprint* table, const std::vector<page_entry>& changes,
                       std::string* out) {
  if (status s = check_record(v); !s.ok()) return s;
  const std::vector<page_entry>& listed = table != nullptr ? changes : v.pages;
  if (table != nullptr) {
    if (status s = check_pages(changes, v.heap_size / kPageSize, true); !s.ok()) return s;
  }
  std::string frame;
  if (status s = encode_frame(listed, &frame); !s.ok()) return s;
  manifest_header h{};
  h.magic = kManifestMagic;
  h.major = kFormatMajor;
  h.minor = kFormatMinor;
  std::memcpy(h.heap_uuid, v.heap_uuid.data(), sizeof h.heap_uuid);
  h.base_address = v.base_address;
  h.heap_size = v.heap_size;
  h.created_ns = v.created_ns;
  if (v.has_parent) h.parent = v.parent.bytes();
  h.page_count = v.pages.size();
  h.message_size = static_cast<std::uint32_t>(v.message.size());
  h.metadata_size = static_cast<std::uint32_t>(v.metadata.size());
  h.table_size = static_cast<std::uint32_t>(frame.size());
  h.flags = table != nullptr ? kManifestOnTable : 0;
  out->assign(reinterpret_cast<const char*>(&h), sizeof h);
  if (table != nullptr) {
    manifest_table_ref ref{table->bytes(), changes.size()};
    out->append(reinterpret_cast<const char*>(&ref), sizeof ref);
  }
  *out += v.message;
  *out += v.metadata;
  *out += frame;
  return {};
}

status decode_manifest(std::string_view bytes, const std::string& what, bool header_only, version_record* v,
                       std::uint64_t* page_count) {
  manifest_header h;
  if (bytes.size() < sizeof h) return status(errc::corrupt, what + ": shorter than a manifest header");
  std::memcpy(&h, bytes.data(), sizeof h);
  if (h.magic != kManifestMagic) return status(errc::corrupt, what + ": bad magic");
  if (h.major > kFormatMajor) return status(errc::newer_format, what);
  if ((h.flags & ~kManifestOnTable) != 0) return status(errc::corrupt, what + ": unknown flags");
  const bool on_table = (h.flags & kManifestOnTable) != 0;
  manifest_table_ref ref{};
  std::uint64_t expected = sizeof h + (on_table ? sizeof ref : 0) + std::uint64_t{h.message_size} + h.metadata_size + h.table_size;
  if (bytes.size() != expected) return status(errc::corrupt, what + ": its size does not match its header");
  std::memcpy(v->heap_uuid.data(), h.heap_uuid, sizeof h.heap_uuid);
  v->base_address = h.base_address;
  v->heap_size = h.heap_size;
  v->created_ns = h.created_ns;
  v->parent = fingerprint::from(h.parent);
  v->has_parent = v->parent != fingerprint{};
  bytes.remove_prefix(sizeof h);
  v->has_table = on_table;
  if (on_table) {
    std::memcpy(&ref, bytes.data(), sizeof ref);
    v->table = fingerprint::from(ref.table);
    bytes.remove_prefix(sizeof ref);
  }
  v->message.assign(bytes.substr(0, h.message_size));
  v->metadata.assign(bytes.substr(h.message_size, h.metadata_size));
  v->pages.clear();
  if (page_count != nullptr) *page_count = h.page_count;
  if (header_only) return {};
  std::string_view frame = bytes.substr(std::uint64_t{h.message_size} + h.metadata_size);
  const std::uint64_t listed = on_table ? ref.change_count : h.page_count;
  if (status s = decode_frame(frame, listed, h.heap_size / kPageSize, what, &v->pages); !s.ok()) return s;
  if (status s = check_pages(v->pages, h.heap_size / kPageSize, on_table); !s.ok())
    return status(errc::corrupt, what + ": " + s.message());
  return {};
}

status encode_table(const std::vector<page_entry>& pages, std::string* out) {
  if (status s = check_pages(pages, ~std::uint64_t{0}, false); !s.ok()) return s;
  std::string frame;
  if (status s = encode_frame(pages, &frame); !s.ok()) return s;
  table_header h{};
  h.magic = kTableMagic;
  h.major = kFormatMajor;
  h.minor = kFormatMinor;
  h.page_count = pages.size();
  out->assign(reinterpret_cast<const char*>(&h), sizeof h);
  *out += frame;
  return {};
}

status decode_table(std::string_view bytes, const std::string& what, std::vector<page_entry>* out) {
  table_header h;
  if (bytes.size() < sizeof h) return status(errc::corrupt, what + ": shorter than a table header");
  std::memcpy(&h, bytes.data(), sizeof h);
  if (h.magic != kTableMagic) return status(errc::corrupt, what + ": bad magic");
  if (h.major > kFormatMajor) return status(errc::newer_format, what);
  bytes.remove_prefix(sizeof h);
  if (status s = decode_frame(bytes, h.page_count, kMaxTablePages, what, out); !s.ok()) return s;
  if (status s = check_pages(*out, ~std::uint64_t{0}, false); !s.ok()) return status(errc::corrupt, what + ": " + s.message());
  return {};
}

status decode_version(std::string_view manifest, std::string_view table, const std::string& what,
                      version_record* out) {
  std::uint64_t page_count = 0;
  if (status s = decode_manifest(manifest, what, false, out, &page_count); !s.ok() || !out->has_table) return s;
  const std::string table_name = "tables/" + out->table.hex();
  if (fingerprint_of(table.data(), table.size()) != out->table) {
    return status(errc::corrupt, what + ": its base " + table_name + ": its bytes do not match its id");
  }
  std::vector<page_entry> base;
  if (status s = decode_table(table, table_name, &base); !s.ok()) return status(errc::corrupt, what + ": its base " + s.message());
  out->pages = apply_changes(base, out->pages);
  if (out->pages.size() != page_count || (!out->pages.empty() && out->pages.back().page >= out->heap_size / kPageSize)) {
    return status(errc::corrupt, what + ": its pages do not add up with " + table_name);
  }
  return {};
}

}  // namespace larder::chunks
