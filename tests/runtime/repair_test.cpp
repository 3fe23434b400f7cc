// `larder check --repair` on damaged allocator metadata: a free list whose
// link points at a live object is rebuilt without it, a page whose blocks
// cannot be told apart is quarantined, and a damaged segment header, a
// live page's slice marked free and a damaged huge-block header are
// rewritten from what the rest of the heap says. Each time the heap then
// opens for writing, checks clean, every root reads back the bytes it
// held, and blocks allocated afterwards never land on a live object.
#include "runtime/runtime_test_util.hpp"

#include "recovery/layout.hpp"

#include <larder/check.hpp>
#include <larder/larder.hpp>

#include <cstring>
#include <string>
#include <vector>

namespace {

namespace layout = larder::layout;
using larder::check_report;
using larder::open_mode;
using larder_test::describe;

constexpr std::uint64_t kNodes = 3000;
constexpr std::size_t kHuge = std::size_t{6} << 20;
// Page descriptor fields (docs/format/heap.md, "Page descriptor").
constexpr std::size_t kFree = 0, kUsed = 8, kBlockSize = 56, kBin = 62;

struct node {
  std::uint64_t value;
  node* next;
};

std::string joined(const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& l : lines) text += "  " + l + "\n";
  return text;
}

bool any_contains(const std::vector<std::string>& lines, const std::string& a, const std::string& b = "") {
  for (const auto& l : lines)
    if (l.find(a) != std::string::npos && l.find(b) != std::string::npos) return true;
  return false;
}

class Repair : public ::testing::Test {
 protected:
  // Two lists, in pods of their own, with freed blocks between their nodes,
  // and a huge block.
  void SetUp() override {
    path_ = dir_.file("repaired.lrd");
    larder::heap h(larder_test::file_options(path_, open_mode::create));
    base_ = reinterpret_cast<std::uintptr_t>(h.base());
    larder::pod second;
    ASSERT_TRUE(h.make_pod("second", &second).ok());
    first_head_ = make_list(h, h.default_pod(), "first", 11);
    second_head_ = make_list(h, second, "second", 13);
    void* huge = h.allocate(kHuge);
    larder_test::fill_pattern(huge, kHuge, 5);
    huge_ = reinterpret_cast<std::uintptr_t>(huge);
    ASSERT_TRUE(h.set_root("huge", huge, kHuge).ok());
    ASSERT_TRUE(h.close().ok());
    bytes_ = larder_test::read_all(path_);
  }

  std::uintptr_t make_list(larder::heap& h, larder::pod p, const char* name, std::uint64_t seed) {
    node* head = nullptr;
    for (std::uint64_t i = 0; i < kNodes; ++i) {
      auto* n = static_cast<node*>(p.allocate(sizeof(node)));
      *n = node{seed * 1000003 + i, head};
      head = n;
      larder::heap::deallocate(p.allocate(sizeof(node)));
    }
    EXPECT_TRUE(h.set_root(name, head, sizeof(node)).ok());
    return reinterpret_cast<std::uintptr_t>(head);
  }

  static bool list_reads_back(const larder::heap& h, const char* name, std::uint64_t seed) {
    const node* n = static_cast<const node*>(h.find_root(name));
    for (std::uint64_t i = kNodes; i-- > 0; n = n->next)
      if (n == nullptr || !h.contains(n) || n->value != seed * 1000003 + i) return false;
    return n == nullptr;
  }

  std::size_t offset_of(std::uintptr_t address) const { return address - base_; }
  // File offset of the descriptor of the (one-slice) page holding `address`.
  std::size_t descriptor_of(std::uintptr_t address) const {
    std::size_t at = offset_of(address);
    return (at & ~(layout::kSegmentSize - 1)) + 64 + ((at & (layout::kSegmentSize - 1)) >> layout::kSliceShift) * 64;
  }
  std::uint64_t get64(std::size_t at) const {
    std::uint64_t v;
    std::memcpy(&v, bytes_.data() + at, sizeof(v));
    return v;
  }
  void put64(std::size_t at, std::uint64_t v) { std::memcpy(bytes_.data() + at, &v, sizeof(v)); }
  void write() { ASSERT_TRUE(larder_test::write_all(path_, bytes_.data(), bytes_.size())); }

  check_report check(bool repair) {
    check_report r;
    larder::status s = larder::check_heap(path_, repair, &r);
    EXPECT_TRUE(s.ok()) << describe(s);
    return r;
  }

  // Repairs the damage written, then: the heap opens for writing and checks
  // clean, both lists and the huge block read back, and blocks allocated
  // until each pod has taken new pages never overwrite a node.
  check_report repair_and_use(const std::string& problem, const std::string& repair) {
    check_report before = check(false);
    EXPECT_FALSE(before.clean());
    EXPECT_TRUE(any_contains(before.problems, problem)) << "expected a problem '" << problem << "'\n"
                                                        << joined(before.problems);
    check_report after = check(true);
    EXPECT_TRUE(after.clean()) << joined(after.problems);
    EXPECT_TRUE(any_contains(after.repairs, repair)) << "expected a repair '" << repair << "'\n"
                                                     << joined(after.repairs);
    {
      larder::heap h;
      larder::status s = larder::heap::open(larder_test::file_options(path_, open_mode::open), &h);
      EXPECT_TRUE(s.ok()) << describe(s);
      if (!s.ok()) return after;
      EXPECT_TRUE(list_reads_back(h, "first", 11));
      EXPECT_TRUE(list_reads_back(h, "second", 13));
      EXPECT_TRUE(larder_test::check_pattern(h.find_root("huge"), kHuge, 5));
      larder::pod second = h.find_pod("second");
      for (std::uint64_t i = 0; i < 2 * kNodes; ++i) {
        std::memset(h.allocate(sizeof(node)), 0xEE, sizeof(node));
        std::memset(second.allocate(sizeof(node)), 0xEE, sizeof(node));
      }
      EXPECT_TRUE(list_reads_back(h, "first", 11)) << "an allocation landed on a node";
      EXPECT_TRUE(list_reads_back(h, "second", 13)) << "an allocation landed on a node";
      EXPECT_TRUE(h.close().ok());
    }
    check_report again = check(false);
    EXPECT_TRUE(again.clean()) << joined(again.problems);
    return after;
  }

  larder_test::temp_dir dir_;
  std::string path_;
  std::string bytes_;
  std::uintptr_t base_ = 0;
  std::uintptr_t first_head_ = 0, second_head_ = 0, huge_ = 0;
};

// The last link of a page's free list now points at the page's newest
// node: the lists call it free, but a root reaches it.
TEST_F(Repair, FreeListLinkToALiveObjectIsRebuiltWithoutIt) {
  std::size_t d = descriptor_of(first_head_);
  std::uint64_t b = get64(d + kFree);
  ASSERT_NE(b, 0u);
  while (get64(offset_of(b)) != 0) b = get64(offset_of(b));
  put64(offset_of(b), first_head_);
  write();
  repair_and_use("page descriptor of slice", "rebuilt");
}

TEST_F(Repair, DamagedCountsAreRebuilt) {
  std::size_t d = descriptor_of(first_head_);
  bytes_[d + kUsed] ^= 0x04;
  write();
  repair_and_use("page descriptor of slice", "rebuilt");
}

// Bin, block size and slice count wiped: nothing says what size the
// blocks are, or that a page starts there at all.
TEST_F(Repair, PageWhoseBlocksCannotBeToldApartIsQuarantined) {
  std::size_t d = descriptor_of(second_head_);
  bytes_[d + kBin] = 0;
  put64(d + kBlockSize, 0);
  write();
  {
    larder::heap h;
    EXPECT_TRUE(larder::heap::open(larder_test::file_options(path_, open_mode::open), &h).is(larder::errc::corrupt));
  }
  check_report r = repair_and_use("page descriptor of slice", "quarantined 1 slice");
  EXPECT_EQ(r.quarantined_pages, 1u);
  bool first_slice = (offset_of(second_head_) & (layout::kSegmentSize - 1)) < layout::kSliceSize;
  EXPECT_EQ(r.quarantined_bytes, layout::kSliceSize - (first_slice ? 8192 : 0));  // slice 0 starts after the header
  check_report again = check(false);
  EXPECT_EQ(again.quarantined_pages, 1u);
  EXPECT_TRUE(any_contains(again.notes, "quarantined by a repair"));
  // The quarantined page's objects stay where they were; freeing one is
  // refused quietly rather than corrupting anything.
  larder::heap h(larder_test::file_options(path_, open_mode::open));
  larder::heap::deallocate(reinterpret_cast<void*>(second_head_));
  EXPECT_TRUE(list_reads_back(h, "second", 13));
  ASSERT_TRUE(h.close().ok());
  EXPECT_TRUE(check(false).clean());
}

TEST_F(Repair, SegmentHeaderIsRewrittenFromTheSegmentTable) {
  std::size_t segment = offset_of(first_head_) & ~(layout::kSegmentSize - 1);
  bytes_[segment + 2] ^= 0x20;  // magic
  bytes_[segment + 8] ^= 0x01;  // pod
  write();
  repair_and_use("header: bad magic", "rewrote magic, pod");
}

TEST_F(Repair, LivePageMarkedFreeIsInUseAgain) {
  std::size_t segment = offset_of(first_head_) & ~(layout::kSegmentSize - 1);
  std::size_t slice = (offset_of(first_head_) & (layout::kSegmentSize - 1)) >> layout::kSliceShift;
  put64(segment + 16, get64(segment + 16) | (std::uint64_t{1} << slice));  // free_slices
  write();
  repair_and_use("page descriptor of slice " + std::to_string(slice), "rewrote free slices");
}

TEST_F(Repair, HugeBlockHeaderIsRewritten) {
  std::size_t segment = offset_of(huge_) & ~(layout::kSegmentSize - 1);
  std::memset(bytes_.data() + segment + 12, 0, 4);  // span
  bytes_[segment + 45] ^= 0x02;                     // huge_offset: one bit off its one possible value
  write();
  repair_and_use("(huge block)", "rewrote its header");
}

}  // namespace
