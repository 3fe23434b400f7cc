// Size-segregated free lists over 1 MiB chunks from the OS; see
// internal_pool.hpp. Few objects live here (one per thread and pod), so a
// single lock is enough.
#include "allocator/internal_pool.hpp"

#include "port/os.hpp"

#include <cstring>
#include <mutex>

namespace larder::alloc {

namespace {

constexpr std::size_t kGranule = 64;
constexpr std::size_t kClasses = 64;  // objects up to 4 KiB have a free list
constexpr std::size_t kChunkSize = std::size_t{1} << 20;

struct free_node {
  free_node* next;
};

struct pool {
  std::mutex lock;
  free_node* free[kClasses + 1] = {};
  char* chunk_next = nullptr;
  char* chunk_end = nullptr;
};

pool& the_pool() {
  static pool instance;  // constant-initialised: safe before main
  return instance;
}

}  // namespace

void* internal_alloc(std::size_t size) noexcept {
  std::size_t rounded = (size + kGranule - 1) & ~(kGranule - 1);
  std::size_t cls = rounded / kGranule;
  if (cls > kClasses) {
    void* big = nullptr;
    return port::map_aligned(rounded, port::kOsPageSize, &big) == 0 ? big : nullptr;
  }
  pool& p = the_pool();
  std::lock_guard<std::mutex> guard(p.lock);
  if (free_node* node = p.free[cls]) {
    p.free[cls] = node->next;
    std::memset(node, 0, rounded);
    return node;
  }
  if (p.chunk_next == nullptr || static_cast<std::size_t>(p.chunk_end - p.chunk_next) < rounded) {
    void* chunk = nullptr;
    if (port::map_aligned(kChunkSize, port::kOsPageSize, &chunk) != 0) return nullptr;
    p.chunk_next = static_cast<char*>(chunk);
    p.chunk_end = p.chunk_next + kChunkSize;
  }
  void* result = p.chunk_next;
  p.chunk_next += rounded;
  return result;  // fresh OS memory is zero
}

void internal_free(void* ptr, std::size_t size) noexcept {
  if (ptr == nullptr) return;
  std::size_t rounded = (size + kGranule - 1) & ~(kGranule - 1);
  std::size_t cls = rounded / kGranule;
  if (cls > kClasses) {
    port::unmap(ptr, rounded);
    return;
  }
  pool& p = the_pool();
  std::lock_guard<std::mutex> guard(p.lock);
  auto* node = static_cast<free_node*>(ptr);
  node->next = p.free[cls];
  p.free[cls] = node;
}

void internal_pool_lock() noexcept { the_pool().lock.lock(); }
void internal_pool_unlock() noexcept { the_pool().lock.unlock(); }

}  // namespace larder::alloc
