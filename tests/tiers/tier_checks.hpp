// What every tier backend's test checks, against a model of what each pod
// holds, through tiers/tier.hpp alone: round trips of random page sets,
// slot reuse and overwrites, clear errors for bad arguments and a full
// tier, a full file system losing nothing, four threads at once. Each
// backend's test opens its tier and runs these.
#pragma once

#include "tiers/tier.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace larder::tiers::checks {

inline constexpr std::size_t kPage = kTierPageSize;

// Page-aligned memory for `pages` pages.
struct page_buffer {
  explicit page_buffer(std::size_t pages) : size(pages * kPage) {
    bytes = static_cast<char*>(std::aligned_alloc(kPage, size));
    std::memset(bytes, 0, size);
  }
  ~page_buffer() { std::free(bytes); }
  page_buffer(const page_buffer&) = delete;
  page_buffer& operator=(const page_buffer&) = delete;
  char* page(std::size_t i) const { return bytes + i * kPage; }
  char* bytes;
  std::size_t size;
};

// A scratch directory under `base`, removed afterwards.
struct scratch_dir {
  explicit scratch_dir(const std::string& base) {
    std::string pattern = base + "/larder_tier_XXXXXX";
    path = ::mkdtemp(pattern.data());
  }
  ~scratch_dir() { std::filesystem::remove_all(path); }
  std::string file() const { return path + "/tier"; }
  std::string path;
};

// A 1 MiB tmpfs mounted in a scratch directory, unmounted at the end;
// mounting needs root, and why_not says why it failed.
struct small_tmpfs {
  small_tmpfs() : dir("/var/tmp"), path(dir.path + "/small") {
    std::filesystem::create_directory(path);
    mounted = ::mount("tmpfs", path.c_str(), "tmpfs", 0, "size=1m") == 0;
    if (!mounted) why_not = std::string("cannot mount a 1 MiB tmpfs (") + std::strerror(errno) + "): needs root";
  }
  ~small_tmpfs() {
    if (mounted) ::umount2(path.c_str(), MNT_DETACH);
  }
  scratch_dir dir;
  std::string path;
  bool mounted = false;
  std::string why_not;
};

// What a pod should read back: page index -> its bytes.
using pod_model = std::map<std::uint64_t, std::string>;

// Writes `count` random pages out of `range` indexes of `pod`, with random
// bytes, and records them. The pages sit in memory in index order, so
// adjacent indexes are adjacent in memory (a tier may send them in place);
// `scattered`: in shuffled order (a tier gathers them).
inline void write_random_pages(tier& tier, std::uint64_t pod, std::size_t range, std::size_t count,
                               std::mt19937_64& random, pod_model* model, bool scattered = false) {
  page_buffer memory(count);
  std::vector<std::uint64_t> indexes(range);
  for (std::size_t i = 0; i < range; ++i) indexes[i] = i;
  std::shuffle(indexes.begin(), indexes.end(), random);
  indexes.resize(count);
  if (!scattered) std::sort(indexes.begin(), indexes.end());
  std::vector<page_ref> pages;
  for (std::size_t i = 0; i < count; ++i) {
    for (std::size_t b = 0; b < kPage; b += 8) {
      std::uint64_t v = random();
      std::memcpy(memory.page(i) + b, &v, 8);
    }
    pages.push_back(page_ref{indexes[i], memory.page(i)});
  }
  std::shuffle(pages.begin(), pages.end(), random);
  status s = tier.write(pod, pages.data(), pages.size());
  ASSERT_TRUE(s.ok()) << s.to_string();
  for (const page_ref& p : pages) (*model)[p.index] = std::string(static_cast<char*>(p.address), kPage);
}

// Reads every page the model holds for `pod`, into memory in index order
// or (`scattered`) shuffled, and compares the bytes.
inline void expect_pod_equal(tier& tier, std::uint64_t pod, const pod_model& model, bool scattered = false) {
  page_buffer memory(model.size());
  std::vector<std::size_t> order(model.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  if (scattered) std::shuffle(order.begin(), order.end(), std::mt19937_64(pod));
  std::vector<page_ref> pages;
  for (const auto& [index, bytes] : model) pages.push_back(page_ref{index, memory.page(order[pages.size()])});
  status s = tier.read(pod, pages.data(), pages.size());
  ASSERT_TRUE(s.ok()) << s.to_string();
  std::size_t i = 0;
  for (const auto& [index, bytes] : model) {
    ASSERT_EQ(0, std::memcmp(memory.page(order[i++]), bytes.data(), kPage)) << "pod " << pod << " page " << index;
  }
}

// Drops a random half of the pages the model holds for `pod`, and a few
// indexes it never held.
inline void drop_random_pages(tier& tier, std::uint64_t pod, std::mt19937_64& random, pod_model* model) {
  std::vector<std::uint64_t> dropped;
  for (const auto& page : *model)
    if (random() % 2 == 0) dropped.push_back(page.first);
  for (int i = 0; i < 3; ++i) dropped.push_back(1000 + random() % 100);
  std::shuffle(dropped.begin(), dropped.end(), random);
  status s = tier.drop_pages(pod, dropped.data(), dropped.size());
  ASSERT_TRUE(s.ok()) << s.to_string();
  for (std::uint64_t index : dropped) {
    model->erase(index);
    EXPECT_FALSE(tier.holds(pod, index)) << "pod " << pod << " page " << index;
  }
}

// held_pages lists exactly the pages the model holds, ascending.
inline void expect_held_pages(const tier& tier, std::uint64_t pod, const pod_model& model) {
  std::vector<std::uint64_t> expected;
  for (const auto& page : model) expected.push_back(page.first);
  EXPECT_EQ(expected, tier.held_pages(pod)) << "pod " << pod;
}

// Random writes, drops of pods and of some of their pages, six pods, every
// pod read back after each.
inline void round_trips(tier& tier) {
  std::mt19937_64 random(12);
  std::map<std::uint64_t, pod_model> model;
  for (int round = 0; round < 40; ++round) {
    std::uint64_t pod = random() % 6;
    if (random() % 5 == 0) {
      ASSERT_TRUE(tier.drop(pod).ok());
      model.erase(pod);
    } else if (random() % 4 == 0) {
      drop_random_pages(tier, pod, random, &model[pod]);
    } else {
      write_random_pages(tier, pod, 300, 1 + random() % 200, random, &model[pod]);
    }
    std::uint64_t held = 0;
    for (const auto& [p, pages] : model) {
      expect_pod_equal(tier, p, pages);
      expect_held_pages(tier, p, pages);
      held += pages.size();
    }
    EXPECT_EQ(held, tier.usage().used_pages);
  }
  ASSERT_TRUE(tier.sync().ok());
}

// For a tier of 64 pages: 48 pages of one pod at a time fit only if drops
// and overwrites give their slots back.
inline void reuses_slots(tier& tier) {
  ASSERT_EQ(64u, tier.usage().capacity_pages);
  std::mt19937_64 random(7);
  std::map<std::uint64_t, pod_model> model;
  for (int round = 0; round < 50; ++round) {
    std::uint64_t pod = static_cast<std::uint64_t>(round);
    write_random_pages(tier, pod, 48, 48, random, &model[pod]);
    write_random_pages(tier, pod, 48, 10, random, &model[pod]);  // overwrites in place of the old copies
    EXPECT_EQ(48u, tier.usage().used_pages);
    expect_pod_equal(tier, pod, model[pod]);
    ASSERT_TRUE(tier.drop(pod).ok());
    EXPECT_EQ(0u, tier.usage().used_pages);
    EXPECT_FALSE(tier.holds(pod, 0));
  }
}

// For a tier of 16 pages: a write past the capacity, unaligned addresses,
// an index twice and pages never written each get their error.
inline void refuses_clearly(tier& tier) {
  ASSERT_EQ(16u, tier.usage().capacity_pages);
  std::mt19937_64 random(3);
  pod_model kept;
  write_random_pages(tier, 1, 10, 10, random, &kept);
  page_buffer memory(8);
  std::vector<page_ref> pages;
  for (std::uint64_t i = 0; i < 8; ++i) pages.push_back(page_ref{i, memory.page(i)});
  status full = tier.write(2, pages.data(), pages.size());
  EXPECT_TRUE(full.is(errc::out_of_space)) << full.to_string();
  EXPECT_NE(std::string::npos, full.message().find("full")) << full.message();
  EXPECT_EQ(10u, tier.usage().used_pages);
  EXPECT_FALSE(tier.holds(2, 0));
  expect_pod_equal(tier, 1, kept);

  page_ref unaligned{0, memory.page(0) + 8};
  EXPECT_TRUE(tier.write(2, &unaligned, 1).is(errc::invalid_argument));
  page_ref twice[2] = {{3, memory.page(0)}, {3, memory.page(1)}};
  EXPECT_TRUE(tier.write(2, twice, 2).is(errc::invalid_argument));
  page_ref missing{11, memory.page(0)};
  status absent = tier.read(1, &missing, 1);
  EXPECT_TRUE(absent.is(errc::not_found)) << absent.to_string();
  EXPECT_TRUE(tier.read(9, &missing, 1).is(errc::not_found));
}

// Fills the tier until its storage refuses, then checks the error and that
// every page written before still reads back.
inline void fill_until_refused(tier& tier, const char* expected_words) {
  std::mt19937_64 random(5);
  std::map<std::uint64_t, pod_model> model;
  status refused;
  for (std::uint64_t pod = 0; pod < 1000 && refused.ok(); ++pod) {
    page_buffer memory(64);
    std::vector<page_ref> pages;
    for (std::uint64_t i = 0; i < 64; ++i) {
      std::memset(memory.page(i), static_cast<int>(random()), kPage);
      pages.push_back(page_ref{i, memory.page(i)});
    }
    refused = tier.write(pod, pages.data(), pages.size());
    if (refused.ok()) {
      for (const page_ref& p : pages) model[pod][p.index] = std::string(static_cast<char*>(p.address), kPage);
    } else {
      EXPECT_FALSE(tier.holds(pod, 0));
    }
  }
  ASSERT_FALSE(refused.ok()) << "the storage never filled up";
  EXPECT_TRUE(refused.is(errc::out_of_space)) << refused.to_string();
  EXPECT_NE(std::string::npos, refused.message().find(expected_words)) << refused.message();
  ASSERT_FALSE(model.empty());
  for (const auto& [pod, pages] : model) expect_pod_equal(tier, pod, pages);
}

// Fills the tier under a file size limit of 1 MiB: the error names the
// limit. Past the limit the kernel sends SIGXFSZ, which kills by default;
// a program that sets a file size limit ignores it to see EFBIG instead.
inline void fill_under_file_size_limit(tier& tier) {
  struct rlimit before {};
  ASSERT_EQ(0, ::getrlimit(RLIMIT_FSIZE, &before));
  struct sigaction ignore {}, old {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(0, ::sigaction(SIGXFSZ, &ignore, &old));
  struct rlimit limit = before;
  limit.rlim_cur = 1 << 20;
  ASSERT_EQ(0, ::setrlimit(RLIMIT_FSIZE, &limit));
  fill_until_refused(tier, "largest file size");
  ASSERT_EQ(0, ::setrlimit(RLIMIT_FSIZE, &before));
  ::sigaction(SIGXFSZ, &old, nullptr);
}

// Four threads, each writing, dropping and reading back pods of its own.
inline void four_threads(tier& tier) {
  std::vector<std::thread> threads;
  for (std::uint64_t t = 0; t < 4; ++t) {
    threads.emplace_back([&tier, t] {
      std::mt19937_64 random(100 + t);
      std::map<std::uint64_t, pod_model> model;
      for (int round = 0; round < 60; ++round) {
        std::uint64_t pod = t * 100 + random() % 3;
        if (random() % 4 == 0) {
          ASSERT_TRUE(tier.drop(pod).ok());
          model.erase(pod);
        } else {
          write_random_pages(tier, pod, 128, 1 + random() % 96, random, &model[pod]);
        }
        for (const auto& [p, pages] : model) expect_pod_equal(tier, p, pages);
      }
    });
  }
  for (std::thread& t : threads) t.join();
}

}  // namespace larder::tiers::checks
