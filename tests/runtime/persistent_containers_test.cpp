// larder/containers.hpp: nested containers of long strings keep every block
// in the heap, are found intact by a freshly started process (this binary
// again), roll back with a failed transaction and are searched by
// std::string_view; plus the pitfalls the aliases exist for (std::string's
// own allocator, element types that take none) and their propagation.
#include "runtime/runtime_test_util.hpp"

#include <larder/containers.hpp>
#include <larder/larder.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

extern char** environ;

// Two tests here put process-heap blocks (std::string's characters) behind
// pointers stored in a mapped heap, which LeakSanitizer does not scan once
// the heap is closed: it would report them as leaked though a program that
// reopened the heap would reach them. Those tests allocate with leak
// checking off (an environment variable could not do it: ctest's
// ASAN_OPTIONS overrides a binary's defaults).
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
struct leak_check_off {
  leak_check_off() { __lsan_disable(); }
  ~leak_check_off() { __lsan_enable(); }
};
#else
struct leak_check_off {};
#endif

namespace {

using larder::open_mode;
using larder_test::file_options;

// Not LARDER_*: the library warns about LARDER_ names it does not know.
constexpr const char* kHeapVar = "PERSISTENT_CONTAINERS_HEAP";
constexpr const char* kResultVar = "PERSISTENT_CONTAINERS_RESULT";
constexpr const char* kExtraVar = "PERSISTENT_CONTAINERS_EXTRA";  // a key the child expects too

using index_map = larder::map<larder::string, larder::vector<larder::string>>;
using table_map = larder::unordered_map<larder::string, larder::vector<int>>;
using model_index = std::map<std::string, std::vector<std::string>>;

constexpr int kKeys = 300;

// Long enough for every string to need a block (no small-string buffer).
std::string padded(std::string text, std::size_t length = 48) {
  for (char c = 'a'; text.size() < length; c = c == 'z' ? 'a' : static_cast<char>(c + 1)) text += c;
  return text;
}
std::string index_key(int i) { return padded("index-key-" + std::to_string(i) + "-"); }
std::string index_value(int i, int j) { return padded("value-" + std::to_string(i) + "-" + std::to_string(j) + "-", 40); }
int values_of(int i) { return i % 5 + 1; }
std::string table_key(int i) { return padded("table-key-" + std::to_string(i) + "-"); }
int table_values_of(int i) { return i % 7 + 1; }
int table_value(int i, int j) { return i * 100 + j; }

larder::string heap_text(std::string_view s) { return larder::string(s.data(), s.size()); }

// Fills both containers the ways programs do, none of them inside a
// pod_scope: what lands in the heap does so through the containers'
// allocators alone. Temporaries made here are process-heap strings.
void fill(index_map* index, table_map* table) {
  for (int i = 0; i < kKeys; ++i) {
    std::string key = index_key(i);
    larder::vector<larder::string>* values = nullptr;
    switch (i % 3) {
      case 0:
        values = &(*index)[heap_text(key)];
        break;
      case 1:
        values = &index->emplace(key.c_str(), larder::vector<larder::string>{}).first->second;
        break;
      default:
        values = &index->try_emplace(heap_text(key)).first->second;
        break;
    }
    for (int j = 0; j < values_of(i); ++j) {
      std::string value = index_value(i, j);
      if (j % 2 == 0) {
        values->push_back(heap_text(value));
      } else {
        values->emplace_back(value.c_str());
      }
    }
    larder::vector<int>& row = (*table)[heap_text(table_key(i))];
    for (int j = 0; j < table_values_of(i); ++j) row.push_back(table_value(i, j));
  }
}

model_index expected_index() {
  model_index model;
  for (int i = 0; i < kKeys; ++i)
    for (int j = 0; j < values_of(i); ++j) model[index_key(i)].push_back(index_value(i, j));
  return model;
}

model_index model_of(const index_map& index) {
  model_index model;
  for (const auto& [key, values] : index) {
    auto& out = model[std::string(key.data(), key.size())];
    for (const auto& v : values) out.emplace_back(v.data(), v.size());
  }
  return model;
}

// Every block reachable from the index is in the heap: nodes, key buffers,
// vector buffers and the buffers of the strings inside them.
void expect_index_in_heap(const larder::heap& h, const index_map& index) {
  for (const auto& entry : index) {
    ASSERT_TRUE(h.contains(&entry)) << entry.first;
    ASSERT_GT(entry.first.size(), 15u);
    ASSERT_TRUE(h.contains(entry.first.data())) << entry.first;
    ASSERT_TRUE(h.contains(entry.second.data())) << entry.first;
    for (const auto& v : entry.second) ASSERT_TRUE(h.contains(v.data())) << v;
  }
}

void expect_table(const larder::heap& h, const table_map& table) {
  ASSERT_EQ(table.size(), static_cast<std::size_t>(kKeys));
  for (int i = 0; i < kKeys; ++i) {
    auto it = table.find(std::string_view(table_key(i)));
    ASSERT_TRUE(it != table.end()) << i;
    ASSERT_TRUE(h.contains(&*it));
    ASSERT_TRUE(h.contains(it->first.data()));
    ASSERT_TRUE(h.contains(it->second.data()));
    ASSERT_EQ(it->second.size(), static_cast<std::size_t>(table_values_of(i)));
    for (int j = 0; j < table_values_of(i); ++j) ASSERT_EQ(it->second[static_cast<std::size_t>(j)], table_value(i, j));
  }
}

std::size_t bytes_in_use(const larder::heap& h) {
  std::size_t total = 0;
  for (const auto& p : h.pods()) total += p.bytes_in_use;
  return total;
}

// ---- a fresh process ----------------------------------------------------------

int wait_for(pid_t pid) {
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
  return -1;
}

// Runs PersistentContainers.VerifyChild in this binary started again, on
// the heap at `path`; expects it to pass and to have reached its end.
void verify_in_fresh_process(const larder_test::temp_dir& dir, const std::string& path, const std::string& extra) {
  std::string result = dir.file("verify.result");
  ::unlink(result.c_str());
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry(*e);
    if (entry.starts_with("PERSISTENT_CONTAINERS_")) continue;
    env.emplace_back(entry);
  }
  env.push_back(std::string(kHeapVar) + "=" + path);
  env.push_back(std::string(kResultVar) + "=" + result);
  env.push_back(std::string(kExtraVar) + "=" + extra);
  std::vector<char*> envp;
  for (auto& s : env) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string exe = "/proc/self/exe";
  std::string filter = "--gtest_filter=PersistentContainers.VerifyChild";
  std::vector<char*> argv{exe.data(), filter.data(), nullptr};
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execve(exe.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
  ASSERT_GT(pid, 0);
  EXPECT_EQ(wait_for(pid), 0) << "the fresh process found the containers changed";
  EXPECT_EQ(larder_test::read_all(result), "ok") << "the fresh process did not run to its end";
}

class PersistentContainers : public ::testing::Test {
 protected:
  larder_test::temp_dir dir_;
  std::string path_ = dir_.file("containers.lrd");
};

// Opens the heap read-only (nothing can be allocated, so lookups must not
// allocate either) and checks both roots against the model. Does nothing
// unless started by verify_in_fresh_process.
TEST_F(PersistentContainers, VerifyChild) {
  const char* path = std::getenv(kHeapVar);
  const char* result = std::getenv(kResultVar);
  const char* extra = std::getenv(kExtraVar);
  if (path == nullptr || result == nullptr || extra == nullptr) return;
  larder::heap_options options = file_options(path, open_mode::open);
  options.read_only = true;
  larder::heap h(options);
  const auto* index = static_cast<const index_map*>(h.find_root("index"));
  const auto* table = static_cast<const table_map*>(h.find_root("table"));
  ASSERT_NE(index, nullptr);
  ASSERT_NE(table, nullptr);

  model_index model = expected_index();
  if (*extra != '\0') model[extra] = {padded(std::string(extra) + "-value-")};
  EXPECT_EQ(model_of(*index), model);
  expect_index_in_heap(h, *index);
  for (const auto& [key, values] : model) {
    auto it = index->find(std::string_view(key));
    ASSERT_TRUE(it != index->end()) << key;
    EXPECT_EQ(it->second.size(), values.size());
  }
  EXPECT_FALSE(index->contains(std::string_view("no such key")));
  expect_table(h, *table);
  EXPECT_FALSE(table->contains("no such key"));
  if (!::testing::Test::HasFailure()) larder_test::write_all(result, "ok", 2);
}

// ---- the tests ------------------------------------------------------------------

// The example: a map of strings to vectors of strings and an
// unordered map of strings to vectors, under named roots of a file heap.
TEST_F(PersistentContainers, NestedContainersLiveWhollyInTheHeapAndSurviveAFreshProcess) {
  {
    larder::heap h(file_options(path_, open_mode::create));
    auto* index = h.root<index_map>("index");
    auto* table = h.root<table_map>("table");
    ASSERT_EQ(larder::current_pod(), larder::pod());  // no scope: the allocators carry the pod
    fill(index, table);
    EXPECT_EQ(model_of(*index), expected_index());
    expect_index_in_heap(h, *index);
    expect_table(h, *table);
    ASSERT_TRUE(h.close().ok());
  }
  verify_in_fresh_process(dir_, path_, "");

  // Changed after a reopen, checked again by another fresh process.
  std::string extra = padded("added-after-reopen-");
  {
    larder::heap h(file_options(path_, open_mode::open));
    auto* index = h.root<index_map>("index");
    (*index)[heap_text(extra)].emplace_back(padded(extra + "-value-").c_str());
    expect_index_in_heap(h, *index);
    ASSERT_TRUE(h.close().ok());
  }
  verify_in_fresh_process(dir_, path_, extra);
}

// A transaction that captures pages and throws half-way through inserts,
// erases, appends and rewrites leaves both containers, and the allocator,
// as they were; the same changes committed are there after reopen.
TEST_F(PersistentContainers, AFailedTransactionLeavesNoTrace) {
  larder::heap h(file_options(path_, open_mode::create));
  auto* index = h.root<index_map>("index");
  auto* table = h.root<table_map>("table");
  fill(index, table);
  const model_index before = expected_index();
  const std::size_t in_use = bytes_in_use(h);

  auto change = [&] {
    for (int i = 0; i < 50; ++i) {
      (*index)[heap_text(padded("new-key-" + std::to_string(i) + "-"))].emplace_back(index_value(i, 99).c_str());
    }
    index->erase(index->find(std::string_view(index_key(7))));
    index->begin()->second.push_back(heap_text(padded("appended-")));
    index->rbegin()->second.front() = heap_text(padded("rewritten-"));
    (*table)[heap_text(table_key(3))].assign(1000, -1);
    table->erase(table->find(std::string_view(table_key(4))));
  };
  try {
    larder::transaction tx(h, larder::capture::pages);
    change();
    throw std::runtime_error("failed on purpose");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(model_of(*index), before);
  expect_index_in_heap(h, *index);
  expect_table(h, *table);
  EXPECT_EQ(bytes_in_use(h), in_use);

  {
    larder::transaction tx(h, larder::capture::pages);
    change();
  }
  ASSERT_TRUE(h.close().ok());
  ASSERT_TRUE(larder::heap::open(file_options(path_, open_mode::open), &h).ok());
  index = h.root<index_map>("index");
  table = h.root<table_map>("table");
  EXPECT_EQ(index->size(), before.size() + 50 - 1);
  EXPECT_FALSE(index->contains(std::string_view(index_key(7))));
  EXPECT_EQ(std::string_view(index->rbegin()->second.front()), padded("rewritten-"));
  expect_index_in_heap(h, *index);
  EXPECT_EQ(table->find(std::string_view(table_key(3)))->second.size(), 1000u);
  EXPECT_FALSE(table->contains(std::string_view(table_key(4))));
}

// Ordered containers search with std::less<>, unordered ones with the
// transparent std::hash<larder::string> and std::equal_to<>: a lookup by
// view or literal makes no key, so it allocates nothing.
TEST_F(PersistentContainers, LookupByStringViewAllocatesNothing) {
  larder::heap h(file_options(path_, open_mode::create));
  auto* index = h.root<index_map>("index");
  auto* table = h.root<table_map>("table");
  auto* names = h.root<larder::set<larder::string>>("names");
  auto* tags = h.root<larder::unordered_set<larder::string>>("tags");
  fill(index, table);
  names->emplace(index_key(1).c_str());
  tags->emplace(table_key(1).c_str());
  const std::size_t in_use = bytes_in_use(h);

  std::string key = index_key(42);
  EXPECT_EQ(std::string_view(index->find(std::string_view(key))->first), key);
  EXPECT_EQ(index->count(std::string_view(key)), 1u);
  EXPECT_TRUE(table->contains(std::string_view(table_key(42))));
  EXPECT_EQ(table->find(table_key(42).c_str())->second.front(), table_value(42, 0));
  EXPECT_EQ(table->count(std::string_view("absent")), 0u);
  EXPECT_TRUE(names->contains(std::string_view(index_key(1))));
  EXPECT_TRUE(tags->contains(std::string_view(table_key(1))));
  EXPECT_FALSE(tags->contains("absent"));
  EXPECT_EQ(bytes_in_use(h), in_use);

  // Equal text, equal hash, whichever string type holds it.
  std::string text = padded("hash-me-");
  EXPECT_EQ(std::hash<larder::string>{}(heap_text(text)), std::hash<std::string>{}(text));
  EXPECT_EQ(std::hash<larder::string>{}(std::string_view(text)), std::hash<std::string>{}(text));
  std::wstring wide = L"a wide string that is longer than any small-string buffer";
  EXPECT_EQ(std::hash<larder::wstring>{}(larder::wstring(wide.c_str())), std::hash<std::wstring>{}(wide));
}

// The pitfall the aliases exist for: std::string allocates through
// std::allocator whatever container it sits in, so its long buffer is in
// the process heap and gone after a restart; larder::string's is not.
struct record_with_std_string {
  std::string text;
  larder::string heap_text;
};

TEST_F(PersistentContainers, StdStringWithTheDefaultAllocatorIsNotInTheHeap) {
  [[maybe_unused]] leak_check_off process_heap_blocks_behind_the_mapping;
  larder::heap h(file_options(path_, open_mode::create));
  auto* record = h.root<record_with_std_string>("record");
  record->text = padded("std::string with std::allocator-");
  record->heap_text = padded("larder::string-").c_str();
  EXPECT_TRUE(h.contains(record));
  EXPECT_TRUE(h.contains(&record->text));      // the string object itself...
  EXPECT_FALSE(h.contains(record->text.data()));  // ...but not its characters
  EXPECT_TRUE(h.contains(record->heap_text.data()));

  // Not even inside a container of the heap: std::string takes no
  // allocator from the container (std::uses_allocator is false for it).
  static_assert(!std::uses_allocator_v<std::string, larder::scoped_allocator<std::string>>);
  auto* words = h.root<larder::vector<std::string>>("words");
  words->emplace_back(padded("a std::string element-"));
  EXPECT_TRUE(h.contains(words->data()));
  EXPECT_FALSE(h.contains(words->front().data()));
  words->clear();  // their blocks are the process heap's: free them in this process
  record->text = std::string();
}

// An element type of one's own gets the container's pod only when it takes
// an allocator (docs/containers.md); otherwise its members take the
// calling thread's pod when it is made.
struct plain_person {
  larder::string name;
};

struct person {
  using allocator_type = larder::allocator<char>;
  explicit person(const allocator_type& a = {}) : name(a), tags(a) {}
  person(std::string_view n, const allocator_type& a = {}) : name(n.data(), n.size(), a), tags(a) {}
  person(const person& other, const allocator_type& a) : name(other.name, a), tags(other.tags, a) {}
  person(person&& other, const allocator_type& a) : name(std::move(other.name), a), tags(std::move(other.tags), a) {}
  person(const person&) = default;
  person(person&&) noexcept = default;
  person& operator=(const person&) = default;
  person& operator=(person&&) = default;

  larder::string name;
  larder::vector<larder::string> tags;
};

TEST_F(PersistentContainers, ElementTypesGetTheContainersPodOnlyWhenTheyTakeAnAllocator) {
  [[maybe_unused]] leak_check_off process_heap_blocks_behind_the_mapping;
  larder::heap h(file_options(path_, open_mode::create));
  auto* people = h.root<larder::vector<person>>("people");
  auto* plain = h.root<larder::vector<plain_person>>("plain");
  std::string name = padded("a name long enough for a block-");

  people->emplace_back(name);
  people->push_back(person(name));  // a process-heap temporary, copied in
  people->emplace_back();
  people->back().name = name.c_str();
  people->back().tags.emplace_back(name.c_str());
  for (int i = 0; i < 100; ++i) people->emplace_back(name);  // moved on growth: stays
  for (const person& p : *people) EXPECT_TRUE(h.contains(p.name.data()));
  EXPECT_TRUE(h.contains(people->at(2).tags.front().data()));

  plain->emplace_back();
  plain->back().name = name.c_str();
  EXPECT_FALSE(h.contains(plain->back().name.data()));  // made outside any pod_scope
  {
    larder::pod_scope scope(h.default_pod());
    plain->emplace_back();
  }
  plain->back().name = name.c_str();
  EXPECT_TRUE(h.contains(plain->back().name.data()));
  plain->erase(plain->begin());
}

// Assignment keeps the target's pod (elements are copied in when the pods
// differ); swap exchanges the allocators; copy construction keeps the
// source's pod; a container can be given a pod other than the default.
TEST_F(PersistentContainers, AssignmentKeepsTheTargetsPodAndSwapExchangesIt) {
  using traits = std::allocator_traits<larder::scoped_allocator<int>>;
  static_assert(!traits::propagate_on_container_copy_assignment::value);
  static_assert(!traits::propagate_on_container_move_assignment::value);
  static_assert(traits::propagate_on_container_swap::value);
  static_assert(!traits::is_always_equal::value);
  static_assert(!std::allocator_traits<larder::allocator<char>>::propagate_on_container_move_assignment::value);

  larder::heap h(file_options(path_, open_mode::create));
  auto* index = h.root<index_map>("index");
  std::string text = padded("assigned-");

  index_map local;  // process heap: made outside any pod_scope
  local[heap_text(text)].emplace_back(text.c_str());
  *index = local;
  expect_index_in_heap(h, *index);
  *index = std::move(local);
  expect_index_in_heap(h, *index);
  (*index)[heap_text(text)] = larder::vector<larder::string>{heap_text(text), heap_text(text)};
  (*index)[heap_text(text)].front() = heap_text(text + "-element");
  expect_index_in_heap(h, *index);
  EXPECT_EQ(index->at(heap_text(text)).size(), 2u);

  larder::string copy = index->begin()->first;  // copy construction: the source's pod
  EXPECT_TRUE(h.contains(copy.data()));

  larder::pod other;
  ASSERT_TRUE(h.make_pod("other", &other).ok());
  auto* elsewhere = h.root<larder::vector<larder::string>>("elsewhere", larder::allocator<char>(other));
  EXPECT_EQ(elsewhere->get_allocator().target(), other);
  elsewhere->emplace_back(text.c_str());
  EXPECT_EQ(elsewhere->front().get_allocator().target(), other);
  EXPECT_TRUE(h.contains(elsewhere->front().data()));

  // The allocator-extended copy constructor copies a whole tree into
  // another pod, nested strings included.
  auto* moved = h.root<index_map>("moved", *index, larder::allocator<char>(other));
  EXPECT_EQ(model_of(*moved), model_of(*index));
  for (const auto& [key, values] : *moved) {
    EXPECT_EQ(key.get_allocator().target(), other);
    for (const auto& v : values) EXPECT_EQ(v.get_allocator().target(), other);
  }

  larder::vector<larder::string> swapped(larder::allocator<char>(h.default_pod()));
  swapped.emplace_back(text.c_str());
  swapped.swap(*elsewhere);  // the allocators travel with the blocks
  EXPECT_EQ(elsewhere->get_allocator().target(), h.default_pod());
  EXPECT_EQ(swapped.get_allocator().target(), other);
}

// README's quick start, as written there.
TEST_F(PersistentContainers, ReadmeQuickStart) {
  for (int run = 1; run <= 2; ++run) {
    larder::heap h({.kind = larder::backing::file, .name = path_});
    auto* counts = h.root<larder::map<int, int>>("counts");
    (*counts)[42]++;
    EXPECT_EQ(counts->at(42), run);
  }
}

}  // namespace
