// Index files, index rebuilds and record decoding.
#include "tiers/chunks/pack_reader.hpp"

#include "port/os.hpp"
#include "tiers/chunks/files.hpp"
#include "tiers/chunks/pack_writer.hpp"

#include <xxhash.h>
#include <zstd.h>

#include <cstring>

namespace larder::chunks {
namespace {

// A record's stored form: the page itself, or a zstd frame no larger.
bool stored_form_ok(std::uint32_t stored_size, std::uint8_t how) {
  return stored_size > 0 && stored_size <= kPageSize &&
         (how == static_cast<std::uint8_t>(encoding::raw) ? stored_size == kPageSize
                                                          : how == static_cast<std::uint8_t>(encoding::zstd));
}

}  // namespace

bool parse_pack_name(std::string_view name, std::uint64_t* id) {
  constexpr std::string_view kSuffix = ".pack";
  if (name.size() != 16 + kSuffix.size() || name.substr(16) != kSuffix) return false;
  std::uint64_t value = 0;
  for (char c : name.substr(0, 16)) {
    unsigned digit = 0;
    if (!hex_digit(c, &digit)) return false;
    value = (value << 4) | digit;
  }
  *id = value;
  return true;
}

status load_index(const std::string& packs_dir, std::uint64_t pack_id, std::vector<index_entry>* out,
                  std::uint64_t* pack_size) {
  std::string path = packs_dir + "/" + index_name(pack_id);
  std::string bytes;
  if (status s = read_file(path, &bytes); !s.ok()) return s;
  return decode_index(bytes, path, pack_id, out, pack_size);
}

status decode_index(std::string_view bytes, const std::string& what, std::uint64_t pack_id,
                    std::vector<index_entry>* out, std::uint64_t* pack_size) {
  index_header h;
  if (bytes.size() < sizeof h) return status(errc::corrupt, what + ": shorter than its header");
  std::memcpy(&h, bytes.data(), sizeof h);
  if (h.magic != kIndexMagic) return status(errc::corrupt, what + ": bad magic");
  if (h.major > kFormatMajor) return status(errc::newer_format, what);
  if (h.pack_id != pack_id) return status(errc::corrupt, what + ": written for another pack");
  std::size_t body = bytes.size() - sizeof h;
  if (body % sizeof(index_entry) != 0 || body / sizeof(index_entry) != h.record_count) {
    return status(errc::corrupt, what + ": its size does not match its record count");
  }
  std::uint64_t seed = XXH3_64bits(&h, offsetof(index_header, checksum));
  if (XXH3_64bits_withSeed(bytes.data() + sizeof h, body, seed) != h.checksum) {
    return status(errc::corrupt, what + ": checksum mismatch");
  }
  out->resize(h.record_count);
  std::memcpy(out->data(), bytes.data() + sizeof h, body);
  // A checksum only says the index is as written: readers size their
  // buffers by these entries, so one that no pack record could be is refused.
  for (const index_entry& e : *out) {
    if (!stored_form_ok(e.stored_size, e.encoding) || e.offset > h.pack_size ||
        h.pack_size - e.offset < sizeof(record_header) + e.stored_size) {
      out->clear();
      return status(errc::corrupt, what + ": an entry of " + std::to_string(e.stored_size) + " bytes at offset " +
                                       std::to_string(e.offset) + " is no record of the pack");
    }
  }
  *pack_size = h.pack_size;
  return {};
}

namespace {

bool header_ok(const record_header& h) {
  return h.magic == kRecordMagic && h.check == XXH32(&h, offsetof(record_header, check), 0) &&
         stored_form_ok(h.stored_size, h.encoding);
}

// Whether the footer at the end of `bytes` (the whole pack) closes a pack
// of `records_end` bytes of records.
bool footer_ok(const std::string& bytes, std::uint64_t pack_id, std::uint64_t records_end, std::uint64_t count) {
  if (bytes.size() < kPackAlign || bytes.size() % kPackAlign != 0) return false;
  pack_footer f;
  std::memcpy(&f, bytes.data() + bytes.size() - kPackAlign, sizeof f);
  return f.magic == kFooterMagic && f.checksum == XXH3_64bits(&f, offsetof(pack_footer, checksum)) &&
         f.pack_id == pack_id && f.records_end == records_end && f.record_count == count &&
         (records_end + kPackAlign - 1) / kPackAlign * kPackAlign == bytes.size() - kPackAlign;
}

}  // namespace

status scan_pack(int fd, std::uint64_t pack_id, const std::string& path, std::vector<index_entry>* out,
                 std::string* whole) {
  out->clear();
  std::uint64_t size = 0;
  std::string scratch;
  std::string& bytes = whole != nullptr ? *whole : scratch;
  int err = port::file_size(fd, &size);
  if (err == 0) {
    bytes.resize(size);
    err = port::read_at(fd, bytes.data(), size, 0);
  }
  if (err != 0) return status::from_errno(err, "reading " + path);
  pack_header ph;
  if (size < sizeof ph) return status(errc::corrupt, path + ": shorter than its header");
  std::memcpy(&ph, bytes.data(), sizeof ph);
  if (ph.magic != kPackMagic || ph.checksum != XXH3_64bits(&ph, offsetof(pack_header, checksum)) ||
      ph.pack_id != pack_id) {
    return status(errc::corrupt, path + ": bad pack header");
  }
  if (ph.major > kFormatMajor) return status(errc::newer_format, path);
  std::uint64_t at = sizeof ph;
  while (at + sizeof(record_header) <= size) {
    record_header h;
    std::memcpy(&h, bytes.data() + at, sizeof h);
    if (!header_ok(h) || at + sizeof h + h.stored_size > size) break;
    out->push_back(index_entry{h.fingerprint, at, h.stored_size, h.encoding, {}});
    at += sizeof h + h.stored_size;
  }
  if (!footer_ok(bytes, pack_id, at, out->size())) {
    return status(errc::corrupt, path + ": damaged or cut short after " + std::to_string(out->size()) + " records");
  }
  return {};
}

const char* decode_record(const char* record, std::size_t length, const fingerprint& want, ZSTD_DCtx_s* zstd,
                          void* page) {
  record_header h;
  if (length < sizeof h) return "record cut short (the pack is truncated)";
  std::memcpy(&h, record, sizeof h);
  if (!header_ok(h)) return "damaged record header";
  if (fingerprint::from(h.fingerprint) != want) return "the record holds another chunk";
  if (length < sizeof h + h.stored_size) return "record cut short (the pack is truncated)";
  return check_payload(want, static_cast<encoding>(h.encoding), std::string_view(record + sizeof h, h.stored_size), zstd,
                       page);
}

const char* check_payload(const fingerprint& name, encoding how, std::string_view payload, ZSTD_DCtx_s* zstd,
                          void* page) {
  if (how == encoding::raw) {
    if (payload.size() != kPageSize) return "a raw chunk that is not one page";
    std::memcpy(page, payload.data(), kPageSize);
  } else if (how == encoding::zstd) {
    if (payload.empty() || payload.size() > kPageSize) return "a compressed chunk larger than a page";
    std::size_t n = ZSTD_decompressDCtx(zstd, page, kPageSize, payload.data(), payload.size());
    if (ZSTD_isError(n) || n != kPageSize) return "damaged compressed data";
  } else {
    return "an unknown encoding";
  }
  return page_fingerprint(page) == name ? nullptr : "the page does not match its fingerprint";
}

}  // namespace larder::chunks
