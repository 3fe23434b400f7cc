// Damage in an undo-log lane (docs/format/heap.md, "Lane record" and
// "Undo-log records"): every bit of both commit slots of the lane that
// committed a 5,000-node list, in turn, and every byte of the records of
// an uncommitted transaction. A flipped bit is damage: the checker reports
// it, and opening the heap for writing either refuses with corrupt
// (changing nothing) or finds what was committed; it never rolls back a
// committed transaction or only part of an uncommitted one. After a
// refusal, `larder check --repair` (check_heap with repair) yields the
// committed data.
#include "runtime_test_util.hpp"

#include <larder/check.hpp>
#include <larder/transaction.hpp>

#include "recovery/layout.hpp"
#include "recovery/undo_log.hpp"

#include <sys/mman.h>

#include <cstring>
#include <string>

namespace {

namespace layout = larder::layout;
using larder::check_report;

constexpr std::uint64_t kNodes = 5000;
constexpr std::size_t kLanesAt = layout::kMetaOffset + offsetof(layout::heap_meta, lanes);

struct node {
  std::uint64_t value;
  node* next;
};

struct list_root {
  node* head;
  std::uint64_t count;
};

bool any_contains(const std::vector<std::string>& lines, const std::string& a, const std::string& b = "") {
  for (const std::string& line : lines)
    if (line.find(a) != std::string::npos && line.find(b) != std::string::npos) return true;
  return false;
}

std::string describe(const check_report& r) {
  std::string text;
  for (const auto& p : r.problems) text += "problem: " + p + "\n";
  for (const auto& n : r.notes) text += "note: " + n + "\n";
  for (const auto& x : r.repairs) text += "repair: " + x + "\n";
  return text;
}

// Where slot k of lane n lies in the file (docs/format/heap.md).
std::size_t slot_offset(std::size_t n, unsigned k) {
  return kLanesAt + n * sizeof(layout::lane_record) + offsetof(layout::lane_record, commits) +
         k * sizeof(layout::commit_slot);
}

std::uint64_t get64(const std::string& b, std::size_t at) {
  std::uint64_t v = 0;
  std::memcpy(&v, b.data() + at, sizeof(v));
  return v;
}

larder::heap_options options(const std::string& path, larder::open_mode mode) {
  larder::heap_options o = larder_test::file_options(path, mode);
  o.reserve = std::size_t{256} << 20;
  return o;
}

// The one lane that holds a log.
std::size_t used_lane(const std::string& bytes) {
  std::size_t found = layout::kMaxLanes;
  for (std::size_t n = 0; n < layout::kMaxLanes; ++n) {
    std::size_t at = kLanesAt + n * sizeof(layout::lane_record) + offsetof(layout::lane_record, extent_count);
    std::uint32_t count = 0;
    std::memcpy(&count, bytes.data() + at, sizeof(count));
    if (count == 0) continue;
    EXPECT_EQ(found, layout::kMaxLanes) << "more than one lane in use";
    found = n;
  }
  EXPECT_LT(found, layout::kMaxLanes);
  return found;
}

class CommitSlotDamage : public ::testing::Test {
 protected:
  void SetUp() override {
    larder::heap h(options(path_, larder::open_mode::create));
    auto* root = h.root<list_root>("list");
    {
      larder::transaction tx(h);
      tx.snapshot(root);
      for (std::uint64_t i = 0; i < kNodes; ++i) {
        root->head = tx.make<node>(node{i, root->head});
        ++root->count;
      }
    }
    // The file as a writer killed right after the commit leaves it: a
    // clean close would write its close journal over the lane's records.
    original_ = larder_test::read_all(path_);
    ASSERT_TRUE(h.close().ok());
    lane_ = used_lane(original_);
  }

  // Opens the heap for writing: true when it opened, and then the whole
  // list must be there.
  bool open_finds_the_list(const std::string& what, larder::status* result) {
    larder::heap h;
    *result = larder::heap::open(options(path_, larder::open_mode::open), &h);
    if (!result->ok()) return false;
    std::size_t size = 0;
    auto* root = static_cast<list_root*>(h.find_root("list", &size));
    EXPECT_TRUE(root != nullptr && size == sizeof(list_root)) << what;
    if (root == nullptr) return true;
    std::uint64_t n = 0;
    bool in_order = true;
    for (const node* p = root->head; p != nullptr && n <= kNodes; p = p->next, ++n)
      in_order = in_order && p->value == kNodes - 1 - n;
    EXPECT_EQ(root->count, kNodes) << what << ": the committed list was rolled back";
    EXPECT_EQ(n, kNodes) << what;
    EXPECT_TRUE(in_order) << what;
    EXPECT_TRUE(h.close().ok()) << what;
    return true;
  }

  larder_test::temp_dir dir_{true};  // each case opens, checks and syncs heaps: on tmpfs where there is one
  std::string path_ = dir_.file("list.heap");
  std::string original_;
  std::size_t lane_ = 0;
};

// Sanitizer builds, several times slower, flip every seventh bit (or byte),
// which still lands on each bit position of a byte; the Release suite flips
// them all.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr std::size_t kStride = 7;
#else
constexpr std::size_t kStride = 1;
#endif

TEST_F(CommitSlotDamage, EveryFlippedBitIsFoundAndNeverRollsBackTheCommit) {
  ASSERT_LT(lane_, layout::kMaxLanes);
  std::size_t refused = 0, opened = 0;
  for (unsigned k = 0; k < 2 && !HasFailure(); ++k) {
    std::size_t slot_at = slot_offset(lane_, k);
    std::string place = "lane " + std::to_string(lane_) + " commit slot " + std::to_string(k);
    for (std::size_t bit = 0; bit < 8 * sizeof(layout::commit_slot) && !HasFailure(); bit += kStride) {
      std::string what = place + " bit " + std::to_string(bit);
      std::string bytes = original_;
      bytes[slot_at + bit / 8] = static_cast<char>(bytes[slot_at + bit / 8] ^ (1 << (bit % 8)));
      ASSERT_TRUE(larder_test::write_all(path_, bytes.data(), bytes.size()));

      check_report r;
      ASSERT_TRUE(larder::check_heap(path_, false, &r).ok()) << what;
      EXPECT_FALSE(r.clean()) << what;
      EXPECT_TRUE(any_contains(r.problems, place)) << what << "\n" << describe(r);

      larder::status s;
      if (open_finds_the_list(what, &s)) {
        ++opened;
        continue;
      }
      ++refused;
      EXPECT_TRUE(s.is(larder::errc::corrupt)) << what << ": " << s.to_string();
      EXPECT_NE(s.message().find(place), std::string::npos) << what << ": " << s.to_string();
      EXPECT_TRUE(larder_test::read_all(path_) == bytes) << what << ": a refused open changed the file";
      EXPECT_TRUE(any_contains(r.problems, place, "cannot be told")) << what << "\n" << describe(r);

      ASSERT_TRUE(larder::check_heap(path_, true, &r).ok()) << what;
      EXPECT_TRUE(r.clean()) << what << "\n" << describe(r);
      EXPECT_TRUE(any_contains(r.repairs, place, "treated it as committed")) << what << "\n" << describe(r);
      EXPECT_TRUE(open_finds_the_list(what + " after repair", &s)) << what << ": " << s.to_string();
    }
  }
  // The slot of the list's transaction decides it; the other does not.
  EXPECT_GT(refused, 0u);
  EXPECT_GT(opened, 0u);
}

TEST_F(CommitSlotDamage, UndamagedLaneChecksClean) {
  check_report r;
  ASSERT_TRUE(larder::check_heap(path_, false, &r).ok());
  EXPECT_TRUE(r.clean()) << describe(r);
  larder::status s;
  EXPECT_TRUE(open_finds_the_list("undamaged", &s)) << s.to_string();
}

// An uncommitted transaction in three batches (three snapshots): the
// first two written in place, the third not yet.
class UndoRecordDamage : public ::testing::Test {
 protected:
  static constexpr std::uint64_t kBefore = 1000;

  void SetUp() override {
    {
      larder::heap h(options(path_, larder::open_mode::create));
      auto* values = static_cast<std::uint64_t*>(h.allocate(sizeof(std::uint64_t) * 64));
      for (std::uint64_t i = 0; i < 64; ++i) values[i] = kBefore + i;
      ASSERT_TRUE(h.set_root("values", values, sizeof(std::uint64_t) * 64).ok());
      ASSERT_TRUE(h.close().ok());
    }
    int code = larder_test::run_in_child([&] {
      larder::heap h(options(path_, larder::open_mode::open));
      auto* values = static_cast<std::uint64_t*>(h.find_root("values"));
      larder::transaction tx(h);
      tx.snapshot(&values[0], sizeof(std::uint64_t));
      values[0] = 0xDEAD;
      tx.snapshot(&values[8], sizeof(std::uint64_t));
      values[8] = 0xDEAD;
      tx.snapshot(&values[16], sizeof(std::uint64_t));
      // Make the in-place writes reach the file, as a crash might.
      ::msync(h.base(), std::size_t{16} << 20, MS_SYNC);
      ::_exit(0);
    });
    ASSERT_EQ(code, 0);
    pending_ = larder_test::read_all(path_);
    lane_ = used_lane(pending_);
    std::size_t lane_at = kLanesAt + lane_ * sizeof(layout::lane_record);
    log_at_ = static_cast<std::size_t>(layout::extent_first(get64(pending_, lane_at + offsetof(layout::lane_record, extents))))
              << layout::kSegmentShift;
  }

  // Opens the heap for writing: true when it opened, and then every value
  // must be back as before the transaction.
  bool open_rolls_back_all(const std::string& what, larder::status* result) {
    larder::heap h;
    *result = larder::heap::open(options(path_, larder::open_mode::open), &h);
    if (!result->ok()) return false;
    auto* values = static_cast<std::uint64_t*>(h.find_root("values"));
    EXPECT_NE(values, nullptr) << what;
    if (values == nullptr) return true;
    for (std::uint64_t i : {0, 8, 16})
      EXPECT_EQ(values[i], kBefore + i) << what << ": value " << i << " was not rolled back";
    EXPECT_TRUE(h.close().ok()) << what;
    return true;
  }

  larder_test::temp_dir dir_{true};  // each case opens, checks and syncs heaps: on tmpfs where there is one
  std::string path_ = dir_.file("values.heap");
  std::string pending_;
  std::size_t lane_ = 0;
  std::size_t log_at_ = 0;
};

TEST_F(UndoRecordDamage, UndamagedLogRollsBackAll) {
  larder::status s;
  EXPECT_TRUE(open_rolls_back_all("undamaged", &s)) << s.to_string();
}

TEST_F(UndoRecordDamage, FlippedBitNeverRollsBackPart) {
  // Record, marker, record, marker, record: 8-byte payloads.
  const std::size_t span = larder::recovery::record_span(sizeof(std::uint64_t));
  const std::size_t marker = sizeof(larder::recovery::record_header);
  const std::size_t region = 3 * span + 2 * marker;
  const std::size_t last_batch = 2 * span + marker;  // the third snapshot's marker starts it
  std::size_t refused = 0, rolled_back = 0;
  for (std::size_t byte = 0; byte < region && !HasFailure(); byte += kStride) {
    std::string what = "log byte " + std::to_string(byte);
    std::string bytes = pending_;
    bytes[log_at_ + byte] = static_cast<char>(bytes[log_at_ + byte] ^ (1 << (byte % 8)));
    ASSERT_TRUE(larder_test::write_all(path_, bytes.data(), bytes.size()));
    check_report r;
    ASSERT_TRUE(larder::check_heap(path_, false, &r).ok()) << what;
    larder::status s;
    if (open_rolls_back_all(what, &s)) {
      ++rolled_back;
      continue;
    }
    ++refused;
    EXPECT_TRUE(s.is(larder::errc::corrupt)) << what << ": " << s.to_string();
    EXPECT_NE(s.message().find("lane " + std::to_string(lane_)), std::string::npos) << what << ": " << s.to_string();
    EXPECT_TRUE(larder_test::read_all(path_) == bytes) << what << ": a refused open changed the file";
    EXPECT_TRUE(any_contains(r.problems, "lane " + std::to_string(lane_), "log record")) << what << "\n" << describe(r);
    // Only damage that a later batch proves durable is refused.
    EXPECT_LT(byte, last_batch) << what;
  }
  // Every byte of the first two batches' headers is damage; padding and
  // the last batch (which a crash may tear) are not.
  EXPECT_GT(refused, 0u);
  EXPECT_GT(rolled_back, 0u);
}

}  // namespace
