// Standard containers that live in a heap: built under a root, closed,
// reopened and changed in another process, then checked again here.
#include "runtime/runtime_test_util.hpp"

#include <larder/larder.hpp>

#include <cstdint>
#include <map>
#include <memory_resource>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using larder::open_mode;
using larder_test::run_in_child;

template <class T>
using heap_allocator = larder::allocator<T>;
using heap_string = std::basic_string<char, std::char_traits<char>, heap_allocator<char>>;
using heap_map = std::map<int, heap_string, std::less<int>, heap_allocator<std::pair<const int, heap_string>>>;
using heap_hash_map = std::unordered_map<std::uint64_t, std::uint64_t, std::hash<std::uint64_t>,
                                         std::equal_to<std::uint64_t>,
                                         heap_allocator<std::pair<const std::uint64_t, std::uint64_t>>>;

// Everything built with larder::allocator, found again through one root.
struct std_world {
  heap_map names;
  std::vector<std::uint64_t, heap_allocator<std::uint64_t>> numbers;
  std::vector<heap_string, heap_allocator<heap_string>> words;
  heap_hash_map squares;
  heap_string title;
};

// Everything built over a larder::memory_resource that lives next to it.
struct pmr_world {
  explicit pmr_world(larder::pod p) : resource(p), numbers(&resource), table(&resource) {}
  larder::memory_resource resource;
  std::pmr::vector<int> numbers;
  std::pmr::unordered_map<int, std::pmr::string> table;
};

// Text for key `i`: short ones fit in the string itself, long ones do not.
std::string text_for(int i) {
  std::string text = "value-" + std::to_string(i) + "-";
  text.append(static_cast<std::size_t>(i % 60), static_cast<char>('a' + i % 26));
  return text;
}

heap_string heap_text(int i) {
  std::string t = text_for(i);
  return heap_string(t.data(), t.size());
}

std::size_t default_in_use(const larder::heap& h) {
  for (const auto& info : h.pods())
    if (info.id == 0) return info.bytes_in_use;
  return 0;
}

constexpr int kFirst = 2000;   // elements the parent builds
constexpr int kSecond = 1000;  // elements the child adds

class RuntimeContainers : public ::testing::Test {
 protected:
  larder::heap_options options(open_mode mode) const { return larder_test::file_options(path_, mode); }
  larder_test::temp_dir dir_;
  std::string path_ = dir_.file("containers.lrd");
};

// Checks the std_world as the parent built it, or after the child's changes.
void check_std_world(const larder::heap& h, const std_world* w, bool child_ran) {
  int total = child_ran ? kFirst + kSecond : kFirst;
  EXPECT_EQ(w->title, heap_string(child_ran ? "changed by the child, and long enough to need a block"
                                            : "built by the parent, and long enough to need a block"));
  EXPECT_TRUE(h.contains(w->title.data()));

  // The map: keys divisible by 7 were erased by the child.
  std::size_t expected_size = 0;
  for (int i = 0; i < total; ++i) {
    bool erased = child_ran && i < kFirst && i % 7 == 0;
    auto it = w->names.find(i);
    if (erased) {
      EXPECT_TRUE(it == w->names.end()) << i;
      continue;
    }
    ++expected_size;
    ASSERT_TRUE(it != w->names.end()) << i;
    ASSERT_EQ(std::string(it->second.data(), it->second.size()), text_for(i)) << i;
    EXPECT_TRUE(h.contains(&*it));
    if (it->second.size() > 15) {
      EXPECT_TRUE(h.contains(it->second.data())) << i;
    }
  }
  EXPECT_EQ(w->names.size(), expected_size);
  int previous = -1;
  for (const auto& [key, value] : w->names) {
    EXPECT_GT(key, previous);
    previous = key;
  }

  ASSERT_EQ(w->numbers.size(), static_cast<std::size_t>(total));
  EXPECT_TRUE(h.contains(w->numbers.data()));
  for (int i = 0; i < total; ++i) ASSERT_EQ(w->numbers[static_cast<std::size_t>(i)], 3u * static_cast<unsigned>(i) + 1);

  ASSERT_EQ(w->words.size(), static_cast<std::size_t>(total));
  for (int i = 0; i < total; ++i) {
    const heap_string& word = w->words[static_cast<std::size_t>(i)];
    ASSERT_EQ(std::string(word.data(), word.size()), text_for(i * 3)) << i;
    if (word.size() > 15) {
      EXPECT_TRUE(h.contains(word.data()));
    }
  }

  ASSERT_EQ(w->squares.size(), static_cast<std::size_t>(total));
  for (std::uint64_t i = 0; i < static_cast<std::uint64_t>(total); ++i) {
    auto it = w->squares.find(i);
    ASSERT_TRUE(it != w->squares.end()) << i;
    EXPECT_EQ(it->second, i * i);
  }
}

void add_std_elements(std_world* w, int from, int to) {
  for (int i = from; i < to; ++i) {
    w->names.emplace(i, heap_text(i));
    w->numbers.push_back(3u * static_cast<unsigned>(i) + 1);
    w->words.push_back(heap_text(i * 3));
    w->squares[static_cast<std::uint64_t>(i)] = static_cast<std::uint64_t>(i) * static_cast<std::uint64_t>(i);
  }
}

TEST_F(RuntimeContainers, StdContainersWithLarderAllocatorSurviveReopenInAnotherProcess) {
  std_world* where = nullptr;
  std::size_t before = 0;
  {
    larder::heap h(options(open_mode::create));
    std_world* w = h.root<std_world>("std");
    where = w;
    // Elements made here (temporaries included) must come from the heap.
    larder::pod_scope scope(h.default_pod());
    add_std_elements(w, 0, kFirst);
    w->title = "built by the parent, and long enough to need a block";
    check_std_world(h, w, false);
    ASSERT_TRUE(h.close().ok());
  }
  int code = run_in_child([&] {
    larder::heap h(options(open_mode::open));
    std_world* w = h.root<std_world>("std");
    ASSERT_EQ(w, where);
    check_std_world(h, w, false);
    larder::pod_scope scope(h.default_pod());
    add_std_elements(w, kFirst, kFirst + kSecond);
    for (int i = 0; i < kFirst; i += 7) w->names.erase(i);
    w->title = "changed by the child, and long enough to need a block";
    w->words.shrink_to_fit();
    check_std_world(h, w, true);
    ASSERT_TRUE(h.close().ok());
  });
  ASSERT_EQ(code, 0) << "the child found the containers damaged";
  {
    larder::heap h(options(open_mode::open));
    std_world* w = h.root<std_world>("std");
    ASSERT_EQ(w, where);
    check_std_world(h, w, true);
    // Tearing everything down frees back into the heap (the usage figures
    // are checked after a reopen, which folds in every free).
    before = default_in_use(h);
    h.destroy_root<std_world>("std");
    EXPECT_EQ(h.find_root("std"), nullptr);
    ASSERT_TRUE(h.close().ok());
  }
  larder::heap h(options(open_mode::open));
  EXPECT_EQ(h.find_root("std"), nullptr);
  EXPECT_LT(default_in_use(h), before / 10) << "destroying the containers freed little";
}

void check_pmr_world(const larder::heap& h, pmr_world* w, int total) {
  EXPECT_TRUE(w->resource.target() == h.default_pod());
  EXPECT_TRUE(w->numbers.get_allocator().resource() == &w->resource);
  ASSERT_EQ(w->numbers.size(), static_cast<std::size_t>(total));
  EXPECT_TRUE(h.contains(w->numbers.data()));
  for (int i = 0; i < total; ++i) ASSERT_EQ(w->numbers[static_cast<std::size_t>(i)], i * 5 - 3);
  ASSERT_EQ(w->table.size(), static_cast<std::size_t>(total));
  for (int i = 0; i < total; ++i) {
    auto it = w->table.find(i);
    ASSERT_TRUE(it != w->table.end()) << i;
    ASSERT_EQ(std::string(it->second.data(), it->second.size()), text_for(i + 11)) << i;
    EXPECT_TRUE(it->second.get_allocator().resource() == &w->resource);
    if (it->second.size() > 15) {
      EXPECT_TRUE(h.contains(it->second.data()));
    }
    EXPECT_TRUE(h.contains(&*it));
  }
}

void add_pmr_elements(pmr_world* w, int from, int to) {
  for (int i = from; i < to; ++i) {
    w->numbers.push_back(i * 5 - 3);
    std::string t = text_for(i + 11);
    w->table.emplace(i, std::string_view(t));  // the string takes the map's resource
  }
}

TEST_F(RuntimeContainers, PmrContainersOverMemoryResourceSurviveReopenInAnotherProcess) {
  pmr_world* where = nullptr;
  {
    larder::heap h(options(open_mode::create));
    pmr_world* w = h.root<pmr_world>("pmr", h.default_pod());
    where = w;
    add_pmr_elements(w, 0, kFirst);
    check_pmr_world(h, w, kFirst);
    ASSERT_TRUE(h.close().ok());
  }
  // The resource's vtable pointer is only meaningful in this program image,
  // which a forked child shares.
  int code = run_in_child([&] {
    larder::heap h(options(open_mode::open));
    pmr_world* w = h.root<pmr_world>("pmr", h.default_pod());
    ASSERT_EQ(w, where);
    check_pmr_world(h, w, kFirst);
    add_pmr_elements(w, kFirst, kFirst + kSecond);
    check_pmr_world(h, w, kFirst + kSecond);
    ASSERT_TRUE(h.close().ok());
  });
  ASSERT_EQ(code, 0);
  larder::heap h(options(open_mode::open));
  pmr_world* w = h.root<pmr_world>("pmr", h.default_pod());
  ASSERT_EQ(w, where);
  check_pmr_world(h, w, kFirst + kSecond);
  // Erase and rehash in place after reopen.
  for (int i = 0; i < kFirst + kSecond; i += 2) w->table.erase(i);
  w->table.rehash(4096);
  EXPECT_EQ(w->table.size(), static_cast<std::size_t>((kFirst + kSecond) / 2));
  for (int i = 1; i < kFirst + kSecond; i += 2) ASSERT_EQ(w->table.count(i), 1u) << i;
}

// A singly linked list of raw pointers, made with heap::allocate.
struct list_node {
  list_node* next;
  std::uint64_t value;
  char label[40];
};
struct list_head {
  list_node* first;
  list_node* last;
  std::uint64_t count;
};

void append(larder::heap& h, list_head* head, std::uint64_t value) {
  auto* n = static_cast<list_node*>(h.allocate(sizeof(list_node)));
  ASSERT_NE(n, nullptr);
  n->next = nullptr;
  n->value = value;
  std::snprintf(n->label, sizeof(n->label), "node number %llu", static_cast<unsigned long long>(value));
  if (head->last != nullptr) {
    head->last->next = n;
  } else {
    head->first = n;
  }
  head->last = n;
  ++head->count;
}

void check_list(const larder::heap& h, const list_head* head, std::uint64_t count) {
  ASSERT_EQ(head->count, count);
  std::uint64_t seen = 0;
  const list_node* last = nullptr;
  for (const list_node* n = head->first; n != nullptr; n = n->next) {
    ASSERT_TRUE(h.contains(n)) << seen;
    ASSERT_EQ(n->value, seen * seen + 1);
    char label[40];
    std::snprintf(label, sizeof(label), "node number %llu", static_cast<unsigned long long>(n->value));
    ASSERT_STREQ(n->label, label);
    last = n;
    ++seen;
    ASSERT_LE(seen, count) << "the list has a cycle or extra nodes";
  }
  EXPECT_EQ(seen, count);
  EXPECT_EQ(head->last, last);
}

TEST_F(RuntimeContainers, LinkedListOfRawPointersSurvivesReopen) {
  constexpr std::uint64_t kNodes = 3000;
  list_node* first = nullptr;
  {
    larder::heap h(options(open_mode::create));
    auto* head = h.root<list_head>("list");
    for (std::uint64_t i = 0; i < kNodes; ++i) append(h, head, i * i + 1);
    first = head->first;
    check_list(h, head, kNodes);
  }
  {
    larder::heap h(options(open_mode::open));
    auto* head = h.root<list_head>("list");
    EXPECT_EQ(head->first, first);
    check_list(h, head, kNodes);
  }
  int code = run_in_child([&] {
    larder::heap h(options(open_mode::open));
    auto* head = h.root<list_head>("list");
    check_list(h, head, kNodes);
    for (std::uint64_t i = kNodes; i < kNodes + 500; ++i) append(h, head, i * i + 1);
    check_list(h, head, kNodes + 500);
  });
  ASSERT_EQ(code, 0);
  larder::heap h(options(open_mode::open));
  auto* head = h.root<list_head>("list");
  EXPECT_EQ(head->first, first);
  check_list(h, head, kNodes + 500);
}

}  // namespace
