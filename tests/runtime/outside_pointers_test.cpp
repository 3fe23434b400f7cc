// larder::find_outside_pointers: heap objects that hold addresses of this
// process outside every open heap are found, with the root, block, offset
// and what lies there; pointers within the heap or into another open heap
// are not.
#include "runtime/runtime_test_util.hpp"

#include <larder/check.hpp>
#include <larder/containers.hpp>
#include <larder/larder.hpp>

#include <cstddef>
#include <string>
#include <vector>

namespace {

using larder_test::temp_dir;

struct record {
  std::uint64_t number = 42;
  larder::string name;        // characters in the heap
  const char* label = nullptr;  // a literal: in the program's constants
  std::string process_text;   // the default allocator: process memory
  void* elsewhere = nullptr;  // another heap, or the stack
  record* next = nullptr;     // within the heap
};

larder::heap make_heap(const temp_dir& dir, const char* name) {
  return larder::heap({.kind = larder::backing::file, .name = dir.file(name)});
}

std::vector<larder::outside_pointer> scan(const larder::heap& h) {
  std::vector<larder::outside_pointer> found;
  larder::status s = larder::find_outside_pointers(h, &found);
  EXPECT_TRUE(s.ok()) << s.to_string();
  return found;
}

// No spare bytes (a string's unused small-string buffer would hold
// whatever was there before, which the scan may take for an address).
struct wholly_in_heap {
  std::uint64_t number = 7;
  larder::vector<std::uint64_t> values;
  wholly_in_heap* next = nullptr;
};

TEST(OutsidePointers, ObjectsWhollyInTheHeapHaveNone) {
  temp_dir dir;
  larder::heap h = make_heap(dir, "heap");
  auto* first = h.root<wholly_in_heap>("first");
  for (std::uint64_t i = 0; i < 1000; ++i) first->values.push_back(i);
  first->next = h.root<wholly_in_heap>("second");  // built in the heap's pod, as root<T> does
  first->next->values.assign(10, 1);
  std::vector<larder::outside_pointer> found = scan(h);
  for (const auto& p : found) ADD_FAILURE() << p.root << " +" << p.offset << " -> " << p.target;
}

TEST(OutsidePointers, LiteralStdStringAndStackAreFoundWithTheirPlace) {
  temp_dir dir;
  larder::heap h = make_heap(dir, "heap");
  record* r = h.root<record>("record");
  auto* second = static_cast<record*>(h.allocate(sizeof(record)));
  new (second) record();
  r->next = second;  // reached through the root
  second->label = "a literal";
  r->process_text.assign(200, 'x');  // longer than the small-string buffer
  int on_stack = 0;
  r->elsewhere = &on_stack;

  std::vector<larder::outside_pointer> found = scan(h);
  // The entry for `field` of the block at `block`.
  auto find = [&](const void* block, const void* field) -> const larder::outside_pointer* {
    auto offset = static_cast<std::size_t>(static_cast<const char*>(field) - static_cast<const char*>(block));
    for (const auto& p : found)
      if (p.block == block && p.offset == offset) return &p;
    return nullptr;
  };
  const auto* label = find(second, &second->label);
  ASSERT_NE(label, nullptr);
  EXPECT_EQ(label->value, reinterpret_cast<std::uintptr_t>(second->label));
  EXPECT_EQ(label->root, "record");
  EXPECT_NE(label->target.find("runtime_outside_pointers_test"), std::string::npos) << label->target;

  const auto* text = find(r, &r->process_text);  // std::string's data pointer comes first
  ASSERT_NE(text, nullptr);
  EXPECT_EQ(text->value, reinterpret_cast<std::uintptr_t>(r->process_text.data()));
  EXPECT_FALSE(text->target.empty());

  const auto* stack = find(r, &r->elsewhere);
  ASSERT_NE(stack, nullptr);
  EXPECT_EQ(stack->target, "[stack]");
  r->process_text = std::string();  // its blocks are the process's, freed there
  r->process_text.shrink_to_fit();
}

TEST(OutsidePointers, AnotherOpenHeapAndUnreachedBlocksAreNotListed) {
  temp_dir dir;
  larder::heap h = make_heap(dir, "heap");
  larder::heap other = make_heap(dir, "other");
  record* r = h.root<record>("record");
  r->elsewhere = other.allocate(64);
  // Not reachable from any root: not scanned.
  auto* loose = static_cast<record*>(h.allocate(sizeof(record)));
  new (loose) record();
  int on_stack = 0;
  loose->elsewhere = &on_stack;
  EXPECT_TRUE(scan(h).empty());
}

TEST(OutsidePointers, LimitStopsTheList) {
  temp_dir dir;
  larder::heap h = make_heap(dir, "heap");
  auto* table = static_cast<const char**>(h.allocate(16 * sizeof(const char*)));
  for (int i = 0; i < 16; ++i) table[i] = "literal";
  ASSERT_TRUE(h.set_root("table", table, 16 * sizeof(const char*)).ok());
  std::vector<larder::outside_pointer> found;
  ASSERT_TRUE(larder::find_outside_pointers(h, &found, 5).ok());
  EXPECT_EQ(found.size(), 5u);
  ASSERT_TRUE(larder::find_outside_pointers(h, &found).ok());
  EXPECT_EQ(found.size(), 16u);
}

TEST(OutsidePointers, ClosedHeapIsAnError) {
  larder::heap closed;
  std::vector<larder::outside_pointer> found;
  EXPECT_TRUE(larder::find_outside_pointers(closed, &found).is(larder::errc::invalid_argument));
}

}  // namespace
