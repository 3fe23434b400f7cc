// What a heap costs its file system: the storage it is given (st_blocks)
// follows what its pods hold, beside metadata and an undo log of bounded
// size, and its size (st_size) grows by the segments it uses
// (docs/format/heap.md, "Storage"). The bounds below come from the design:
//   * metadata given storage up front: the superblocks, the metadata
//     block's header and pod table (72 KiB), a page of the segment table,
//     the write statistics and the lanes (52 KiB), and a page of the root
//     table per page of roots in use: under 160 KiB. Where reading a hole
//     takes storage (tmpfs, so shm heaps), all of the metadata block
//     (2.62 MiB), since all of it is read;
//   * the log: storage in 64 KiB steps as it fills; what a transaction left
//     past 256 KiB (kLogStorageKept) goes back when it ends unless it used
//     half of it, so after a run of small transactions at most 512 KiB.
//     On tmpfs each extent in full: 4 MiB for the first;
//   * data: the pages the pods hold (pod_info::bytes_committed) and an
//     8 KiB header per segment, which one 64 KiB allowance covers here.
// Before page capture reserved its log up front and the backing was given
// storage a segment at a time, 150 small entries took 12 MiB and one page
// capture 64 MiB more, of size and of storage.
#include "runtime_test_util.hpp"

#include <larder/containers.hpp>
#include <larder/transaction.hpp>

#include <sys/stat.h>
#include <sys/vfs.h>

#include <cstring>
#include <string>

namespace {

using larder_test::temp_dir;

constexpr std::size_t kKiB = 1024;
constexpr std::size_t kMiB = 1024 * kKiB;
constexpr std::size_t kFixedMetadata = 160 * kKiB;
constexpr std::size_t kWholeMetadata = 2 * kMiB + 648 * kKiB;  // with the shared-writer record (format 1.6)
constexpr std::size_t kLogAfterSmallTransactions = 512 * kKiB;
constexpr std::size_t kFirstLogExtent = 4 * kMiB;
constexpr std::size_t kLogStorageKept = 256 * kKiB;
constexpr std::size_t kHeaderAllowance = 64 * kKiB;

using entries = larder::map<int, larder::string>;

struct file_cost {
  std::size_t size = 0;       // st_size
  std::size_t allocated = 0;  // st_blocks * 512
};

file_cost cost_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path << ": " << std::strerror(errno);
  return {static_cast<std::size_t>(st.st_size), static_cast<std::size_t>(st.st_blocks) * 512};
}

std::size_t held(const larder::heap& h) {
  std::size_t bytes = 0;
  for (const auto& p : h.pods()) bytes += p.bytes_committed;
  return bytes;
}

// Adds entries [from, to) to the map, `per_transaction` to a transaction.
void add_entries(larder::heap& h, int from, int to, int per_transaction) {
  auto* m = h.root<entries>("entries");
  for (int i = from; i < to;) {
    larder::transaction tx(h);
    for (int end = std::min(to, i + per_transaction); i < end; ++i) (*m)[i] = "value " + std::to_string(i);
  }
}

// Two blocks of two pages each, in a heap page of one slice.
struct captured_blocks {
  void* blocks[2];
};

captured_blocks allocate_blocks(larder::heap& h) {
  captured_blocks b{};
  for (void*& p : b.blocks) {
    p = h.allocate(8192);
    EXPECT_NE(p, nullptr);
    if (p != nullptr) std::memset(p, 1, 8192);
  }
  return b;
}

// Writes the blocks' four pages in one transaction capturing pages.
void capture_pages(larder::heap& h, const captured_blocks& b) {
  larder::transaction tx(h, larder::capture::pages);
  for (void* p : b.blocks) std::memset(p, 0x5A, 8192);
}

// Where reading a hole takes storage, the heap gives all it reads storage.
bool on_tmpfs(const std::string& path) {
  struct statfs fs {};
  return ::statfs(path.c_str(), &fs) == 0 && static_cast<unsigned long>(fs.f_type) == 0x01021994;
}

TEST(Storage, FileHeapCostsWhatItHolds) {
  temp_dir dir;
  if (on_tmpfs(dir.path())) GTEST_SKIP() << dir.path() << " is on tmpfs: the shm case covers it";
  std::string path = dir.file("heap");
  larder::heap h({.kind = larder::backing::file, .name = path});
  file_cost fresh = cost_of(path);
  EXPECT_LE(fresh.allocated, kFixedMetadata);
  EXPECT_EQ(fresh.size, 4 * kMiB) << "the metadata segment";

  add_entries(h, 0, 150, 1);
  file_cost small = cost_of(path);
  EXPECT_LE(small.allocated, kFixedMetadata + kLogAfterSmallTransactions + held(h) + kHeaderAllowance);
  EXPECT_LE(small.allocated, 1 * kMiB);
  EXPECT_LE(small.size, 12 * kMiB) << "the metadata, one log and one data segment";

  // Page capture reserves log room and storage for every page of the one
  // data segment (4 MiB of pages) before it begins, and keeps the storage
  // only while it runs.
  captured_blocks blocks = allocate_blocks(h);
  file_cost before_capture = cost_of(path);
  capture_pages(h, blocks);
  file_cost captured = cost_of(path);
  EXPECT_LE(captured.allocated, before_capture.allocated + kLogAfterSmallTransactions);
  EXPECT_LE(captured.size, before_capture.size + 8 * kMiB) << "two log segments for the capture's room";

  add_entries(h, 150, 10000, 100);
  file_cost many = cost_of(path);
  EXPECT_LE(many.allocated, kFixedMetadata + kLogAfterSmallTransactions + held(h) + kHeaderAllowance);
  EXPECT_LE(many.allocated, 2 * kMiB);
  EXPECT_LE(many.size, captured.size + 4 * kMiB);
  ASSERT_TRUE(h.close().ok());
  EXPECT_EQ(cost_of(path).allocated, many.allocated) << "closing gave storage to more of the file";
}

// A heap that never ran a transaction gets a log at its first close, for
// the close journal (docs/persistence.md): one segment of size, and
// storage only for the journal it writes.
TEST(Storage, CloseJournalCostsWhatItWrites) {
  temp_dir dir;
  if (on_tmpfs(dir.path())) GTEST_SKIP() << dir.path() << " is on tmpfs: each log extent takes storage in full";
  std::string path = dir.file("heap");
  file_cost before;
  {
    larder::heap h({.kind = larder::backing::file, .name = path});
    for (int i = 0; i < 2000; ++i) ASSERT_NE(h.allocate(100 + static_cast<std::size_t>(i % 7) * 300), nullptr);
    before = cost_of(path);
    ASSERT_TRUE(h.close().ok());
  }
  file_cost closed = cost_of(path);
  EXPECT_LE(closed.size, before.size + kFirstLogExtent) << "one log segment";
  EXPECT_LE(closed.allocated, before.allocated + kLogStorageKept) << "the journal's storage, in 64 KiB steps";
  larder::heap reopened({.kind = larder::backing::file, .name = path, .mode = larder::open_mode::open});
  EXPECT_GT(reopened.stats().last_close_ns, 0u);
}

// A shm object lives on tmpfs, where every page read takes storage: the
// metadata block and the log's extents have it in full, the data only
// where pods hold pages.
TEST(Storage, ShmHeapCostsWhatItHoldsBesideItsMetadataAndLog) {
  std::string name = larder_test::unique_shm_name("storage");
  larder_test::shm_guard guard(name);
  std::string path = "/dev/shm" + name;
  larder::heap h({.kind = larder::backing::shm, .name = name});
  EXPECT_LE(cost_of(path).allocated, kWholeMetadata);

  add_entries(h, 0, 150, 1);
  captured_blocks blocks = allocate_blocks(h);
  std::size_t expected = kWholeMetadata + kFirstLogExtent + held(h) + kHeaderAllowance;
  EXPECT_LE(cost_of(path).allocated, expected);
  capture_pages(h, blocks);
  EXPECT_LE(cost_of(path).allocated, expected + 8 * kMiB) << "two log segments for the capture's room";
  ASSERT_TRUE(h.close().ok());
}

}  // namespace
