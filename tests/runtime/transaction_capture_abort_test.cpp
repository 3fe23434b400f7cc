// Aborting a transaction that captures pages, while blocks of the same pod
// are handed out and freed outside it (what malloc and new do inside a
// pod_scope under liblarder_malloc: an exception on its way out, a
// temporary string). The abort rewinds the program's data, and leaves
// those blocks' bytes and the allocator's free lists alone.
#include "runtime_test_util.hpp"

#include <larder/check.hpp>
#include <larder/larder.h>
#include <larder/transaction.hpp>

#include <map>
#include <stdexcept>
#include <vector>

namespace {

using larder_test::check_pattern;
using larder_test::fill_pattern;
using larder_test::temp_dir;

using pod_map = std::map<int, int, std::less<>, larder::allocator<std::pair<const int, int>>>;

class CaptureAbort : public ::testing::Test {
 protected:
  void SetUp() override {
    h_ = larder::heap(larder_test::file_options(dir_.file("h")));
    ASSERT_TRUE(h_.make_pod("captured", &pod_).ok());
    larder::transaction tx(h_);
    map_ = tx.make<pod_map>(larder::allocator<std::pair<const int, int>>(pod_));
    ASSERT_TRUE(h_.set_root("map", map_, sizeof(*map_)).ok());
    for (int i = 0; i < 1000; ++i) map_->emplace(i, i);
  }

  void expect_map_as_committed() {
    ASSERT_EQ(map_->size(), 1000u);
    int i = 0;
    for (const auto& [k, v] : *map_) {
      EXPECT_EQ(k, i);
      EXPECT_EQ(v, i);
      ++i;
    }
  }

  temp_dir dir_;
  larder::heap h_;
  larder::pod pod_;
  pod_map* map_ = nullptr;
};

TEST_F(CaptureAbort, BlocksHandedOutOutsideTheTransactionKeepTheirBytes) {
  constexpr int kOutside = 200;
  std::vector<void*> kept;
  bool caught = false;
  {
    larder::pod_scope scope(pod_);
    try {
      larder::transaction tx(h_, larder::capture::pages);
      for (int i = 1000; i < 3000; ++i) map_->emplace(i, i);
      (*map_)[0] = -1;
      for (int i = 0; i < kOutside; ++i) {
        // Outside the transaction, from the pod (the pod_scope's).
        void* p = larder_malloc(48 + (i % 5) * 16);
        ASSERT_TRUE(h_.contains(p));
        fill_pattern(p, 48, static_cast<std::uint64_t>(i));
        kept.push_back(p);
        void* temporary = larder_malloc(64);
        std::memset(temporary, 0x5A, 64);
        larder_free(temporary);
      }
      throw std::runtime_error("roll back");
    } catch (const std::runtime_error&) {
      caught = true;
    }
  }
  EXPECT_TRUE(caught);
  expect_map_as_committed();
  for (int i = 0; i < kOutside; ++i)
    EXPECT_TRUE(check_pattern(kept[static_cast<std::size_t>(i)], 48, static_cast<std::uint64_t>(i))) << "block " << i;
  // The allocator's lists are whole: every block comes back exactly once.
  {
    larder::pod_scope scope(pod_);
    std::vector<void*> more;
    for (int i = 0; i < 5000; ++i) {
      void* p = larder_malloc(48 + (i % 5) * 16);
      ASSERT_TRUE(h_.contains(p));
      fill_pattern(p, 48, 100000u + static_cast<std::uint64_t>(i));
      more.push_back(p);
    }
    for (int i = 0; i < kOutside; ++i)
      EXPECT_TRUE(check_pattern(kept[static_cast<std::size_t>(i)], 48, static_cast<std::uint64_t>(i))) << "block " << i;
    for (std::size_t i = 0; i < more.size(); ++i)
      EXPECT_TRUE(check_pattern(more[i], 48, 100000u + i)) << "new block " << i << " overlaps another";
    for (void* p : more) larder_free(p);
    for (void* p : kept) larder_free(p);
  }
  ASSERT_TRUE(h_.close().ok());
  larder::check_report r;
  ASSERT_TRUE(larder::check_heap(dir_.file("h"), false, &r).ok());
  EXPECT_TRUE(r.clean()) << (r.problems.empty() ? "" : r.problems.front());
}

TEST_F(CaptureAbort, CommitKeepsEverything) {
  void* outside = nullptr;
  {
    larder::pod_scope scope(pod_);
    larder::transaction tx(h_, larder::capture::pages);
    for (int i = 1000; i < 3000; ++i) map_->emplace(i, i);
    outside = larder_malloc(100);
    fill_pattern(outside, 100, 7);
  }
  EXPECT_EQ(map_->size(), 3000u);
  EXPECT_TRUE(check_pattern(outside, 100, 7));
  larder_free(outside);
}

}  // namespace
