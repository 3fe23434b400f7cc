// The allocator's invariant walker (allocator/heap_walk.hpp), its map and
// conservative reachability (heap_map.hpp) and the repairs built on them
// (heap_repair.hpp), on an image of a real heap read into memory at another
// address than the heap's own (so every stored address is translated):
// each kind of damage is reported at its place, a reporter can stop the
// walk at the first one, a damaged size-class field is outvoted, rebuilt
// pages walk sound and never put a reachable block on a free list; and the
// full walk holds on the process heap after threads allocate and free; and
// what a close journals (durable_metadata.hpp) is what the walker finds.
#include "runtime/runtime_test_util.hpp"

#include "allocator/durable_metadata.hpp"
#include "allocator/heap_map.hpp"
#include "allocator/heap_repair.hpp"
#include "allocator/heap_walk.hpp"
#include "allocator/alloc.hpp"
#include "allocator/region.hpp"
#include "recovery/layout.hpp"

#include <larder/larder.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <thread>
#include <vector>

namespace {

namespace alloc = larder::alloc;
namespace layout = larder::layout;
using larder::open_mode;

constexpr std::size_t kNodes = 2000;

struct node {
  std::uint64_t value;
  node* next;
  std::uint64_t pad[2];
};

struct damage_seen {
  alloc::walk_place place;
  std::string message;
};

class collect final : public alloc::walk_reporter {
 public:
  explicit collect(std::size_t stop_after = ~std::size_t{0}) : stop_after_(stop_after) {}
  bool damage(const alloc::walk_place& place, const std::string& message) override {
    damages.push_back({place, message});
    return damages.size() < stop_after_;
  }
  void notice(const alloc::walk_place&, const std::string& message) override { notices.push_back(message); }
  void page(const alloc::page_facts& facts) override { pages.push_back(facts); }
  void huge(const alloc::huge_facts& facts) override { huges.push_back(facts); }

  bool any(const std::string& place, const std::string& what) const {
    for (const auto& d : damages)
      if (d.message.find(place) != std::string::npos && d.message.find(what) != std::string::npos) return true;
    return false;
  }
  std::string all() const {
    std::string text;
    for (const auto& d : damages) text += "  " + d.message + "\n";
    return text;
  }
  const alloc::page_facts* page_at(std::size_t segment, std::size_t slice) const {
    for (const auto& p : pages)
      if (p.segment == segment && p.slice == slice) return &p;
    return nullptr;
  }

  std::vector<damage_seen> damages;
  std::vector<std::string> notices;
  std::vector<alloc::page_facts> pages;
  std::vector<alloc::huge_facts> huges;

 private:
  std::size_t stop_after_;
};

class HeapWalk : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new larder_test::temp_dir;
    std::string path = dir_->file("walked.lrd");
    larder::heap h(larder_test::file_options(path, open_mode::create));
    base_ = reinterpret_cast<std::uintptr_t>(h.base());
    larder::pod other;
    ASSERT_TRUE(h.make_pod("other", &other).ok());
    node* head = nullptr;
    std::vector<void*> spare;
    for (std::size_t i = 0; i < kNodes; ++i) {
      auto* n = static_cast<node*>(h.allocate(sizeof(node)));
      *n = node{i * 7919, head, {i, i}};
      head = n;
      spare.push_back(h.allocate(sizeof(node)));             // freed below: free lists run between live nodes
      spare.push_back(other.allocate(100 + (i % 7) * 300));  // pages of several sizes in the other pod
    }
    for (std::size_t i = 0; i < spare.size(); i += 2) larder::heap::deallocate(spare[i]);
    std::thread remote([&] {
      for (std::size_t i = 1; i < spare.size(); i += 4) larder::heap::deallocate(spare[i]);
    });
    remote.join();
    ASSERT_TRUE(h.set_root("list", head, sizeof(node)).ok());
    void* huge = h.allocate(std::size_t{6} << 20);
    std::memset(huge, 0x5A, std::size_t{6} << 20);
    ASSERT_TRUE(h.set_root("huge", huge, std::size_t{6} << 20).ok());
    ASSERT_TRUE(h.close().ok());
    bytes_ = new std::string(larder_test::read_all(path));
  }
  static void TearDownTestSuite() {
    delete bytes_;
    delete dir_;
  }

  // The image, page-aligned as a mapping is (the metadata block's type is).
  void SetUp() override {
    std::size_t length = (bytes_->size() + 4095) & ~std::size_t{4095};
    image_.reset(static_cast<std::uint8_t*>(std::aligned_alloc(4096, length)));
    std::memcpy(image_.get(), bytes_->data(), bytes_->size());
  }

  alloc::heap_view view() {
    alloc::heap_view v;
    v.local = image_.get();
    v.base = base_;
    layout::superblock sb;
    std::memcpy(&sb, v.local, sizeof(sb));
    v.size = sb.size;
    v.readable = bytes_->size();
    v.reserve = sb.reserve;
    return v;
  }

  alloc::walk_totals walk(collect* c, bool full = true) {
    alloc::walk_options options;
    options.full_lists = full;
    return alloc::walk_heap(view(), options, *c);
  }

  alloc::segment* segment(std::size_t i) { return view().segment_at(i); }

  // The first page of pod 0 that has free blocks and more than two in use.
  std::pair<std::size_t, std::size_t> busy_page() {
    collect c;
    walk(&c);
    for (const auto& p : c.pages) {
      if (p.state != alloc::page_state::sound || p.used <= 2 || layout::entry_pod(view().entry(p.segment)) != 0)
        continue;
      if (segment(p.segment)->pages[p.slice].free != nullptr) return {p.segment, p.slice};
    }
    ADD_FAILURE() << "no busy page";
    return {0, 0};
  }

  std::size_t huge_segment() {
    for (std::size_t i = 1; i < view().meta()->segments_high; ++i)
      if (layout::entry_state(view().entry(i)) == layout::kSegmentHugeHead) return i;
    ADD_FAILURE() << "no huge block";
    return 0;
  }

  std::string page_place(std::size_t i, std::size_t k) {
    return alloc::walk_place{alloc::walk_place::page, i, k}.text();
  }
  std::string header_place(std::size_t i) { return alloc::walk_place{alloc::walk_place::header, i, 0}.text(); }

  // A local pointer for heap address `address`.
  template <class T>
  T* local(std::uint64_t address) {
    return reinterpret_cast<T*>(view().translate(address, sizeof(T)));
  }

  struct free_image {
    void operator()(std::uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<std::uint8_t, free_image> image_;
  static larder_test::temp_dir* dir_;
  static std::string* bytes_;
  static std::uintptr_t base_;
};

larder_test::temp_dir* HeapWalk::dir_ = nullptr;
std::string* HeapWalk::bytes_ = nullptr;
std::uintptr_t HeapWalk::base_ = 0;

TEST_F(HeapWalk, SoundHeapHasNoDamageAndCountsItsBlocks) {
  collect c;
  alloc::walk_totals t = walk(&c);
  EXPECT_TRUE(c.damages.empty()) << c.all();
  EXPECT_FALSE(t.stopped);
  EXPECT_GE(t.blocks_in_use, kNodes + 1);
  EXPECT_GT(t.bytes_in_use, std::size_t{6} << 20);
  EXPECT_GE(t.segments, 3u);
  EXPECT_EQ(t.quarantined_pages, 0u);
  ASSERT_EQ(c.huges.size(), 1u);
  EXPECT_EQ(c.huges[0].state, alloc::huge_state::sound);
  for (const auto& p : c.pages) {
    EXPECT_EQ(p.state, alloc::page_state::sound);
    // The full walk names exactly the blocks that are not in use (remote
    // frees count as in use until their page's owner folds them in).
    std::size_t listed = 0;
    for (bool b : p.listed) listed += b;
    std::size_t remote = alloc::remote_count(segment(p.segment)->pages[p.slice].xthread_free.load());
    EXPECT_EQ(listed + p.used - remote, p.reserved) << page_place(p.segment, p.slice);
  }
}

// The close journal's ranges: in address order, apart by more than the
// join gap, and covering the segment table, every used segment's header
// and page descriptors, and the link word of every block a free or
// remote-free list names.
TEST_F(HeapWalk, DurableMetadataIsWhatTheWalkerFinds) {
  constexpr std::size_t kGap = 32;
  std::vector<alloc::metadata_range> ranges;
  alloc::collect_segment_table(view(), &ranges);
  alloc::collect_segment_metadata(view(), kGap, &ranges);
  ASSERT_GT(ranges.size(), 2u);
  for (std::size_t i = 1; i < ranges.size(); ++i)
    ASSERT_GT(ranges[i].address, ranges[i - 1].address + ranges[i - 1].size + kGap) << "range " << i;
  auto covered = [&](std::uint64_t address, std::size_t size) {
    for (const auto& r : ranges)
      if (r.address <= address && address + size <= r.address + r.size) return true;
    return false;
  };
  const std::uint64_t meta = base_ + layout::kMetaOffset;
  const std::uint64_t high = view().meta()->segments_high;
  EXPECT_TRUE(covered(meta + offsetof(layout::heap_meta, segments_high), 8));
  EXPECT_TRUE(covered(meta + offsetof(layout::heap_meta, segments), high * 4));
  collect c;
  walk(&c);
  ASSERT_TRUE(c.damages.empty()) << c.all();
  constexpr std::size_t kDescriptors = offsetof(alloc::segment, pages) + sizeof(alloc::page) * alloc::kSlicesPerSegment;
  std::size_t headers = 0, links = 0;
  for (std::size_t i = 1; i < high; ++i) {
    layout::segment_state st = layout::entry_state(view().entry(i));
    if (st != layout::kSegmentPages && st != layout::kSegmentHugeHead) continue;
    EXPECT_TRUE(covered(base_ + (std::uint64_t{i} << alloc::kSegmentShift), kDescriptors)) << header_place(i);
    ++headers;
  }
  for (const auto& p : c.pages) {
    for (std::size_t b = 0; b < p.listed.size(); ++b) {
      if (!p.listed[b]) continue;
      EXPECT_TRUE(covered(p.start + b * p.geometry.block_size, sizeof(void*))) << page_place(p.segment, p.slice);
      ++links;
    }
  }
  EXPECT_GE(headers, 3u);
  EXPECT_GE(links, kNodes);  // every other spare block was freed, a quarter of them remotely
}

TEST_F(HeapWalk, EachKindOfDamageIsReportedAtItsPlace) {
  // Copies, not structured bindings: clang 14 does not let lambdas capture those.
  const auto busy = busy_page();
  const auto i = busy.first;
  const auto k = busy.second;
  std::size_t huge = huge_segment();
  alloc::page* pg = &segment(i)->pages[k];
  std::uint64_t first_free = reinterpret_cast<std::uintptr_t>(pg->free);
  struct edit {
    const char* name;
    std::function<void()> change;
    std::string place, what;
  };
  const std::string page = page_place(i, k);
  const std::vector<edit> edits = {
      {"invalid table state", [&] { view().meta()->segments[i] = (view().meta()->segments[i] & 0xFFFF0000u) | 9; },
       "segment table entry " + std::to_string(i), "invalid state 9"},
      {"entry past segments_high", [&] { view().meta()->segments[view().meta()->segments_high + 3] = 1; },
       "segment table entries past segments_high", "not free"},
      {"segments_high past the size", [&] { view().meta()->segments_high = 1u << 20; }, "metadata block",
       "runs past the heap's size"},
      {"header magic", [&] { segment(i)->magic ^= 1; }, header_place(i), "bad magic"},
      {"header pod", [&] { segment(i)->pod = 5; }, header_place(i), "the segment table says 0"},
      {"header span", [&] { segment(i)->span = 0; }, header_place(i), "span 0"},
      {"unpurged slice in use", [&] { segment(i)->unpurged |= std::uint64_t{1} << k; }, header_place(i),
       "unpurged but not free"},
      {"slice of a live page marked free", [&] { segment(i)->free_slices |= std::uint64_t{1} << k; }, page,
       "is marked free, but its page holds"},
      {"size class", [&] { pg->bin = 200; }, page, "size class 200 does not exist"},
      {"capacity", [&] { pg->capacity += 3; }, page, "capacity"},
      {"cache bin", [&] { pg->cache_bin = 3; }, page, "cache_bin 3"},
      {"flags", [&] { pg->flags.store(0x40); }, page, "unexpected flags"},
      {"counts", [&] { pg->used = static_cast<std::uint16_t>(pg->reserved + 1); }, page, "counts out of order"},
      {"free list outside the page", [&] { pg->free = reinterpret_cast<alloc::block*>(first_free + (1u << 20)); }, page,
       "free list entry 0"},
      {"free list off a boundary", [&] { pg->free = reinterpret_cast<alloc::block*>(first_free + 8); }, page,
       "not on a block boundary"},
      {"free list cycle", [&] { *local<std::uint64_t>(first_free) = first_free; }, page, "appears twice"},
      {"used off by two", [&] { pg->used += 2; }, page, "in use != "},
      {"remote count", [&] { pg->xthread_free.store(std::uintptr_t{3} << alloc::kRemoteCountShift); }, page,
       "remote-free list holds 0 blocks but records 3"},
      {"huge span", [&] { segment(huge)->span = 0; }, "(huge block)", "span 0"},
      {"huge descriptor", [&] { segment(huge)->pages[0].used = 2; }, page_place(huge, 0),
       "not the descriptor of a live huge block"},
      {"huge size", [&] { segment(huge)->huge_size = std::uint64_t{1} << 40; }, "(huge block)", "does not fit"},
  };
  for (const edit& e : edits) {
    SCOPED_TRACE(e.name);
    SetUp();
    pg = &segment(i)->pages[k];
    e.change();
    collect c;
    alloc::walk_totals t = walk(&c);
    EXPECT_TRUE(c.any(e.place, e.what)) << "expected '" << e.place << "' and '" << e.what << "' in\n" << c.all();
    EXPECT_EQ(t.damage, c.damages.size());
    // The walk open makes stops at the first damage.
    collect first(1);
    t = walk(&first, false);
    EXPECT_EQ(first.damages.size(), std::string(e.name) == "used off by two" || std::string(e.name) == "free list cycle"
                                        ? 0u  // only a walk to the end of the lists sees these
                                        : 1u)
        << first.all();
    EXPECT_EQ(t.stopped, !first.damages.empty());
  }
}

// A kill between the two stores of an allocation or a free leaves a page's
// count one off either way: a leaked block, said as a notice, not damage.
TEST_F(HeapWalk, CountOneOffIsTheBlockInFlightNotDamage) {
  auto [i, k] = busy_page();
  alloc::page* pg = &segment(i)->pages[k];
  for (int delta : {1, -1}) {
    SCOPED_TRACE(delta);
    pg->used = static_cast<std::uint16_t>(pg->used + delta);
    collect c;
    alloc::walk_totals t = walk(&c);
    EXPECT_TRUE(c.damages.empty()) << c.all();
    EXPECT_EQ(t.damage, 0u);
    ASSERT_EQ(c.notices.size(), 1u) << c.all();
    EXPECT_NE(c.notices[0].find("one block leaked"), std::string::npos) << c.all();
    EXPECT_NE(c.notices[0].find(page_place(i, k)), std::string::npos) << c.all();
    pg->used = static_cast<std::uint16_t>(pg->used - delta);
  }
}

TEST_F(HeapWalk, OneDamagedSizeClassFieldIsOutvotedTwoAreNot) {
  auto [i, k] = busy_page();
  alloc::page* pg = &segment(i)->pages[k];
  const std::size_t bin = pg->bin, block_size = pg->block_size;
  for (int field = 0; field < 4; ++field) {
    SCOPED_TRACE(field);
    SetUp();
    pg = &segment(i)->pages[k];
    if (field == 0) pg->bin = static_cast<std::uint8_t>(bin + 1);
    if (field == 1) pg->block_size += 16;
    if (field == 2) pg->slice_count = 8;
    if (field == 3) pg->capacity -= 1;
    collect c;
    walk(&c);
    const alloc::page_facts* p = c.page_at(i, k);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->state, alloc::page_state::lists_damaged);
    EXPECT_EQ(p->geometry.bin, bin);
    EXPECT_EQ(p->geometry.block_size, block_size);
    EXPECT_FALSE(c.damages.empty());
  }
  SetUp();
  pg = &segment(i)->pages[k];
  pg->bin = static_cast<std::uint8_t>(bin + 1);
  pg->block_size = 0;
  collect c;
  walk(&c);
  const alloc::page_facts* p = c.page_at(i, k);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->state, alloc::page_state::unreadable);
}

TEST_F(HeapWalk, QuarantinedPageIsANoticeAndRebuiltPageIsSound) {
  auto [i, k] = busy_page();
  const alloc::page_geometry g{segment(i)->pages[k].bin, segment(i)->pages[k].block_size, 1,
                               segment(i)->pages[k].capacity};
  alloc::quarantine_page(segment(i), k, 1);
  collect c;
  alloc::walk_totals t = walk(&c);
  EXPECT_TRUE(c.damages.empty()) << c.all();
  EXPECT_EQ(t.quarantined_pages, 1u);
  ASSERT_EQ(c.notices.size(), 1u);
  EXPECT_NE(c.notices[0].find("quarantined by a repair"), std::string::npos);
  // Written anew with every other block in use: sound, with a list of the rest.
  std::vector<bool> in_use(g.capacity, false);
  for (std::size_t b = 0; b < 100; b += 2) in_use[b] = true;
  alloc::write_page(segment(i), base_ + (i << layout::kSegmentShift), k, g, 100, false, in_use);
  collect again;
  t = walk(&again);
  EXPECT_TRUE(again.damages.empty()) << again.all();
  const alloc::page_facts* p = again.page_at(i, k);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->used, 50u);
  EXPECT_EQ(p->reserved, 100u);
}

TEST_F(HeapWalk, ReachFollowsEveryWordIntoLiveBlocksOnly) {
  alloc::heap_map map;
  map.build(view());
  EXPECT_TRUE(map.damage_lines().empty());
  const layout::heap_meta* meta = view().meta();
  std::uint64_t list = 0, huge = 0;
  for (const auto& r : meta->roots) {
    if (r.in_use != 1) continue;
    if (std::strcmp(r.name, "list") == 0) list = r.object;
    if (std::strcmp(r.name, "huge") == 0) huge = r.object;
  }
  alloc::reach_marks marks = map.new_marks();
  alloc::heap_map::reach_result r;
  map.reach(list, 1, false, &marks, &r);
  EXPECT_FALSE(r.damaged) << r.why;
  EXPECT_EQ(r.blocks.size(), kNodes);  // the nodes, not the freed blocks between them
  // An interior pointer reaches its block.
  alloc::block_ref b;
  ASSERT_EQ(map.resolve(huge + 12345, &b), alloc::heap_map::found::block);
  EXPECT_EQ(map.block_start(b), huge);
  // A free block is no edge.
  auto [i, k] = busy_page();
  std::uint64_t free_block = reinterpret_cast<std::uintptr_t>(segment(i)->pages[k].free);
  EXPECT_EQ(map.resolve(free_block, &b), alloc::heap_map::found::nothing);
  // A page whose blocks cannot be told apart is a damaged edge.
  std::uint64_t second =
      local<node>(list)->next == nullptr ? 0 : reinterpret_cast<std::uintptr_t>(local<node>(list)->next);
  std::size_t si = (second - base_) >> layout::kSegmentShift;
  std::size_t sk = ((second - base_) & (layout::kSegmentSize - 1)) >> layout::kSliceShift;
  alloc::page* pg = &segment(si)->pages[sk - segment(si)->pages[sk].slice_offset];
  pg->bin = 0;
  pg->block_size = 0;
  alloc::heap_map damaged;
  damaged.build(view());
  alloc::reach_marks fresh = damaged.new_marks();
  alloc::heap_map::reach_result lost;
  damaged.reach(list, 1, false, &fresh, &lost);
  EXPECT_TRUE(lost.damaged);
  EXPECT_NE(lost.why.find("page descriptor of slice"), std::string::npos) << lost.why;
}

// A link of a free list damaged to point at a live block: the block looks
// free to the lists, but the root reaches it, so the rebuilt list leaves it
// out and the page walks sound.
TEST_F(HeapWalk, RepairNeverFreesABlockARootReaches) {
  const layout::heap_meta* meta = view().meta();
  std::uint64_t list = 0;
  for (const auto& r : meta->roots)
    if (r.in_use == 1 && std::strcmp(r.name, "list") == 0) list = r.object;
  // The last free block of the head node's page now links to the head node.
  std::size_t i = (list - base_) >> layout::kSegmentShift;
  std::size_t k = ((list - base_) & (layout::kSegmentSize - 1)) >> layout::kSliceShift;
  alloc::page* pg = &segment(i)->pages[k];
  std::uint64_t b = reinterpret_cast<std::uintptr_t>(pg->free);
  ASSERT_NE(b, 0u);
  while (*local<std::uint64_t>(b) != 0) b = *local<std::uint64_t>(b);
  *local<std::uint64_t>(b) = list;
  alloc::heap_map map;
  map.build(view());
  ASSERT_FALSE(map.damage_lines().empty());
  alloc::reach_marks reached = map.new_marks();
  alloc::heap_map::reach_result r;
  map.reach(list, 1, true, &reached, &r);
  alloc::repair_outcome done = alloc::repair_heap(map, reached, 1);
  EXPECT_EQ(done.pages_rebuilt, 1u);
  EXPECT_EQ(done.quarantined_pages, 0u);
  collect c;
  walk(&c);
  EXPECT_TRUE(c.damages.empty()) << c.all();
  const alloc::page_facts* p = c.page_at(i, k);
  ASSERT_NE(p, nullptr);
  std::size_t index = (list - p->start) / p->geometry.block_size;
  EXPECT_FALSE(p->listed[index]) << "the head node went on the free list";
  EXPECT_EQ(local<node>(list)->value, (kNodes - 1) * 7919);
}

// The full walk (what LARDER_DEBUG_FULL runs at every open and close) on
// the process heap once threads have allocated and freed each other's
// blocks of every size class.
TEST(ProcessHeapWalk, IsValidAfterThreadsAllocateAndFree) {
  constexpr int kThreads = 4;
  std::vector<std::vector<void*>> blocks(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 random(static_cast<std::uint64_t>(t) + 1);
      for (int n = 0; n < 20000; ++n) {
        std::size_t size = std::size_t{1} << (random() % 20);
        void* p = larder_malloc(size + random() % size);
        ASSERT_NE(p, nullptr);
        blocks[t].push_back(p);
        if (random() % 3 == 0) {
          std::size_t victim = random() % blocks[t].size();
          larder_free(blocks[t][victim]);
          blocks[t][victim] = blocks[t].back();
          blocks[t].pop_back();
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  threads.clear();
  // Each thread frees the next one's blocks: remote frees.
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (void* p : blocks[(t + 1) % kThreads]) larder_free(p);
    });
  for (auto& th : threads) th.join();
  alloc::region* r = alloc::process_region();
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(r->is_valid());
}

// The same while the owner is alive: a consumer frees a producer's blocks
// back to pages the producer keeps taking blocks from, and every block is
// counted once (free, freed remotely, or in use) when both are done.
TEST(ProcessHeapWalk, IsValidAfterProducerConsumer) {
  constexpr std::size_t kBlocks = 200000;
  constexpr std::size_t kRing = 1024;
  std::vector<std::atomic<void*>> ring(kRing);
  std::atomic<bool> failed{false};
  std::thread producer([&] {
    for (std::size_t i = 0; i < kBlocks; ++i) {
      void* p = larder_malloc(16 + (i * 37) % 1000);
      if (p == nullptr) {
        failed.store(true);
        p = &ring;  // a stand-in the consumer does not free
      }
      while (ring[i % kRing].load(std::memory_order_acquire) != nullptr) std::this_thread::yield();
      ring[i % kRing].store(p, std::memory_order_release);
    }
  });
  std::thread consumer([&] {
    for (std::size_t i = 0; i < kBlocks; ++i) {
      void* p;
      while ((p = ring[i % kRing].exchange(nullptr, std::memory_order_acq_rel)) == nullptr) std::this_thread::yield();
      if (p != &ring) larder_free(p);
    }
  });
  producer.join();
  consumer.join();
  EXPECT_FALSE(failed.load());
  alloc::region* r = alloc::process_region();
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(r->is_valid());
}

}  // namespace
