// The named-root and pod records of the metadata block: their states,
// checksums and the one definition of a sound record, which open, the
// checker and the writers (runtime/roots.cpp, runtime/pods.cpp) share.
// Checksums came with format 1.3; older heaps' records carry none until a
// writer opens them and seals every record (upgrade_records).
#pragma once

#include "recovery/layout.hpp"
#include "recovery/persist.hpp"

#include <cstdint>
#include <string_view>

namespace larder::recovery {

inline constexpr std::uint32_t kRootFree = 0;
inline constexpr std::uint32_t kRootLive = 1;
inline constexpr std::uint32_t kRootRemoved = 2;  // keeps probe chains unbroken
inline constexpr std::uint32_t kPodFree = 0;
inline constexpr std::uint32_t kPodLive = 1;

// Format 1.3 and later keep a checksum in every used record.
inline constexpr std::uint32_t kRecordChecksumMinor = 3;
inline bool records_checksummed(const layout::superblock& sb) {
  return sb.format_major > 1 || sb.format_minor >= kRecordChecksumMinor;
}

// The low 32 bits of XXH3-64 of the name: where the root's probe starts.
std::uint32_t root_name_hash(std::string_view name) noexcept;

// Recompute the checksum after any change to a used record.
void seal(layout::root_record* record) noexcept;
void seal(layout::pod_record* record) noexcept;

// Why the record is not sound, or nullptr. A free record is all zero; a
// used one has a valid state, a NUL-terminated name (and for roots the
// name's hash and an object inside [base, base + reserve)), and, when
// `checksummed`, a checksum that holds.
const char* root_damage(const layout::root_record& record, std::uint64_t base, std::uint64_t reserve,
                        bool checksummed) noexcept;
const char* pod_damage(const layout::pod_record& record, std::uint32_t index, bool checksummed) noexcept;

// The first unsound root or pod record of `meta`, as "root slot N: why" or
// "pod N: why"; empty when all are sound.
std::string first_record_damage(const layout::heap_meta& meta, const layout::superblock& sb);

// Seals every used record of a heap written before format 1.3 and makes
// them durable; the caller then records the new format in the superblock.
int upgrade_records(layout::heap_meta* meta, persist_domain& domain) noexcept;

}  // namespace larder::recovery
