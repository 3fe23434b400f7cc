// Flips bytes of a heap's metadata in turn — every byte of both
// superblocks, of the used lanes' records (commit slots included) and of
// the used root and pod records, and a seeded sample of segment headers and
// page descriptors — and for each flip opens the heap read-only, walks the
// data it holds and runs larder::check_heap. Never a signal or a hang, and
// never data that reads wrong from a heap the checker calls clean (a silent
// rollback or misdirected root).
//
// Then, on a copy of the damaged heap, `larder check --repair` and
// larder::salvage_heap: every root comes back, byte for byte, in the
// salvaged heap unless the flip hit its own record or the descriptor of a
// page (or huge block) its objects live in and that page could not be told
// apart; after a flip in a segment header or page descriptor the repaired
// heap opens for writing.
//
// LARDER_DAMAGE_FULL=1 sweeps every superblock byte and 20,000 sampled
// bytes instead of a stride and 1,500, and repairs and salvages after every
// flip instead of a sample.
#include "runtime_test_util.hpp"

#include "recovery/layout.hpp"

#include <larder/check.hpp>
#include <larder/transaction.hpp>

#include <filesystem>
#include <memory>
#include <random>
#include <set>
#include <vector>

namespace {

using larder_test::temp_dir;
namespace layout = larder::layout;

constexpr std::uint64_t kNodes = 300;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
// The sweep runs on one thread, so ThreadSanitizer has nothing to find in
// it and only slows it down: a thinner sweep there. Under AddressSanitizer
// every open walks the whole heap: half the flips keep CI's time in bounds,
// the Release suite makes them all.
#if defined(__SANITIZE_THREAD__)
constexpr std::uint64_t kThinning = 4;
#elif defined(__SANITIZE_ADDRESS__)
constexpr std::uint64_t kThinning = 2;
#else
constexpr std::uint64_t kThinning = 1;
#endif

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
// the reader. The huge block is read at its ends, or every byte.
bool list_intact(const larder::heap& h) {
  std::size_t size = 0;
  auto* root = static_cast<const list_root*>(h.find_root("list", &size));
  if (root == nullptr || size != sizeof(list_root) || root->count != kNodes) return false;
  const node* n = root->head;
  for (std::uint64_t i = kNodes; i-- > 0; n = n->next)
    if (n == nullptr || !h.contains(n) || n->value != i * 7919) return false;
  return n == nullptr;
}

bool cold_intact(const larder::heap& h, bool every_byte) {
  std::size_t size = 0;
  auto* cold = static_cast<const unsigned char*>(h.find_root("cold", &size));
  if (cold == nullptr || size != (std::size_t{3} << 20) || !h.contains(cold) || !h.contains(cold + size - 1))
    return false;
  for (std::size_t i = 0; i < size; i += every_byte ? 1 : size - 1)
    if (cold[i] != 0x5A) return false;
  return true;
}

bool data_intact(const larder::heap& h) { return list_intact(h) && cold_intact(h, false); }

// Where each root's objects live in the sound heap: its record's slot, and
// the page descriptors (file offsets) that say where its blocks are.
struct root_places {
  std::size_t slot = 0;
  std::set<std::uint64_t> descriptors;  // of the pages holding its blocks
  std::uint64_t huge_header = 0;        // its huge block's segment, when it is one
};
struct heap_places {
  root_places list, cold;
};

std::uint64_t descriptor_of(const larder::heap& h, const void* p) {
  std::uint64_t offset = reinterpret_cast<std::uintptr_t>(p) - reinterpret_cast<std::uintptr_t>(h.base());
  std::uint64_t segment = offset >> layout::kSegmentShift;
  std::uint64_t slice = (offset & (layout::kSegmentSize - 1)) >> layout::kSliceShift;
  return (segment << layout::kSegmentShift) + 64 + slice * 64;  // one-slice pages (16-byte blocks)
}

heap_places find_places(const larder::heap& h, const layout::heap_meta& meta) {
  heap_places places;
  for (std::size_t slot = 0; slot < layout::kMaxRoots; ++slot) {
    if (meta.roots[slot].in_use != 1) continue;
    (std::strcmp(meta.roots[slot].name, "list") == 0 ? places.list : places.cold).slot = slot;
  }
  auto* root = static_cast<const list_root*>(h.find_root("list"));
  places.list.descriptors.insert(descriptor_of(h, root));
  for (const node* n = root->head; n != nullptr; n = n->next) places.list.descriptors.insert(descriptor_of(h, n));
  std::uint64_t cold =
      reinterpret_cast<std::uintptr_t>(h.find_root("cold")) - reinterpret_cast<std::uintptr_t>(h.base());
  places.cold.huge_header = cold & ~std::uint64_t{layout::kSegmentSize - 1};
  return places;
}

// May a flip at `offset` (of kind `what`) cost this root? Its own record,
// or the metadata that says where its blocks are.
bool may_lose(const root_places& root, std::uint64_t offset, const char* what) {
  const std::uint64_t record =
      layout::kMetaOffset + offsetof(layout::heap_meta, roots) + root.slot * sizeof(layout::root_record);
  if (std::strcmp(what, "root") == 0) return offset >= record && offset < record + sizeof(layout::root_record);
  if (std::strcmp(what, "segment header") != 0) return false;
  if (root.huge_header != 0) return offset >= root.huge_header && offset < root.huge_header + 128;
  return root.descriptors.count(offset & ~std::uint64_t{63}) != 0;
}

struct sweep_result {
  std::size_t flips = 0, refused = 0, reported = 0, silent = 0;
  std::string first_silent;
  std::size_t recovered = 0;        // flips repaired and salvaged
  std::size_t roots_lost = 0;       // roots salvage lost where the flip may cost them
  std::size_t quarantined = 0;      // repairs that set a page or huge block aside
  std::size_t wrong = 0;            // a root lost or read back wrong that should not be
  std::string first_wrong;
};

// Repairs and salvages a copy of the damaged heap.
void repair_and_salvage(const std::string& path, std::uint64_t offset, const char* what, const heap_places& places,
                        sweep_result* r) {
  const std::string work = path + ".work", out = path + ".salvaged";
  std::filesystem::copy_file(path, work, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::remove(out);
  ++r->recovered;
  auto wrong = [&](const std::string& why) {
    if (r->wrong++ == 0) r->first_wrong = std::string(what) + " byte at offset " + std::to_string(offset) + ": " + why;
  };
  larder::check_report repaired;
  larder::status s = larder::check_heap(work, true, &repaired);
  if (!s.ok()) return wrong("repair failed: " + s.to_string());
  r->quarantined += repaired.quarantined_pages != 0;
  if (std::strcmp(what, "segment header") == 0) {
    larder::heap h;
    if (larder::status opened = larder::heap::open({.name = work, .mode = larder::open_mode::open}, &h); !opened.ok())
      return wrong("the repaired heap does not open: " + opened.to_string());
  }
  larder::salvage_report salvaged;
  s = larder::salvage_heap(larder::backing::file, work, out, &salvaged);
  if (!s.ok()) return wrong("salvage failed: " + s.to_string());
  larder::heap copy;
  larder::heap_options read_only{.name = out, .mode = larder::open_mode::open, .read_only = true};
  if (larder::status opened = larder::heap::open(read_only, &copy); !opened.ok())
    return wrong("the salvaged heap does not open: " + opened.to_string());
  struct {
    const char* name;
    const root_places& places;
    bool (*intact)(const larder::heap&);
  } roots[] = {{"list", places.list, list_intact},
                {"cold", places.cold, [](const larder::heap& h) { return cold_intact(h, true); }}};
  for (const auto& root : roots) {
    if (copy.find_root(root.name) == nullptr) {
      if (!may_lose(root.places, offset, what)) return wrong(std::string("root '") + root.name + "' was lost");
      ++r->roots_lost;
    } else if (!root.intact(copy)) {
      return wrong(std::string("root '") + root.name + "' came back wrong");
    }
  }
}

void flip_and_check(const std::string& path, int fd, std::uint64_t offset, const char* what, sweep_result* r,
                    const heap_places* recover) {
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
  if (recover != nullptr) repair_and_salvage(path, offset, what, *recover, r);
  ASSERT_EQ(::pwrite(fd, &byte, 1, static_cast<off_t>(offset)), 1);
}

TEST(DamageSweep, NoFlipIsSilentNoneKills) {
  temp_dir dir(true);  // repairs and salvages sync heap files hundreds of times
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
  heap_places places;
  {
    larder::heap h({.name = path, .mode = larder::open_mode::open, .read_only = true});
    places = find_places(h, *meta);
  }
  sweep_result r;
  std::uint64_t stride = full ? 1 : 7 * kThinning;
  // Which flips are repaired and salvaged too: all in the full sweep; in CI
  // one in `sample` (a repair and a salvage cost about as much as 15 flips;
  // a sanitizer build's walks of every heap at each open and close, more).
  std::size_t flip_number = 0;
  const std::size_t sample = full ? 1 : kSanitized ? 24 : 6;
  auto flip = [&](std::uint64_t at, const char* what) {
    flip_and_check(path, fd, at, what, &r, flip_number++ % sample == 0 ? &places : nullptr);
  };
  for (std::uint64_t at = 0; at < layout::kMetaOffset; at += stride) flip(at, "superblock");
  for (std::size_t lane = 0; lane < layout::kMaxLanes; ++lane) {
    if (meta->lanes[lane].state == 0) continue;
    std::uint64_t base = layout::kMetaOffset + offsetof(layout::heap_meta, lanes) + lane * sizeof(layout::lane_record);
    for (std::uint64_t at = 0; at < sizeof(layout::lane_record); ++at) flip(base + at, "lane");
  }
  for (std::size_t i = 0; i < layout::kMaxPods; ++i) {
    if (meta->pods[i].in_use == 0) continue;
    std::uint64_t base = layout::kMetaOffset + offsetof(layout::heap_meta, pods) + i * sizeof(layout::pod_record);
    for (std::uint64_t at = 0; at < sizeof(layout::pod_record); ++at) flip(base + at, "pod");
  }
  for (std::size_t i = 0; i < layout::kMaxRoots; ++i) {
    if (meta->roots[i].in_use == 0) continue;
    std::uint64_t base = layout::kMetaOffset + offsetof(layout::heap_meta, roots) + i * sizeof(layout::root_record);
    for (std::uint64_t at = 0; at < sizeof(layout::root_record); ++at) flip(base + at, "root");
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
  std::size_t samples = full ? 20000 : 1500 / kThinning;
  for (std::size_t k = 0; k < samples; ++k) {
    std::uint64_t at = headers[random() % headers.size()] + random() % 8192;
    flip(at, "segment header");
  }
  ::close(fd);
  std::printf("%zu flips: %zu reported by check, %zu refused by open, %zu silent\n", r.flips, r.reported, r.refused,
              r.silent);
  std::printf("%zu repaired and salvaged: %zu repairs quarantined a page, %zu roots lost to damage where they live, "
              "%zu wrong\n",
              r.recovered, r.quarantined, r.roots_lost, r.wrong);
  EXPECT_EQ(r.silent, 0u) << "first: " << r.first_silent;
  EXPECT_EQ(r.wrong, 0u) << "first: " << r.first_wrong;
  larder::heap h({.name = path, .mode = larder::open_mode::open, .read_only = true});
  EXPECT_TRUE(data_intact(h)) << "the sweep did not restore the file";
}

}  // namespace
