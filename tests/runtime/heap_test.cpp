// larder::heap over its three backings: allocation, roots and stats; close
// and reopen (here and in another process); growth of a file heap; open
// modes, the writer lock, address conflicts and read-only opens.
#include "runtime/runtime_test_util.hpp"

#include "larder_config.h"

#include <larder/larder.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace {

using larder::backing;
using larder::errc;
using larder::open_mode;
using larder_test::check_pattern;
using larder_test::describe;
using larder_test::fill_pattern;
using larder_test::run_in_child;

const char* backing_name(backing b) {
  switch (b) {
    case backing::anonymous: return "anonymous";
    case backing::shm: return "shm";
    case backing::file: return "file";
  }
  return "unknown";
}

std::string param_name(const ::testing::TestParamInfo<backing>& info) { return backing_name(info.param); }

// One block recorded under a root: what a reopened heap must give back.
struct recorded_root {
  std::string name;
  void* object;
  std::size_t size;
  std::uint64_t key;
};

// Allocates `count` blocks of assorted sizes (small, large and one huge),
// fills each with its own pattern and records it as a root.
std::vector<recorded_root> make_roots(larder::heap& h, int count, const std::string& prefix) {
  std::vector<recorded_root> made;
  for (int i = 0; i < count; ++i) {
    std::size_t size = 8 + static_cast<std::size_t>(i * 97) % 4000;
    if (i % 10 == 3) size = 70 * 1024 + static_cast<std::size_t>(i);  // a large-page block
    if (i == 5) size = (std::size_t{5} << 20) + 123;                  // a huge block
    void* p = h.allocate(size);
    EXPECT_NE(p, nullptr) << "allocating " << size << " bytes";
    if (p == nullptr) break;
    EXPECT_TRUE(h.contains(p));
    std::uint64_t key = std::hash<std::string>{}(prefix) + static_cast<std::uint64_t>(i);
    fill_pattern(p, size, key);
    std::string name = prefix + std::to_string(i);
    larder::status s = h.set_root(name, p, size);
    EXPECT_TRUE(s.ok()) << describe(s);
    made.push_back({name, p, size, key});
  }
  return made;
}

void expect_roots(const larder::heap& h, const std::vector<recorded_root>& roots) {
  for (const auto& r : roots) {
    std::size_t size = 0;
    void* found = h.find_root(r.name, &size);
    ASSERT_EQ(found, r.object) << r.name;
    EXPECT_EQ(size, r.size) << r.name;
    EXPECT_TRUE(h.contains(found));
    EXPECT_TRUE(check_pattern(found, r.size, r.key)) << r.name << " lost its bytes";
  }
}

// A table of blocks kept inside the heap, to check allocation and freeing
// across reopen.
struct ledger_entry {
  void* block;
  std::uint64_t size;
  std::uint64_t key;
  std::uint64_t live;
};
constexpr std::size_t kLedgerCapacity = 6000;
struct ledger {
  std::uint64_t count;
  ledger_entry entries[kLedgerCapacity];
};

void ledger_add(larder::heap& h, ledger* l, int how_many, std::uint64_t seed) {
  for (int i = 0; i < how_many; ++i) {
    ASSERT_LT(l->count, kLedgerCapacity);
    std::uint64_t key = seed * 100000 + static_cast<std::uint64_t>(i);
    std::size_t size = 1 + static_cast<std::size_t>((key * 7919) % 2000);
    if (i % 50 == 7) size = 100 * 1024;  // a few large-page blocks
    void* p = h.allocate(size);
    ASSERT_NE(p, nullptr);
    ASSERT_TRUE(h.contains(p));
    fill_pattern(p, size, key);
    l->entries[l->count++] = {p, size, key, 1};
  }
}

void ledger_check(const larder::heap& h, const ledger* l) {
  std::size_t bad = 0;
  for (std::uint64_t i = 0; i < l->count; ++i) {
    const ledger_entry& e = l->entries[i];
    if (!e.live) continue;
    if (!h.contains(e.block) || !check_pattern(e.block, e.size, e.key)) ++bad;
  }
  EXPECT_EQ(bad, 0u) << "live blocks damaged (overlapping allocations?)";
}

void ledger_free_some(ledger* l, std::uint64_t every) {
  for (std::uint64_t i = 0; i < l->count; ++i) {
    ledger_entry& e = l->entries[i];
    if (e.live && i % every == 0) {
      larder::heap::deallocate(e.block);
      e.live = 0;
    }
  }
}

class RuntimeHeapBacking : public ::testing::TestWithParam<backing> {
 protected:
  void SetUp() override {
    if (GetParam() == backing::file) name_ = dir_.file("heap.lrd");
    if (GetParam() == backing::shm) name_ = larder_test::unique_shm_name("heap");
  }
  void TearDown() override {
    if (GetParam() == backing::shm) ::shm_unlink(name_.c_str());
  }

  larder::heap_options options(open_mode mode = open_mode::open_or_create) const {
    larder::heap_options o;
    o.kind = GetParam();
    o.name = name_;
    o.mode = mode;
    return o;
  }
  // Where the backing shows up in the file system.
  std::string backing_path() const {
    if (GetParam() == backing::shm) return "/dev/shm" + name_;
    return name_;
  }

  larder_test::temp_dir dir_;
  std::string name_;
};

// The same fixture, for the backings that outlive the heap object.
class RuntimeHeapPersistent : public RuntimeHeapBacking {};

TEST_P(RuntimeHeapBacking, CreateAllocateRootsAndStats) {
  larder::heap h;
  larder::status s = larder::heap::open(options(open_mode::create), &h);
  ASSERT_TRUE(s.ok()) << describe(s);
  ASSERT_TRUE(h.is_open());
  EXPECT_EQ(h.kind(), GetParam());
  ASSERT_NE(h.base(), nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(h.base()) % (std::uintptr_t{4} << 20), 0u);
  EXPECT_GE(h.reserve(), std::size_t{64} << 30);
  EXPECT_EQ(h.uuid().size(), 36u);
  int on_stack = 0;
  EXPECT_FALSE(h.contains(&on_stack));

  // Blocks of many sizes, each writable without disturbing the others.
  struct made {
    void* p;
    std::size_t size;
    std::uint64_t key;
  };
  std::vector<made> blocks;
  std::uint64_t key = 1;
  for (std::size_t size : {1ul, 8ul, 16ul, 24ul, 100ul, 1000ul, 4096ul, 10000ul, 65536ul, 200000ul, 600000ul,
                           (3ul << 20) + 5}) {
    void* p = h.allocate(size);
    ASSERT_NE(p, nullptr) << size;
    EXPECT_TRUE(h.contains(p));
    EXPECT_TRUE(h.contains(static_cast<char*>(p) + size - 1));
    EXPECT_GE(larder::usable_size(p), size);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % alignof(std::max_align_t), 0u);
    fill_pattern(p, size, ++key);
    blocks.push_back({p, size, key});
  }
  for (std::size_t align : {32ul, 64ul, 256ul, 4096ul, 65536ul}) {
    void* p = h.allocate(100, align);
    ASSERT_NE(p, nullptr) << align;
    EXPECT_TRUE(h.contains(p));
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % align, 0u) << align;
    fill_pattern(p, 100, ++key);
    blocks.push_back({p, 100, key});
  }
  for (const auto& b : blocks) EXPECT_TRUE(check_pattern(b.p, b.size, b.key)) << b.size;

  // Roots: set, find, replace, list, remove.
  void* a = blocks[3].p;
  void* b = blocks[5].p;
  ASSERT_TRUE(h.set_root("alpha", a, 24).ok());
  ASSERT_TRUE(h.set_root("beta", b, 1000).ok());
  ASSERT_TRUE(h.set_root("gamma", blocks[0].p, 1).ok());
  std::size_t size = 0;
  EXPECT_EQ(h.find_root("alpha", &size), a);
  EXPECT_EQ(size, 24u);
  EXPECT_EQ(h.find_root("beta", &size), b);
  EXPECT_EQ(size, 1000u);
  EXPECT_EQ(h.find_root("delta"), nullptr);

  ASSERT_TRUE(h.set_root("alpha", b, 7).ok());  // replaces
  EXPECT_EQ(h.find_root("alpha", &size), b);
  EXPECT_EQ(size, 7u);

  std::vector<larder::root_info> listed = h.roots();
  ASSERT_EQ(listed.size(), 3u);
  std::vector<std::string> names;
  for (const auto& r : listed) names.push_back(r.name);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"alpha", "beta", "gamma"}));
  for (const auto& r : listed) {
    std::size_t recorded = 0;
    EXPECT_EQ(h.find_root(r.name, &recorded), r.object);
    EXPECT_EQ(recorded, r.size);
  }

  ASSERT_TRUE(h.remove_root("gamma").ok());
  EXPECT_EQ(h.find_root("gamma"), nullptr);
  larder::status again = h.remove_root("gamma");
  EXPECT_TRUE(again.is(errc::not_found)) << describe(again);
  EXPECT_EQ(h.roots().size(), 2u);
  ASSERT_TRUE(h.set_root("gamma", a, 3).ok());  // a removed name can be used again
  EXPECT_EQ(h.find_root("gamma"), a);
  ASSERT_TRUE(h.remove_root("gamma").ok());

  // A root must point into its heap.
  larder::status outside = h.set_root("outside", &on_stack, sizeof(on_stack));
  EXPECT_TRUE(outside.is(errc::invalid_argument)) << describe(outside);
  EXPECT_FALSE(outside.to_string().empty());
  EXPECT_EQ(h.find_root("outside"), nullptr);

  larder::heap_stats st = h.stats();
  EXPECT_EQ(st.roots, 2u);
  EXPECT_EQ(st.pods, 1u);
  EXPECT_GE(st.segments_in_use, 2u);  // small pages plus the huge block
  EXPECT_GE(st.mapped_size, (std::size_t{3} << 20));
  EXPECT_EQ(st.reserve, h.reserve());

  // Freeing everything is fine, and the heap still allocates.
  for (const auto& blk : blocks) larder::heap::deallocate(blk.p);
  void* after = h.allocate(64);
  ASSERT_NE(after, nullptr);
  EXPECT_TRUE(h.contains(after));
  larder::heap::deallocate(after);
  larder::heap::deallocate(nullptr);

  EXPECT_TRUE(h.close().ok());
  EXPECT_FALSE(h.is_open());
  EXPECT_TRUE(h.close().ok());  // idempotent
  EXPECT_EQ(h.base(), nullptr);
  EXPECT_EQ(h.allocate(8), nullptr);
}

TEST_P(RuntimeHeapBacking, MoveTransfersTheOpenHeap) {
  larder::heap first(options(open_mode::create));
  void* base = first.base();
  larder::heap second(std::move(first));
  EXPECT_FALSE(first.is_open());
  ASSERT_TRUE(second.is_open());
  EXPECT_EQ(second.base(), base);
  void* p = second.allocate(32);
  ASSERT_NE(p, nullptr);
  larder::heap third;
  third = std::move(second);
  EXPECT_FALSE(second.is_open());
  EXPECT_TRUE(third.contains(p));
}

TEST_P(RuntimeHeapBacking, ManySmallBlocksDoNotOverlap) {
  larder::heap h(options(open_mode::create));
  ledger* l = static_cast<ledger*>(h.allocate(sizeof(ledger)));
  ASSERT_NE(l, nullptr);
  l->count = 0;
  ledger_add(h, l, 3000, 1);
  ledger_check(h, l);
  ledger_free_some(l, 3);
  ledger_add(h, l, 2000, 2);
  ledger_check(h, l);
}

TEST_P(RuntimeHeapPersistent, ReopenInThisProcessFindsEveryRoot) {
  std::vector<recorded_root> roots;
  void* base = nullptr;
  std::string uuid;
  {
    larder::heap h;
    larder::status s = larder::heap::open(options(open_mode::create), &h);
    ASSERT_TRUE(s.ok()) << describe(s);
    base = h.base();
    uuid = h.uuid();
    roots = make_roots(h, 60, "root-");
    ASSERT_TRUE(h.close().ok());
  }
  for (int round = 0; round < 2; ++round) {
    larder::heap h;
    larder::status s = larder::heap::open(options(open_mode::open), &h);
    ASSERT_TRUE(s.ok()) << describe(s);
    EXPECT_EQ(h.base(), base);
    EXPECT_EQ(h.uuid(), uuid);
    EXPECT_EQ(h.stats().roots, roots.size());
    expect_roots(h, roots);
    ASSERT_TRUE(h.close().ok());
  }
}

TEST_P(RuntimeHeapPersistent, ReopenInAChildProcessFindsEveryRoot) {
  std::vector<recorded_root> roots;
  void* base = nullptr;
  {
    larder::heap h(options(open_mode::create));
    base = h.base();
    roots = make_roots(h, 40, "parent-");
    ASSERT_TRUE(h.close().ok());
  }
  std::vector<recorded_root> child_roots;
  int code = run_in_child([&] {
    larder::heap h;
    larder::status s = larder::heap::open(options(open_mode::open), &h);
    ASSERT_TRUE(s.ok()) << describe(s);
    EXPECT_EQ(h.base(), base);
    expect_roots(h, roots);
    // The child adds roots of its own; the parent must see them.
    child_roots = make_roots(h, 20, "child-");
    ASSERT_TRUE(h.close().ok());
  });
  ASSERT_EQ(code, 0) << "the child found the heap different";
  // The parent does not know the child's addresses, only its names.
  larder::heap h(options(open_mode::open));
  EXPECT_EQ(h.base(), base);
  expect_roots(h, roots);
  EXPECT_EQ(h.stats().roots, roots.size() + 20);
  for (int i = 0; i < 20; ++i) {
    std::size_t size = 0;
    void* p = h.find_root("child-" + std::to_string(i), &size);
    ASSERT_NE(p, nullptr) << i;
    EXPECT_TRUE(h.contains(p));
    std::uint64_t key = std::hash<std::string>{}("child-") + static_cast<std::uint64_t>(i);
    EXPECT_TRUE(check_pattern(p, size, key)) << i;
  }
}

// A forked child shares the parent's mapping of an open heap: it may read
// it but its allocator must not change it under the parent.
TEST_P(RuntimeHeapPersistent, ForkedChildCannotChangeAnOpenHeap) {
  larder::heap h(options(open_mode::create));
  auto* value = static_cast<std::uint64_t*>(h.allocate(sizeof(std::uint64_t)));
  ASSERT_NE(value, nullptr);
  *value = 42;
  {
    larder::pod_scope scope(h.default_pod());  // the child inherits a scope into the heap
    int code = run_in_child([&] {
      EXPECT_EQ(*value, 42u);
      errno = 0;
      EXPECT_EQ(h.allocate(64), nullptr);
      EXPECT_EQ(errno, EROFS);
      larder::heap::deallocate(value);  // ignored with a warning
      EXPECT_FALSE(larder::current_pod().valid());
    });
    ASSERT_EQ(code, 0);
  }
  // The parent's heap is intact and goes on allocating.
  EXPECT_EQ(*value, 42u);
  std::vector<void*> blocks;
  for (int i = 0; i < 1000; ++i) {
    void* p = h.allocate(sizeof(std::uint64_t));
    ASSERT_NE(p, nullptr);
    EXPECT_NE(p, value);
    blocks.push_back(p);
  }
  for (void* p : blocks) larder::heap::deallocate(p);
}

TEST_P(RuntimeHeapPersistent, KeepsAllocatingAndFreeingAcrossReopen) {
  void* base = nullptr;
  {
    larder::heap h(options(open_mode::create));
    base = h.base();
    auto* l = static_cast<ledger*>(h.allocate(sizeof(ledger)));
    ASSERT_NE(l, nullptr);
    l->count = 0;
    ASSERT_TRUE(h.set_root("ledger", l, sizeof(ledger)).ok());
    ledger_add(h, l, 1500, 1);
    ASSERT_TRUE(h.close().ok());
  }
  {
    // Free blocks allocated before the reopen, then allocate more.
    larder::heap h(options(open_mode::open));
    ASSERT_EQ(h.base(), base);
    auto* l = static_cast<ledger*>(h.find_root("ledger"));
    ASSERT_NE(l, nullptr);
    ledger_check(h, l);
    ledger_free_some(l, 2);
    ledger_check(h, l);
    ledger_add(h, l, 1500, 2);
    ledger_check(h, l);
    ASSERT_TRUE(h.close().ok());
  }
  int code = run_in_child([&] {
    larder::heap h(options(open_mode::open));
    auto* l = static_cast<ledger*>(h.find_root("ledger"));
    ASSERT_NE(l, nullptr);
    ledger_check(h, l);
    ledger_free_some(l, 5);
    ledger_add(h, l, 1000, 3);
    ledger_check(h, l);
    ASSERT_TRUE(h.close().ok());
  });
  ASSERT_EQ(code, 0);
  {
    larder::heap h(options(open_mode::open));
    auto* l = static_cast<ledger*>(h.find_root("ledger"));
    ASSERT_NE(l, nullptr);
    ledger_check(h, l);
    // Memory freed after the reopen is used again: a steady allocate/free
    // cycle must not keep growing the heap.
    std::vector<void*> batch;
    std::size_t mapped_after_first = 0;
    for (int round = 0; round < 20; ++round) {
      for (int i = 0; i < 400; ++i) {
        void* p = h.allocate(1000);
        ASSERT_NE(p, nullptr);
        std::memset(p, round, 1000);
        batch.push_back(p);
      }
      for (void* p : batch) larder::heap::deallocate(p);
      batch.clear();
      if (round == 0) mapped_after_first = h.stats().mapped_size;
    }
    EXPECT_LE(h.stats().mapped_size, mapped_after_first + (std::size_t{4} << 20));
    ledger_check(h, l);
    ASSERT_TRUE(h.close().ok());
  }
}

TEST_P(RuntimeHeapPersistent, BackingHasMode0600) {
  larder::heap h(options(open_mode::create));
  struct stat st;
  ASSERT_EQ(::stat(backing_path().c_str(), &st), 0) << backing_path();
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST_P(RuntimeHeapPersistent, CreateOnAnExistingHeapIsAlreadyExists) {
  {
    larder::heap h(options(open_mode::create));
    ASSERT_TRUE(h.set_root("kept", h.allocate(8), 8).ok());
  }
  larder::heap h;
  larder::status s = larder::heap::open(options(open_mode::create), &h);
  EXPECT_TRUE(s.is(errc::already_exists)) << describe(s);
  EXPECT_FALSE(h.is_open());
  EXPECT_FALSE(s.to_string().empty());
  EXPECT_NE(s.to_string().find(name_), std::string::npos) << s.to_string();
  // The existing heap is untouched.
  ASSERT_TRUE(larder::heap::open(options(open_mode::open), &h).ok());
  EXPECT_NE(h.find_root("kept"), nullptr);
}

TEST_P(RuntimeHeapPersistent, OpenOfAMissingHeapIsNotFound) {
  larder::heap h;
  larder::status s = larder::heap::open(options(open_mode::open), &h);
  EXPECT_TRUE(s.is(errc::not_found)) << describe(s);
  EXPECT_FALSE(h.is_open());
  EXPECT_NE(s.to_string().find(name_), std::string::npos) << s.to_string();
  EXPECT_FALSE(larder_test::path_exists(backing_path()));

  larder::heap_options ro = options(open_mode::open_or_create);
  ro.read_only = true;  // a read-only open never creates
  s = larder::heap::open(ro, &h);
  EXPECT_TRUE(s.is(errc::not_found)) << describe(s);
  EXPECT_FALSE(larder_test::path_exists(backing_path()));

  try {
    larder::heap thrown(options(open_mode::open));
    ADD_FAILURE() << "the throwing constructor opened a missing heap";
  } catch (const larder::error& e) {
    EXPECT_EQ(e.code(), static_cast<int>(errc::not_found));
    EXPECT_NE(std::string(e.what()).find(name_), std::string::npos);
  }
}

TEST_P(RuntimeHeapPersistent, SecondWriterIsHeapBusy) {
  larder::heap h(options(open_mode::create));
  ASSERT_TRUE(h.set_root("r", h.allocate(16), 16).ok());

  // In another process.
  int code = run_in_child([&] {
    larder::heap other;
    larder::status s = larder::heap::open(options(open_mode::open), &other);
    EXPECT_TRUE(s.is(errc::heap_busy)) << describe(s);
    EXPECT_FALSE(other.is_open());
    EXPECT_NE(s.to_string().find(name_), std::string::npos) << s.to_string();
    s = larder::heap::open(options(open_mode::open_or_create), &other);
    EXPECT_TRUE(s.is(errc::heap_busy)) << describe(s);
  });
  EXPECT_EQ(code, 0);

  // And in this one: the lock belongs to the open heap, not the process.
  larder::heap same;
  larder::status s = larder::heap::open(options(open_mode::open), &same);
  EXPECT_TRUE(s.is(errc::heap_busy)) << describe(s);
  EXPECT_FALSE(same.is_open());

  // A read-only open in the same process would need the same addresses.
  larder::heap_options ro = options(open_mode::open);
  ro.read_only = true;
  s = larder::heap::open(ro, &same);
  EXPECT_TRUE(s.is(errc::address_taken)) << describe(s);
  EXPECT_FALSE(same.is_open());

  // The first opener is unaffected, and after it closes a writer may open.
  EXPECT_NE(h.find_root("r"), nullptr);
  ASSERT_TRUE(h.close().ok());
  code = run_in_child([&] {
    larder::heap other;
    larder::status st = larder::heap::open(options(open_mode::open), &other);
    EXPECT_TRUE(st.ok()) << describe(st);
    EXPECT_NE(other.find_root("r"), nullptr);
  });
  EXPECT_EQ(code, 0);
  s = larder::heap::open(options(open_mode::open), &same);
  EXPECT_TRUE(s.ok()) << describe(s);
}

TEST_P(RuntimeHeapPersistent, ReadOnlyOpenCannotChangeTheHeap) {
  void* block = nullptr;
  {
    larder::heap h(options(open_mode::create));
    block = h.allocate(256);
    ASSERT_NE(block, nullptr);
    fill_pattern(block, 256, 42);
    ASSERT_TRUE(h.set_root("block", block, 256).ok());
    larder::pod p;
    ASSERT_TRUE(h.make_pod("side", &p).ok());
    ASSERT_NE(p.allocate(64), nullptr);
    ASSERT_TRUE(h.close().ok());
  }
  std::string before = larder_test::read_all(backing_path());
  ASSERT_FALSE(before.empty());

  larder::heap_options ro = options(open_mode::open);
  ro.read_only = true;
  {
    larder::heap h;
    larder::status s = larder::heap::open(ro, &h);
    ASSERT_TRUE(s.ok()) << describe(s);
    std::size_t size = 0;
    ASSERT_EQ(h.find_root("block", &size), block);
    EXPECT_EQ(size, 256u);
    EXPECT_TRUE(check_pattern(block, 256, 42));
    EXPECT_EQ(h.roots().size(), 1u);

    errno = 0;
    EXPECT_EQ(h.allocate(64), nullptr);
    EXPECT_EQ(errno, EROFS);
    EXPECT_EQ(h.allocate(10 << 20), nullptr);
    EXPECT_EQ(h.default_pod().allocate(64), nullptr);
    larder::pod side = h.find_pod("side");
    ASSERT_TRUE(side.valid());
    EXPECT_EQ(side.allocate(64), nullptr);

    larder::status s2 = h.set_root("new", block, 8);
    EXPECT_TRUE(s2.is(errc::read_only)) << describe(s2);
    s2 = h.remove_root("block");
    EXPECT_TRUE(s2.is(errc::read_only)) << describe(s2);
    larder::pod made;
    s2 = h.make_pod("another", &made);
    EXPECT_TRUE(s2.is(errc::read_only)) << describe(s2);
    EXPECT_THROW(h.root<int>("missing", 1), larder::error);
    EXPECT_EQ(h.find_root("missing"), nullptr);

    // Containers over a read-only heap's pod cannot allocate either.
    larder::allocator<int> a(h.default_pod());
    EXPECT_THROW((void)a.allocate(4), std::bad_alloc);
    EXPECT_TRUE(h.close().ok());
  }
  EXPECT_EQ(larder_test::read_all(backing_path()), before) << "a read-only open changed the backing";
}

INSTANTIATE_TEST_SUITE_P(AllBackings, RuntimeHeapBacking,
                         ::testing::Values(backing::anonymous, backing::shm, backing::file), param_name);
INSTANTIATE_TEST_SUITE_P(Persistent, RuntimeHeapPersistent, ::testing::Values(backing::shm, backing::file),
                         param_name);

// ---- file heaps -------------------------------------------------------------

TEST(RuntimeHeapFile, GrowsPastAQuarterGibibyteWhileOpen) {
  larder_test::temp_dir dir;
  std::string path = dir.file("grow.lrd");
  larder::heap h(larder_test::file_options(path, open_mode::create));
  std::uint64_t initial = larder_test::file_size_of(path);
  EXPECT_GT(initial, 0u);
  EXPECT_LE(initial, std::uint64_t{16} << 20) << "the file should start small";

  // Blocks of 200 KiB, plus a few huge ones. Every 16th is stamped at both
  // ends: stamping them all only makes the test slow (the writes split the
  // file's preallocated extents, and freeing thousands of those is slow on
  // some file systems).
  constexpr std::size_t kSmall = 200 * 1024;
  constexpr std::size_t kHuge = std::size_t{9} << 20;
  struct entry {
    std::uint64_t* block;
    std::uint64_t size;
  };
  constexpr std::size_t kCapacity = 6000;
  auto* table = static_cast<entry*>(h.allocate(sizeof(entry) * kCapacity));
  ASSERT_NE(table, nullptr);
  ASSERT_TRUE(h.set_root("table", table, sizeof(entry) * kCapacity).ok());
  std::size_t live = 0;
  std::size_t count = 0;
  std::uint64_t last_size = initial;
  int growth_steps = 0;
  while (live <= (std::size_t{272} << 20)) {
    ASSERT_LT(count, kCapacity);
    std::size_t size = count % 200 == 100 ? kHuge : kSmall;
    auto* p = static_cast<std::uint64_t*>(h.allocate(size));
    ASSERT_NE(p, nullptr) << "after " << live << " bytes";
    if (count % 16 == 0 || size == kHuge) {
      p[0] = count;
      p[size / 8 - 1] = ~static_cast<std::uint64_t>(count);
    }
    table[count++] = {p, size};
    live += size;
    std::uint64_t now = larder_test::file_size_of(path);
    if (now != last_size) {
      EXPECT_GT(now, last_size) << "the file shrank while growing";
      ++growth_steps;
      last_size = now;
    }
  }
  std::uint64_t grown = larder_test::file_size_of(path);
  EXPECT_GT(grown, std::uint64_t{256} << 20);
  EXPECT_GE(grown, live);
  EXPECT_GE(growth_steps, 3) << "the file should grow step by step";
  EXPECT_GE(h.stats().mapped_size, live);
  EXPECT_LE(h.stats().mapped_size, grown);
  ASSERT_TRUE(h.root<std::uint64_t>("count", count) != nullptr);
  ASSERT_TRUE(h.close().ok());
  EXPECT_EQ(larder_test::file_size_of(path), grown);

  larder::heap again(larder_test::file_options(path, open_mode::open));
  auto* t = static_cast<entry*>(again.find_root("table"));
  ASSERT_EQ(t, table);
  auto* n = again.root<std::uint64_t>("count");
  ASSERT_EQ(*n, count);
  std::size_t bad = 0;
  for (std::size_t i = 0; i < count; ++i) {
    if (!again.contains(t[i].block) || t[i].size != (i % 200 == 100 ? kHuge : kSmall)) ++bad;
    if (i % 16 != 0 && t[i].size != kHuge) continue;
    if (t[i].block[0] != i || t[i].block[t[i].size / 8 - 1] != ~static_cast<std::uint64_t>(i)) ++bad;
  }
  EXPECT_EQ(bad, 0u);
  std::vector<std::pair<std::uintptr_t, std::size_t>> spans;
  for (std::size_t i = 0; i < count; ++i) spans.emplace_back(reinterpret_cast<std::uintptr_t>(t[i].block), t[i].size);
  std::sort(spans.begin(), spans.end());
  for (std::size_t i = 1; i < spans.size(); ++i)
    ASSERT_LE(spans[i - 1].first + spans[i - 1].second, spans[i].first) << "blocks overlap";
  // It keeps working at that size.
  void* more = again.allocate(kSmall);
  ASSERT_NE(more, nullptr);
  EXPECT_TRUE(again.contains(more));
}

TEST(RuntimeHeapFile, ExplicitBaseConflictIsAddressTaken) {
  constexpr std::uintptr_t kBase = LARDER_PLACEMENT_LOW + (std::uintptr_t{32} << 30);
  larder::heap_options a_options;
  a_options.kind = backing::anonymous;
  a_options.base = kBase;
  larder::heap a;
  larder::status s = larder::heap::open(a_options, &a);
  ASSERT_TRUE(s.ok()) << describe(s);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.base()), kBase);
  int* in_a = a.root<int>("x", 5);
  EXPECT_EQ(*in_a, 5);

  larder_test::temp_dir dir;
  std::string path = dir.file("b.lrd");
  larder::heap_options b_options = larder_test::file_options(path, open_mode::create);
  b_options.base = kBase;
  larder::heap b;
  s = larder::heap::open(b_options, &b);
  EXPECT_TRUE(s.is(errc::address_taken)) << describe(s);
  EXPECT_FALSE(b.is_open());
  char where[32];
  std::snprintf(where, sizeof(where), "0x%lx", static_cast<unsigned long>(kBase));
  EXPECT_NE(s.message().find(where), std::string::npos) << s.message();
  EXPECT_FALSE(s.to_string().empty());
  EXPECT_FALSE(larder_test::path_exists(path)) << "a failed create left its file behind";

  // Overlapping only partly is a conflict too.
  b_options.base = kBase + (std::uintptr_t{1} << 30);
  s = larder::heap::open(b_options, &b);
  EXPECT_TRUE(s.is(errc::address_taken)) << describe(s);
  EXPECT_FALSE(larder_test::path_exists(path));

  // Heap A is intact.
  EXPECT_EQ(*a.root<int>("x"), 5);

  // A base that is not a multiple of 4 MiB is refused.
  b_options.base = kBase + 4096;
  s = larder::heap::open(b_options, &b);
  EXPECT_TRUE(s.is(errc::invalid_argument)) << describe(s);
  EXPECT_FALSE(larder_test::path_exists(path));
}

TEST(RuntimeHeapFile, ReopenWhereTheAddressIsTakenFailsAndKeepsTheFile) {
  constexpr std::uintptr_t kBase = LARDER_PLACEMENT_LOW + (std::uintptr_t{96} << 30);
  larder_test::temp_dir dir;
  std::string path = dir.file("h.lrd");
  larder::heap_options o = larder_test::file_options(path, open_mode::create);
  o.base = kBase;
  {
    larder::heap h(o);
    ASSERT_EQ(reinterpret_cast<std::uintptr_t>(h.base()), kBase);
    *h.root<int>("x", 0) = 77;
  }
  std::string before = larder_test::read_all(path);

  larder::heap_options squatter;
  squatter.kind = backing::anonymous;
  squatter.base = kBase + (std::uintptr_t{8} << 20);
  squatter.reserve = std::size_t{64} << 20;
  larder::heap blocker(squatter);

  larder::heap h;
  larder::status s = larder::heap::open(larder_test::file_options(path, open_mode::open), &h);
  EXPECT_TRUE(s.is(errc::address_taken)) << describe(s);
  EXPECT_FALSE(h.is_open());
  char where[32];
  std::snprintf(where, sizeof(where), "0x%lx", static_cast<unsigned long>(kBase));
  EXPECT_NE(s.message().find(where), std::string::npos) << s.message();
  EXPECT_EQ(larder_test::read_all(path), before);

  ASSERT_TRUE(blocker.close().ok());
  s = larder::heap::open(larder_test::file_options(path, open_mode::open), &h);
  ASSERT_TRUE(s.ok()) << describe(s);
  EXPECT_EQ(*h.root<int>("x"), 77);
}

// ---- arguments and anonymous heaps ------------------------------------------

TEST(RuntimeHeapOptions, AnonymousHeapCanOnlyBeCreated) {
  larder::heap h;
  larder::heap_options o;
  o.kind = backing::anonymous;
  o.mode = open_mode::open;
  larder::status s = larder::heap::open(o, &h);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.is(errc::not_found)) << describe(s);
  EXPECT_FALSE(s.to_string().empty());
  EXPECT_FALSE(h.is_open());

  o.mode = open_mode::open_or_create;
  o.read_only = true;
  s = larder::heap::open(o, &h);
  EXPECT_TRUE(s.is(errc::invalid_argument)) << describe(s);

  o.read_only = false;
  o.mode = open_mode::create;
  s = larder::heap::open(o, &h);
  ASSERT_TRUE(s.ok()) << describe(s);
  // Two anonymous heaps live side by side at different addresses.
  larder::heap other(o);
  EXPECT_NE(other.base(), h.base());
  void* p = h.allocate(10);
  void* q = other.allocate(10);
  EXPECT_TRUE(h.contains(p));
  EXPECT_FALSE(h.contains(q));
  EXPECT_TRUE(other.contains(q));
}

TEST(RuntimeHeapOptions, BadNamesAndReservesAreInvalidArguments) {
  larder::heap h;
  larder::heap_options o;
  o.kind = backing::file;
  o.name = "";
  larder::status s = larder::heap::open(o, &h);
  EXPECT_TRUE(s.is(errc::invalid_argument)) << describe(s);

  o.kind = backing::shm;
  for (const char* bad : {"", "no-slash", "/two/slashes"}) {
    o.name = bad;
    s = larder::heap::open(o, &h);
    EXPECT_TRUE(s.is(errc::invalid_argument)) << bad << ": " << describe(s);
  }

  larder::heap_options big;
  big.kind = backing::anonymous;
  big.reserve = std::size_t{4} << 40;
  s = larder::heap::open(big, &h);
  EXPECT_TRUE(s.is(errc::invalid_argument)) << describe(s);
  EXPECT_FALSE(h.is_open());

  larder_test::temp_dir dir;
  larder::heap_options file_big = larder_test::file_options(dir.file("big.lrd"), open_mode::create);
  file_big.reserve = std::size_t{4} << 40;
  s = larder::heap::open(file_big, &h);
  EXPECT_TRUE(s.is(errc::invalid_argument)) << describe(s);
  EXPECT_FALSE(larder_test::path_exists(file_big.name)) << "a failed create left its file behind";
}

}  // namespace
