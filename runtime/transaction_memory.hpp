// Memory for the transaction engine's own bookkeeping: straight from the
// OS through the allocator's internal pool, never from malloc. The engine
// runs inside the allocator (the metadata sink is called with a pod
// arena's or the region's lock held) and inside the SIGSEGV handler of
// page capture; with liblarder_malloc, malloc inside a pod_scope would
// re-enter the very arena whose lock is held, or land in pages that page
// capture protects.
#pragma once

#include "allocator/internal_pool.hpp"

#include <cstddef>
#include <map>
#include <new>
#include <utility>
#include <vector>

namespace larder {

// Freed small blocks (map nodes: one per range a transaction logs), kept
// for the next transaction of the same state so that a transaction in a
// loop takes no lock for them. Given back when the owner goes.
class engine_block_cache {
 public:
  static constexpr std::size_t kSize = 64;
  engine_block_cache() noexcept = default;
  engine_block_cache(const engine_block_cache&) = delete;
  engine_block_cache& operator=(const engine_block_cache&) = delete;
  ~engine_block_cache() {
    while (first_ != nullptr) alloc::internal_free(std::exchange(first_, first_->next), kSize);
  }
  void* take() noexcept { return first_ != nullptr ? std::exchange(first_, first_->next) : nullptr; }
  void give(void* p) noexcept { first_ = ::new (p) node{first_}; }

 private:
  struct node {
    node* next;
  };
  node* first_ = nullptr;
};

// A standard allocator over the internal pool; blocks of at most
// engine_block_cache::kSize go through `cache` when there is one (it must
// outlive the container).
template <class T>
struct engine_allocator {
  using value_type = T;
  engine_allocator() noexcept = default;
  explicit engine_allocator(engine_block_cache* cache) noexcept : cache(cache) {}
  template <class U>
  engine_allocator(const engine_allocator<U>& other) noexcept : cache(other.cache) {}
  T* allocate(std::size_t n) {
    if (n > std::size_t(-1) / sizeof(T)) throw std::bad_array_new_length();
    std::size_t bytes = n * sizeof(T);
    bool small = cache != nullptr && bytes <= engine_block_cache::kSize;
    void* p = small ? cache->take() : nullptr;
    if (p == nullptr) p = alloc::internal_alloc(small ? engine_block_cache::kSize : bytes);
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    if (cache != nullptr && n * sizeof(T) <= engine_block_cache::kSize) {
      cache->give(p);
    } else {
      alloc::internal_free(p, n * sizeof(T));
    }
  }
  template <class U>
  bool operator==(const engine_allocator<U>& other) const noexcept {
    return cache == other.cache;
  }

  engine_block_cache* cache = nullptr;
};

template <class T>
using engine_vector = std::vector<T, engine_allocator<T>>;
template <class K, class V>
using engine_map = std::map<K, V, std::less<K>, engine_allocator<std::pair<const K, V>>>;

}  // namespace larder
