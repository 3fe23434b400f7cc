// The byte format of a chunk store's files (docs/format/chunks.md): packs
// of chunk records, pack indexes, manifests, the page tables manifests are
// based on, and the store's own marker file. Fixed-width little-endian fields; each magic reads as text in a
// hex dump and differs when its bytes are swapped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace larder::chunks {

// One version number for every file of the store; a reader refuses a
// higher major and accepts any minor.
inline constexpr std::uint16_t kFormatMajor = 1;
inline constexpr std::uint16_t kFormatMinor = 1;

inline constexpr std::size_t kPageSize = 4096;
// Pack files are written in blocks of this many bytes (the unit of a write
// and of O_DIRECT alignment): large sequential writes.
inline constexpr std::size_t kPackBlock = std::size_t{1} << 20;
inline constexpr std::size_t kPackAlign = 4096;
// A chunk is stored compressed only when that saves at least this many
// bytes (1/8 of a page): smaller savings would cost a decompression on
// every read for little space.
inline constexpr std::size_t kMinCompressionSaving = kPageSize / 8;

inline constexpr std::uint32_t kStoreMagic = 0x524C444C;    // "LDLR"
inline constexpr std::uint32_t kPackMagic = 0x4B504C4C;     // "LLPK"
inline constexpr std::uint32_t kRecordMagic = 0x4352434C;   // "LCRC"
inline constexpr std::uint32_t kFooterMagic = 0x5446504C;   // "LPFT"
inline constexpr std::uint32_t kIndexMagic = 0x5844494C;    // "LIDX"
inline constexpr std::uint32_t kManifestMagic = 0x4E414D4C; // "LMAN"
inline constexpr std::uint32_t kTableMagic = 0x4C42544C;    // "LTBL"

struct fingerprint_bytes {
  std::uint8_t bytes[16];  // XXH3-128: high 64 bits then low 64 bits, each little-endian
};

// The file "store" at the root: what the directory is.
struct store_header {
  std::uint32_t magic;
  std::uint16_t major, minor;
  std::uint8_t uuid[16];
  std::uint64_t created_ns;
  std::uint64_t checksum;  // XXH3-64 of the bytes before it
};

// The first bytes of a pack file.
struct pack_header {
  std::uint32_t magic;
  std::uint16_t major, minor;
  std::uint64_t pack_id;
  std::uint64_t created_ns;
  std::uint64_t checksum;  // XXH3-64 of the bytes before it
};

enum class encoding : std::uint8_t { raw = 0, zstd = 1 };

// Each chunk: this header, then `stored_size` bytes (the page, or its zstd
// frame). Records follow one another with no gaps.
struct record_header {
  std::uint32_t magic;
  std::uint32_t stored_size;
  std::uint8_t encoding;
  std::uint8_t reserved[3];
  fingerprint_bytes fingerprint;
  std::uint32_t check;  // XXH32 (seed 0) of the 28 bytes before it
};

// After the last record: zeros up to a multiple of kPackAlign, then one
// block of kPackAlign bytes that starts with this footer. A pack without a
// valid footer was never finished.
struct pack_footer {
  std::uint32_t magic;
  std::uint32_t reserved;
  std::uint64_t pack_id;
  std::uint64_t record_count;
  std::uint64_t records_end;  // offset just past the last record
  std::uint64_t checksum;     // XXH3-64 of the bytes before it
};

// "<id>.index": this header, then record_count entries sorted by fingerprint.
struct index_header {
  std::uint32_t magic;
  std::uint16_t major, minor;
  std::uint64_t pack_id;
  std::uint64_t pack_size;      // the pack file's size in bytes
  std::uint64_t record_count;
  std::uint64_t checksum;       // XXH3-64 of the entries, seeded with the fields before it
};

struct index_entry {
  fingerprint_bytes fingerprint;
  std::uint64_t offset;  // of the record header in the pack
  std::uint32_t stored_size;
  std::uint8_t encoding;
  std::uint8_t reserved[3];
};

// "versions/<id>": this header, the message, the metadata blob, the zstd
// frame of the page table. The id is the XXH3-128 of the whole file. With
// kManifestOnTable (1.1), a manifest_table_ref follows the header and the
// page table lists only the pages that differ from that base table.
struct manifest_header {
  std::uint32_t magic;
  std::uint16_t major, minor;
  std::uint8_t heap_uuid[16];
  std::uint64_t base_address;
  std::uint64_t heap_size;
  std::uint64_t created_ns;
  fingerprint_bytes parent;  // all zero: no parent
  std::uint64_t page_count;  // the version's non-zero pages
  std::uint32_t message_size;
  std::uint32_t metadata_size;
  std::uint32_t table_size;  // bytes of the compressed page table
  std::uint32_t flags;       // 0 in 1.0
};

inline constexpr std::uint32_t kManifestOnTable = 1;

struct manifest_table_ref {
  fingerprint_bytes table;    // tables/<id>
  std::uint64_t change_count;  // entries of the manifest's page table
};

// "tables/<id>" (1.1): this header, then the zstd frame of a page table
// as a manifest's. The id is the XXH3-128 of the whole file.
struct table_header {
  std::uint32_t magic;
  std::uint16_t major, minor;
  std::uint64_t page_count;
};

static_assert(sizeof(store_header) == 40 && std::is_trivially_copyable_v<store_header>);
static_assert(sizeof(pack_header) == 32 && std::is_trivially_copyable_v<pack_header>);
static_assert(sizeof(record_header) == 32 && std::is_trivially_copyable_v<record_header>);
static_assert(sizeof(pack_footer) == 40 && std::is_trivially_copyable_v<pack_footer>);
static_assert(sizeof(index_header) == 40 && std::is_trivially_copyable_v<index_header>);
static_assert(sizeof(index_entry) == 32 && std::is_trivially_copyable_v<index_entry>);
static_assert(sizeof(manifest_header) == 88 && std::is_trivially_copyable_v<manifest_header>);
static_assert(sizeof(manifest_table_ref) == 24 && std::is_trivially_copyable_v<manifest_table_ref>);
static_assert(sizeof(table_header) == 16 && std::is_trivially_copyable_v<table_header>);
static_assert(offsetof(manifest_header, parent) == 48 && offsetof(record_header, check) == 28);

}  // namespace larder::chunks
