// Creating, opening, growing and closing heaps; see heap_impl.hpp.
#include "runtime/heap_impl.hpp"

#include "larder_config.h"

#include "allocator/alloc.hpp"
#include "allocator/thread.hpp"
#include "port/assert.hpp"
#include "port/os.hpp"
#include "recovery/records.hpp"
#include "recovery/superblock.hpp"
#include "runtime/checkout_mark.hpp"
#include "runtime/close_journal.hpp"
#include "runtime/lane_report.hpp"
#include "runtime/transaction_engine.hpp"

#include <errno.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace larder {

namespace {

constexpr std::size_t kMinReserve = 16 * layout::kSegmentSize;
// Where larder places heaps when the caller does not say: between 16 TiB and
// 80 TiB (larder_config.h; lower in a ThreadSanitizer build). Below that
// live non-PIE executables and brk; position-independent executables load
// at 0x5555_5555_4000 plus up to 1 TiB of randomisation (85-86 TiB), and
// the mmap area sits near 128 TiB. A heap placed where a later run's
// executable lands could not be opened there.
constexpr std::uintptr_t kPlacementLow = LARDER_PLACEMENT_LOW;
constexpr std::uintptr_t kPlacementHigh = LARDER_PLACEMENT_HIGH;

std::string hex(std::uintptr_t value) {
  char text[32];
  std::snprintf(text, sizeof(text), "0x%lx", static_cast<unsigned long>(value));
  return text;
}

// An open heap of this process whose reserve overlaps [base, base + size).
alloc::region* overlapping_heap(std::uintptr_t base, std::size_t size) {
  struct search {
    std::uintptr_t base, end;
    alloc::region* found;
  } s{base, base + size, nullptr};
  alloc::for_each_region(
      [](alloc::region* r, void* context) {
        auto* s = static_cast<search*>(context);
        if (r->base() < s->end && s->base < r->base() + r->reserve() && r != alloc::g_process_region) s->found = r;
      },
      &s);
  return s.found;
}

// Removes NAME.new-PID-N files that a crash while creating NAME left, and
// NAME.checkout.tmp-PID-N files of a checkout's mark (checkout_mark.hpp)
// that a crash while publishing it left, once their process is gone.
void remove_stale_temporaries(const std::string& name) {
  std::size_t slash = name.rfind('/');
  std::string directory = slash == std::string::npos ? "." : slash == 0 ? "/" : name.substr(0, slash);
  std::string base = slash == std::string::npos ? name : name.substr(slash + 1);
  for (const char* kind : {".new-", ".checkout.tmp-"}) {
    struct context {
      std::string directory, prefix;
    } c{directory, base + kind};
    (void)port::for_each_directory_entry(
        directory.c_str(), c.prefix.c_str(),
        [](const char* entry, void* p) {
          auto* c = static_cast<context*>(p);
          char* end = nullptr;
          long pid = std::strtol(entry + c->prefix.size(), &end, 10);
          if (end == entry + c->prefix.size() || *end != '-' || port::process_exists(static_cast<int>(pid))) return;
          (void)port::remove_file((c->directory + "/" + entry).c_str());
        },
        &c);
  }
}

// Under the crash harness a file heap is mapped privately, so only what
// the persistence domain writes reaches the file.
bool simulating_crashes(backing kind, bool writable) {
  return kind == backing::file && writable && recovery::crash_simulation().active;
}

// heap_busy, saying who holds the lock where the system tells.
status busy(int fd, const std::string& name) {
  bool read_lock = false;
  int pid = -1;
  bool known = port::writer_lock_holder(fd, &read_lock, &pid) == 0;
  std::string who = pid > 0 ? "process " + std::to_string(pid) : "another process";
  if (!known || !read_lock) return status(errc::heap_busy, name + ": " + who + " has the heap open for writing");
  return status(errc::heap_busy, name + ": " + who + " holds a read lock on the heap file's first byte: shared "
                                     "writers have the heap open (open it with shared_writers to join them), or "
                                     "another program does, which must let go of it");
}

// Heaps open here for writing. Their file locks are taken on a descriptor
// of their own (heap_impl::lock_fd): a lock belongs to the open file
// description, which a mapping also keeps alive, so a forked child, which
// inherits the mapping, would otherwise hold the parent's locks for as long
// as it lives. The child closes its copy of each lock descriptor, so that
// the locks go when the parent lets go of them (a child may not write
// these heaps anyway).
std::atomic<heap_impl*> g_locking_heaps[alloc::kMaxRegions];

void close_lock_fds_in_child() {
  for (auto& slot : g_locking_heaps) {
    heap_impl* impl = slot.exchange(nullptr, std::memory_order_relaxed);
    if (impl == nullptr) continue;
    port::close_fd(impl->lock_fd);
    impl->lock_fd = -1;
  }
}

void remember_lock_fd(heap_impl* impl) {
  static bool handler = port::at_fork(nullptr, nullptr, &close_lock_fds_in_child) == 0;
  (void)handler;
  for (auto& slot : g_locking_heaps) {
    heap_impl* empty = nullptr;
    if (slot.compare_exchange_strong(empty, impl)) return;
  }
}

void forget_lock_fd(heap_impl* impl) noexcept {
  for (auto& slot : g_locking_heaps) {
    heap_impl* expected = impl;
    if (slot.compare_exchange_strong(expected, nullptr)) return;
  }
}

// The second descriptor of the heap's file or shm object, for its locks.
int open_lock_fd(backing kind, const std::string& path, int* out) {
  bool created = false;
  return kind == backing::file ? port::open_file(path.c_str(), false, false, true, out, &created)
                               : port::open_shm(path.c_str(), false, false, true, out, &created);
}

}  // namespace

status heap_impl::open(const heap_options& options, heap_impl** out) {
  *out = nullptr;
  if (options.kind != backing::anonymous && options.name.empty())
    return status(errc::invalid_argument, "a file or shm heap needs a name");
  if (options.shared_writers && options.kind == backing::anonymous)
    return status(errc::invalid_argument, "an anonymous heap belongs to one process; shared writers need shm or a file");
  if (options.kind == backing::shm && (options.name[0] != '/' || options.name.find('/', 1) != std::string::npos))
    return status(errc::invalid_argument, "a shm name looks like \"/name\" with no other slash");
  auto* impl = new heap_impl();
  impl->kind = options.kind;
  impl->name = options.name;
  impl->writable = !options.read_only;
  status s;
  if (options.kind == backing::anonymous) {
    if (options.mode == open_mode::open) {
      s = status(errc::not_found, "an anonymous heap can only be created");
    } else if (options.read_only) {
      s = status(errc::invalid_argument, "an anonymous heap cannot be read-only");
    } else {
      s = impl->create_new(options);
    }
  } else {
    bool create = options.mode != open_mode::open && !options.read_only;
    bool exclusive = options.mode == open_mode::create;
    bool created = false;
    int err = 0;
    if (options.kind == backing::file) {
      // A new heap file is built under a temporary name and renamed into
      // place once durable, so a crash never leaves a half-made heap.
      err = port::open_file(options.name.c_str(), false, false, impl->writable, &impl->fd, &created);
      if (err == 0 && exclusive) {
        port::close_fd(impl->fd);
        impl->fd = -1;
        err = EEXIST;
      }
      if (err == ENOENT && create) {
        impl->temporary_name = options.name + ".new-" + std::to_string(port::process_id()) + "-" +
                               std::to_string(port::random64() % 1000000);
        err = port::open_file(impl->temporary_name.c_str(), true, true, true, &impl->fd, &created);
      }
    } else {
      err = port::open_shm(options.name.c_str(), create, exclusive, impl->writable, &impl->fd, &created);
    }
    if (err == ENOENT) {
      s = status(errc::not_found, options.name);
    } else if (err == EEXIST) {
      s = status(errc::already_exists, options.name);
    } else if (err != 0) {
      s = status::from_errno(err, "opening " + options.name);
    } else if (impl->writable &&
               (err = open_lock_fd(options.kind, impl->temporary_name.empty() ? options.name : impl->temporary_name,
                                   &impl->lock_fd)) != 0) {
      s = status::from_errno(err, "opening " + options.name + " for its lock");
    } else if (impl->writable && !(s = impl->take_writer_lock(options.shared_writers)).ok()) {
      // s says why
    } else {
      if (options.kind == backing::file) remove_stale_temporaries(options.name);
      // Unknown: taken for a disk file system's.
      (void)port::hole_reads_take_storage(impl->fd, &impl->hole_reads_take_storage);
      std::uint64_t size = 0;
      if ((err = port::file_size(impl->fd, &size)) != 0) {
        s = status::from_errno(err, "reading the size of " + options.name);
      } else if (created) {
        s = impl->create_new(options);
        if (s.ok() && !impl->temporary_name.empty()) s = impl->publish(options);
        if (!s.ok()) {
          if (options.kind == backing::file) port::remove_file(impl->temporary_name.c_str());
          if (options.kind == backing::shm) port::remove_shm(options.name.c_str());
        }
      } else {
        if (options.kind == backing::file) s = refuse_if_checkout_marked(options.name);
        if (s.ok()) s = impl->open_existing(size);
      }
    }
  }
  if (s.ok() && impl->attaching) {
    s = attach_client(*impl, impl->first_client);
    // The first client let no one in while it set the heap up; from now on
    // the others may attach beside it.
    if (s.ok() && impl->first_client) {
      if (int err = port::lock_writer_shared(impl->lock_fd)) s = status::from_errno(err, "sharing the writer lock");
    }
    if (!s.ok()) impl->unmap_unattached();
  }
  // On failure the close below lets go of both locks at once.
  if (s.ok() && impl->attaching) (void)port::unlock_attach(impl->lock_fd);
  impl->attaching = false;
  if (s.ok() && impl->lock_fd >= 0) remember_lock_fd(impl);
  if (!s.ok()) {
    if (impl->lock_fd >= 0) port::close_fd(impl->lock_fd);
    if (impl->fd >= 0) port::close_fd(impl->fd);
    delete impl;
    // Another process made the heap between our look and our rename.
    if (s.is(errc::already_exists) && options.mode == open_mode::open_or_create) {
      heap_options again = options;
      again.mode = open_mode::open;
      return open(again, out);
    }
    return s;
  }
  *out = impl;
  return {};
}

// A lone writer holds the writer lock exclusively. Shared writers each
// hold it shared, and take the attach lock while they attach: the one that
// then gets the writer lock exclusively is alone, and sets the heap up as a
// lone writer's open would before it lets the others in.
status heap_impl::take_writer_lock(bool shared_writers) {
  if (!shared_writers) {
    int err = port::lock_writer(lock_fd);
    if (err == 0) return {};
    return err == EAGAIN ? busy(lock_fd, name) : status::from_errno(err, "locking " + name);
  }
  if (int err = port::lock_attach(lock_fd)) return status::from_errno(err, "waiting to attach to " + name);
  attaching = true;
  int err = port::lock_writer(lock_fd);
  if (err == 0) {
    first_client = true;
    return {};
  }
  if (err != EAGAIN) return status::from_errno(err, "locking " + name);
  bool read_lock = false;
  int pid = -1;
  err = port::writer_lock_holder(lock_fd, &read_lock, &pid);
  if (err == ENOENT && port::lock_writer(lock_fd) == 0) {  // a lone writer let go meanwhile
    first_client = true;
    return {};
  }
  if (err == 0 && !read_lock) return busy(lock_fd, name);
  err = port::lock_writer_shared(lock_fd);
  if (err == EAGAIN) return busy(lock_fd, name);
  if (err != 0) return status::from_errno(err, "locking " + name);
  return {};
}

void heap_impl::unmap_unattached() noexcept {
  alloc::forget_region(&region);
  alloc::unregister_region(&region);
  region.destroy();
  port::unmap(reinterpret_cast<void*>(superblock.base), superblock.reserve);
}

status heap_impl::remove(backing kind, const std::string& name) {
  if (kind == backing::anonymous) return status(errc::invalid_argument, "an anonymous heap has nothing to remove");
  int fd = -1;
  bool created = false;
  int err = kind == backing::file ? port::open_file(name.c_str(), false, false, false, &fd, &created)
                                  : port::open_shm(name.c_str(), false, false, false, &fd, &created);
  if (err == ENOENT) return status(errc::not_found, name);
  if (err != 0) return status::from_errno(err, "opening " + name);
  std::uint64_t size = 0;
  layout::superblock sb{};
  int copy = 0;
  status s;
  bool read_lock = false;
  int holder = -1;
  if ((err = port::file_size(fd, &size)) != 0) {
    s = status::from_errno(err, "reading the size of " + name);
  } else if (status found = recovery::read_superblock(fd, size, &sb, &copy);
             found.is(errc::not_a_heap) || (found.is(errc::truncated) && size < 2 * layout::kSuperblockSize)) {
    // A damaged heap may go; something that never was one stays.
    s = status(errc::not_a_heap, name + ": nothing removed");
  } else if (port::writer_lock_holder(fd, &read_lock, &holder) == 0) {
    s = status(errc::heap_busy, name + ": " + (holder > 0 ? "process " + std::to_string(holder) : "another process") +
                                    (read_lock ? " and maybe others have" : " has") + " the heap open for writing");
  }
  port::close_fd(fd);
  if (!s.ok()) return s;
  err = kind == backing::file ? port::remove_file(name.c_str()) : port::remove_shm(name.c_str());
  if (err != 0) return status::from_errno(err, "removing " + name);
  if (kind == backing::file) {
    remove_stale_temporaries(name);
    return clear_checkout_mark(name);
  }
  return {};
}

status heap_impl::publish(const heap_options& options) {
  // The rename is a persistence point of its own: a crash before it
  // leaves no heap.
  if (int err = domain->persist(reinterpret_cast<void*>(superblock.base), 0))
    return status::from_errno(err, "writing the new heap");
  int err = port::rename_durably(temporary_name.c_str(), options.name.c_str());
  if (err == 0) {
    temporary_name.clear();
    return {};
  }
  alloc::unregister_region(&region);
  region.destroy();
  port::unmap(reinterpret_cast<void*>(superblock.base), superblock.reserve);
  if (err == EEXIST) return status(errc::already_exists, options.name);
  return status::from_errno(err, "naming the new heap " + options.name);
}

void heap_impl::choose_domain() {
  if (kind != backing::file) {
    domain = recovery::make_memory_domain();
  } else if (simulating_crashes(kind, writable)) {
    domain = recovery::make_crash_domain(fd, superblock.base);
  } else {
    domain = recovery::make_file_domain(fd, superblock.base);
  }
}

status heap_impl::map_at(std::uintptr_t base, std::size_t reserve) {
  int err = port::map_fixed(base, reserve, fd, writable, simulating_crashes(kind, writable));
  if (err == EEXIST) {
    std::string where = "the heap must be mapped at " + hex(base) + "-" + hex(base + reserve) +
                        " (pointers in it are absolute), which is already in use in this process";
    if (alloc::region* other = overlapping_heap(base, reserve))
      where += " by another larder heap (at " + hex(other->base()) +
               "): a copy of this heap, or a heap whose range overlaps it, can only be open in another process";
    return status(errc::address_taken, where);
  }
  if (err != 0) return status::from_errno(err, "mapping the heap at " + hex(base));
  return {};
}

status heap_impl::choose_base_and_map(const heap_options& options, std::size_t reserve) {
  if (options.base != 0) {
    if (options.base % layout::kSegmentSize != 0)
      return status(errc::invalid_argument, "the base address must be a multiple of 4 MiB");
    if (options.base + reserve > layout::kAddressLimit || options.base + reserve < options.base)
      return status(errc::invalid_argument, "the heap must lie below 2^47");
    return map_at(options.base, reserve);
  }
  // Any segment-aligned base in the window, drawn at random: heaps made
  // separately (and later opened together) then overlap only as often as
  // their reserves are a large part of the window (2 x 64 GiB / 64 TiB for
  // two default heaps), and never share one base by construction.
  if (reserve > kPlacementHigh - kPlacementLow) return status(errc::invalid_argument, "the reserve is too large");
  std::size_t positions = (kPlacementHigh - kPlacementLow - reserve) / layout::kSegmentSize + 1;
  for (int attempt = 0; attempt < 64; ++attempt) {
    std::uintptr_t base = kPlacementLow + (port::random64() % positions) * layout::kSegmentSize;
    int err = port::map_fixed(base, reserve, fd, writable, simulating_crashes(kind, writable));
    if (err == 0) {
      superblock.base = base;
      return {};
    }
    if (err != EEXIST) return status::from_errno(err, "reserving address space for the heap");
  }
  return status(errc::address_taken, "found no free address range for the heap");
}

status heap_impl::create_new(const heap_options& options) {
  std::size_t reserve = (options.reserve + layout::kSegmentSize - 1) & ~(layout::kSegmentSize - 1);
  if (reserve < kMinReserve) reserve = kMinReserve;
  if (reserve > layout::kMaxReserve) return status(errc::invalid_argument, "the reserve may be at most 2 TiB");
  std::size_t initial = layout::kSegmentSize;
  if (fd >= 0) {
    if (int err = port::grow_file(fd, initial))
      return status::from_errno(err, "sizing the new heap " + name);
  }
  superblock.base = options.base;
  if (status s = choose_base_and_map(options, reserve); !s.ok()) return s;
  choose_domain();
  if (int err = reserve_fixed_metadata()) return status::from_errno(err, "giving the new heap " + name + " storage");
  superblock.magic = layout::kHeapMagic;
  superblock.format_major = layout::kFormatMajor;
  superblock.format_minor = layout::kFormatMinor;
  superblock.generation = 1;
  std::uint64_t id[2] = {port::random64(), port::random64()};
  std::memcpy(superblock.uuid, id, sizeof(id));
  superblock.uuid[6] = static_cast<std::uint8_t>((superblock.uuid[6] & 0x0F) | 0x40);  // version 4
  superblock.uuid[8] = static_cast<std::uint8_t>((superblock.uuid[8] & 0x3F) | 0x80);  // RFC 4122 variant
  superblock.reserve = reserve;
  superblock.size = fd >= 0 ? initial : reserve;
  superblock.layout_signature = layout::kLayoutSignature;
  superblock.backing = static_cast<std::uint32_t>(kind);
  superblock.created_ns = port::realtime_ns();

  auto* base = reinterpret_cast<std::uint8_t*>(superblock.base);
  auto* meta = reinterpret_cast<layout::heap_meta*>(base + layout::kMetaOffset);
  meta->magic = layout::kMetaMagic;
  meta->segments_high = 1;
  meta->segments[0] = layout::segment_entry(layout::kSegmentMeta, 0);
  std::strcpy(meta->pods[0].name, "default");
  meta->pods[0].id = 0;
  meta->pods[0].in_use = recovery::kPodLive;
  recovery::seal(&meta->pods[0]);
  // Both copies hold generation 1; the metadata is durable before either
  // superblock says the heap exists.
  recovery::seal_superblock(&superblock);
  if (int err = domain->persist(meta, sizeof(*meta))) return status::from_errno(err, "writing the new heap");
  std::memcpy(base + layout::kSuperblockSize, &superblock, sizeof(superblock));
  std::memcpy(base, &superblock, sizeof(superblock));
  superblock_copy = 0;
  if (int err = domain->persist(base, layout::kMetaOffset)) return status::from_errno(err, "writing the new heap");
  return start_region(superblock.size, false);
}

status heap_impl::open_existing(std::uint64_t file_size) {
  status found = recovery::read_superblock(fd, file_size, &superblock, &superblock_copy);
  // Beside other clients, or as a reader beside a live writer, the heap may
  // have grown since its size was read: writers grow the file before they
  // write the superblock, so the size read again covers it.
  const bool beside_writers = (attaching && !first_client) || !writable;
  for (int again = 0; found.is(errc::truncated) && beside_writers && again < 3; ++again) {
    if (port::file_size(fd, &file_size) != 0) break;
    found = recovery::read_superblock(fd, file_size, &superblock, &superblock_copy);
  }
  if (status s = found; !s.ok()) {
    s = status(static_cast<errc>(s.code()), name + ": " + s.message());
    return s;
  }
  if (status s = map_at(superblock.base, superblock.reserve); !s.ok()) return s;
  choose_domain();
  // A copy may have lost storage (made sparse), or moved to where reading
  // a hole takes storage: a writer gives the metadata block what it needs
  // before anything reads or writes it.
  if (writable) {
    if (int err = reserve_fixed_metadata()) {
      port::unmap(reinterpret_cast<void*>(superblock.base), superblock.reserve);
      return status::from_errno(err, "giving the metadata of " + name + " storage");
    }
  }
  // A crash between the two superblock writes of a growth can leave the
  // surviving copy with the older, smaller size; the file itself tells.
  std::uint64_t usable = file_size < superblock.reserve ? file_size : superblock.reserve;
  usable &= ~std::uint64_t{layout::kSegmentSize - 1};
  bool grown = usable > superblock.size;
  if (grown) superblock.size = usable;
  auto* stored = reinterpret_cast<layout::heap_meta*>(superblock.base + layout::kMetaOffset);
  // A writer beside a reader grows the file before segments_high covers
  // the growth, so a table past the size read above may only be newer than
  // that size: the file's size now says.
  const std::uint64_t high = stored->segments_high;
  std::uint64_t now = 0;
  if (!writable && high > superblock.size / layout::kSegmentSize && port::file_size(fd, &now) == 0) {
    std::uint64_t later = now < superblock.reserve ? now : superblock.reserve;
    later &= ~std::uint64_t{layout::kSegmentSize - 1};
    if (later > superblock.size) superblock.size = later;
  }
  if (attaching && !first_client) {
    // The others grow the file before they use what they grew.
    std::uint64_t later = 0;
    if (port::file_size(fd, &later) == 0) {
      later = std::min<std::uint64_t>(later, superblock.reserve) & ~std::uint64_t{layout::kSegmentSize - 1};
      superblock.size = std::max<std::uint64_t>(superblock.size, later);
    }
  }
  if (stored->magic != layout::kMetaMagic || high > superblock.size / layout::kSegmentSize) {
    port::unmap(reinterpret_cast<void*>(superblock.base), superblock.reserve);
    return status(errc::corrupt, name + ": the metadata block is damaged");
  }
  // A client joining others finds the heap as they keep it: recovery,
  // upgrades and repairs were the first client's, and dead clients are
  // recovered when it attaches (runtime/shared_writers.hpp).
  if (attaching && !first_client) return start_region(superblock.size, false);
  // Roll back what crashed transactions left before the allocator looks at
  // its metadata: they may have changed it.
  // Pages a crash left evicted come back before recovery writes into them.
  if (writable && kind == backing::shm) {
    if (status s = restore_evicted_pages(*this); !s.ok()) {
      port::unmap(reinterpret_cast<void*>(superblock.base), superblock.reserve);
      return s;
    }
  }
  status recovered = writable ? recover_transactions(*this) : recover_for_reading();
  if (status s = recovered; !s.ok()) {
    port::unmap(reinterpret_cast<void*>(superblock.base), superblock.reserve);
    return status(static_cast<errc>(s.code()), name + ": " + s.message());
  }
  // Roots and pods are what a program finds its data by: a damaged record
  // refuses the open rather than hide or misdirect a root (larder check
  // --repair removes it).
  if (std::string why = recovery::first_record_damage(*stored, superblock); !why.empty()) {
    port::unmap(reinterpret_cast<void*>(superblock.base), superblock.reserve);
    return status(errc::corrupt, name + ": " + why + " (larder check --repair removes damaged records)");
  }
  // Older heaps are upgraded by their first writer: records sealed (1.3).
  // What 1.4 added (quarantined pages, a sparse backing, close journals,
  // the last-close time) needs nothing converted; the writer records the
  // format it writes in.
  bool upgrade = writable && superblock.format_major == layout::kFormatMajor &&
                 superblock.format_minor < layout::kFormatMinor;
  if (writable && !recovery::records_checksummed(superblock)) {
    if (int err = recovery::upgrade_records(stored, *domain)) {
      port::unmap(reinterpret_cast<void*>(superblock.base), superblock.reserve);
      return status::from_errno(err, "sealing the root and pod records of " + name);
    }
  }
  if (upgrade) superblock.format_minor = layout::kFormatMinor;
  if (status s = start_region(superblock.size, writable); !s.ok()) return s;
  if (writable && !attaching) forget_clients(*this);
  // A crash in the middle of a superblock update leaves one copy torn or
  // stale (and, in a growth, the file longer than both say): a writer
  // makes both copies current again, the usual two-step way.
  auto* base = reinterpret_cast<const std::uint8_t*>(superblock.base);
  bool copies_differ = std::memcmp(base, base + layout::kSuperblockSize, sizeof(layout::superblock)) != 0;
  if (writable && (grown || copies_differ || upgrade)) {
    if (int err = recovery::write_superblock(reinterpret_cast<void*>(superblock.base), &superblock, &superblock_copy,
                                             *domain)) {
      (void)close();
      return status::from_errno(err, "repairing the superblocks of " + name);
    }
  }
  return {};
}

// A reader cannot roll back in the file. Beside a live writer, a lane's
// pending transaction is the writer's work in progress, and the reader
// sees it as it goes, as it sees every other store. With no writer, the
// pending transaction crashed: the reader maps the heap copy-on-write and
// rolls it back in its own pages, so it sees the last committed state.
status heap_impl::recover_for_reading() {
  bool read_lock = false;
  int holder = -1;
  beside_live_writer = port::writer_lock_holder(fd, &read_lock, &holder) == 0;
  if (beside_live_writer && holder > 0) writer_pid = holder;
  status s = recover_transactions(*this);
  if (!s.is(errc::read_only)) return s;
  if (beside_live_writer) return {};
  lanes_found = describe_lanes(*reinterpret_cast<const layout::heap_meta*>(superblock.base + layout::kMetaOffset),
                               superblock.base, superblock.size);
  port::unmap(reinterpret_cast<void*>(superblock.base), superblock.reserve);
  if (int err = port::map_fixed(superblock.base, superblock.reserve, fd, true, true))
    return status::from_errno(err, "mapping a private copy to roll back a crashed transaction in");
  std::unique_ptr<recovery::persist_domain> file_domain = std::move(domain);
  domain = recovery::make_memory_domain();
  writable = true;
  s = recover_transactions(*this);
  writable = false;
  domain = std::move(file_domain);
  rolled_back_privately = s.ok();
  return s;
}

status heap_impl::start_region(std::size_t committed, bool adopt) {
  alloc::region_hooks hooks;
  hooks.context = this;
  if (fd >= 0) {
    hooks.grow = &heap_impl::grow;
    hooks.reserve_backing = &heap_impl::reserve_backing;
  }
  hooks.segments_claimed = &heap_impl::on_segments_claimed;
  hooks.segments_acquired = &heap_impl::on_segments_acquired;
  region.init(superblock.base, superblock.reserve, committed, fd >= 0, writable, hooks);
  if (int err = alloc::register_region(&region)) {
    port::unmap(reinterpret_cast<void*>(superblock.base), superblock.reserve);
    return status::from_errno(err, "too many heaps open");
  }
  if (adopt || !writable) {
    // Beside a live writer, pages change under the reader: the writer
    // checked them when it opened the heap.
    status s = adopt ? region.adopt_existing() : beside_live_writer ? status() : region.validate_segments();
    if (!s.ok()) {
      alloc::unregister_region(&region);
      region.destroy();
      port::unmap(reinterpret_cast<void*>(superblock.base), superblock.reserve);
      return status(static_cast<errc>(s.code()), name + ": " + s.message());
    }
  }
  return {};
}

void heap_impl::on_segments_acquired(void* context, std::size_t count) noexcept {
  auto* self = static_cast<heap_impl*>(context);
  if (migration_state* m = self->budget_holder.load(std::memory_order_acquire)) hold_for_budget(*m, count);
}

int heap_impl::grow(void* context, std::size_t size) {
  auto* self = static_cast<heap_impl*>(context);
  if (int err = port::grow_file(self->fd, size)) return err;
  // Other clients grow the heap too (under the same lock): the superblock
  // to update is the current one, and the size never goes down.
  if (self->shared_writers()) {
    std::uint64_t file_size = 0;
    layout::superblock current{};
    int copy = 0;
    if (port::file_size(self->fd, &file_size) == 0 &&
        recovery::read_superblock(self->fd, file_size, &current, &copy).ok()) {
      self->superblock = current;
      self->superblock_copy = copy;
    }
    if (self->superblock.size >= size) return 0;
  }
  self->superblock.size = size;
  return recovery::write_superblock(reinterpret_cast<void*>(self->superblock.base), &self->superblock,
                                    &self->superblock_copy, *self->domain);
}

int heap_impl::reserve_backing(void* context, std::uintptr_t start, std::size_t size) {
  return static_cast<heap_impl*>(context)->reserve_storage(reinterpret_cast<const void*>(start), size);
}

int heap_impl::reserve_storage(const void* start, std::size_t size) const noexcept {
  if (fd < 0) return 0;
  return port::reserve_file_range(fd, reinterpret_cast<std::uintptr_t>(start) - superblock.base, size);
}

// The backing grows as a hole: each part of the metadata block gets its
// storage before it is first written. Written from the start: the
// superblocks, the block's header and pod table, the first page of the
// segment table (the region reserves the rest as the heap grows), the
// write statistics, the lanes and the last-close time. Root records get
// theirs when set. Where reading a hole takes storage, all of it: it is
// all read.
int heap_impl::reserve_fixed_metadata() const noexcept {
  auto* meta = reinterpret_cast<layout::heap_meta*>(superblock.base + layout::kMetaOffset);
  const void* base = reinterpret_cast<const void*>(superblock.base);
  if (hole_reads_take_storage) return reserve_storage(base, layout::kMetaOffset + sizeof(*meta));
  if (int err = reserve_storage(base, layout::kMetaOffset + offsetof(layout::heap_meta, roots))) return err;
  if (int err = reserve_storage(&meta->segments[0], sizeof(meta->segments[0]))) return err;
  return reserve_storage(&meta->pod_writes, sizeof(*meta) - offsetof(layout::heap_meta, pod_writes));
}

status heap_impl::close() {
  status result;
  end_migration(*this);
  stop_tracking();
  if (shared_writers()) {
    // A forked child (or a process whose transaction failed) leaves the
    // locks alone: a child shares its parent's open file description, and
    // so its locks. A failed client stays attached until it exits, and
    // the next client to look then recovers it.
    bool detach = region.writable();
    alloc::forget_region(&region);
    bool last = false;
    if (detach && lock_fd >= 0 && port::lock_attach(lock_fd) == 0) {
      // A client that died unseen is recovered now: the last one out
      // must not close the heap over its pending transaction.
      (void)recover_dead_clients(*this, nullptr);
      sync_committed();
      detach_client(*this);
      // Alone now (the writer lock is exclusive only when no other client
      // holds it): the close of a lone writer follows.
      last = port::lock_writer(lock_fd) == 0;
    }
    client_index = 0;
    if (!last) {
      alloc::unregister_region(&region);
      region.destroy();
      port::unmap(reinterpret_cast<void*>(superblock.base), superblock.reserve);
      close_descriptors();
      return result;
    }
    attaching = detach;  // the attach lock is held through the close below
  } else {
    alloc::forget_region(&region);
  }
  LARDER_ASSERT_EXPENSIVE(!can_write() || evicted_pages_abandoned || region.is_valid());
  alloc::unregister_region(&region);
  // A heap whose durable state is in doubt (a failed transaction, a forked
  // child's view) is written back as it is, with no journal and no close
  // time: its next open recovers it from the undo log.
  bool clean = writable && tx_failure.empty() && region.writable();
  if (kind == backing::file && clean) {
    result = write_back(*this);
  } else if (kind == backing::file && writable) {
    if (int err = domain->persist(reinterpret_cast<void*>(superblock.base), region.committed()))
      result = status::from_errno(err, "making " + name + " durable");
  } else if (kind == backing::shm && clean) {
    meta()->last_close_ns = port::realtime_ns();
  }
  region.destroy();
  port::unmap(reinterpret_cast<void*>(superblock.base), superblock.reserve);
  close_descriptors();
  return result;
}

void heap_impl::close_descriptors() noexcept {
  forget_lock_fd(this);
  // Closing the descriptor lets go of the attach and writer locks at once:
  // a client let in by the attach lock while the last one still held the
  // writer lock would take the heap for a lone writer's.
  if (lock_fd >= 0) port::close_fd(lock_fd);
  attaching = false;
  lock_fd = -1;
  if (fd >= 0) port::close_fd(fd);
  fd = -1;
}

}  // namespace larder
