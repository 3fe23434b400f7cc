// Root and pod records; see records.hpp.
#include "recovery/records.hpp"

#include <xxhash.h>

#include <cstring>
#include <string>

namespace larder::recovery {

namespace {

template <class Record>
std::uint64_t checksum_of(const Record& record) noexcept {
  return XXH3_64bits(&record, offsetof(Record, checksum));
}

template <class Record>
bool all_zero(const Record& record) noexcept {
  const auto* bytes = reinterpret_cast<const unsigned char*>(&record);
  for (std::size_t i = 0; i < sizeof(Record); ++i)
    if (bytes[i] != 0) return false;
  return true;
}

bool terminated(const char* name, std::size_t capacity) noexcept {
  return std::memchr(name, '\0', capacity) != nullptr;
}

}  // namespace

std::uint32_t root_name_hash(std::string_view name) noexcept {
  return static_cast<std::uint32_t>(XXH3_64bits(name.data(), name.size()));
}

void seal(layout::root_record* record) noexcept { record->checksum = checksum_of(*record); }
void seal(layout::pod_record* record) noexcept { record->checksum = checksum_of(*record); }

const char* root_damage(const layout::root_record& record, std::uint64_t base, std::uint64_t reserve,
                        bool checksummed) noexcept {
  if (record.in_use == kRootFree) return checksummed && !all_zero(record) ? "a free slot that is not empty" : nullptr;
  if (record.in_use != kRootLive && record.in_use != kRootRemoved) return "invalid state";
  // The specific findings first, so that a report says what is wrong.
  if (record.in_use == kRootLive) {
    if (!terminated(record.name, sizeof(record.name)) || record.name[0] == '\0') return "a damaged name";
    if (record.name_hash != root_name_hash(record.name)) return "the name does not match its hash";
    if (record.object < base || record.object - base >= reserve) return "the object lies outside the heap";
  }
  if (checksummed && record.checksum != checksum_of(record)) return "the record fails its checksum";
  return nullptr;
}

const char* pod_damage(const layout::pod_record& record, std::uint32_t index, bool checksummed) noexcept {
  if (record.in_use == kPodFree) {
    // Older heaps may leave a freed record's bytes; 1.3 ones never free pods.
    return checksummed && !all_zero(record) ? "a free slot that is not empty" : nullptr;
  }
  if (record.in_use != kPodLive) return "invalid state";
  if (record.id != index) return "its id is not its index";
  if (!terminated(record.name, sizeof(record.name)) || record.name[0] == '\0') return "a damaged name";
  if (checksummed && record.checksum != checksum_of(record)) return "the record fails its checksum";
  return nullptr;
}

std::string first_record_damage(const layout::heap_meta& meta, const layout::superblock& sb) {
  bool checksummed = records_checksummed(sb);
  for (std::uint32_t i = 0; i < layout::kMaxPods; ++i)
    if (const char* why = pod_damage(meta.pods[i], i, checksummed)) return "pod " + std::to_string(i) + ": " + why;
  for (std::size_t i = 0; i < layout::kMaxRoots; ++i)
    if (const char* why = root_damage(meta.roots[i], sb.base, sb.reserve, checksummed))
      return "root slot " + std::to_string(i) + ": " + why;
  return {};
}

int upgrade_records(layout::heap_meta* meta, persist_domain& domain) noexcept {
  for (auto& pod : meta->pods)
    if (pod.in_use != kPodFree) seal(&pod);
  for (auto& root : meta->roots)
    if (root.in_use != kRootFree) seal(&root);
  persist_range ranges[2] = {{meta->pods, sizeof(meta->pods)}, {meta->roots, sizeof(meta->roots)}};
  return domain.persist(ranges, 2);
}

}  // namespace larder::recovery
