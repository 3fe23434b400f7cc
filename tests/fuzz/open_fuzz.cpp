// libFuzzer target: damaged heap images through larder::check_heap and
// larder::heap::open. Neither may crash, hang or touch memory outside the
// heap, whatever the image holds.
//
// Each input becomes a heap file, in one of two forms:
//  * a whole heap image: an input that starts with the magic "LRDRHEAP" is
//    written to the file as it is (a damaged heap found in the field can be
//    replayed this way);
//  * anything else is a list of patches over a real seed heap that
//    LLVMFuzzerInitialize builds (two pods, roots, small blocks with local
//    and remote frees, a huge block, and an undo-log lane holding an
//    uncommitted transaction), so that mutations land in the structures
//    rather than in the megabytes of zeros a raw image is made of:
//        input := flags:u8 patch*
//        patch := region:u8 offset:u16le length:u8 bytes[length % 33]
//    `region` indexes the seed's structures (superblock copies, metadata
//    header, pod, root and lane records, segment table, segment headers, the
//    first bytes of pages and of the log); `offset` is taken modulo the
//    region's size. Region 255 truncates the file to offset * 4096 bytes.
//    After the patches, flags bit 0 reseals both superblock copies, bit 1
//    the seed lane's log records and bit 2 its commit slots, so that damage
//    that passes the checksums (which random mutation never forges) is
//    explored too. The empty input is the seed itself.
// Then: check_heap read-only, (flags bit 3) check_heap with repair, open
// read-only and close, open for writing (which runs recovery and adopts the
// allocator's pages) and close, and check_heap again.
#include "allocator/segment.hpp"
#include "recovery/layout.hpp"
#include "recovery/superblock.hpp"
#include "recovery/undo_log.hpp"

#include <larder/check.hpp>
#include <larder/larder.hpp>
#include <larder/transaction.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace layout = larder::layout;

// Above the sanitizers' shadow memory on x86-64 Linux (which ends at 16 TiB) and
// below ASan's allocator (at 0x600000000000).
constexpr std::uintptr_t kSeedBase = std::uintptr_t{0x300000000000};
constexpr std::size_t kSegment = layout::kSegmentSize;

struct region {
  std::size_t start;
  std::size_t size;
};

struct fuzz_state {
  std::string dir;
  std::string path;
  std::vector<std::uint8_t> seed;
  std::vector<std::uint8_t> work;  // the seed, with the current input's pages patched
  std::vector<std::size_t> nonzero_pages;  // 4 KiB pages of the seed that hold anything
  std::vector<region> regions;
  std::size_t lane_at = 0;  // the seed lane's record (file offset), 0 if none
  std::size_t log_at = 0;   // its first extent
};

fuzz_state* g_state = nullptr;

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "open_fuzz: %s\n", what);
  std::abort();
}

std::vector<std::uint8_t> read_file(const std::string& path) {
  std::vector<std::uint8_t> bytes;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("cannot read the seed heap");
  std::uint8_t buffer[1 << 16];
  for (ssize_t n; (n = ::read(fd, buffer, sizeof(buffer))) > 0;) bytes.insert(bytes.end(), buffer, buffer + n);
  ::close(fd);
  return bytes;
}

larder::heap_options options_for(const std::string& path, larder::open_mode mode) {
  larder::heap_options o;
  o.kind = larder::backing::file;
  o.name = path;
  o.mode = mode;
  o.reserve = 16 * kSegment;
  o.base = kSeedBase;
  return o;
}

// The seed: every structure the checker and the open path read.
void build_seed(const std::string& path) {
  {
    larder::heap h(options_for(path, larder::open_mode::create));
    larder::pod other;
    if (!h.make_pod("other", &other).ok()) die("make_pod");
    std::vector<void*> blocks;
    for (int i = 0; i < 600; ++i) blocks.push_back((i % 2 ? other : h.default_pod()).allocate(16 + (i % 40) * 48));
    for (std::size_t i = 0; i < blocks.size(); i += 3) larder::heap::deallocate(blocks[i]);
    std::thread remote([&] {
      for (std::size_t i = 1; i < blocks.size(); i += 5)
        if (i % 3 != 0) larder::heap::deallocate(blocks[i]);
    });
    remote.join();
    void* huge = h.allocate(std::size_t{3} << 20);
    auto* values = static_cast<std::uint64_t*>(h.allocate(64 * sizeof(std::uint64_t)));
    if (huge == nullptr || values == nullptr) die("allocate");
    (void)h.set_root("huge", huge, std::size_t{3} << 20);
    (void)h.set_root("values", values, 64 * sizeof(std::uint64_t));
    (void)h.set_root("block", blocks[2], 64);
    if (!h.close().ok()) die("close");
  }
  // An uncommitted transaction: a child stops in the middle of one.
  pid_t pid = ::fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    larder::heap h(options_for(path, larder::open_mode::open));
    auto* values = static_cast<std::uint64_t*>(h.find_root("values"));
    larder::transaction tx(h);
    for (int i = 0; i < 4; ++i) {
      tx.snapshot(&values[i * 8], sizeof(std::uint64_t));
      values[i * 8] = 0xDEAD;
    }
    void* fresh = tx.allocate(200);
    (void)fresh;
    ::msync(h.base(), 8 * kSegment, MS_SYNC);
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) die("the seed's transaction child failed");
}

template <class T>
T get(const std::vector<std::uint8_t>& b, std::size_t at) {
  T v{};
  if (at + sizeof(T) <= b.size()) std::memcpy(&v, b.data() + at, sizeof(T));
  return v;
}

void add(fuzz_state* st, std::size_t start, std::size_t size) {
  if (start < st->seed.size() && size > 0) st->regions.push_back({start, std::min(size, st->seed.size() - start)});
}

// Where the seed's structures are.
void map_regions(fuzz_state* st) {
  const std::size_t meta = layout::kMetaOffset;
  add(st, 0, layout::kSuperblockSize);
  add(st, layout::kSuperblockSize, layout::kSuperblockSize);
  add(st, meta, 64);
  add(st, meta + offsetof(layout::heap_meta, pods), 4 * sizeof(layout::pod_record));
  std::size_t high = get<std::uint64_t>(st->seed, meta + 8);
  add(st, meta + offsetof(layout::heap_meta, segments), 4 * (high + 2));
  for (std::size_t slot = 0; slot < layout::kMaxRoots; ++slot) {
    std::size_t at = meta + offsetof(layout::heap_meta, roots) + slot * sizeof(layout::root_record);
    if (get<std::uint32_t>(st->seed, at + offsetof(layout::root_record, in_use)) != 0)
      add(st, at, sizeof(layout::root_record));
  }
  for (std::size_t n = 0; n < layout::kMaxLanes; ++n) {
    std::size_t at = meta + offsetof(layout::heap_meta, lanes) + n * sizeof(layout::lane_record);
    if (get<std::uint32_t>(st->seed, at) == 0) continue;
    add(st, at, sizeof(layout::lane_record));
    std::uint64_t first = layout::extent_first(get<std::uint64_t>(st->seed, at + offsetof(layout::lane_record, extents)));
    add(st, first * kSegment, 4096);
    if (st->lane_at == 0) {
      st->lane_at = at;
      st->log_at = first * kSegment;
    }
  }
  for (std::size_t i = 1; i < high; ++i) {
    std::uint32_t state = layout::entry_state(get<std::uint32_t>(st->seed, meta + offsetof(layout::heap_meta, segments) + 4 * i));
    if (state != layout::kSegmentPages && state != layout::kSegmentHugeHead) continue;
    add(st, i * kSegment, 64 + 64 * 64);
    add(st, i * kSegment + larder::alloc::kSegmentHeaderSize, 4096);  // blocks of the first page
    add(st, i * kSegment + layout::kSliceSize, 4096);
  }
}

void init_state() {
  auto* st = new fuzz_state();
  const char* tmp = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  std::string pattern = std::string(tmp) + "/larder-fuzz-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) die("mkdtemp");
  st->dir = pattern;
  st->path = st->dir + "/heap";
  build_seed(st->path);
  st->seed = read_file(st->path);
  for (std::size_t at = 0; at < st->seed.size(); at += 4096) {
    std::size_t n = std::min<std::size_t>(4096, st->seed.size() - at);
    for (std::size_t k = 0; k < n; ++k) {
      if (st->seed[at + k] != 0) {
        st->nonzero_pages.push_back(at);
        break;
      }
    }
  }
  map_regions(st);
  st->work = st->seed;
  if (const char* out = std::getenv("LARDER_FUZZ_SEED_OUT")) {
    FILE* f = std::fopen(out, "wb");
    if (f == nullptr || std::fwrite(st->seed.data(), 1, st->seed.size(), f) != st->seed.size()) die("writing the seed");
    std::fclose(f);
  }
  g_state = st;
  std::atexit([] {
    ::unlink(g_state->path.c_str());
    ::rmdir(g_state->dir.c_str());
  });
}

void write_at(int fd, const void* data, std::size_t size, std::size_t offset) {
  if (::pwrite(fd, data, size, static_cast<off_t>(offset)) != static_cast<ssize_t>(size)) die("pwrite");
}

// Recomputes the checksums the flags ask for, in the patched image.
void reseal(const fuzz_state& st, std::uint8_t flags, std::vector<std::uint8_t>* image) {
  std::uint8_t* b = image->data();
  if (flags & 1) {
    for (std::size_t c = 0; c < layout::kSuperblockCopies; ++c) {
      layout::superblock sb;
      std::memcpy(&sb, b + c * sizeof(sb), sizeof(sb));
      larder::recovery::seal_superblock(&sb);
      std::memcpy(b + c * sizeof(sb), &sb, sizeof(sb));
    }
  }
  if ((flags & 2) && st.log_at != 0) {
    for (std::size_t at = st.log_at; at + sizeof(larder::recovery::record_header) <= st.log_at + 4096;) {
      larder::recovery::record_header h;
      std::memcpy(&h, b + at, sizeof(h));
      std::size_t size = h.size % 4096;
      if (at + sizeof(h) + size > image->size()) break;
      h.size = static_cast<std::uint32_t>(size);
      h.checksum = larder::recovery::record_checksum(h, b + at + sizeof(h));
      std::memcpy(b + at, &h, sizeof(h));
      at += larder::recovery::record_span(size);
    }
  }
  if ((flags & 4) && st.lane_at != 0) {
    for (std::size_t k = 0; k < 2; ++k) {
      std::size_t at = st.lane_at + offsetof(layout::lane_record, commits) + k * sizeof(layout::commit_slot);
      layout::commit_slot slot;
      std::memcpy(&slot, b + at, sizeof(slot));
      if (slot.seq != 0 || slot.time_ns != 0) slot.line_check = larder::recovery::commit_slot_line_check(slot);
      slot.checksum = larder::recovery::commit_slot_checksum(slot);
      std::memcpy(b + at, &slot, sizeof(slot));
    }
  }
}

// Writes the heap file that `data` describes.
void write_input(fuzz_state& st, const std::uint8_t* data, std::size_t size) {
  int fd = ::open(st.path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) die("open");
  if (::ftruncate(fd, 0) != 0) die("ftruncate");
  if (size >= 8 && std::memcmp(data, "LRDRHEAP", 8) == 0) {
    write_at(fd, data, size, 0);
    ::close(fd);
    return;
  }
  std::vector<std::uint8_t>& image = st.work;
  std::vector<std::size_t> pages = st.nonzero_pages;
  std::size_t length = image.size();
  std::uint8_t flags = size > 0 ? data[0] : 0;
  for (std::size_t at = 1; at + 4 <= size;) {
    std::uint8_t which = data[at];
    std::size_t offset = data[at + 1] | (std::size_t{data[at + 2]} << 8);
    std::size_t n = std::min<std::size_t>(data[at + 3] % 33, size - at - 4);
    const std::uint8_t* bytes = data + at + 4;
    at += 4 + n;
    if (which == 255) {
      length = std::min(length, (offset * 4096) % (image.size() + 4096));
      continue;
    }
    const region& r = st.regions[which % st.regions.size()];
    std::size_t start = r.start + offset % r.size;
    n = std::min(n, image.size() - start);
    std::memcpy(image.data() + start, bytes, n);
    for (std::size_t page = start & ~std::size_t{4095}; page < start + n; page += 4096) pages.push_back(page);
  }
  reseal(st, flags, &image);
  if (flags & 6) pages.push_back(st.log_at), pages.push_back(st.lane_at & ~std::size_t{4095});
  if (::ftruncate(fd, static_cast<off_t>(length)) != 0) die("ftruncate");
  for (std::size_t page : pages)
    if (page < length) write_at(fd, image.data() + page, std::min<std::size_t>(4096, length - page), page);
  ::close(fd);
  for (std::size_t page : pages)  // back to the seed for the next input
    std::memcpy(image.data() + page, st.seed.data() + page, std::min<std::size_t>(4096, image.size() - page));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  init_state();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz_state& st = *g_state;
  write_input(st, data, size);
  larder::check_report report;
  (void)larder::check_heap(st.path, false, &report);
  if (size > 0 && (data[0] & 8) != 0 && !(size >= 8 && std::memcmp(data, "LRDRHEAP", 8) == 0)) (void)larder::check_heap(st.path, true, &report);
  for (bool read_only : {true, false}) {
    larder::heap h;
    larder::heap_options o = options_for(st.path, larder::open_mode::open);
    o.read_only = read_only;
    if (larder::heap::open(o, &h).ok()) {
      (void)h.find_root("values");
      (void)h.close();
    }
  }
  (void)larder::check_heap(st.path, false, &report);
  return 0;
}
