// An open after a crash that left pages evicted (runtime/migration.hpp):
// each page whose evicted bit is set and which the heap's backing holds no
// data for is read back from the tier and written into the backing; the
// evicted maps, the tier's files and the migration record are cleared
// after. Written page by page with pwrite, which a kill cannot leave half
// done: a page the backing holds is whole, so a second run after a crash
// here keeps it.
#include "runtime/migration_state.hpp"

#include "allocator/segment.hpp"
#include "runtime/heap_impl.hpp"
#include "runtime/migration_test_hooks.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace larder {
namespace {

constexpr std::size_t kPage = port::kOsPageSize;
constexpr std::size_t kBatch = 64;


void clear_bit(std::uintptr_t base, std::uint64_t offset) {
  auto* s = reinterpret_cast<alloc::segment*>(base + (offset & ~std::uint64_t{layout::kSegmentSize - 1}));
  alloc::mark_evicted(s, (offset & (layout::kSegmentSize - 1)) / kPage, false);
}

}  // namespace

status restore_evicted_pages(heap_impl& impl) {
  const std::uintptr_t base = impl.superblock.base;
  auto* meta = reinterpret_cast<layout::heap_meta*>(base + layout::kMetaOffset);
  layout::migration_record& record = meta->migration;
  if (record.tier == layout::kNoTier) return {};
  const tier_config config{tier_kind::disk, std::string(record.tier_path, strnlen(record.tier_path, sizeof record.tier_path)),
                           record.capacity};

  std::vector<std::uint64_t> pages;  // offsets in the backing, ascending
  const std::uint64_t high = std::min<std::uint64_t>(meta->segments_high, impl.superblock.size / layout::kSegmentSize);
  for (std::size_t i = 1; i < high; ++i) {
    auto* s = reinterpret_cast<alloc::segment*>(alloc::segment_index_to_address(base, i));
    if (!alloc::holds_segment_header(s)) continue;
    const std::uint64_t* map = alloc::evicted_map(s);
    for (std::size_t k = alloc::kHeaderOsPages; k < alloc::kOsPagesPerSegment; ++k) {
      if ((map[k / 64] >> (k % 64) & 1) == 0) continue;
      const std::uint64_t offset = (std::uint64_t{i} << layout::kSegmentShift) + k * kPage;
      bool data = true;
      if (int e = port::file_has_data(impl.fd, offset, kPage, &data))
        return status::from_errno(e, impl.name + ": looking for evicted pages");
      if (!data) {
        pages.push_back(offset);
        continue;
      }
      clear_bit(base, offset);  // faulted back before the crash: the heap's copy is the newer
      migration_kill_point();
    }
  }
  if (!pages.empty()) {
    std::unique_ptr<tiers::tier> tier;
    if (status s = open_migration_tier(config, true, {}, &tier); !s.ok())
      return status(errc::corrupt, impl.name + ": " + std::to_string(pages.size()) + " evicted page(s) are in the tier " +
                                       config.path + ", which cannot be opened: " + s.message());
    struct alignas(kPage) batch_buffer {
      char bytes[kBatch * kPage];
    };
    auto buffer = std::make_unique<batch_buffer>();
    for (std::size_t i = 0; i < pages.size();) {
      std::size_t j = i;
      tiers::page_ref refs[kBatch];
      for (; j < pages.size() && j - i < kBatch; ++j) refs[j - i] = {pages[j] / kPage, buffer->bytes + (j - i) * kPage};
      if (status s = tier->read(kTierPod, refs, j - i); !s.ok())
        return status(errc::corrupt, impl.name + ": an evicted page cannot be read back from " + config.path + ": " + s.message());
      for (std::size_t k = i; k < j; ++k) {
        if (int e = port::write_at(impl.fd, buffer->bytes + (k - i) * kPage, kPage, pages[k]))
          return status::from_errno(e, impl.name + ": writing an evicted page back");
        migration_kill_point();
        clear_bit(base, pages[k]);
        migration_kill_point();
      }
      i = j;
    }
  }
  remove_migration_tier(config);
  migration_kill_point();
  record = {};
  return {};
}

}  // namespace larder
