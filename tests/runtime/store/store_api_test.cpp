// Every operation of larder::store and each of its errors, on an anonymous
// heap (one process) and on a shm heap reopened.
#include <gtest/gtest.h>

#include <larder/store.hpp>

#include "runtime/store/store_test_hooks.hpp"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using larder::errc;
using larder::object_id;

larder::store_options anonymous_options(std::size_t capacity = 0) {
  larder::store_options options;
  options.heap.kind = larder::backing::anonymous;
  options.heap.reserve = std::size_t{1} << 30;
  options.capacity = capacity;
  return options;
}

std::span<const std::byte> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}
std::string text_of(std::span<const std::byte> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

void put(larder::store& s, const object_id& id, const std::string& data, const std::string& metadata = "") {
  larder::object_buffer b;
  ASSERT_TRUE(s.create(id, data.size(), metadata.size(), &b).ok());
  std::memcpy(b.data.data(), data.data(), data.size());
  std::memcpy(b.metadata.data(), metadata.data(), metadata.size());
  ASSERT_TRUE(s.seal(id).ok());
}

class StoreApiTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(larder::store::open(anonymous_options(), &s_).ok()); }
  void TearDown() override {
    if (s_.is_open()) {
      EXPECT_TRUE(s_.check().ok()) << s_.check().to_string();
    }
  }
  larder::store s_;
};

TEST(ObjectIdTest, NumbersAndBinaryNeverMatch) {
  std::uint8_t raw[8] = {42, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_FALSE(object_id(42) == object_id::from_binary(raw, 8));
  EXPECT_TRUE(object_id(42) == object_id(42));
  EXPECT_EQ(object_id(42).text(), "42");
  std::uint8_t plasma[20];
  for (int i = 0; i < 20; ++i) plasma[i] = static_cast<std::uint8_t>(i);
  EXPECT_EQ(object_id::from_binary(plasma, 20).size(), 20u);
  EXPECT_TRUE(object_id::from_binary(plasma, 21).empty());
  EXPECT_TRUE(object_id::from_binary(plasma, 0).empty());
}

TEST_F(StoreApiTest, CreateSealGetRelease) {
  put(s_, object_id(1), "hello", "meta");
  larder::object_view v;
  ASSERT_TRUE(s_.get(object_id(1), &v).ok());
  EXPECT_EQ(text_of(v.data), "hello");
  EXPECT_EQ(text_of(v.metadata), "meta");
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(v.data.data()) % 16, 0u);
  EXPECT_TRUE(s_.contains(object_id(1)));
  std::vector<larder::object_info> all;
  ASSERT_TRUE(s_.list(&all).ok());
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].refcount, 1u);
  EXPECT_EQ(all[0].state, larder::object_state::sealed);
  EXPECT_EQ(all[0].data_size, 5u);
  EXPECT_TRUE(s_.release(object_id(1)).ok());
  EXPECT_TRUE(s_.release(object_id(1)).is(errc::not_referenced));
}

TEST_F(StoreApiTest, BinaryIdsOfPlasmasSize) {
  std::uint8_t raw[20];
  for (int i = 0; i < 20; ++i) raw[i] = static_cast<std::uint8_t>(0xa0 + i);
  object_id id = object_id::from_binary(raw, 20);
  put(s_, id, "twenty");
  larder::object_view v;
  ASSERT_TRUE(s_.get(id, &v).ok());
  EXPECT_EQ(text_of(v.data), "twenty");
  std::vector<larder::object_info> all;
  ASSERT_TRUE(s_.list(&all).ok());
  EXPECT_TRUE(all[0].id == id);
  EXPECT_TRUE(s_.release(id).ok());
}

TEST_F(StoreApiTest, ErrorsOfWrongStates) {
  larder::object_buffer b;
  larder::object_view v;
  EXPECT_TRUE(s_.create(object_id(), 1, 0, &b).is(errc::invalid_argument));
  EXPECT_TRUE(s_.seal(object_id(7)).is(errc::not_found));
  EXPECT_TRUE(s_.get(object_id(7), &v).is(errc::not_found));
  EXPECT_TRUE(s_.release(object_id(7)).is(errc::not_found));
  EXPECT_TRUE(s_.remove(object_id(7)).is(errc::not_found));
  EXPECT_TRUE(s_.abort(object_id(7)).is(errc::not_found));
  ASSERT_TRUE(s_.create(object_id(7), 10, 0, &b).ok());
  EXPECT_TRUE(s_.create(object_id(7), 10, 0, &b).is(errc::already_exists));
  EXPECT_TRUE(s_.get(object_id(7), &v).is(errc::not_sealed));
  EXPECT_FALSE(s_.contains(object_id(7)));
  EXPECT_TRUE(s_.remove(object_id(7)).is(errc::not_sealed));
  ASSERT_TRUE(s_.seal(object_id(7)).ok());
  EXPECT_TRUE(s_.seal(object_id(7)).is(errc::already_sealed));
  EXPECT_TRUE(s_.abort(object_id(7)).is(errc::already_sealed));
  EXPECT_TRUE(s_.release(object_id(7)).is(errc::not_referenced));
  EXPECT_TRUE(s_.create(object_id(7), 10, 0, &b).is(errc::already_exists));
}

TEST_F(StoreApiTest, OnlyTheCreatorSealsOrAborts) {
  larder::store other;
  ASSERT_TRUE(larder::store::open(s_.owner(), {}, &other).ok());
  larder::object_buffer b;
  ASSERT_TRUE(s_.create(object_id(3), 8, 0, &b).ok());
  EXPECT_TRUE(other.seal(object_id(3)).is(errc::not_creator));
  EXPECT_TRUE(other.abort(object_id(3)).is(errc::not_creator));
  EXPECT_TRUE(s_.abort(object_id(3)).ok());
  EXPECT_TRUE(s_.seal(object_id(3)).is(errc::not_found));
  ASSERT_TRUE(other.close().ok());
}

TEST_F(StoreApiTest, DeleteIsDeferredUntilTheLastRelease) {
  larder::store reader;
  ASSERT_TRUE(larder::store::open(s_.owner(), {}, &reader).ok());
  put(s_, object_id(5), "kept while read");
  larder::object_view v;
  ASSERT_TRUE(reader.get(object_id(5), &v).ok());
  ASSERT_TRUE(s_.remove(object_id(5)).ok());
  // Gone for everyone else at once; the reader's view stays valid.
  EXPECT_FALSE(s_.contains(object_id(5)));
  EXPECT_TRUE(s_.remove(object_id(5)).is(errc::not_found));
  larder::object_view again;
  EXPECT_TRUE(s_.get(object_id(5), &again).is(errc::not_found));
  EXPECT_EQ(text_of(v.data), "kept while read");
  std::vector<larder::object_info> all;
  ASSERT_TRUE(s_.list(&all).ok());
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].state, larder::object_state::deleting);
  // The id can be used again while the old version is still read.
  put(s_, object_id(5), "new version");
  ASSERT_TRUE(s_.check().ok()) << s_.check().to_string();
  EXPECT_TRUE(reader.release(object_id(5)).ok());
  ASSERT_TRUE(s_.list(&all).ok());
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].state, larder::object_state::sealed);
  ASSERT_TRUE(s_.get(object_id(5), &v).ok());
  EXPECT_EQ(text_of(v.data), "new version");
  EXPECT_TRUE(s_.release(object_id(5)).ok());
  ASSERT_TRUE(reader.close().ok());
}

TEST_F(StoreApiTest, GetWaitsForTheSealAndTimesOut) {
  larder::object_view v;
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(s_.get(object_id(9), 50, &v).is(errc::timed_out));
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(50));
  larder::store producer;
  ASSERT_TRUE(larder::store::open(s_.owner(), {}, &producer).ok());
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    put(producer, object_id(9), "late");
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    put(producer, object_id(10), "later");
  });
  std::vector<object_id> ids = {object_id(9), object_id(10), object_id(11)};
  std::vector<larder::object_view> views;
  EXPECT_TRUE(s_.get(ids, 2000, &views).is(errc::timed_out));
  t.join();
  ASSERT_EQ(views.size(), 3u);
  ASSERT_TRUE(views[0].valid() && views[1].valid());
  EXPECT_FALSE(views[2].valid());
  EXPECT_EQ(text_of(views[0].data), "late");
  EXPECT_EQ(text_of(views[1].data), "later");
  EXPECT_TRUE(s_.release(object_id(9)).ok());
  EXPECT_TRUE(s_.release(object_id(10)).ok());
  ids.pop_back();
  ASSERT_TRUE(s_.get(ids, -1, &views).ok());
  EXPECT_TRUE(s_.release(object_id(9)).ok());
  EXPECT_TRUE(s_.release(object_id(10)).ok());
  ASSERT_TRUE(producer.close().ok());
}

TEST_F(StoreApiTest, ManyObjectsGrowTheIndex) {
  constexpr int kObjects = 20000;
  for (int i = 0; i < kObjects; ++i) put(s_, object_id(i), std::to_string(i));
  EXPECT_EQ(s_.stats().objects, static_cast<std::size_t>(kObjects));
  ASSERT_TRUE(s_.check().ok()) << s_.check().to_string();
  for (int i = 0; i < kObjects; i += 2) ASSERT_TRUE(s_.remove(object_id(i)).ok());
  for (int i = 1; i < kObjects; i += 2) {
    larder::object_view v;
    ASSERT_TRUE(s_.get(object_id(i), &v).ok());
    ASSERT_EQ(text_of(v.data), std::to_string(i));
  }
  ASSERT_TRUE(s_.check().ok()) << s_.check().to_string();
  for (int i = 1; i < kObjects; i += 2) ASSERT_TRUE(s_.release(object_id(i)).ok());
}

TEST(StoreCapacityTest, EvictsLeastRecentlyReleasedFirst) {
  larder::store s;
  ASSERT_TRUE(larder::store::open(anonymous_options(4000), &s).ok());
  std::string kilo(1000, 'x');
  for (int i = 0; i < 4; ++i) put(s, object_id(i), kilo);
  larder::object_view v;
  // 0 is used again: 1 is now the least recently released.
  ASSERT_TRUE(s.get(object_id(0), &v).ok());
  ASSERT_TRUE(s.release(object_id(0)).ok());
  put(s, object_id(4), kilo);
  EXPECT_FALSE(s.contains(object_id(1)));
  EXPECT_TRUE(s.contains(object_id(0)));
  EXPECT_EQ(s.stats().evictions, 1u);
  // Referenced objects are never evicted: with all held, a create fails.
  for (int i : {0, 2, 3, 4}) ASSERT_TRUE(s.get(object_id(i), &v).ok());
  larder::object_buffer b;
  EXPECT_TRUE(s.create(object_id(5), 1000, 0, &b).is(errc::store_full));
  EXPECT_TRUE(s.create(object_id(6), 5000, 0, &b).is(errc::store_full));
  ASSERT_TRUE(s.check().ok()) << s.check().to_string();
  for (int i : {0, 2, 3, 4}) ASSERT_TRUE(s.release(object_id(i)).ok());
  EXPECT_TRUE(s.create(object_id(5), 1000, 0, &b).ok());
  ASSERT_TRUE(s.check().ok()) << s.check().to_string();
}

TEST(StoreCapacityTest, FullStoreRecoversDeadClientsBeforeGivingUp) {
  larder::store s;
  ASSERT_TRUE(larder::store::open(anonymous_options(3000), &s).ok());
  std::string kilo(1000, 'x');
  for (int i = 0; i < 3; ++i) put(s, object_id(i), kilo);
  {
    larder::store reader;
    ASSERT_TRUE(larder::store::open(s.owner(), {}, &reader).ok());
    larder::object_view v;
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(reader.get(object_id(i), &v).ok());
    // Killed holding every object: nothing is evictable until it is recovered.
    larder::store_test::abandon(reader);
  }
  larder::object_buffer b;
  ASSERT_TRUE(s.create(object_id(3), 1000, 0, &b).ok());
  EXPECT_EQ(s.stats().clients, 1u);
  EXPECT_EQ(s.stats().evictions, 1u);
  ASSERT_TRUE(s.check().ok()) << s.check().to_string();
}

TEST(StoreCapacityTest, FullHeapEvictsOrFails) {
  larder::store_options options = anonymous_options();
  options.heap.reserve = std::size_t{64} << 20;
  larder::store s;
  ASSERT_TRUE(larder::store::open(options, &s).ok());
  std::size_t made = 0;
  larder::object_buffer b;
  larder::object_view v;
  // Fill the heap with referenced objects: nothing evictable, store_full.
  larder::status st;
  while ((st = s.create(object_id(made), 1 << 20, 0, &b)).ok()) {
    ASSERT_TRUE(s.seal(object_id(made)).ok());
    ASSERT_TRUE(s.get(object_id(made), &v).ok());
    ++made;
  }
  EXPECT_TRUE(st.is(errc::store_full)) << st.to_string();
  EXPECT_GT(made, 10u);
  // Unreferenced, they are evicted to make room.
  for (std::size_t i = 0; i < made; ++i) ASSERT_TRUE(s.release(object_id(i)).ok());
  EXPECT_TRUE(s.create(object_id(made), 1 << 20, 0, &b).ok());
  EXPECT_GE(s.stats().evictions, 1u);
  ASSERT_TRUE(s.check().ok()) << s.check().to_string();
}

TEST_F(StoreApiTest, SubscribersSeeSealsAndDeletes) {
  larder::subscription sub;
  ASSERT_TRUE(s_.subscribe(&sub, 4).ok());
  larder::notification n;
  EXPECT_TRUE(sub.next(&n, 10).is(errc::timed_out));
  put(s_, object_id(1), "abc", "m");
  ASSERT_TRUE(sub.next(&n, 0).ok());
  EXPECT_TRUE(n.id == object_id(1));
  EXPECT_EQ(n.what, larder::notification::kind::sealed);
  EXPECT_EQ(n.data_size, 3u);
  EXPECT_EQ(n.metadata_size, 1u);
  ASSERT_TRUE(s_.remove(object_id(1)).ok());
  ASSERT_TRUE(sub.next(&n, 0).ok());
  EXPECT_EQ(n.what, larder::notification::kind::deleted);
  // A full queue drops and says so.
  for (int i = 10; i < 16; ++i) put(s_, object_id(i), "x");
  // The loss is told first, then the four that fitted.
  EXPECT_TRUE(sub.next(&n, 0).is(errc::notifications_lost));
  for (int i = 10; i < 14; ++i) {
    ASSERT_TRUE(sub.next(&n, 0).ok());
    EXPECT_TRUE(n.id == object_id(i));
  }
  EXPECT_TRUE(sub.next(&n, 0).is(errc::timed_out));
  // A blocked reader is woken by a seal in another thread.
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    larder::store producer;
    ASSERT_TRUE(larder::store::open(s_.owner(), {}, &producer).ok());
    put(producer, object_id(99), "woken");
  });
  ASSERT_TRUE(sub.next(&n, 5000).ok());
  EXPECT_TRUE(n.id == object_id(99));
  t.join();
}

TEST_F(StoreApiTest, MultiFieldObjects) {
  std::vector<larder::field> fields = {{"name", bytes_of("ada")}, {"age", bytes_of("36")}};
  ASSERT_TRUE(s_.put_fields(object_id(1), fields).ok());
  std::vector<std::string_view> names = {"age", "name", "missing"};
  std::vector<std::span<const std::byte>> values;
  ASSERT_TRUE(s_.get_fields(object_id(1), names, &values).ok());
  EXPECT_EQ(text_of(values[0]), "36");
  EXPECT_EQ(text_of(values[1]), "ada");
  EXPECT_TRUE(values[2].empty());
  // The update seals a new version; the values got before stay readable.
  std::vector<larder::field> update = {{"age", bytes_of("37")}, {"city", bytes_of("london")}};
  ASSERT_TRUE(s_.update_fields(object_id(1), update).ok());
  EXPECT_EQ(text_of(values[0]), "36");
  ASSERT_TRUE(s_.check().ok()) << s_.check().to_string();
  ASSERT_TRUE(s_.release(object_id(1)).ok());
  std::vector<std::string_view> all = {"name", "age", "city"};
  ASSERT_TRUE(s_.get_fields(object_id(1), all, &values).ok());
  EXPECT_EQ(text_of(values[0]), "ada");
  EXPECT_EQ(text_of(values[1]), "37");
  EXPECT_EQ(text_of(values[2]), "london");
  ASSERT_TRUE(s_.release(object_id(1)).ok());
  std::vector<larder::field> twice = {{"a", bytes_of("1")}, {"a", bytes_of("2")}};
  EXPECT_TRUE(s_.put_fields(object_id(2), twice).is(errc::invalid_argument));
  put(s_, object_id(3), "plain");
  EXPECT_TRUE(s_.get_fields(object_id(3), names, &values).is(errc::invalid_argument));
  larder::object_view v;
  EXPECT_TRUE(s_.get(object_id(3), &v).ok());
  EXPECT_TRUE(s_.release(object_id(3)).ok());
}

// Updates of one object by two clients at once all succeed, and none is
// lost: each writes a field of its own, and each update merges into the
// newest version, so both fields end with their writer's last value.
TEST_F(StoreApiTest, ConcurrentUpdatesOfOneObjectAllLand) {
  ASSERT_TRUE(s_.put_fields(object_id(1), std::vector<larder::field>{{"a", bytes_of("0")}, {"b", bytes_of("0")}}).ok());
  constexpr int kUpdates = 20000;
  auto writer = [&](std::string_view name, larder::status* failure) {
    larder::store client;
    if (larder::status st = larder::store::open(s_.owner(), {}, &client); !st.ok()) {
      *failure = st;
      return;
    }
    for (int i = 1; i <= kUpdates && failure->ok(); ++i) {
      const std::string value = std::to_string(i);
      *failure = client.update_fields(object_id(1), std::vector<larder::field>{{name, bytes_of(value)}});
    }
    (void)client.close();
  };
  larder::status a, b;
  std::thread ta(writer, "a", &a), tb(writer, "b", &b);
  ta.join();
  tb.join();
  EXPECT_TRUE(a.ok()) << a.to_string();
  EXPECT_TRUE(b.ok()) << b.to_string();
  std::vector<std::string_view> names = {"a", "b"};
  std::vector<std::span<const std::byte>> values;
  ASSERT_TRUE(s_.get_fields(object_id(1), names, &values).ok());
  EXPECT_EQ(text_of(values[0]), std::to_string(kUpdates));
  EXPECT_EQ(text_of(values[1]), std::to_string(kUpdates));
  ASSERT_TRUE(s_.release(object_id(1)).ok());
}

// A store reopened after its last client was killed (abandoned, then the
// heap closed): sealed objects and their references are as they were, what
// the dead client left unsealed is gone.
void survives_reopen(larder::backing kind, const std::string& name) {
  larder::store_options options;
  options.heap.kind = kind;
  options.heap.name = name;
  options.heap.reserve = std::size_t{1} << 30;
  {
    larder::store s;
    ASSERT_TRUE(larder::store::open(options, &s).ok());
    put(s, object_id(1), "persists");
    larder::object_buffer b;
    ASSERT_TRUE(s.create(object_id(2), 4, 0, &b).ok());
    larder::object_view v;
    ASSERT_TRUE(s.get(object_id(1), &v).ok());
    // Left as a killed process would leave it: a reference and an unsealed object.
    larder::store_test::abandon(s);
    ASSERT_TRUE(s.owner().close().ok());
  }
  {
    larder::store s;
    ASSERT_TRUE(larder::store::open(options, &s).ok());
    larder::object_view v;
    ASSERT_TRUE(s.get(object_id(1), &v).ok());
    EXPECT_EQ(text_of(v.data), "persists");
    EXPECT_FALSE(s.contains(object_id(2)));
    std::vector<larder::object_info> all;
    ASSERT_TRUE(s.list(&all).ok());
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all[0].refcount, 1u);
    EXPECT_TRUE(s.check().ok()) << s.check().to_string();
    EXPECT_TRUE(s.release(object_id(1)).ok());
  }
  EXPECT_TRUE(larder::heap::remove(kind, name).ok());
}

TEST(StoreHeapTest, ShmStoreSurvivesReopenAndDropsWhatDeadClientsLeft) {
  survives_reopen(larder::backing::shm, "/larder-store-api-" + std::to_string(::getpid()));
}

TEST(StoreHeapTest, FileStoreSurvivesReopenAndDropsWhatDeadClientsLeft) {
  char dir[] = "/tmp/larder-store-api-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  survives_reopen(larder::backing::file, std::string(dir) + "/store.heap");
  ::rmdir(dir);
}

TEST(StoreOpenTest, RefusesWhatIsNotAStore) {
  larder::heap_options ho;
  ho.kind = larder::backing::anonymous;
  ho.reserve = std::size_t{1} << 30;
  larder::heap h;
  ASSERT_TRUE(larder::heap::open(ho, &h).ok());
  void* junk = h.allocate(64);
  std::memset(junk, 0x5a, 64);
  ASSERT_TRUE(h.set_root("larder.store", junk, 64).ok());
  larder::store s;
  EXPECT_TRUE(larder::store::open(h, {}, &s).is(errc::corrupt));
  larder::heap closed;
  EXPECT_TRUE(larder::store::open(closed, {}, &s).is(errc::invalid_argument));
  larder::object_buffer b;
  EXPECT_TRUE(s.create(object_id(1), 1, 0, &b).is(errc::invalid_argument));
}

TEST_F(StoreApiTest, RefusedInsideATransactionOfItsHeap) {
  larder::object_buffer b;
  {
    larder::transaction tx(s_.owner());
    EXPECT_TRUE(s_.create(object_id(1), 8, 0, &b).is(errc::invalid_argument));
    tx.abort();
  }
  EXPECT_TRUE(s_.create(object_id(1), 8, 0, &b).ok());
  EXPECT_TRUE(s_.seal(object_id(1)).ok());
}

TEST_F(StoreApiTest, ClientSlotsAreFreedAtClose) {
  std::vector<larder::store> handles(20);
  for (auto& h : handles) ASSERT_TRUE(larder::store::open(s_.owner(), {}, &h).ok());
  EXPECT_EQ(s_.stats().clients, 21u);
  handles.clear();
  EXPECT_EQ(s_.stats().clients, 1u);
}

}  // namespace
