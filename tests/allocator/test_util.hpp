// Helpers shared by the allocator tests: deterministic fill patterns, an
// interval set that spots overlapping blocks, and the process's resident size.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <map>
#include <string>

namespace larder_test {

inline std::uint64_t mix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// The 8-byte word that a block tagged `tag` holds at byte offset 8 * index.
inline std::uint64_t pattern_word(std::uint64_t tag, std::size_t index) {
  return mix64(tag) ^ (static_cast<std::uint64_t>(index) * 0xD6E8FEB86659FD93ull);
}

// Writes the pattern of `tag` over bytes [begin, end) of `base`. `begin`
// must be a multiple of 8; the pattern depends only on the tag and the
// offset, so any part of a block can be rewritten or checked on its own.
inline void fill_range(void* base, std::size_t begin, std::size_t end, std::uint64_t tag) {
  auto* bytes = static_cast<unsigned char*>(base);
  for (std::size_t at = begin; at < end; at += 8) {
    std::uint64_t word = pattern_word(tag, at / 8);
    std::size_t n = end - at < 8 ? end - at : 8;
    std::memcpy(bytes + at, &word, n);
  }
}

// Offset of the first byte in [begin, end) that differs from the pattern,
// or SIZE_MAX if the range is intact.
inline std::size_t check_range(const void* base, std::size_t begin, std::size_t end, std::uint64_t tag) {
  const auto* bytes = static_cast<const unsigned char*>(base);
  for (std::size_t at = begin; at < end; at += 8) {
    std::uint64_t word = pattern_word(tag, at / 8);
    std::size_t n = end - at < 8 ? end - at : 8;
    if (std::memcmp(bytes + at, &word, n) != 0) {
      for (std::size_t k = 0; k < n; ++k)
        if (bytes[at + k] != reinterpret_cast<const unsigned char*>(&word)[k]) return at + k;
    }
  }
  return SIZE_MAX;
}

// Calls fn(begin, end) for the parts of a block of `length` bytes that the
// tests fill and check: all of it up to `full_limit`, otherwise the first
// and last 4 KiB and one word every `stride` bytes in between (enough to
// notice another block or a stray write, without touching every byte of
// multi-megabyte blocks). Ranges start on multiples of 8.
template <typename Fn>
void for_each_checked_range(std::size_t length, std::size_t full_limit, std::size_t stride, Fn fn) {
  if (length <= full_limit) {
    fn(std::size_t{0}, length);
    return;
  }
  constexpr std::size_t kEdge = 4096;
  fn(std::size_t{0}, kEdge);
  std::size_t tail = (length - kEdge) & ~std::size_t{7};
  for (std::size_t at = kEdge; at + 8 <= tail; at += stride) fn(at, at + 8);
  fn(tail, length);
}

// Non-overlapping address ranges [start, end).
class interval_set {
 public:
  // Adds the range; returns false (and adds nothing) if it overlaps one
  // already present, whose start is then stored in *other.
  bool insert(std::uintptr_t start, std::uintptr_t end, std::uintptr_t* other = nullptr) {
    if (end <= start) end = start + 1;
    auto next = ranges_.lower_bound(start);
    if (next != ranges_.end() && next->first < end) {
      if (other != nullptr) *other = next->first;
      return false;
    }
    if (next != ranges_.begin()) {
      auto prev = std::prev(next);
      if (prev->second > start) {
        if (other != nullptr) *other = prev->first;
        return false;
      }
    }
    ranges_.emplace(start, end);
    return true;
  }
  bool erase(std::uintptr_t start) { return ranges_.erase(start) == 1; }
  std::size_t size() const { return ranges_.size(); }

 private:
  std::map<std::uintptr_t, std::uintptr_t> ranges_;
};

// Resident set size of this process in bytes, from /proc/self/statm.
inline std::size_t resident_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long total = 0, resident = 0;
  int n = std::fscanf(f, "%lu %lu", &total, &resident);
  std::fclose(f);
  long page = sysconf(_SC_PAGESIZE);
  return n == 2 ? static_cast<std::size_t>(resident) * static_cast<std::size_t>(page > 0 ? page : 4096) : 0;
}

inline std::string hex(const void* p) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%p", p);
  return buffer;
}

}  // namespace larder_test
