// Randomized model test of the larder_* malloc family: long runs of random
// malloc / calloc / realloc / aligned allocations / free, checked against a
// reference that knows every live block's requested size and fill pattern.
//
// Checked on every operation: content survives until realloc or free (the
// preserved prefix across realloc), usable_size covers the request, the
// requested alignment holds, calloc memory reads as zero, and no two live
// blocks overlap (counting each block's whole usable size).
#include "allocator/test_util.hpp"

#include <larder/larder.h>

#include <gtest/gtest.h>

#include <errno.h>

#include <cstdint>
#include <cstring>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

using larder_test::check_range;
using larder_test::fill_range;
using larder_test::for_each_checked_range;
using larder_test::hex;
using larder_test::interval_set;

constexpr std::size_t kKiB = 1024;
constexpr std::size_t kMiB = 1024 * 1024;

// Blocks up to this size are filled and checked byte for byte; larger ones
// at the edges and one word every kStride bytes.
constexpr std::size_t kFullCheck = 64 * kKiB;
constexpr std::size_t kStride = 32 * kKiB;

struct model_config {
  const char* name;
  std::uint64_t seed;
  std::size_t operations;
  std::size_t max_live;  // live blocks at the peak of each cycle
  std::size_t max_size;  // largest request
  std::size_t max_align_log2;
  std::size_t max_live_bytes;
};

std::ostream& operator<<(std::ostream& os, const model_config& c) { return os << c.name; }

class model {
 public:
  explicit model(const model_config& config) : config_(config), rng_(config.seed) {}

  // Several models running in threads at once share one set of ranges, so
  // that a block handed to two threads is caught as well.
  struct shared_ranges {
    std::mutex lock;
    interval_set ranges;
  };
  model(const model_config& config, shared_ranges* shared) : model(config) { shared_ = shared; }

  ~model() {
    // After a failure the heap may be damaged; leave the blocks alone then.
    if (!failed()) release_all();
  }

  bool failed() const { return !failure_.empty(); }
  const std::string& failure() const { return failure_; }

  std::size_t counts[8] = {};  // per operation kind, for the log
  enum { kMalloc, kCalloc, kRealloc, kAligned, kFree, kCheck, kReallocInPlace, kMaxLive };

  void run() {
    const std::size_t period = config_.operations / 4 + 1;
    for (std::size_t op = 0; op < config_.operations && !failed(); ++op) {
      // The live count target rises and falls in cycles, so that pages and
      // segments fill up, empty out and get reused.
      std::size_t phase = op % period;
      std::size_t half = period / 2;
      std::size_t target =
          phase < half ? config_.max_live * phase / half : config_.max_live * (period - phase) / (period - half);
      step(live_.size() < target);
      if (live_.size() > counts[kMaxLive]) counts[kMaxLive] = live_.size();
    }
    if (!failed()) release_all();
  }

 private:
  struct entry {
    void* p;
    std::size_t size;       // requested size
    std::size_t extent;     // bytes filled with the pattern (usable size)
    std::size_t alignment;  // alignment guaranteed for p
    std::size_t slot;       // index in live_
  };

  void step(bool grow) {
    if (live_.empty() || live_bytes_ > config_.max_live_bytes) {
      if (live_.empty()) {
        do_malloc();
      } else {
        do_free(pick());
      }
      return;
    }
    unsigned r = uniform(100);
    if (grow) {
      if (r < 35) return do_malloc();
      if (r < 45) return do_calloc();
      if (r < 55) return do_aligned();
      if (r < 75) return do_realloc(pick());
      if (r < 80) return do_check(pick());
      return do_free(pick());
    }
    if (r < 15) return do_malloc();
    if (r < 20) return do_calloc();
    if (r < 25) return do_aligned();
    if (r < 45) return do_realloc(pick());
    if (r < 50) return do_check(pick());
    return do_free(pick());
  }

  unsigned uniform(unsigned n) { return static_cast<unsigned>(rng_() % n); }
  std::size_t uniform_range(std::size_t lo, std::size_t hi) { return lo + rng_() % (hi - lo + 1); }

  // Request sizes skewed toward small blocks: most up to 128 bytes, some
  // medium, a few large and, with max_size above 512 KiB, a few huge (up to
  // 9 MiB, so that some huge blocks span several segments).
  std::size_t random_size() {
    unsigned r = uniform(1000);
    std::size_t size;
    if (r < 550) {
      size = uniform_range(0, 128);
    } else if (r < 800) {
      size = uniform_range(129, 2 * kKiB);
    } else if (r < 930) {
      size = uniform_range(2 * kKiB + 1, 64 * kKiB);
    } else if (r < 985) {
      size = uniform_range(64 * kKiB + 1, 512 * kKiB);
    } else if (r < 997) {
      size = uniform_range(512 * kKiB + 1, 2 * kMiB + 64 * kKiB);
    } else {  // huge blocks that span several 4 MiB segments
      size = uniform_range(2 * kMiB + 64 * kKiB, 9 * kMiB);
    }
    return size < config_.max_size ? size : config_.max_size;
  }

  std::size_t random_alignment() {
    unsigned r = uniform(100);
    std::size_t log2 = r < 70 ? uniform_range(4, 12) : r < 92 ? uniform_range(13, 16) : uniform_range(17, 21);
    if (log2 > config_.max_align_log2) log2 = config_.max_align_log2;
    return std::size_t{1} << log2;
  }

  std::uint64_t fresh_id() { return ++next_id_; }

  std::uint64_t pick() { return live_[uniform(static_cast<unsigned>(live_.size()))]; }

  bool fail(const std::string& what) {
    if (failure_.empty()) failure_ = what;
    return false;
  }

  bool insert_range(std::uintptr_t start, std::uintptr_t end, std::uintptr_t* other) {
    if (shared_ == nullptr) return ranges_.insert(start, end, other);
    std::lock_guard<std::mutex> guard(shared_->lock);
    return shared_->ranges.insert(start, end, other);
  }

  void erase_range(std::uintptr_t start) {
    if (shared_ == nullptr) {
      ranges_.erase(start);
      return;
    }
    std::lock_guard<std::mutex> guard(shared_->lock);
    shared_->ranges.erase(start);
  }

  std::string describe(std::uint64_t id, const entry& e) {
    std::ostringstream os;
    os << "block #" << id << " at " << hex(e.p) << " (size " << e.size << ", usable " << e.extent << ", alignment "
       << e.alignment << ")";
    return os.str();
  }

  // Checks a fresh block and enters it into the reference.
  bool admit(std::uint64_t id, void* p, std::size_t size, std::size_t alignment, const char* how) {
    std::ostringstream where;
    where << how << "(" << size << ", alignment " << alignment << ") -> " << hex(p);
    if (p == nullptr) return fail(where.str() + ": returned NULL (errno " + std::to_string(errno) + ")");
    if (reinterpret_cast<std::uintptr_t>(p) % alignment != 0) return fail(where.str() + ": misaligned");
    std::size_t usable = larder_usable_size(p);
    if (usable < size) return fail(where.str() + ": usable size " + std::to_string(usable) + " < request");
    std::uintptr_t other = 0;
    auto start = reinterpret_cast<std::uintptr_t>(p);
    if (!insert_range(start, start + usable, &other)) {
      std::ostringstream os;
      os << where.str() << ": [" << hex(p) << ", +" << usable << ") overlaps ";
      for (const auto& [other_id, other_entry] : blocks_)
        if (reinterpret_cast<std::uintptr_t>(other_entry.p) == other) os << "live " << describe(other_id, other_entry);
      if (shared_ != nullptr)
        os << " (a block at " << hex(reinterpret_cast<void*>(other)) << ", maybe another thread's)";
      return fail(os.str());
    }
    entry e{p, size, usable, alignment, live_.size()};
    live_.push_back(id);
    live_bytes_ += size;
    blocks_.emplace(id, e);
    return true;
  }

  void fill(std::uint64_t id, const entry& e) {
    for_each_checked_range(e.extent, kFullCheck, kStride,
                           [&](std::size_t b, std::size_t end) { fill_range(e.p, b, end, id); });
  }

  // Checks the pattern over [0, limit) of what fill() wrote.
  bool verify(std::uint64_t id, const entry& e, std::size_t limit, const char* when) {
    std::size_t bad = SIZE_MAX;
    for_each_checked_range(e.extent, kFullCheck, kStride, [&](std::size_t b, std::size_t end) {
      if (bad != SIZE_MAX || b >= limit) return;
      bad = check_range(e.p, b, end < limit ? end : limit, id);
    });
    if (bad == SIZE_MAX) return true;
    return fail(std::string(when) + ": " + describe(id, e) + " was overwritten at offset " + std::to_string(bad));
  }

  void forget(std::uint64_t id) {
    entry& e = blocks_.at(id);
    erase_range(reinterpret_cast<std::uintptr_t>(e.p));
    std::uint64_t last = live_.back();
    live_[e.slot] = last;
    blocks_.at(last).slot = e.slot;
    live_.pop_back();
    live_bytes_ -= e.size;
    blocks_.erase(id);
  }

  void do_malloc() {
    ++counts[kMalloc];
    std::size_t size = random_size();
    std::uint64_t id = fresh_id();
    void* p = larder_malloc(size);
    if (!admit(id, p, size, 16, "malloc")) return;
    fill(id, blocks_.at(id));
  }

  void do_calloc() {
    ++counts[kCalloc];
    std::size_t size = random_size();
    std::size_t count = 1;
    // Split the request into count * element when it divides nicely.
    for (std::size_t d : {24u, 16u, 8u, 3u, 2u})
      if (size >= d && size % d == 0) {
        count = size / d;
        break;
      }
    std::uint64_t id = fresh_id();
    void* p = larder_calloc(count, size / count);
    if (!admit(id, p, size, 16, "calloc")) return;
    const auto* bytes = static_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < size; ++i) {
      if (bytes[i] != 0) {
        fail("calloc: " + describe(id, blocks_.at(id)) + " is not zero at offset " + std::to_string(i));
        return;
      }
    }
    fill(id, blocks_.at(id));
  }

  void do_aligned() {
    ++counts[kAligned];
    std::size_t alignment = random_alignment();
    std::size_t size = random_size();
    if (config_.max_size <= 512 * kKiB && size + alignment > config_.max_size) size = config_.max_size - alignment;
    std::uint64_t id = fresh_id();
    void* p = nullptr;
    const char* how = "aligned_alloc";
    switch (uniform(3)) {
      case 0:
        p = larder_aligned_alloc(alignment, size);
        break;
      case 1: {
        how = "posix_memalign";
        int err = larder_posix_memalign(&p, alignment, size);
        if (err != 0) {
          fail("posix_memalign(" + std::to_string(alignment) + ", " + std::to_string(size) +
               ") failed: " + std::to_string(err));
          return;
        }
        break;
      }
      default:
        how = "memalign";
        p = larder_memalign(alignment, size);
        break;
    }
    if (!admit(id, p, size, alignment, how)) return;
    fill(id, blocks_.at(id));
  }

  void do_realloc(std::uint64_t id) {
    ++counts[kRealloc];
    entry old = blocks_.at(id);
    if (!verify(id, old, old.extent, "before realloc")) return;
    std::size_t size;
    switch (uniform(4)) {
      case 0:  // grow a little
        size = old.size + 1 + uniform_range(0, old.size / 2 + 16);
        break;
      case 1:  // shrink
        size = old.size / (2 + uniform(3)) + uniform(2);
        break;
      case 2:  // just under or over the current request
        size = old.size + uniform_range(0, 32);
        size = size > 16 ? size - 16 : size + 1;
        break;
      default:
        size = random_size();
        break;
    }
    if (size == 0) size = 1;  // realloc(p, 0) frees; the API test covers it
    if (size > config_.max_size) size = config_.max_size;
    forget(id);
    void* p = larder_realloc(old.p, size);
    if (p == old.p) ++counts[kReallocInPlace];
    std::ostringstream how;
    how << "realloc(" << hex(old.p) << " of " << old.size << ")";
    if (!admit(id, p, size, 16, how.str().c_str())) return;
    entry& e = blocks_.at(id);
    std::size_t keep = old.size < size ? old.size : size;
    // The preserved prefix, checked at the offsets the old block had filled.
    entry preserved = old;
    preserved.p = p;
    if (!verify(id, preserved, keep, "after realloc")) return;
    fill(id, e);
  }

  void do_check(std::uint64_t id) {
    ++counts[kCheck];
    const entry& e = blocks_.at(id);
    if (larder_usable_size(e.p) < e.size) {
      fail("usable_size dropped below the request for " + describe(id, e));
      return;
    }
    verify(id, e, e.extent, "check");
  }

  void do_free(std::uint64_t id) {
    ++counts[kFree];
    entry e = blocks_.at(id);
    if (!verify(id, e, e.extent, "before free")) return;
    forget(id);
    larder_free(e.p);
  }

  void release_all() {
    while (!live_.empty() && !failed()) do_free(live_.back());
  }

  model_config config_;
  std::mt19937_64 rng_;
  std::unordered_map<std::uint64_t, entry> blocks_;
  std::vector<std::uint64_t> live_;
  std::size_t live_bytes_ = 0;
  interval_set ranges_;
  shared_ranges* shared_ = nullptr;
  std::uint64_t next_id_ = 0;
  std::string failure_;
};

class ModelTest : public ::testing::TestWithParam<model_config> {};

TEST_P(ModelTest, RandomOpsMatchReference) {
  const model_config& config = GetParam();
  model m(config);
  m.run();
  ASSERT_FALSE(m.failed()) << m.failure();
  std::printf("malloc %zu, calloc %zu, realloc %zu (%zu in place), aligned %zu, free %zu, checks %zu, peak live %zu\n",
              m.counts[model::kMalloc], m.counts[model::kCalloc], m.counts[model::kRealloc],
              m.counts[model::kReallocInPlace], m.counts[model::kAligned], m.counts[model::kFree],
              m.counts[model::kCheck], m.counts[model::kMaxLive]);
  // The heap is still usable after the run.
  void* p = larder_malloc(100);
  ASSERT_NE(p, nullptr);
  larder_free(p);
  larder_collect();
}

// Four models at once, one per thread, on the same heap: blocks of every
// size, huge ones included, are allocated and freed concurrently, and no
// block may ever be handed to two threads.
TEST(ModelTest, ConcurrentModelsNeverShareBlocks) {
  constexpr int kThreads = 4;
#if defined(__SANITIZE_ADDRESS__)
  constexpr std::size_t kThreadOps = 15000;
#else
  constexpr std::size_t kThreadOps = 30000;
#endif
  model::shared_ranges shared;
  std::vector<std::string> failures(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      model_config config{"concurrent", 500 + static_cast<std::uint64_t>(t), kThreadOps, 1000, 9 * kMiB, 21,
                          128 * kMiB};
      model m(config, &shared);
      m.run();
      failures[t] = m.failure();
    });
  }
  for (auto& t : threads) t.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], "") << "thread " << t;
}

constexpr std::size_t kMaxSize = 9 * kMiB;

#if defined(__SANITIZE_ADDRESS__)
constexpr std::size_t kOps = 50000;
#else
constexpr std::size_t kOps = 70000;
#endif

// Every size and alignment, huge blocks included (3 seeds, ~200k operations).
INSTANTIATE_TEST_SUITE_P(AllSizes, ModelTest,
                         ::testing::Values(model_config{"seed1", 1, kOps, 5000, kMaxSize, 21, 384 * kMiB},
                                           model_config{"seed2", 0xC0FFEE, kOps, 5000, kMaxSize, 21, 384 * kMiB},
                                           model_config{"seed3", 20240611, kOps, 2000, kMaxSize, 21, 384 * kMiB}),
                         [](const ::testing::TestParamInfo<model_config>& info) { return info.param.name; });

// Only blocks that live on heap pages (no huge blocks): sizes up to 512 KiB
// and alignments up to 64 KiB, with the request plus alignment kept inside
// the largest size class.
INSTANTIATE_TEST_SUITE_P(PagesOnly, ModelTest,
                         ::testing::Values(model_config{"seed4", 4, kOps, 5000, 512 * kKiB, 16, 384 * kMiB},
                                           model_config{"seed5", 0xBADC0DE, kOps, 3000, 512 * kKiB, 16, 384 * kMiB}),
                         [](const ::testing::TestParamInfo<model_config>& info) { return info.param.name; });

}  // namespace
