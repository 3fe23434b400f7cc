// larder::salvage_heap. On an intact heap every root comes back with its
// whole object graph equal — a larder::map of strings, a linked list in a
// pod of its own, a vector whose storage ends where its block does, an
// over-aligned object and a huge block — in a new heap that opens beside
// the original and goes on working. On a damaged heap the roots whose
// blocks are intact come back byte for byte and the one whose page cannot
// be told apart is reported lost, naming the page. A transaction a crash
// left is rolled back in the copy, never in the file.
#include "runtime/runtime_test_util.hpp"

#include "recovery/layout.hpp"

#include <larder/check.hpp>
#include <larder/larder.hpp>
#include <larder/transaction.hpp>

#include <sys/mman.h>

#include <cstring>
#include <string>

namespace {

namespace layout = larder::layout;
using larder::open_mode;
using larder_test::describe;

using text_map = larder::map<larder::string, larder::string>;

struct list_node {
  std::uint64_t value;
  list_node* next;
};
struct list_root {
  std::uint64_t count;
  list_node* head;
};
struct alignas(64) aligned_block {
  std::uint64_t words[8];
};

constexpr std::size_t kPage = 64;  // page descriptor bytes
constexpr std::size_t kHuge = std::size_t{5} << 20;

std::string key(int i) { return "key number " + std::to_string(i) + " long enough to leave the small-string buffer"; }
std::string value(int i) { return std::string(static_cast<std::size_t>(20 + i % 90), static_cast<char>('a' + i % 26)); }

list_root* make_list(larder::heap& h, larder::pod p, const char* name, std::uint64_t count, std::uint64_t seed) {
  auto* root = static_cast<list_root*>(p.allocate(sizeof(list_root)));
  *root = list_root{0, nullptr};
  for (std::uint64_t i = 0; i < count; ++i) {
    auto* n = static_cast<list_node*>(p.allocate(sizeof(list_node)));
    *n = list_node{seed + i * 7919, root->head};
    root->head = n;
    ++root->count;
    // Freed neighbours leave free lists between the nodes.
    larder::heap::deallocate(p.allocate(sizeof(list_node)));
  }
  EXPECT_TRUE(h.set_root(name, root, sizeof(list_root)).ok());
  return root;
}

bool list_equal(const list_root* a, const list_root* b) {
  if (a == nullptr || b == nullptr || a->count != b->count) return false;
  const list_node* x = a->head;
  const list_node* y = b->head;
  for (std::uint64_t i = 0; i < a->count; ++i, x = x->next, y = y->next)
    if (x == nullptr || y == nullptr || x->value != y->value) return false;
  return x == nullptr && y == nullptr;
}

class Salvage : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.file("source.lrd");
    out_ = dir_.file("salvaged.lrd");
  }

  larder::salvage_report salvage(const std::string& out) {
    larder::salvage_report r;
    larder::status s = larder::salvage_heap(larder::backing::file, path_, out, &r);
    EXPECT_TRUE(s.ok()) << describe(s);
    return r;
  }

  static const larder::salvaged_root* root_of(const larder::salvage_report& r, const std::string& name) {
    for (const auto& root : r.roots)
      if (root.name == name) return &root;
    return nullptr;
  }

  // File offset of the page descriptor of the page holding `p`.
  std::size_t descriptor_of(const void* p, std::uintptr_t base) {
    std::uintptr_t offset = reinterpret_cast<std::uintptr_t>(p) - base;
    std::size_t segment = offset >> layout::kSegmentShift;
    std::size_t slice = (offset & (layout::kSegmentSize - 1)) >> layout::kSliceShift;
    std::string bytes = larder_test::read_all(path_);
    std::size_t at = (segment << layout::kSegmentShift) + 64 + slice * kPage;
    return at - static_cast<unsigned char>(bytes[at + 61]) * kPage;  // back to the page's first slice
  }

  larder_test::temp_dir dir_;
  std::string path_, out_;
};

TEST_F(Salvage, IntactHeapComesBackWhole) {
  {
    larder::heap h(larder_test::file_options(path_, open_mode::create));
    auto* map = h.root<text_map>("map");
    for (int i = 0; i < 500; ++i) map->emplace(key(i), value(i));
    larder::pod cold;
    ASSERT_TRUE(h.make_pod("cold", &cold).ok());
    make_list(h, cold, "list", 300, 1);
    auto* vec = h.root<larder::vector<std::uint64_t>>("vector");
    vec->reserve(8);  // 64 bytes, a size class: the end of storage is the next block's start
    for (std::uint64_t i = 0; i < 8; ++i) vec->push_back(i * i);
    auto* aligned = static_cast<aligned_block*>(h.allocate(sizeof(aligned_block), 64));
    for (std::uint64_t i = 0; i < 8; ++i) aligned->words[i] = ~i;
    ASSERT_TRUE(h.set_root("aligned", aligned, sizeof(aligned_block)).ok());
    void* huge = h.allocate(kHuge);
    larder_test::fill_pattern(huge, kHuge, 77);
    ASSERT_TRUE(h.set_root("huge", huge, kHuge).ok());
    ASSERT_TRUE(h.close().ok());
  }
  std::string before = larder_test::read_all(path_);
  larder::salvage_report r = salvage(out_);
  EXPECT_EQ(r.lost(), 0u);
  EXPECT_EQ(r.roots.size(), 5u);
  for (const auto& root : r.roots) EXPECT_TRUE(root.salvaged) << root.name << ": " << root.lost_because;
  EXPECT_GE(r.pods, 2u);
  EXPECT_GE(r.blocks, 500u + 300u + 4u);
  ASSERT_NE(root_of(r, "list"), nullptr);
  EXPECT_EQ(root_of(r, "list")->blocks, 301u);
  EXPECT_TRUE(larder_test::read_all(path_) == before) << "salvage wrote the source";

  larder::heap source(larder_test::file_options(path_, open_mode::open));
  larder::heap copy(larder_test::file_options(out_, open_mode::open));
  ASSERT_NE(source.base(), copy.base());
  auto* map = copy.root<text_map>("map");
  EXPECT_TRUE(*map == *source.root<text_map>("map"));
  EXPECT_EQ(map->size(), 500u);
  EXPECT_TRUE(copy.contains(map->begin()->first.data()));
  EXPECT_TRUE(
      list_equal(static_cast<list_root*>(copy.find_root("list")), static_cast<list_root*>(source.find_root("list"))));
  auto* list = static_cast<list_root*>(copy.find_root("list"));
  for (const list_node* n = list->head; n != nullptr; n = n->next) ASSERT_TRUE(copy.contains(n));
  auto* vec = copy.root<larder::vector<std::uint64_t>>("vector");
  ASSERT_EQ(vec->size(), 8u);
  EXPECT_EQ(vec->capacity(), 8u) << "the end of storage moved with its block";
  for (std::uint64_t i = 0; i < 8; ++i) EXPECT_EQ((*vec)[i], i * i);
  auto* aligned = static_cast<aligned_block*>(copy.find_root("aligned"));
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(aligned) % 64, 0u);
  for (std::uint64_t i = 0; i < 8; ++i) EXPECT_EQ(aligned->words[i], ~i);
  std::size_t size = 0;
  void* huge = copy.find_root("huge", &size);
  EXPECT_EQ(size, kHuge);
  EXPECT_TRUE(larder_test::check_pattern(huge, kHuge, 77));
  bool cold_holds_the_list = false;
  for (const auto& p : copy.pods())
    cold_holds_the_list |= p.name == "cold" && p.bytes_in_use >= 300 * sizeof(list_node);
  EXPECT_TRUE(cold_holds_the_list);
  // The copy is a heap like any other: its containers allocate in it.
  for (int i = 500; i < 700; ++i) map->emplace(key(i), value(i));
  vec->push_back(64);
  EXPECT_TRUE(copy.contains(vec->data()));
  ASSERT_TRUE(copy.close().ok());
  larder::check_report checked;
  ASSERT_TRUE(larder::check_heap(out_, false, &checked).ok());
  EXPECT_TRUE(checked.clean()) << checked.problems[0];
}

TEST_F(Salvage, DamagedHeapGivesBackTheIntactRootsAndNamesTheLostOne) {
  std::uintptr_t base = 0;
  const list_node* lost_head = nullptr;
  {
    larder::heap h(larder_test::file_options(path_, open_mode::create));
    base = reinterpret_cast<std::uintptr_t>(h.base());
    make_list(h, h.default_pod(), "kept", 400, 3);
    larder::pod other;
    ASSERT_TRUE(h.make_pod("other", &other).ok());
    lost_head = make_list(h, other, "lost", 200, 5)->head;
    ASSERT_TRUE(h.close().ok());
  }
  // Two fields of the size class: the page's blocks cannot be told apart.
  std::size_t at = descriptor_of(lost_head, base);
  std::string bytes = larder_test::read_all(path_);
  bytes[at + 62] = 0;                         // bin
  std::memset(bytes.data() + at + 56, 0, 4);  // block_size
  ASSERT_TRUE(larder_test::write_all(path_, bytes.data(), bytes.size()));

  larder::salvage_report r = salvage(out_);
  ASSERT_EQ(r.roots.size(), 2u);
  const larder::salvaged_root* kept = root_of(r, "kept");
  const larder::salvaged_root* lost = root_of(r, "lost");
  ASSERT_TRUE(kept != nullptr && lost != nullptr);
  EXPECT_TRUE(kept->salvaged) << kept->lost_because;
  EXPECT_FALSE(lost->salvaged);
  EXPECT_NE(lost->lost_because.find("page descriptor of slice"), std::string::npos) << lost->lost_because;
  EXPECT_EQ(r.lost(), 1u);
  {
    larder::heap copy(larder_test::file_options(out_, open_mode::open));
    EXPECT_EQ(copy.find_root("lost"), nullptr);
    auto* list = static_cast<list_root*>(copy.find_root("kept"));
    ASSERT_NE(list, nullptr);
    ASSERT_EQ(list->count, 400u);
    std::uint64_t i = 400;
    for (const list_node* n = list->head; n != nullptr; n = n->next) EXPECT_EQ(n->value, 3 + --i * 7919);
    EXPECT_EQ(i, 0u);
  }
  // Repair sets the page aside; the heap opens again, and salvage still
  // finds the same.
  larder::check_report repaired;
  ASSERT_TRUE(larder::check_heap(path_, true, &repaired).ok());
  EXPECT_TRUE(repaired.clean()) << repaired.problems[0];
  EXPECT_EQ(repaired.quarantined_pages, 1u);
  larder::salvage_report again = salvage(dir_.file("again.lrd"));
  EXPECT_EQ(again.lost(), 1u);
  larder::heap h(larder_test::file_options(path_, open_mode::open));
  auto* list = static_cast<list_root*>(h.find_root("kept"));
  ASSERT_NE(list, nullptr);
  EXPECT_EQ(list->count, 400u);
}

TEST_F(Salvage, CrashedTransactionIsRolledBackInTheCopyOnly) {
  {
    larder::heap h(larder_test::file_options(path_, open_mode::create));
    auto* values = static_cast<std::uint64_t*>(h.allocate(sizeof(std::uint64_t) * 64));
    for (int i = 0; i < 64; ++i) values[i] = 1000 + static_cast<std::uint64_t>(i);
    ASSERT_TRUE(h.set_root("values", values, sizeof(std::uint64_t) * 64).ok());
    ASSERT_TRUE(h.close().ok());
  }
  int code = larder_test::run_in_child([&] {
    larder::heap h(larder_test::file_options(path_, open_mode::open));
    auto* values = static_cast<std::uint64_t*>(h.find_root("values"));
    larder::transaction tx(h);
    for (int i = 0; i < 4; ++i) {
      tx.snapshot(&values[i * 8], sizeof(std::uint64_t));
      values[i * 8] = 0xDEAD;
    }
    ::msync(h.base(), std::size_t{8} << 20, MS_SYNC);
    ::_exit(0);
  });
  ASSERT_EQ(code, 0);
  std::string before = larder_test::read_all(path_);
  larder::salvage_report r = salvage(out_);
  EXPECT_EQ(r.lost(), 0u);
  bool noted = false;
  for (const auto& n : r.notes) noted |= n.find("rolled back an uncommitted transaction") != std::string::npos;
  EXPECT_TRUE(noted);
  EXPECT_TRUE(larder_test::read_all(path_) == before) << "the rollback reached the file";
  larder::heap copy(larder_test::file_options(out_, open_mode::open));
  auto* values = static_cast<std::uint64_t*>(copy.find_root("values"));
  ASSERT_NE(values, nullptr);
  for (int i = 0; i < 64; ++i) EXPECT_EQ(values[i], 1000 + static_cast<std::uint64_t>(i)) << i;
}

TEST_F(Salvage, Errors) {
  larder::salvage_report r;
  EXPECT_TRUE(larder::salvage_heap(larder::backing::file, path_, out_, &r).is(larder::errc::not_found));
  {
    larder::heap h(larder_test::file_options(path_, open_mode::create));
    void* p = h.allocate(100);
    ASSERT_TRUE(h.set_root("one", p, 100).ok());
    // Open here: its address range is taken.
    larder::status s = larder::salvage_heap(larder::backing::file, path_, out_, &r);
    EXPECT_TRUE(s.is(larder::errc::address_taken)) << describe(s);
    EXPECT_FALSE(larder_test::path_exists(out_));
  }
  ASSERT_TRUE(larder_test::write_all(out_, "keep", 4));
  larder::status s = larder::salvage_heap(larder::backing::file, path_, out_, &r);
  EXPECT_TRUE(s.is(larder::errc::already_exists)) << describe(s);
  EXPECT_EQ(larder_test::read_all(out_), "keep");
  std::string garbage(std::size_t{1} << 20, 'x');
  ASSERT_TRUE(larder_test::write_all(path_, garbage.data(), garbage.size()));
  EXPECT_TRUE(
      larder::salvage_heap(larder::backing::file, path_, dir_.file("none.lrd"), &r).is(larder::errc::not_a_heap));
}

}  // namespace
