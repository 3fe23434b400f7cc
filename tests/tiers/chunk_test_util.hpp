// Shared by the chunk store tests: scratch directories and page makers.
#pragma once

#include "tiers/chunks/chunk_store.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace larder::chunks::test {

inline constexpr std::size_t kPage = kPageSize;

// A fresh directory under the system's temporary directory, removed at the end.
class scratch_dir {
 public:
  scratch_dir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "larder-chunks-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~scratch_dir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Incompressible pages.
inline void random_page(std::mt19937_64& r, char* page) {
  for (std::size_t i = 0; i < kPage; i += 8) {
    std::uint64_t v = r();
    std::memcpy(page + i, &v, 8);
  }
}

// `count` incompressible pages, one after another.
inline std::vector<char> random_pages(std::mt19937_64& r, std::size_t count) {
  std::vector<char> pages(count * kPage);
  for (std::size_t i = 0; i < count; ++i) random_page(r, pages.data() + i * kPage);
  return pages;
}

// A page that zstd shrinks to a few hundred bytes: a short pattern, repeated.
inline void compressible_page(std::uint64_t seed, char* page) {
  for (std::size_t i = 0; i < kPage; ++i) page[i] = static_cast<char>("larder"[i % 6] + seed % 7 + (i / 512));
}

inline std::unique_ptr<chunk_store> open_store(const std::string& dir, store_options o = {}) {
  o.create = true;
  std::unique_ptr<chunk_store> s;
  status st = chunk_store::open(dir, o, &s);
  EXPECT_TRUE(st.ok()) << st.to_string();
  return s;
}

// Puts `pages` (count × kPage bytes) and commits them as pages 0..count-1
// of a heap of `heap_pages`; zero pages are left out of the manifest.
inline version_id commit_pages(chunk_store& s, const std::vector<char>& pages, const std::string& message,
                               const version_id* parent = nullptr, std::uint8_t heap = 1) {
  std::size_t count = pages.size() / kPage;
  std::vector<fingerprint> names(count);
  status st = s.put(pages.data(), count, names.data());
  EXPECT_TRUE(st.ok()) << st.to_string();
  version_record v;
  v.heap_uuid[0] = heap;
  v.base_address = 0x100000000000ull;
  v.heap_size = count * kPage;
  v.message = message;
  v.metadata = "meta:" + message;
  if (parent != nullptr) {
    v.has_parent = true;
    v.parent = *parent;
  }
  for (std::size_t i = 0; i < count; ++i) {
    if (names[i] != zero_page()) v.pages.push_back(page_entry{i, names[i]});
  }
  version_id id;
  st = s.commit(v, &id);
  EXPECT_TRUE(st.ok()) << st.to_string();
  return id;
}

// The heap image a version describes.
inline std::vector<char> read_back(chunk_store& s, const version_id& id) {
  version_record v;
  status st = s.read_version(id, &v);
  EXPECT_TRUE(st.ok()) << st.to_string();
  std::vector<char> image(v.heap_size, 0);
  std::vector<fingerprint> names;
  for (const page_entry& e : v.pages) names.push_back(e.chunk);
  std::vector<char> got(names.size() * kPage);
  st = s.get_batch(names.data(), names.size(), got.data());
  EXPECT_TRUE(st.ok()) << st.to_string();
  for (std::size_t i = 0; i < v.pages.size(); ++i) {
    std::memcpy(image.data() + v.pages[i].page * kPage, got.data() + i * kPage, kPage);
  }
  return image;
}

}  // namespace larder::chunks::test
