// Write protection of the store's metadata outside store operations
// (store_protection): in guard mode (mprotect) everywhere, with protection
// keys where the CPU has PKU. A stray write to the control block between
// operations must kill the writer; operations, from several threads at
// once, must run as without protection.
#include <gtest/gtest.h>

#include <larder/store.hpp>

#include "port/memory_guard.hpp"
#include "runtime/store/store_impl.hpp"

#include <cstring>
#include <thread>
#include <vector>

namespace {

using larder::object_id;

larder::store_options options(larder::store_protection protection) {
  larder::store_options o;
  o.heap.kind = larder::backing::anonymous;
  o.heap.reserve = std::size_t{1} << 30;
  o.protection = protection;
  return o;
}

void work(larder::store& s, std::uint64_t first, int count) {
  for (std::uint64_t id = first; id < first + count; ++id) {
    larder::object_buffer b;
    ASSERT_TRUE(s.create(object_id(id), 100, 0, &b).ok());
    std::memset(b.data.data(), static_cast<int>(id & 0xff), 100);
    ASSERT_TRUE(s.seal(object_id(id)).ok());
    larder::object_view v;
    ASSERT_TRUE(s.get(object_id(id), &v).ok());
    ASSERT_EQ(v.data[99], static_cast<std::byte>(id & 0xff));
    ASSERT_TRUE(s.release(object_id(id)).ok());
    if (id % 3 == 0) {
      ASSERT_TRUE(s.remove(object_id(id)).ok());
    }
  }
}

void protected_store_works(larder::store_protection protection) {
  larder::store s;
  ASSERT_TRUE(larder::store::open(options(protection), &s).ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t)
    threads.emplace_back([&, t] {
      larder::store mine;
      ASSERT_TRUE(larder::store::open(s.owner(), options(protection), &mine).ok());
      work(mine, 100000 * (t + 1), 2000);
    });
  work(s, 0, 2000);
  for (auto& t : threads) t.join();
  EXPECT_TRUE(s.check().ok()) << s.check().to_string();
  std::size_t kept = 0;
  for (std::uint64_t first : {0, 100000, 200000, 300000})
    for (std::uint64_t id = first; id < first + 2000; ++id) kept += id % 3 != 0 ? 1 : 0;
  EXPECT_EQ(s.stats().objects, kept);
  // A stray write to the control block outside an operation is stopped.
  auto* clock = reinterpret_cast<volatile std::uint64_t*>(&s.impl()->header->clock);
  EXPECT_DEATH({ *clock = 0; }, "");
}

TEST(StoreProtectionTest, GuardModeStopsStrayWrites) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  protected_store_works(larder::store_protection::guard);
}

TEST(StoreProtectionTest, ProtectionKeysStopStrayWrites) {
  const char* why = "";
  if (!larder::port::guard_keys_available(&why)) GTEST_SKIP() << "no protection keys here: " << why;
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  protected_store_works(larder::store_protection::keys);
}

TEST(StoreProtectionTest, KeysRefusedWithAReasonWithoutPku) {
  const char* why = "";
  if (larder::port::guard_keys_available(&why)) GTEST_SKIP() << "this CPU has protection keys";
  larder::store s;
  larder::status st = larder::store::open(options(larder::store_protection::keys), &s);
  EXPECT_TRUE(st.is(larder::errc::unsupported)) << st.to_string();
  EXPECT_FALSE(st.message().empty());
}

TEST(StoreProtectionTest, OneProtectionPerStoreAndProcess) {
  larder::store s;
  ASSERT_TRUE(larder::store::open(options(larder::store_protection::guard), &s).ok());
  larder::store other;
  EXPECT_TRUE(larder::store::open(s.owner(), options(larder::store_protection::none), &other)
                  .is(larder::errc::invalid_argument));
  ASSERT_TRUE(s.close().ok());
}

TEST(StoreProtectionTest, UnprotectedAfterTheLastHandleCloses) {
  larder::store_options o = options(larder::store_protection::guard);
  larder::heap h;
  ASSERT_TRUE(larder::heap::open(o.heap, &h).ok());
  std::uint64_t* clock = nullptr;
  {
    larder::store s;
    ASSERT_TRUE(larder::store::open(h, o, &s).ok());
    clock = reinterpret_cast<std::uint64_t*>(&s.impl()->header->clock);
  }
  *clock += 0;  // no fault: writable again
  larder::store again;
  ASSERT_TRUE(larder::store::open(h, {}, &again).ok());
  EXPECT_TRUE(again.check().ok());
}

}  // namespace
