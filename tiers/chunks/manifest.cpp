// Manifest bytes: a fixed header, message, metadata, and the page table as
// one zstd frame of page-number deltas (LEB128) followed by fingerprints.
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

status check_record(const version_record& v) {
  if (v.message.size() > std::numeric_limits<std::uint32_t>::max() ||
      v.metadata.size() > std::numeric_limits<std::uint32_t>::max()) {
    return status(errc::invalid_argument, "manifest message or metadata too large");
  }
  for (std::size_t i = 0; i < v.pages.size(); ++i) {
    const page_entry& e = v.pages[i];
    if (i > 0 && e.page <= v.pages[i - 1].page) return status(errc::invalid_argument, "manifest pages not sorted and distinct");
    if (e.chunk == zero_page()) return status(errc::invalid_argument, "manifest lists a zero page");
    if (e.page >= v.heap_size / kPageSize) return status(errc::invalid_argument, "manifest page beyond the heap's size");
  }
  return {};
}

}  // namespace

status encode_manifest(const version_record& v, std::string* out) {
  if (status s = check_record(v); !s.ok()) return s;
  std::string table;
  table.reserve(v.pages.size() * (16 + 2));
  std::uint64_t next = 0;
  for (const page_entry& e : v.pages) {
    put_varint(&table, e.page - next);
    next = e.page + 1;
  }
  for (const page_entry& e : v.pages) {
    fingerprint_bytes b = e.chunk.bytes();
    table.append(reinterpret_cast<const char*>(b.bytes), sizeof b.bytes);
  }
  std::string frame(ZSTD_compressBound(table.size()), '\0');
  std::size_t n = ZSTD_compress(frame.data(), frame.size(), table.data(), table.size(), kTableZstdLevel);
  if (ZSTD_isError(n) || n > std::numeric_limits<std::uint32_t>::max()) {
    return status(errc::invalid_argument, "manifest page table too large");
  }
  frame.resize(n);
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
  h.table_size = static_cast<std::uint32_t>(n);
  out->assign(reinterpret_cast<const char*>(&h), sizeof h);
  *out += v.message;
  *out += v.metadata;
  *out += frame;
  return {};
}

status decode_manifest(std::string_view bytes, const std::string& what, bool header_only, version_record* v) {
  manifest_header h;
  if (bytes.size() < sizeof h) return status(errc::corrupt, what + ": shorter than a manifest header");
  std::memcpy(&h, bytes.data(), sizeof h);
  if (h.magic != kManifestMagic) return status(errc::corrupt, what + ": bad magic");
  if (h.major > kFormatMajor) return status(errc::newer_format, what);
  std::uint64_t expected = sizeof h + std::uint64_t{h.message_size} + h.metadata_size + h.table_size;
  if (bytes.size() != expected) return status(errc::corrupt, what + ": its size does not match its header");
  std::memcpy(v->heap_uuid.data(), h.heap_uuid, sizeof h.heap_uuid);
  v->base_address = h.base_address;
  v->heap_size = h.heap_size;
  v->created_ns = h.created_ns;
  v->parent = fingerprint::from(h.parent);
  v->has_parent = v->parent != fingerprint{};
  bytes.remove_prefix(sizeof h);
  v->message.assign(bytes.substr(0, h.message_size));
  v->metadata.assign(bytes.substr(h.message_size, h.metadata_size));
  v->pages.clear();
  if (header_only) return {};
  std::string_view frame = bytes.substr(std::uint64_t{h.message_size} + h.metadata_size);
  unsigned long long content = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (content == ZSTD_CONTENTSIZE_ERROR || content == ZSTD_CONTENTSIZE_UNKNOWN ||
      h.page_count > h.heap_size / kPageSize || content > h.page_count * (16 + kMaxVarint) ||
      content < h.page_count * 17) {
    return status(errc::corrupt, what + ": damaged page table");
  }
  std::string table(content, '\0');
  std::size_t n = ZSTD_decompress(table.data(), table.size(), frame.data(), frame.size());
  if (ZSTD_isError(n) || n != content) return status(errc::corrupt, what + ": damaged page table");
  std::string_view deltas(table.data(), table.size() - h.page_count * 16);
  const char* chunks = table.data() + deltas.size();
  v->pages.resize(h.page_count);
  std::uint64_t next = 0;
  for (std::uint64_t i = 0; i < h.page_count; ++i) {
    std::uint64_t delta = 0;
    if (!get_varint(&deltas, &delta)) return status(errc::corrupt, what + ": damaged page table");
    fingerprint_bytes b;
    std::memcpy(b.bytes, chunks + i * 16, 16);
    v->pages[i] = page_entry{next + delta, fingerprint::from(b)};
    next = v->pages[i].page + 1;
  }
  if (!deltas.empty()) return status(errc::corrupt, what + ": damaged page table");
  if (status s = check_record(*v); !s.ok()) return status(errc::corrupt, what + ": " + s.message());
  return {};
}

}  // namespace larder::chunks
