// Superblock validation and atomic update; see superblock.hpp.
#include "recovery/superblock.hpp"

#include "port/os.hpp"

#include <xxhash.h>

#include <cstring>
#include <string>

namespace larder::recovery {

namespace {
std::uint64_t checksum_of(const layout::superblock& sb) {
  return XXH3_64bits(&sb, offsetof(layout::superblock, checksum));
}
}  // namespace

void seal_superblock(layout::superblock* sb) noexcept { sb->checksum = checksum_of(*sb); }

bool superblock_checksum_ok(const layout::superblock& sb) noexcept { return sb.checksum == checksum_of(sb); }

status read_superblock(int fd, std::uint64_t file_size, layout::superblock* out, int* copy) {
  if (file_size < layout::kSuperblockSize) {
    if (file_size >= 8) {
      std::uint64_t magic = 0;
      if (port::read_at(fd, &magic, sizeof(magic), 0) == 0 && magic == layout::kHeapMagic)
        return status(errc::truncated, "the file ends inside its superblock");
    }
    return status(errc::not_a_heap, "the file is too short to be a larder heap");
  }
  layout::superblock copies[layout::kSuperblockCopies];
  std::size_t readable = file_size >= layout::kMetaOffset ? 2 : 1;
  bool any_magic = false;
  int best = -1;
  for (std::size_t i = 0; i < readable; ++i) {
    if (int err = port::read_at(fd, &copies[i], sizeof(copies[i]), i * layout::kSuperblockSize))
      return status::from_errno(err, "reading the superblock");
    if (copies[i].magic != layout::kHeapMagic) continue;
    any_magic = true;
    if (!superblock_checksum_ok(copies[i])) continue;
    if (best < 0 || copies[i].generation > copies[best].generation) best = static_cast<int>(i);
  }
  if (!any_magic) return status(errc::not_a_heap, "no larder magic in either superblock copy");
  if (best < 0) return status(errc::corrupt, "both superblock copies fail their checksum");
  const layout::superblock& sb = copies[best];
  if (sb.format_major > layout::kFormatMajor)
    return status(errc::newer_format, "heap format " + std::to_string(sb.format_major) + "." +
                                          std::to_string(sb.format_minor) + " is newer than this build reads (" +
                                          std::to_string(layout::kFormatMajor) + ")");
  if (sb.layout_signature != layout::kLayoutSignature)
    return status(errc::foreign_build, "the heap was written by a build with a different layout");
  if (sb.reserve == 0 || sb.reserve > layout::kMaxReserve || sb.reserve % layout::kSegmentSize != 0 ||
      sb.base % layout::kSegmentSize != 0 || sb.size < layout::kSegmentSize || sb.size > sb.reserve ||
      sb.base == 0 || sb.base >= layout::kAddressLimit || sb.reserve > layout::kAddressLimit - sb.base)
    return status(errc::corrupt, "the superblock's geometry is impossible");
  if (file_size < sb.size)
    return status(errc::truncated, "the file holds " + std::to_string(file_size) + " bytes but the heap needs " +
                                       std::to_string(sb.size));
  std::memcpy(out, &sb, sizeof(sb));
  *copy = best;
  return {};
}

int write_superblock(void* base, layout::superblock* sb, int* current, persist_domain& domain) noexcept {
  // The stale copy first: until it is durable the current one stands. Then
  // the other, so that either copy alone describes the heap as it is now.
  for (int step = 0; step < 2; ++step) {
    int target = 1 - *current;
    sb->generation += 1;
    seal_superblock(sb);
    auto* slot = static_cast<char*>(base) + static_cast<std::size_t>(target) * layout::kSuperblockSize;
    std::memcpy(slot, sb, sizeof(*sb));
    if (int err = domain.persist(slot, sizeof(*sb))) return err;
    *current = target;
  }
  return 0;
}

}  // namespace larder::recovery
