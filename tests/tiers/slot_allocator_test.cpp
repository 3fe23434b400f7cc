// The page slots every tier backend hands out (tiers/slots/slot_allocator).
#include "tiers/slots/slot_allocator.hpp"

#include <gtest/gtest.h>

namespace larder::tiers {
namespace {

TEST(SlotAllocatorTest, FreedRunsMergeAndTheFreedTailIsHandedOutAgain) {
  slot_allocator slots(10);
  slot_run a = slots.take(4), b = slots.take(4), c = slots.take(4);
  EXPECT_EQ(0u, a.first);
  EXPECT_EQ(4u, b.first);
  EXPECT_EQ(8u, c.first);
  EXPECT_EQ(2u, c.count) << "only two slots were left";
  EXPECT_EQ(0u, slots.take(1).count);
  slots.give_back(slot_run{1, 1});
  slots.give_back(slot_run{2, 2});
  slots.give_back(slot_run{4, 1});
  slot_run merged = slots.take(4);
  EXPECT_EQ(1u, merged.first) << "slots 1-4 were freed in three pieces";
  EXPECT_EQ(4u, merged.count);
  slots.give_back(c);
  EXPECT_EQ(8u, slots.end()) << "a freed run at the end shortens the storage";
  EXPECT_EQ(8u, slots.used());
}

}  // namespace
}  // namespace larder::tiers
