// The size classes: bin_block_size, a closed form, is the inverse of
// bin_of_units for every size a bin serves.
#include "allocator/size_class.hpp"

#include <gtest/gtest.h>

namespace larder::alloc {
namespace {

TEST(SizeClass, EveryRequestFitsTheBlockOfItsBinAndNoSmallerOne) {
  std::size_t previous = 0;
  for (std::size_t size = 1; size <= kLargeMax; ++size) {
    const std::size_t bin = bin_of(size);
    ASSERT_GE(bin, 1u);
    ASSERT_LT(bin, kBinCount);
    ASSERT_LE(size, bin_block_size(bin)) << "size " << size;
    if (bin > 1) {
      ASSERT_GT(size, bin_block_size(bin - 1)) << "size " << size;
    }
    ASSERT_GE(bin, previous);
    previous = bin;
  }
  EXPECT_EQ(kLargeMax, bin_block_size(kBinCount - 1));
  for (std::size_t bin = 1; bin < kBinCount; ++bin) EXPECT_EQ(bin_block_size(bin), kSizeClasses.block_size[bin]);
}

}  // namespace
}  // namespace larder::alloc
