// Pages served on touch (write_tracker::serve_on_touch, the migrator's
// fault-back): each comes from its source on its first touch only, and
// abandon_on_touch forgets those not touched yet without reading them (a
// heap about to be unmapped), while finish_all reads them all.
#include "tracker_test_util.hpp"

#include <gtest/gtest.h>

#include <sys/mman.h>

#include <atomic>
#include <cstring>
#include <vector>

namespace {

using larder::port::tracker_kind;
using larder_test::kPage;

constexpr std::size_t kPages = 64;

// Gives page i of the mapping bytes i + 1, and counts the pages asked for.
class numbered_source final : public larder::port::page_source {
 public:
  explicit numbered_source(std::uintptr_t base) : base_(base) {}
  int fill(const std::uintptr_t* pages, std::size_t count, void* out) noexcept override {
    for (std::size_t i = 0; i < count; ++i)
      std::memset(static_cast<char*>(out) + i * kPage, static_cast<int>((pages[i] - base_) / kPage + 1), kPage);
    filled += count;
    return 0;
  }
  std::atomic<std::size_t> filled{0};

 private:
  std::uintptr_t base_;
};

struct served_mapping {
  served_mapping() {
    memory = static_cast<char*>(::mmap(nullptr, kPages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  }
  ~served_mapping() {
    tracker.reset();
    if (memory != MAP_FAILED) ::munmap(memory, kPages * kPage);
  }
  // Tracks the mapping and serves every page from `source`; false (with
  // why) where the tracker cannot.
  bool serve(numbered_source& source, std::string* why) {
    if (memory == MAP_FAILED) return *why = "mmap failed", false;
    if (larder::port::make_tracker(tracker_kind::uffd_async, &tracker) != 0) return *why = "no uffd tracker here", false;
    if (const char* refusal = tracker->lazy_refusal()) return *why = refusal, false;
    if (tracker->track(reinterpret_cast<std::uintptr_t>(memory), kPages * kPage, 0) != 0) return *why = "track failed", false;
    std::vector<std::uintptr_t> pages;
    for (std::size_t i = 0; i < kPages; ++i) pages.push_back(reinterpret_cast<std::uintptr_t>(memory) + i * kPage);
    if (::madvise(memory, kPages * kPage, MADV_DONTNEED) != 0) return *why = "madvise failed", false;
    if (tracker->serve_on_touch(pages, &source, false) != 0) return *why = "serve_on_touch failed", false;
    return true;
  }
  char* memory;
  std::unique_ptr<larder::port::write_tracker> tracker;
};

TEST(tracker_on_touch, abandoned_pages_are_never_read) {
  served_mapping m;
  numbered_source source(reinterpret_cast<std::uintptr_t>(m.memory));
  std::string why;
  if (!m.serve(source, &why)) GTEST_SKIP() << why;
  EXPECT_EQ(m.memory[3 * kPage], 4);
  EXPECT_EQ(m.memory[7 * kPage + 100], 8);
  EXPECT_EQ(source.filled.load(), 2u) << "only the pages touched are read";
  m.tracker->abandon_on_touch();
  EXPECT_EQ(source.filled.load(), 2u) << "abandoning read pages";
  EXPECT_EQ(m.memory[3 * kPage], 4) << "a page loaded before stays";
  EXPECT_EQ(m.memory[20 * kPage], 0) << "an abandoned page reads as zeros";
  EXPECT_EQ(source.filled.load(), 2u);
}

TEST(tracker_on_touch, finish_all_reads_every_page_left) {
  served_mapping m;
  numbered_source source(reinterpret_cast<std::uintptr_t>(m.memory));
  std::string why;
  if (!m.serve(source, &why)) GTEST_SKIP() << why;
  EXPECT_EQ(m.memory[5 * kPage], 6);
  m.tracker->finish_all();
  EXPECT_EQ(source.filled.load(), kPages);
  for (std::size_t i = 0; i < kPages; ++i) ASSERT_EQ(m.memory[i * kPage + 9], static_cast<char>(i + 1)) << "page " << i;
}

}  // namespace
