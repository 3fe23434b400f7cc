// Linked against liblarder_malloc (not preloaded): every form of operator
// new and delete must go to larder and keep the standard's contract.
// Prints "ok" when every check passed; otherwise lists the failures and
// exits with status 1.
#include <larder/larder.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "check.hpp"

namespace {

// larder reports a usable size only for blocks it allocated.
bool from_larder(const void* p) { return p != nullptr && larder_usable_size(p) > 0; }

bool aligned_to(const void* p, std::size_t alignment) { return reinterpret_cast<std::uintptr_t>(p) % alignment == 0; }

// An impossible request: larger than any address space.
std::size_t impossible_size() {
  volatile std::size_t size = SIZE_MAX / 2;  // keep the compiler from folding it
  return size;
}

struct alignas(64) cache_line {
  char bytes[64];
};
struct alignas(4096) os_page {
  char bytes[4096];
};

void plain_forms() {
  int* one = new int(7);
  CHECK(from_larder(one));
  CHECK(*one == 7);
  delete one;

  int* many = new int[1000];
  CHECK(from_larder(many));
  for (int i = 0; i < 1000; ++i) many[i] = i;
  CHECK(larder_usable_size(many) >= 1000 * sizeof(int));
  delete[] many;

  void* raw = ::operator new(100);
  CHECK(from_larder(raw));
  std::memset(raw, 1, 100);
  ::operator delete(raw, 100);  // sized delete

  void* raw_array = ::operator new[](5000);
  CHECK(from_larder(raw_array));
  std::memset(raw_array, 2, 5000);
  ::operator delete[](raw_array, 5000);

  void* zero = ::operator new(0);
  CHECK(zero != nullptr);
  ::operator delete(zero);

  int* quiet = new (std::nothrow) int[10];
  CHECK(from_larder(quiet));
  delete[] quiet;
  void* quiet_raw = ::operator new(64, std::nothrow);
  CHECK(from_larder(quiet_raw));
  ::operator delete(quiet_raw, std::nothrow);
  void* quiet_array = ::operator new[](64, std::nothrow);
  CHECK(from_larder(quiet_array));
  ::operator delete[](quiet_array, std::nothrow);

  // Huge blocks through new.
  auto* big = new char[20u << 20];
  CHECK(from_larder(big));
  std::memset(big, 3, 20u << 20);
  delete[] big;

  // malloc itself is larder's too.
  void* m = std::malloc(123);
  CHECK(from_larder(m));
  std::free(m);
  void* c = std::calloc(10, 10);
  CHECK(from_larder(c));
  std::free(c);
}

void aligned_forms() {
  for (std::size_t alignment = 32; alignment <= 4096; alignment *= 2) {
    const auto al = static_cast<std::align_val_t>(alignment);
    for (std::size_t size : {std::size_t{1}, std::size_t{24}, alignment - 1, alignment, alignment * 3 + 5,
                             std::size_t{100000}, std::size_t{3} << 20}) {
      void* p = ::operator new(size, al);
      CHECK(from_larder(p));
      CHECK(aligned_to(p, alignment));
      std::memset(p, 4, size);
      if (size % 2 == 0) {
        ::operator delete(p, size, al);
      } else {
        ::operator delete(p, al);
      }

      void* a = ::operator new[](size, al);
      CHECK(from_larder(a));
      CHECK(aligned_to(a, alignment));
      std::memset(a, 5, size);
      if (size % 2 == 0) {
        ::operator delete[](a, size, al);
      } else {
        ::operator delete[](a, al);
      }

      void* q = ::operator new(size, al, std::nothrow);
      CHECK(from_larder(q));
      CHECK(aligned_to(q, alignment));
      ::operator delete(q, al, std::nothrow);

      void* qa = ::operator new[](size, al, std::nothrow);
      CHECK(from_larder(qa));
      CHECK(aligned_to(qa, alignment));
      ::operator delete[](qa, al, std::nothrow);
    }
  }
  // Over-aligned types pick the aligned forms by themselves.
  auto* line = new cache_line;
  CHECK(aligned_to(line, 64));
  delete line;
  auto* lines = new cache_line[33];
  CHECK(aligned_to(lines, 64));
  delete[] lines;
  auto* page = new os_page[3];
  CHECK(aligned_to(page, 4096));
  CHECK(from_larder(page));
  delete[] page;
  auto boxed = std::make_unique<os_page>();
  CHECK(aligned_to(boxed.get(), 4096));
}

void failure_forms() {
  // No new-handler: bad_alloc.
  std::set_new_handler(nullptr);
  bool thrown = false;
  try {
    void* p = ::operator new(impossible_size());
    ::operator delete(p);
  } catch (const std::bad_alloc&) {
    thrown = true;
  }
  CHECK(thrown);
  thrown = false;
  try {
    void* p = ::operator new[](impossible_size());
    ::operator delete[](p);
  } catch (const std::bad_alloc&) {
    thrown = true;
  }
  CHECK(thrown);
  thrown = false;
  try {
    void* p = ::operator new (impossible_size(), std::align_val_t{256});
    ::operator delete (p, std::align_val_t{256});
  } catch (const std::bad_alloc&) {
    thrown = true;
  }
  CHECK(thrown);

  // nothrow forms return nullptr.
  CHECK(::operator new(impossible_size(), std::nothrow) == nullptr);
  CHECK(::operator new[](impossible_size(), std::nothrow) == nullptr);
  CHECK(::operator new (impossible_size(), std::align_val_t{64}, std::nothrow) == nullptr);
  CHECK(::operator new[](impossible_size(), std::align_val_t{64}, std::nothrow) == nullptr);

  // A new-handler is called on every failed attempt until it gives up
  // (removes itself here, on the third call); then bad_alloc follows.
  static std::atomic<int> calls{0};
  calls = 0;
  std::set_new_handler([] {
    if (++calls == 3) std::set_new_handler(nullptr);
  });
  thrown = false;
  try {
    void* p = ::operator new(impossible_size());
    ::operator delete(p);
  } catch (const std::bad_alloc&) {
    thrown = true;
  }
  CHECK(thrown);
  CHECK(calls == 3);

  // A handler that throws: the exception reaches the caller of new, and
  // nothrow new turns it into nullptr.
  calls = 0;
  std::set_new_handler([] {
    ++calls;
    throw std::bad_alloc();
  });
  thrown = false;
  try {
    void* p = ::operator new (impossible_size(), std::align_val_t{128});
    ::operator delete (p, std::align_val_t{128});
  } catch (const std::bad_alloc&) {
    thrown = true;
  }
  CHECK(thrown);
  CHECK(calls == 1);
  CHECK(::operator new(impossible_size(), std::nothrow) == nullptr);
  CHECK(calls == 2);

  std::set_new_handler(nullptr);

  // The allocator still works.
  auto* after = new std::string(1000, 'x');
  CHECK(after->size() == 1000);
  delete after;
}

void containers_in_threads() {
  std::atomic<int> failures{0};
  auto work = [&](int seed) {
    std::vector<std::string> strings;
    std::map<int, std::shared_ptr<std::vector<int>>> tables;
    std::vector<std::unique_ptr<cache_line>> lines;
    for (int i = 0; i < 20000; ++i) {
      strings.push_back(std::string(static_cast<std::size_t>(i % 97 + 20), static_cast<char>('a' + i % 26)));
      if (i % 10 == 0) {
        auto table = std::make_shared<std::vector<int>>(static_cast<std::size_t>(i % 300), seed);
        tables[i] = table;
      }
      if (i % 7 == 0) {
        lines.push_back(std::make_unique<cache_line>());
        if (!aligned_to(lines.back().get(), 64)) ++failures;
      }
      if (i % 1000 == 999) {
        // Drop some of everything, leaving shared_ptrs to other threads' tables alive.
        strings.erase(strings.begin(), strings.begin() + static_cast<std::ptrdiff_t>(strings.size() / 2));
        lines.clear();
      }
    }
    for (const auto& [key, table] : tables)
      for (int v : *table)
        if (v != seed) ++failures;
    for (std::size_t i = 0; i < strings.size(); ++i)
      if (strings[i].empty()) ++failures;
  };
  // Objects made in one thread and destroyed in another.
  std::vector<std::shared_ptr<std::string>> shared;
  std::thread maker([&] {
    for (int i = 0; i < 10000; ++i) shared.push_back(std::make_shared<std::string>(200, 'q'));
  });
  maker.join();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back(work, t + 1);
  std::thread breaker([&] { shared.clear(); });
  for (auto& t : threads) t.join();
  breaker.join();
  CHECK(failures == 0);
  CHECK(shared.empty());
}

}  // namespace

int main() {
  plain_forms();
  aligned_forms();
  failure_forms();
  containers_in_threads();
  if (g_failures != 0) {
    std::fprintf(stderr, "%d check(s) failed\n", g_failures);
    return 1;
  }
  std::puts("ok");
  return 0;
}
