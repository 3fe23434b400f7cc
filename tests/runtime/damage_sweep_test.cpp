// Flips bytes of a heap's metadata in turn — every byte of both
// superblocks, of the used lanes' records (commit slots included) and of
// the used root and pod records, and a seeded sample of segment headers and
// page descriptors — and for each flip opens the heap read-only, walks the
// data it holds and runs larder::check_heap. Never a signal or a hang, and
// never data that reads wrong from a heap the checker calls clean (a silent
// rollback or misdirected root). LARDER_DAMAGE_FULL=1 sweeps every
// superblock byte and 20,000 sampled bytes instead of a stride and 1,500.
#include "runtime_test_util.hpp"

#include "recovery/layout.hpp"

#include <larder/check.hpp>
#include <larder/transaction.hpp>

#include <memory>
#include <random>
#include <vector>

namespace {

using larder_test::temp_dir;
namespace layout = larder::layout;

constexpr std::uint64_t kNodes = 300;

struct node {
  std::uint64_t value;
  node* next;
};
struct list_root {
  std::uint64_t count;
  node* head;
};

void build(const std::string& path) {
  larder::heap h({.name = path, .reserve = std::size_t{1} << 30});
  auto* root = h.root<list_root>("list", list_root{0, nullptr});
  for (std::uint64_t i = 0; i < kNodes; i += 10) {
    larder::transaction tx(h);
    tx.snapshot(root);
    for (std::uint64_t k = i; k < i + 10; ++k) {
      root->head = tx.make<node>(node{k * 7919, root->head});
      ++root->count;
    }
  }
  larder::pod cold;
  ASSERT_TRUE(h.make_pod("cold", &cold).ok());
  larder::transaction tx(h);
  void* big = cold.allocate(std::size_t{3} << 20);
  std::memset(big, 0x5A, std::size_t{3} << 20);
  ASSERT_TRUE(h.set_root("cold", big, std::size_t{3} << 20).ok());
}

// The committed data, read defensively: a damaged pointer must not crash
// the reader.
bool data_intact(const larder::heap& h) {
  std::size_t size = 0;
  auto* root = static_cast<const list_root*>(h.find_root("list", &size));
  if (root == nullptr || size != sizeof(list_root) || root->count != kNodes) return false;
  const node* n = root->head;
  for (std::uint64_t i = kNodes; i-- > 0; n = n->next) {
    if (n == nullptr || !h.contains(n) || n->value != i * 7919) return false;
  }
  if (n != nullptr) return false;
  auto* cold = static_cast<const unsigned char*>(h.find_root("cold", &size));
  if (cold == nullptr || size != (std::size_t{3} << 20) || !h.contains(cold) || !h.contains(cold + size - 1))
    return false;
  return cold[0] == 0x5A && cold[size - 1] == 0x5A;
}

struct sweep_result {
  std::size_t flips = 0, refused = 0, reported = 0, silent = 0;
  std::string first_silent;
};

void flip_and_check(const std::string& path, int fd, std::uint64_t offset, const char* what, sweep_result* r) {
  unsigned char byte = 0;
  ASSERT_EQ(::pread(fd, &byte, 1, static_cast<off_t>(offset)), 1);
  unsigned char flipped = static_cast<unsigned char>(byte ^ (1u << (offset % 8)));
  ASSERT_EQ(::pwrite(fd, &flipped, 1, static_cast<off_t>(offset)), 1);
  ++r->flips;
  larder::check_report report;
  larder::status checked = larder::check_heap(path, false, &report);
  bool clean = checked.ok() && report.clean();
  if (!clean) ++r->reported;
  larder::heap h;
  larder::status s = larder::heap::open({.name = path, .mode = larder::open_mode::open, .read_only = true}, &h);
  if (!s.ok()) {
    ++r->refused;
  } else {
    if (!data_intact(h) && clean) {
      if (r->silent++ == 0) r->first_silent = std::string(what) + " byte at offset " + std::to_string(offset);
    }
    (void)h.close();
  }
  ASSERT_EQ(::pwrite(fd, &byte, 1, static_cast<off_t>(offset)), 1);
}

TEST(DamageSweep, NoFlipIsSilentNoneKills) {
  temp_dir dir;
  std::string path = dir.file("heap");
  build(path);
  {
    larder::heap h({.name = path, .mode = larder::open_mode::open, .read_only = true});
    ASSERT_TRUE(data_intact(h));
  }
  bool full = std::getenv("LARDER_DAMAGE_FULL") != nullptr;
  int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  // The metadata as stored, to find what is in use.
  auto stored = std::make_unique<layout::heap_meta>();  // over-aligned: not a byte buffer
  ASSERT_EQ(::pread(fd, stored.get(), sizeof(layout::heap_meta), layout::kMetaOffset),
            static_cast<ssize_t>(sizeof(layout::heap_meta)));
  const layout::heap_meta* meta = stored.get();
  sweep_result r;
  std::uint64_t stride = full ? 1 : 7;
  for (std::uint64_t at = 0; at < layout::kMetaOffset; at += stride) flip_and_check(path, fd, at, "superblock", &r);
  for (std::size_t lane = 0; lane < layout::kMaxLanes; ++lane) {
    if (meta->lanes[lane].state == 0) continue;
    std::uint64_t base = layout::kMetaOffset + offsetof(layout::heap_meta, lanes) + lane * sizeof(layout::lane_record);
    for (std::uint64_t at = 0; at < sizeof(layout::lane_record); ++at) flip_and_check(path, fd, base + at, "lane", &r);
  }
  for (std::size_t i = 0; i < layout::kMaxPods; ++i) {
    if (meta->pods[i].in_use == 0) continue;
    std::uint64_t base = layout::kMetaOffset + offsetof(layout::heap_meta, pods) + i * sizeof(layout::pod_record);
    for (std::uint64_t at = 0; at < sizeof(layout::pod_record); ++at) flip_and_check(path, fd, base + at, "pod", &r);
  }
  for (std::size_t i = 0; i < layout::kMaxRoots; ++i) {
    if (meta->roots[i].in_use == 0) continue;
    std::uint64_t base = layout::kMetaOffset + offsetof(layout::heap_meta, roots) + i * sizeof(layout::root_record);
    for (std::uint64_t at = 0; at < sizeof(layout::root_record); ++at) flip_and_check(path, fd, base + at, "root", &r);
  }
  // Segment headers and page descriptors: the first 8 KiB of each used
  // data segment, sampled.
  std::vector<std::uint64_t> headers;
  for (std::size_t i = 1; i < meta->segments_high; ++i) {
    std::uint32_t state = layout::entry_state(meta->segments[i]);
    if (state == layout::kSegmentPages || state == layout::kSegmentHugeHead) headers.push_back(i << layout::kSegmentShift);
  }
  ASSERT_FALSE(headers.empty());
  std::mt19937_64 random(20261206);
  std::size_t samples = full ? 20000 : 1500;
  for (std::size_t k = 0; k < samples; ++k) {
    std::uint64_t at = headers[random() % headers.size()] + random() % 8192;
    flip_and_check(path, fd, at, "segment header", &r);
  }
  ::close(fd);
  std::printf("%zu flips: %zu reported by check, %zu refused by open, %zu silent\n", r.flips, r.reported, r.refused,
              r.silent);
  EXPECT_EQ(r.silent, 0u) << "first: " << r.first_silent;
  larder::heap h({.name = path, .mode = larder::open_mode::open, .read_only = true});
  EXPECT_TRUE(data_intact(h)) << "the sweep did not restore the file";
}

}  // namespace
