// Crash isolation of the store in one process: a client stops at every
// kill point of an operation in turn (store_test_hooks.hpp: its
// transaction is rolled back as the heap rolls back a dead client's lane,
// its stripe is left marked held, nothing is released), another client
// recovers it, and the store must check clean with every sealed object
// intact. A second family kills a thread that holds a stripe's robust lock.
#include <gtest/gtest.h>

#include <larder/store.hpp>

#include "runtime/store/store_test_hooks.hpp"

#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace {

using larder::errc;
using larder::object_id;

std::byte pattern(std::uint64_t id, std::size_t i) { return static_cast<std::byte>((id * 31 + i * 7) & 0xff); }
std::size_t size_of(std::uint64_t id) { return 16 + (id * 37) % 300; }

larder::status put(larder::store& s, std::uint64_t id) {
  larder::object_buffer b;
  if (larder::status st = s.create(object_id(id), size_of(id), 0, &b); !st.ok()) return st;
  for (std::size_t i = 0; i < b.data.size(); ++i) b.data[i] = pattern(id, i);
  return s.seal(object_id(id));
}

// Every object the survivor can get has its bytes (ids from 1000 on are
// multi-field objects, checked by their scenario); returns how many.
std::size_t verify_sealed(larder::store& s) {
  std::vector<larder::object_info> all;
  EXPECT_TRUE(s.list(&all).ok());
  std::size_t sealed = 0;
  for (const auto& info : all) {
    if (info.state == larder::object_state::unsealed) continue;
    larder::object_view v;
    if (!s.get(info.id, &v).ok()) continue;
    std::uint64_t id = 0;
    std::memcpy(&id, info.id.data(), 8);
    if (id >= 1000) {
      EXPECT_TRUE(s.release(info.id).ok());
      continue;
    }
    EXPECT_EQ(v.data.size(), size_of(id));
    for (std::size_t i = 0; i < v.data.size(); ++i)
      if (v.data[i] != pattern(id, i)) {
        ADD_FAILURE() << "object " << id << " byte " << i;
        break;
      }
    EXPECT_TRUE(s.release(info.id).ok());
    ++sealed;
  }
  return sealed;
}

struct scenario {
  const char* name;
  std::function<void(larder::store& victim, larder::store& survivor)> setup;
  std::function<larder::status(larder::store& victim)> run;
  // After the victim was recovered (completed: it was not stopped).
  std::function<void(larder::store& survivor, bool completed)> after;
};

larder::store_options options() {
  larder::store_options o;
  o.heap.kind = larder::backing::anonymous;
  o.heap.reserve = std::size_t{1} << 30;
  return o;
}

// Runs `sc` stopped at kill point 1, 2, ... until it completes; returns the
// number of kill points it has.
int sweep(const scenario& sc) {
  for (int step = 1;; ++step) {
    larder::store survivor;
    EXPECT_TRUE(larder::store::open(options(), &survivor).ok());
    larder::store victim;
    EXPECT_TRUE(larder::store::open(survivor.owner(), {}, &victim).ok());
    sc.setup(victim, survivor);
    larder::store_test::stop_after(victim, step);
    larder::status st = sc.run(victim);
    bool completed = !larder::store_test::stopped(victim);
    if (completed) {
      EXPECT_TRUE(st.ok()) << sc.name << ": " << st.to_string();
      larder::store_test::abandon(victim);
    }
    std::size_t recovered = 0;
    EXPECT_TRUE(survivor.recover(&recovered).ok());
    EXPECT_EQ(recovered, 1u) << sc.name << " step " << step;
    larder::status checked = survivor.check();
    EXPECT_TRUE(checked.ok()) << sc.name << " step " << step << ": " << checked.to_string();
    sc.after(survivor, completed);
    verify_sealed(survivor);
    EXPECT_TRUE(survivor.check().ok()) << sc.name << " step " << step;
    if (completed || step > 10000 || ::testing::Test::HasFailure()) return step;
  }
}

TEST(StoreCrashTest, CreateAndSealAtEveryKillPoint) {
  scenario sc{"create+seal",
              [](larder::store&, larder::store&) {},
              [](larder::store& v) {
                // Enough objects that a stripe's table grows.
                for (std::uint64_t id = 0; id < 600; ++id)
                  if (larder::status st = put(v, id); !st.ok()) return st;
                return larder::status();
              },
              [](larder::store& s, bool completed) {
                std::vector<larder::object_info> all;
                ASSERT_TRUE(s.list(&all).ok());
                for (const auto& info : all) EXPECT_EQ(info.state, larder::object_state::sealed);
                if (completed) {
                  EXPECT_EQ(all.size(), 600u);
                }
              }};
  EXPECT_GT(sweep(sc), 600 * 4);
}

TEST(StoreCrashTest, GetAndReleaseAtEveryKillPoint) {
  scenario sc{"get+release",
              [](larder::store&, larder::store& s) {
                for (std::uint64_t id = 0; id < 200; ++id) ASSERT_TRUE(put(s, id).ok());
                larder::object_view v;
                ASSERT_TRUE(s.get(object_id(7), &v).ok());
              },
              [](larder::store& v) {
                larder::object_view view;
                for (std::uint64_t id = 0; id < 200; ++id)
                  if (larder::status st = v.get(object_id(id), &view); !st.ok()) return st;
                for (std::uint64_t id = 0; id < 200; id += 2)
                  if (larder::status st = v.release(object_id(id)); !st.ok()) return st;
                return larder::status();
              },
              [](larder::store& s, bool) {
                std::vector<larder::object_info> all;
                ASSERT_TRUE(s.list(&all).ok());
                EXPECT_EQ(all.size(), 200u);
                // Only the survivor's own reference is left.
                for (const auto& info : all) EXPECT_EQ(info.refcount, info.id == object_id(7) ? 1u : 0u);
                EXPECT_TRUE(s.release(object_id(7)).ok());
              }};
  EXPECT_GT(sweep(sc), 200 * 2);
}

TEST(StoreCrashTest, DeleteAtEveryKillPoint) {
  scenario sc{"delete",
              [](larder::store&, larder::store& s) {
                for (std::uint64_t id = 0; id < 60; ++id) ASSERT_TRUE(put(s, id).ok());
                larder::object_view v;
                for (std::uint64_t id = 0; id < 60; id += 3) ASSERT_TRUE(s.get(object_id(id), &v).ok());
              },
              [](larder::store& v) {
                for (std::uint64_t id = 0; id < 60; ++id)
                  if (larder::status st = v.remove(object_id(id)); !st.ok()) return st;
                return larder::status();
              },
              [](larder::store& s, bool completed) {
                std::vector<larder::object_info> all;
                ASSERT_TRUE(s.list(&all).ok());
                for (std::uint64_t id = 0; id < 60; id += 3) EXPECT_TRUE(s.release(object_id(id)).ok()) << id;
                std::vector<larder::object_info> left;
                ASSERT_TRUE(s.list(&left).ok());
                for (const auto& info : left) EXPECT_EQ(info.state, larder::object_state::sealed);
                if (completed) {
                  EXPECT_TRUE(left.empty());
                }
              }};
  EXPECT_GT(sweep(sc), 60);
}

TEST(StoreCrashTest, AbortAndUnsealedObjectsAtEveryKillPoint) {
  scenario sc{"abort",
              [](larder::store& v, larder::store&) {
                larder::object_buffer b;
                for (std::uint64_t id = 0; id < 40; ++id) ASSERT_TRUE(v.create(object_id(id), 100, 0, &b).ok());
              },
              [](larder::store& v) {
                for (std::uint64_t id = 0; id < 40; id += 2)
                  if (larder::status st = v.abort(object_id(id)); !st.ok()) return st;
                return larder::status();
              },
              [](larder::store& s, bool) {
                std::vector<larder::object_info> all;
                ASSERT_TRUE(s.list(&all).ok());
                EXPECT_TRUE(all.empty()) << all.size() << " objects of a dead client left";
              }};
  EXPECT_GT(sweep(sc), 20);
}

TEST(StoreCrashTest, UpdateFieldsAtEveryKillPoint) {
  static const std::string a(100, 'a'), b(100, 'b');
  auto bytes = [](const std::string& s) { return std::span<const std::byte>(reinterpret_cast<const std::byte*>(s.data()), s.size()); };
  scenario sc{"update_fields",
              [&](larder::store&, larder::store& s) {
                std::vector<larder::field> f = {{"v", bytes(a)}};
                for (std::uint64_t id = 0; id < 30; ++id) ASSERT_TRUE(s.put_fields(object_id(1000 + id), f).ok());
              },
              [&](larder::store& v) {
                std::vector<larder::field> f = {{"v", bytes(b)}};
                for (std::uint64_t id = 0; id < 30; ++id)
                  if (larder::status st = v.update_fields(object_id(1000 + id), f); !st.ok()) return st;
                return larder::status();
              },
              [&](larder::store& s, bool completed) {
                std::vector<std::string_view> names = {"v"};
                std::vector<std::span<const std::byte>> values;
                for (std::uint64_t id = 0; id < 30; ++id) {
                  ASSERT_TRUE(s.get_fields(object_id(1000 + id), names, &values).ok()) << id;
                  std::string got(reinterpret_cast<const char*>(values[0].data()), values[0].size());
                  EXPECT_TRUE(got == a || got == b);
                  if (completed) {
                    EXPECT_EQ(got, b);
                  }
                  EXPECT_TRUE(s.release(object_id(1000 + id)).ok());
                }
                std::vector<larder::object_info> all;
                ASSERT_TRUE(s.list(&all).ok());
                EXPECT_EQ(all.size(), 30u);
              }};
  EXPECT_GT(sweep(sc), 30);
}

// A client killed while it recovers a dead one: the next recovery takes
// over both, and what the first left half done comes out the same.
TEST(StoreCrashTest, RecoveryStoppedAtEveryKillPointIsRunAgain) {
  bool completed = false;
  int step = 1;
  for (; !completed && step < 1000; ++step) {
    larder::store survivor;
    ASSERT_TRUE(larder::store::open(options(), &survivor).ok());
    larder::store victim, recoverer;
    ASSERT_TRUE(larder::store::open(survivor.owner(), {}, &victim).ok());
    ASSERT_TRUE(larder::store::open(survivor.owner(), {}, &recoverer).ok());
    for (std::uint64_t id = 0; id < 100; ++id) ASSERT_TRUE(put(survivor, id).ok());
    larder::object_view v;
    for (std::uint64_t id = 0; id < 100; id += 2) ASSERT_TRUE(victim.get(object_id(id), &v).ok());
    ASSERT_TRUE(survivor.get(object_id(4), &v).ok());
    ASSERT_TRUE(survivor.remove(object_id(4)).ok());
    larder::object_buffer b;
    for (std::uint64_t id = 200; id < 210; ++id) ASSERT_TRUE(victim.create(object_id(id), 10, 0, &b).ok());
    larder::store_test::abandon(victim);
    larder::store_test::stop_after(recoverer, step);
    std::size_t recovered = 0;
    larder::status st = recoverer.recover(&recovered);
    completed = !larder::store_test::stopped(recoverer);
    if (completed) {
      EXPECT_TRUE(st.ok()) << st.to_string();
      EXPECT_EQ(recovered, 1u);
    } else {
      ASSERT_TRUE(survivor.recover(&recovered).ok());
      EXPECT_EQ(recovered, 2u) << "step " << step;
    }
    larder::status checked = survivor.check();
    EXPECT_TRUE(checked.ok()) << "step " << step << ": " << checked.to_string();
    std::vector<larder::object_info> all;
    ASSERT_TRUE(survivor.list(&all).ok());
    for (const auto& info : all) {
      EXPECT_NE(info.state, larder::object_state::unsealed);
      EXPECT_EQ(info.refcount, info.id == object_id(4) ? 1u : 0u);
    }
    EXPECT_TRUE(survivor.release(object_id(4)).ok());
    EXPECT_EQ(verify_sealed(survivor), 99u);
    if (::testing::Test::HasFailure()) break;
  }
  EXPECT_TRUE(completed);
  EXPECT_GT(step, 64);
}

// A thread that takes a stripe's lock in the middle of a get and exits
// holding it: the robust lock tells the next taker, which settles the
// stripe; the dead client is recovered at its next call.
TEST(StoreCrashTest, ThreadDyingHoldingAStripeLock) {
  larder::store survivor;
  ASSERT_TRUE(larder::store::open(options(), &survivor).ok());
  for (std::uint64_t id = 0; id < 100; ++id) ASSERT_TRUE(put(survivor, id).ok());
  larder::store victim;
  ASSERT_TRUE(larder::store::open(survivor.owner(), {}, &victim).ok());
  std::thread t([&] {
    larder::object_view v;
    ASSERT_TRUE(victim.get(object_id(1), &v).ok());
    // Its stripe lock taken as a get would, and never given back.
    auto* impl = victim.impl();
    std::uint64_t hash = larder::store_internal::hash_id(object_id(2));
    auto& stripe = larder::store_internal::stripe_of(impl->header, hash);
    bool died = false;
    ASSERT_EQ(larder::port::robust_lock_acquire(&stripe.lock, &died), 0);
    stripe.holder = impl->client + 1;
    larder::store_internal::ref_row* row = nullptr;
    auto* o = larder::store_internal::find_object(stripe, hash, object_id(2));
    ASSERT_TRUE(larder::store_internal::find_or_add_row(*impl, impl->slot().tables[larder::store_internal::stripe_number(impl->header, stripe)], o, &row).ok());
    row->count += 1;  // the row is written, the count is not
    impl->stopped = true;
  });
  t.join();
  larder::object_view v;
  ASSERT_TRUE(survivor.get(object_id(2), &v).ok());
  EXPECT_EQ(v.data[0], pattern(2, 0));
  ASSERT_TRUE(survivor.release(object_id(2)).ok());
  // The settle marked the victim dead; the next call recovered it.
  EXPECT_EQ(survivor.stats().clients, 1u);
  larder::status checked = survivor.check();
  EXPECT_TRUE(checked.ok()) << checked.to_string();
  std::vector<larder::object_info> all;
  ASSERT_TRUE(survivor.list(&all).ok());
  for (const auto& info : all) EXPECT_EQ(info.refcount, 0u);
  EXPECT_EQ(verify_sealed(survivor), 100u);
}

}  // namespace
