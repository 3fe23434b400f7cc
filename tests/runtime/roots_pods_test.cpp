// Typed roots (heap::root / destroy_root), root names and the root table,
// pods and pod_scope.
#include "runtime/runtime_test_util.hpp"

#include <larder/larder.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using larder::errc;
using larder::open_mode;
using larder_test::describe;
using larder_test::run_in_child;

struct counted {
  static inline int constructed = 0;
  static inline int destroyed = 0;
  counted(int a_, double b_) : a(a_), b(b_) { ++constructed; }
  ~counted() { ++destroyed; }
  int a;
  double b;
  char text[40] = "made by the constructor";
};

struct bigger {
  char bytes[sizeof(counted) + 8];
};

struct throws_on_build {
  explicit throws_on_build(bool fail) {
    if (fail) throw std::runtime_error("constructor failed");
  }
  int value = 1;
};

class RuntimeRoots : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.file("roots.lrd");
    counted::constructed = 0;
    counted::destroyed = 0;
  }
  larder::heap_options options(open_mode mode = open_mode::open_or_create) const {
    return larder_test::file_options(path_, mode);
  }
  larder_test::temp_dir dir_;
  std::string path_;
};

TEST_F(RuntimeRoots, RootIsConstructedOnceAndFoundAfterReopen) {
  counted* first = nullptr;
  {
    larder::heap h(options(open_mode::create));
    first = h.root<counted>("counted", 7, 2.5);
    ASSERT_NE(first, nullptr);
    EXPECT_TRUE(h.contains(first));
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(first) % alignof(counted), 0u);
    EXPECT_EQ(counted::constructed, 1);
    EXPECT_EQ(first->a, 7);
    first->a = 8;
    counted* again = h.root<counted>("counted", 100, 100.0);  // found, arguments unused
    EXPECT_EQ(again, first);
    EXPECT_EQ(counted::constructed, 1);
    EXPECT_EQ(again->a, 8);
    std::size_t size = 0;
    EXPECT_EQ(h.find_root("counted", &size), first);
    EXPECT_EQ(size, sizeof(counted));
  }
  {
    larder::heap h(options(open_mode::open));
    counted* found = h.root<counted>("counted", 1, 1.0);
    EXPECT_EQ(found, first);
    EXPECT_EQ(counted::constructed, 1) << "a found root must not be constructed again";
    EXPECT_EQ(found->a, 8);
    EXPECT_EQ(found->b, 2.5);
    EXPECT_STREQ(found->text, "made by the constructor");
  }
  int code = run_in_child([&] {
    larder::heap h(options(open_mode::open));
    counted* found = h.root<counted>("counted", 1, 1.0);
    EXPECT_EQ(found, first);
    EXPECT_EQ(found->a, 8);
    EXPECT_EQ(counted::constructed, 1);
  });
  EXPECT_EQ(code, 0);
}

TEST_F(RuntimeRoots, RootOfAnotherSizeIsTypeMismatch) {
  larder::heap h(options(open_mode::create));
  counted* c = h.root<counted>("thing", 1, 2.0);
  ASSERT_NE(c, nullptr);
  try {
    (void)h.root<bigger>("thing");
    ADD_FAILURE() << "no exception for a root of another size";
  } catch (const larder::error& e) {
    EXPECT_EQ(e.code(), static_cast<int>(errc::type_mismatch));
    EXPECT_TRUE(e.result().is(errc::type_mismatch));
    EXPECT_NE(std::string(e.what()).find("thing"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)h.root<char>("thing"), larder::error);
  EXPECT_THROW(h.destroy_root<bigger>("thing"), larder::error);
  // Nothing changed.
  EXPECT_EQ(h.root<counted>("thing", 0, 0.0), c);
  EXPECT_EQ(counted::destroyed, 0);

  // The same after reopen.
  ASSERT_TRUE(h.close().ok());
  larder::heap again(options(open_mode::open));
  try {
    (void)again.root<bigger>("thing");
    ADD_FAILURE() << "no exception for a root of another size after reopen";
  } catch (const larder::error& e) {
    EXPECT_EQ(e.code(), static_cast<int>(errc::type_mismatch));
  }
}

TEST_F(RuntimeRoots, DestroyRootRunsTheDestructorAndForgetsTheName) {
  larder::heap h(options(open_mode::create));
  counted* c = h.root<counted>("doomed", 1, 1.0);
  ASSERT_NE(c, nullptr);
  h.destroy_root<counted>("doomed");
  EXPECT_EQ(counted::destroyed, 1);
  EXPECT_EQ(h.find_root("doomed"), nullptr);
  EXPECT_EQ(h.stats().roots, 0u);
  h.destroy_root<counted>("doomed");  // absent: nothing happens
  h.destroy_root<counted>("never-there");
  EXPECT_EQ(counted::destroyed, 1);
  // Constructed afresh under the same name.
  counted* fresh = h.root<counted>("doomed", 2, 2.0);
  EXPECT_EQ(fresh->a, 2);
  EXPECT_EQ(counted::constructed, 2);

  ASSERT_TRUE(h.close().ok());
  larder::heap again(options(open_mode::open));
  again.destroy_root<counted>("doomed");
  EXPECT_EQ(counted::destroyed, 2);
  EXPECT_EQ(again.find_root("doomed"), nullptr);
  ASSERT_TRUE(again.close().ok());
  ASSERT_TRUE(again.open(options(open_mode::open), &again).ok());
  EXPECT_EQ(again.find_root("doomed"), nullptr) << "destroy_root did not last";
}

TEST_F(RuntimeRoots, ThrowingConstructorRecordsNoRoot) {
  larder::heap h(options(open_mode::create));
  EXPECT_THROW((void)h.root<throws_on_build>("fragile", true), std::runtime_error);
  EXPECT_EQ(h.find_root("fragile"), nullptr);
  throws_on_build* ok = h.root<throws_on_build>("fragile", false);
  ASSERT_NE(ok, nullptr);
  EXPECT_EQ(ok->value, 1);
}

TEST_F(RuntimeRoots, BadNamesAreRejected) {
  larder::heap h(options(open_mode::create));
  void* p = h.allocate(16);
  ASSERT_NE(p, nullptr);
  std::string longest(95, 'n');
  std::string too_long(96, 'n');
  std::string with_nul("ab\0cd", 5);

  EXPECT_TRUE(h.set_root(longest, p, 16).ok());
  EXPECT_EQ(h.find_root(longest), p);
  for (const std::string& bad : {std::string(), too_long, with_nul, std::string(1000, 'x')}) {
    larder::status s = h.set_root(bad, p, 16);
    EXPECT_TRUE(s.is(errc::invalid_argument)) << bad.size() << ": " << describe(s);
    EXPECT_FALSE(s.to_string().empty());
    EXPECT_EQ(h.find_root(bad), nullptr);
    s = h.remove_root(bad);
    EXPECT_TRUE(s.is(errc::invalid_argument)) << describe(s);
    try {
      (void)h.root<int>(bad, 1);
      ADD_FAILURE() << "root<int> accepted a name of " << bad.size() << " bytes";
    } catch (const larder::error& e) {
      EXPECT_EQ(e.code(), static_cast<int>(errc::invalid_argument)) << e.what();
    }
  }
  // A too-long name that starts like a stored one does not find it.
  EXPECT_EQ(h.find_root(longest + "n"), nullptr);
  EXPECT_EQ(h.stats().roots, 1u);
}

TEST_F(RuntimeRoots, ThousandsOfRootsSurviveReopen) {
  constexpr int kRoots = 3000;
  std::vector<void*> objects(kRoots);
  {
    larder::heap h(options(open_mode::create));
    for (int i = 0; i < kRoots; ++i) {
      std::size_t size = 8 + static_cast<std::size_t>(i % 57);
      void* p = h.allocate(size);
      ASSERT_NE(p, nullptr);
      larder_test::fill_pattern(p, size, static_cast<std::uint64_t>(i));
      larder::status s = h.set_root(larder_test::numbered("object/", i), p, size);
      ASSERT_TRUE(s.ok()) << i << ": " << describe(s);
      objects[static_cast<std::size_t>(i)] = p;
    }
    EXPECT_EQ(h.stats().roots, static_cast<std::size_t>(kRoots));
  }
  {
    larder::heap h(options(open_mode::open));
    EXPECT_EQ(h.roots().size(), static_cast<std::size_t>(kRoots));
    for (int i = 0; i < kRoots; ++i) {
      std::size_t size = 0;
      void* p = h.find_root(larder_test::numbered("object/", i), &size);
      ASSERT_EQ(p, objects[static_cast<std::size_t>(i)]) << i;
      ASSERT_EQ(size, 8 + static_cast<std::size_t>(i % 57));
      ASSERT_TRUE(larder_test::check_pattern(p, size, static_cast<std::uint64_t>(i))) << i;
    }
    // Remove every other one; the rest stay reachable past the holes.
    for (int i = 0; i < kRoots; i += 2) ASSERT_TRUE(h.remove_root(larder_test::numbered("object/", i)).ok());
  }
  {
    larder::heap h(options(open_mode::open));
    EXPECT_EQ(h.stats().roots, static_cast<std::size_t>(kRoots / 2));
    for (int i = 0; i < kRoots; ++i) {
      void* p = h.find_root(larder_test::numbered("object/", i));
      if (i % 2 == 0) {
        ASSERT_EQ(p, nullptr) << i;
      } else {
        ASSERT_EQ(p, objects[static_cast<std::size_t>(i)]) << i;
      }
    }
    // Removed names can be set again, and replacing keeps one entry.
    for (int i = 0; i < kRoots; i += 2)
      ASSERT_TRUE(h.set_root(larder_test::numbered("object/", i), objects[static_cast<std::size_t>(i)], 1).ok());
    for (int i = 1; i < kRoots; i += 2)
      ASSERT_TRUE(h.set_root(larder_test::numbered("object/", i), objects[static_cast<std::size_t>(i)], 2).ok());
    EXPECT_EQ(h.stats().roots, static_cast<std::size_t>(kRoots));
    EXPECT_EQ(h.roots().size(), static_cast<std::size_t>(kRoots));
  }
}

TEST_F(RuntimeRoots, RootTableFullIsReported) {
  larder::heap_options o;
  o.kind = larder::backing::anonymous;
  larder::heap h(o);
  void* p = h.allocate(8);
  ASSERT_NE(p, nullptr);
  for (int i = 0; i < 4096; ++i) {
    larder::status s = h.set_root(larder_test::numbered("r", i), p, 8);
    ASSERT_TRUE(s.ok()) << i << ": " << describe(s);
  }
  larder::status s = h.set_root("one-too-many", p, 8);
  EXPECT_TRUE(s.is(errc::table_full)) << describe(s);
  EXPECT_EQ(h.find_root("one-too-many"), nullptr);
  // Replacing an existing root still works when the table is full.
  EXPECT_TRUE(h.set_root("r17", p, 9).ok());
  // Every root is still found.
  for (int i = 0; i < 4096; ++i) ASSERT_EQ(h.find_root(larder_test::numbered("r", i)), p) << i;
  ASSERT_TRUE(h.remove_root("r100").ok());
  EXPECT_TRUE(h.set_root("one-too-many", p, 8).ok());
  EXPECT_EQ(h.find_root("one-too-many"), p);
  EXPECT_EQ(h.find_root("r100"), nullptr);
}

// ---- pods -------------------------------------------------------------------

class RuntimePods : public RuntimeRoots {};

std::size_t in_use_of(const larder::heap& h, const std::string& name) {
  for (const auto& info : h.pods())
    if (info.name == name) return info.bytes_in_use;
  ADD_FAILURE() << "pod " << name << " not listed";
  return 0;
}

TEST_F(RuntimePods, MakeFindAndList) {
  larder::heap h(options(open_mode::create));
  larder::pod def = h.default_pod();
  ASSERT_TRUE(def.valid());
  EXPECT_EQ(def.id(), 0u);
  EXPECT_EQ(def.name(), "default");

  larder::pod alpha;
  larder::status s = h.make_pod("alpha", &alpha);
  ASSERT_TRUE(s.ok()) << describe(s);
  ASSERT_TRUE(alpha.valid());
  EXPECT_NE(alpha.id(), 0u);
  EXPECT_EQ(alpha.name(), "alpha");
  EXPECT_TRUE(h.contains(alpha.record())) << "a pod handle is an address inside its heap";

  larder::pod same;
  ASSERT_TRUE(h.make_pod("alpha", &same).ok());
  EXPECT_TRUE(same == alpha);
  EXPECT_TRUE(h.find_pod("alpha") == alpha);
  EXPECT_FALSE(h.find_pod("beta").valid());
  EXPECT_FALSE(h.find_pod("").valid());

  larder::pod beta;
  ASSERT_TRUE(h.make_pod("beta", &beta).ok());
  EXPECT_NE(beta.id(), alpha.id());
  EXPECT_FALSE(beta == alpha);

  std::string longest(47, 'p');
  larder::pod edge;
  EXPECT_TRUE(h.make_pod(longest, &edge).ok());
  EXPECT_EQ(edge.name(), longest);
  for (const std::string& bad : {std::string(), std::string(48, 'p'), std::string("a\0b", 3)}) {
    larder::pod none;
    s = h.make_pod(bad, &none);
    EXPECT_TRUE(s.is(errc::invalid_argument)) << bad.size() << ": " << describe(s);
    EXPECT_FALSE(none.valid());
  }

  std::vector<larder::pod_info> listed = h.pods();
  ASSERT_EQ(listed.size(), 4u);
  EXPECT_EQ(h.stats().pods, 4u);
  std::vector<std::string> names;
  for (const auto& info : listed) names.push_back(info.name);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"alpha", "beta", "default", longest}));
  for (const auto& info : listed) EXPECT_EQ(h.find_pod(info.name).id(), info.id);

  // Usage shows up per pod.
  EXPECT_EQ(in_use_of(h, "alpha"), 0u);
  std::vector<void*> blocks;
  for (int i = 0; i < 100; ++i) {
    void* p = alpha.allocate(500);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(h.contains(p));
    blocks.push_back(p);
  }
  EXPECT_GE(in_use_of(h, "alpha"), 100u * 500u);
  EXPECT_EQ(in_use_of(h, "beta"), 0u);
  for (const auto& info : h.pods()) {
    if (info.name == "alpha") {
      EXPECT_GE(info.bytes_committed, info.bytes_in_use);
    }
  }
  for (void* p : blocks) larder::free(p);
  EXPECT_LT(in_use_of(h, "alpha"), 100u * 500u);
}

TEST_F(RuntimePods, PodTableFullIsReported) {
  larder::heap_options o;
  o.kind = larder::backing::anonymous;
  larder::heap h(o);
  larder::pod p;
  for (int i = 1; i < 1024; ++i) {
    larder::status s = h.make_pod(larder_test::numbered("pod", i), &p);
    ASSERT_TRUE(s.ok()) << i << ": " << describe(s);
  }
  larder::status s = h.make_pod("one-too-many", &p);
  EXPECT_TRUE(s.is(errc::table_full)) << describe(s);
  EXPECT_EQ(h.pods().size(), 1024u);
  // An existing name is still found.
  EXPECT_TRUE(h.make_pod("pod5", &p).ok());
  EXPECT_EQ(p.name(), "pod5");
}

TEST_F(RuntimePods, PodScopeSetsTheCurrentPod) {
  larder::heap h(options(open_mode::create));
  larder::pod a, b;
  ASSERT_TRUE(h.make_pod("a", &a).ok());
  ASSERT_TRUE(h.make_pod("b", &b).ok());

  EXPECT_FALSE(larder::current_pod().valid());
  {
    larder::allocator<int> outside;
    EXPECT_FALSE(outside.target().valid());
    int* q = outside.allocate(4);  // the process heap
    EXPECT_FALSE(h.contains(q));
    outside.deallocate(q, 4);
  }
  {
    larder::pod_scope sa(a);
    EXPECT_TRUE(larder::current_pod() == a);
    larder::allocator<std::uint64_t> in_a;
    EXPECT_TRUE(in_a.target() == a);
    {
      larder::pod_scope sb(b);
      EXPECT_TRUE(larder::current_pod() == b);
      larder::allocator<std::uint64_t> in_b;
      EXPECT_TRUE(in_b.target() == b);
      EXPECT_FALSE(in_a == in_b);
      std::uint64_t* x = in_b.allocate(100);
      EXPECT_TRUE(h.contains(x));
      EXPECT_GE(in_use_of(h, "b"), 800u);
      in_b.deallocate(x, 100);
    }
    EXPECT_TRUE(larder::current_pod() == a);
    std::uint64_t* y = in_a.allocate(100);
    EXPECT_TRUE(h.contains(y));
    EXPECT_GE(in_use_of(h, "a"), 800u);
    larder::allocator<char> rebound(in_a);
    EXPECT_TRUE(rebound.target() == a);
    EXPECT_TRUE(rebound == in_a);
    in_a.deallocate(y, 100);

    // A container built in the scope keeps its pod after the scope.
    std::vector<int, larder::allocator<int>> v;
    v.assign(1000, 3);
    EXPECT_TRUE(h.contains(v.data()));
  }
  EXPECT_FALSE(larder::current_pod().valid());

  // The default pod through the scope.
  {
    larder::pod_scope sd(h.default_pod());
    EXPECT_TRUE(larder::current_pod() == h.default_pod());
    larder::allocator<int> d;
    int* z = d.allocate(10);
    EXPECT_TRUE(h.contains(z));
    d.deallocate(z, 10);
  }

  // pmr resources compare by pod.
  larder::memory_resource ra(a), ra2(a), rb(b);
  EXPECT_TRUE(ra.is_equal(ra2));
  EXPECT_FALSE(ra.is_equal(rb));
  EXPECT_FALSE(ra.is_equal(*std::pmr::new_delete_resource()));
  void* m = ra.allocate(64, 64);
  EXPECT_TRUE(h.contains(m));
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(m) % 64, 0u);
  ra.deallocate(m, 64, 64);

  // A scope over a closed heap's pod changes nothing.
  ASSERT_TRUE(h.close().ok());
  {
    larder::pod_scope stale(a);
    EXPECT_FALSE(larder::current_pod().valid());
  }
  errno = 0;
  EXPECT_EQ(a.allocate(16), nullptr) << "a pod of a closed heap must not allocate";
}

TEST_F(RuntimePods, BlocksOfDifferentPodsNeverShareA64KiBSlice) {
  larder::heap h(options(open_mode::create));
  larder::pod pods[3];
  ASSERT_TRUE(h.make_pod("red", &pods[0]).ok());
  ASSERT_TRUE(h.make_pod("green", &pods[1]).ok());
  pods[2] = h.default_pod();

  std::set<std::uintptr_t> slices[3];
  auto note = [&](int which, void* p, std::size_t size) {
    auto first = reinterpret_cast<std::uintptr_t>(p) >> 16;
    auto last = (reinterpret_cast<std::uintptr_t>(p) + size - 1) >> 16;
    for (auto s = first; s <= last; ++s) slices[which].insert(s);
  };
  std::vector<void*> freed_later;
  for (int i = 0; i < 6000; ++i) {
    int which = i % 3;
    std::size_t size = 8 + static_cast<std::size_t>((i * 131) % 700);
    if (i % 97 == 0) size = 20000 + static_cast<std::size_t>(i);
    if (i % 1001 == 0) size = 300000;
    void* p;
    if (which == 2) {
      // The default pod through a container allocator made in a scope.
      larder::pod_scope scope(pods[2]);
      larder::allocator<char> a;
      p = a.allocate(size);
    } else {
      p = pods[which].allocate(size);
    }
    ASSERT_NE(p, nullptr);
    ASSERT_TRUE(h.contains(p));
    note(which, p, size);
    if (i % 4 == 0) freed_later.push_back(p);
  }
  // Freeing and allocating again must not mix pods either.
  for (void* p : freed_later) larder::free(p);
  for (int i = 0; i < 3000; ++i) {
    int which = (i + 1) % 3;
    std::size_t size = 16 + static_cast<std::size_t>((i * 17) % 300);
    void* p = pods[which].allocate(size);
    ASSERT_NE(p, nullptr);
    note(which, p, size);
  }
  for (int x = 0; x < 3; ++x) {
    for (int y = x + 1; y < 3; ++y) {
      std::vector<std::uintptr_t> shared;
      std::set_intersection(slices[x].begin(), slices[x].end(), slices[y].begin(), slices[y].end(),
                            std::back_inserter(shared));
      EXPECT_TRUE(shared.empty()) << "pods " << x << " and " << y << " share " << shared.size()
                                  << " slices, first at 0x" << std::hex << (shared.empty() ? 0 : shared[0] << 16);
    }
  }
  EXPECT_GT(in_use_of(h, "red"), 0u);
  EXPECT_GT(in_use_of(h, "green"), 0u);
  EXPECT_GT(in_use_of(h, "default"), 0u);
}

// pod_info::bytes_in_use is documented as the bytes in blocks handed out.
// Blocks allocated before a reopen sit on pages that no thread owns after
// it; freeing them must show up in the figure like any other free.
TEST_F(RuntimePods, UsageDropsWhenBlocksFromBeforeReopenAreFreed) {
  constexpr int kBlocks = 1000;
  void** table = nullptr;
  {
    larder::heap h(options(open_mode::create));
    table = static_cast<void**>(h.allocate(sizeof(void*) * kBlocks));
    ASSERT_NE(table, nullptr);
    ASSERT_TRUE(h.set_root("table", table, sizeof(void*) * kBlocks).ok());
    for (int i = 0; i < kBlocks; ++i) table[i] = h.allocate(1000);
    EXPECT_GE(in_use_of(h, "default"), std::size_t{kBlocks} * 1000);
  }
  larder::heap h(options(open_mode::open));
  std::size_t before = in_use_of(h, "default");
  EXPECT_GE(before, std::size_t{kBlocks} * 1000);
  for (int i = 0; i < kBlocks; ++i) larder::free(table[i]);
  std::size_t after = in_use_of(h, "default");
  EXPECT_LE(after, before - std::size_t{kBlocks} * 1000)
      << "freeing " << kBlocks << " blocks of 1000 bytes left bytes_in_use at " << after << " (was " << before
      << ")";
  // The same frees are counted once the heap is reopened.
  ASSERT_TRUE(h.close().ok());
  ASSERT_TRUE(larder::heap::open(options(open_mode::open), &h).ok());
  EXPECT_LE(in_use_of(h, "default"), before - std::size_t{kBlocks} * 1000);
}

struct pod_pair {
  larder::pod first;
  larder::pod second;
};

TEST_F(RuntimePods, PodHandlesSurviveReopen) {
  std::uint32_t first_id = 0, second_id = 0;
  {
    larder::heap h(options(open_mode::create));
    pod_pair* pair = h.root<pod_pair>("pods");
    ASSERT_TRUE(h.make_pod("first", &pair->first).ok());
    ASSERT_TRUE(h.make_pod("second", &pair->second).ok());
    first_id = pair->first.id();
    second_id = pair->second.id();
    for (int i = 0; i < 50; ++i) ASSERT_NE(pair->first.allocate(1000), nullptr);
    void* kept = pair->second.allocate(64);
    ASSERT_NE(kept, nullptr);
    std::memcpy(kept, "second pod", 11);
    ASSERT_TRUE(h.set_root("kept", kept, 64).ok());
  }
  auto verify = [&](larder::heap& h) {
    pod_pair* pair = h.root<pod_pair>("pods");
    ASSERT_TRUE(pair->first.valid());
    EXPECT_EQ(pair->first.name(), "first");
    EXPECT_EQ(pair->second.name(), "second");
    EXPECT_EQ(pair->first.id(), first_id);
    EXPECT_EQ(pair->second.id(), second_id);
    EXPECT_TRUE(h.find_pod("first") == pair->first);
    EXPECT_TRUE(h.find_pod("second") == pair->second);
    EXPECT_STREQ(static_cast<char*>(h.find_root("kept")), "second pod");
    EXPECT_EQ(h.pods().size(), 3u);
    EXPECT_GE(in_use_of(h, "first"), 50u * 1000u) << "usage after reopen";
    void* p = pair->first.allocate(1000);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(h.contains(p));
    larder::pod made;
    ASSERT_TRUE(h.make_pod("second", &made).ok());
    EXPECT_TRUE(made == pair->second);
  };
  {
    larder::heap h(options(open_mode::open));
    verify(h);
  }
  EXPECT_EQ(run_in_child([&] {
              larder::heap h(options(open_mode::open));
              verify(h);
            }),
            0);
}

}  // namespace
