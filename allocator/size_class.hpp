// Size classes: 16-byte steps up to 128 bytes, then four classes per
// doubling up to kLargeMax. Blocks above kLargeMax are huge. A class's heap
// pages are 1, 8 or 32 slices so that each page holds at least 4 blocks.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

namespace larder::alloc {

inline constexpr std::size_t kSmallMax = 8 * 1024;     // 1-slice pages
inline constexpr std::size_t kMediumMax = 64 * 1024;   // 8-slice pages
inline constexpr std::size_t kLargeMax = 512 * 1024;   // 32-slice pages
inline constexpr std::size_t kDirectMax = 1024;        // sizes with a direct page pointer
inline constexpr std::size_t kDirectSlots = kDirectMax / 16 + 1;

inline constexpr std::size_t bin_of_units(std::size_t units) noexcept {
  if (units <= 8) return units == 0 ? 1 : units;
  std::size_t w = units - 1;
  std::size_t b = static_cast<std::size_t>(std::bit_width(w)) - 1;
  return ((b << 2) + ((w >> (b - 2)) & 3)) - 3;
}

// Bin of a request of `size` bytes (size <= kLargeMax).
inline constexpr std::size_t bin_of(std::size_t size) noexcept { return bin_of_units((size + 15) >> 4); }

inline constexpr std::size_t kBinCount = bin_of(kLargeMax) + 1;
// Bins small enough for the thread-local block cache and the direct slots.
inline constexpr std::size_t kCachedBins = bin_of(kDirectMax) + 1;

// Largest request size that maps to `bin`: bin_of_units inverted. Past
// bin 8, bin + 3 holds the top bit's position b (bits 2 and up) and the two
// bits below it (q); units - 1 then runs over [(4 + q) << (b - 2),
// (5 + q) << (b - 2)).
inline constexpr std::size_t bin_block_size(std::size_t bin) noexcept {
  if (bin <= 8) return bin * 16;
  const std::size_t b = (bin + 3) >> 2;
  const std::size_t q = (bin + 3) & 3;
  return ((5 + q) << (b - 2)) * 16;
}

inline constexpr std::size_t slices_for_block(std::size_t block_size) noexcept {
  return block_size <= kSmallMax ? 1 : block_size <= kMediumMax ? 8 : 32;
}

struct size_class_table {
  std::uint32_t block_size[kBinCount + 1];
  constexpr size_class_table() : block_size() {
    for (std::size_t bin = 1; bin < kBinCount; ++bin) block_size[bin] = static_cast<std::uint32_t>(bin_block_size(bin));
  }
};
inline constexpr size_class_table kSizeClasses{};

// The bin of each direct slot (size + 15) / 16, and how many freed blocks
// of a bin a thread keeps (about 32 KiB worth, 8 to 256 blocks).
struct cache_table {
  std::uint8_t slot_bin[kDirectSlots] = {};
  std::uint16_t limit[kCachedBins] = {};
  constexpr cache_table() {
    for (std::size_t slot = 0; slot < kDirectSlots; ++slot) slot_bin[slot] = static_cast<std::uint8_t>(bin_of_units(slot));
    for (std::size_t bin = 1; bin < kCachedBins; ++bin) {
      std::size_t n = 32768 / kSizeClasses.block_size[bin];
      limit[bin] = static_cast<std::uint16_t>(n < 8 ? 8 : n > 256 ? 256 : n);
    }
  }
};
inline constexpr cache_table kCache{};

static_assert(bin_of(16) == 1 && bin_of(128) == 8 && bin_of(129) == 9);
static_assert(kSizeClasses.block_size[9] == 160 && kSizeClasses.block_size[10] == 192);
static_assert(kSizeClasses.block_size[kBinCount - 1] == kLargeMax);

}  // namespace larder::alloc
