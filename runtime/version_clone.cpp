// A version written into a file outside any open heap: a clone (a new file
// heap holding the version) and a restore into a heap's own backing, which
// works where the heap does not open. See larder/versions.hpp and
// docs/versions.md ("Clones", "Restoring a heap that does not open").
#include "port/os.hpp"
#include "recovery/superblock.hpp"
#include "runtime/checkout_mark.hpp"
#include "runtime/heap_file.hpp"
#include "runtime/version_pages.hpp"

#include <larder/versions.hpp>

#include <errno.h>

#include <algorithm>
#include <cstring>

namespace larder {

namespace {

// A clone's address range when the caller names none: what a new heap
// reserves by default, or the version's size when that is larger.
constexpr std::uint64_t kDefaultReserve = std::uint64_t{64} << 30;

// Writes the version's pages into [kMetaOffset, end) of `fd`, every other
// page there zero (a hole where the file system punches one), then syncs.
// Idempotent, so a crash in the middle is mended by running it again.
status write_pages_into(int fd, const std::string& name, chunks::chunk_store& store,
                        const chunks::version_record& v, std::uint64_t end, std::size_t* written) {
  std::uint64_t zero_from = layout::kMetaOffset;
  status s = for_each_page_run(store, v, [&](std::size_t first, std::size_t count, const char* bytes) -> status {
    const std::uint64_t offset = std::uint64_t{first} * port::kOsPageSize;
    if (int err = port::zero_file_range(fd, zero_from, offset - zero_from))
      return status::from_errno(err, "zeroing pages of " + name);
    if (int err = port::write_at(fd, bytes, count * port::kOsPageSize, offset))
      return status::from_errno(err, "writing the version into " + name);
    zero_from = offset + count * port::kOsPageSize;
    *written += count;
    return {};
  });
  if (!s.ok()) return s;
  if (zero_from < end) {
    if (int err = port::zero_file_range(fd, zero_from, end - zero_from))
      return status::from_errno(err, "zeroing pages of " + name);
  }
  if (int err = port::sync_file(fd)) return status::from_errno(err, "making " + name + " durable");
  return {};
}

checkout_stats stats_of(const stored_version& v, std::size_t written, std::uint64_t start) {
  checkout_stats st;
  st.id = v.id.hex();
  st.pages_loaded = written;
  st.total_ns = port::monotonic_ns() - start;
  return st;
}

status write_clone(int fd, const std::string& name, chunks::chunk_store& store, const chunks::version_record& v,
                   std::uint64_t reserve, std::size_t* written) {
  if (int err = port::grow_file(fd, v.heap_size)) return status::from_errno(err, "sizing " + name);
  if (status s = write_pages_into(fd, name, store, v, v.heap_size, written); !s.ok()) return s;
  // The superblocks last, and synced on their own: the file is a heap
  // only once everything they describe is durable.
  const layout::superblock sb = version_superblock(v, reserve);
  for (std::uint64_t at : {std::uint64_t{0}, std::uint64_t{layout::kSuperblockSize}}) {
    if (int err = port::write_at(fd, &sb, sizeof(sb), at)) return status::from_errno(err, "writing " + name);
  }
  if (int err = port::sync_file(fd)) return status::from_errno(err, "making " + name + " durable");
  return {};
}

}  // namespace

status clone_version(const std::string& store_directory, std::string_view version, const std::string& new_path,
                     std::uint64_t reserve, checkout_stats* out) {
  const std::uint64_t start = port::monotonic_ns();
  if (new_path.empty()) return status(errc::invalid_argument, "no path given for the clone");
  std::unique_ptr<chunks::chunk_store> store;
  stored_version v;
  if (status s = read_stored_version(store_directory, version, &store, &v); !s.ok()) return s;
  if (reserve == 0) reserve = std::max(kDefaultReserve, v.record.heap_size);
  reserve = (reserve + layout::kSegmentSize - 1) & ~std::uint64_t{layout::kSegmentSize - 1};
  if (reserve < v.record.heap_size || reserve > layout::kMaxReserve ||
      v.record.base_address + reserve > layout::kAddressLimit)
    return status(errc::invalid_argument, "a reserve of " + std::to_string(reserve) + " bytes does not fit version " +
                                              v.id.hex() + " at its base address");
  int fd = -1;
  bool created = false;
  if (port::open_file(new_path.c_str(), false, false, false, &fd, &created) == 0) {
    port::close_fd(fd);
    return status(errc::already_exists, new_path);
  }
  // Built under a temporary name and renamed into place once durable, as
  // a new heap is: a crash never leaves a half-written clone at new_path.
  const std::string temporary =
      new_path + ".new-" + std::to_string(port::process_id()) + "-" + std::to_string(port::random64() % 1000000);
  if (int err = port::open_file(temporary.c_str(), true, true, true, &fd, &created))
    return status::from_errno(err, "creating " + temporary);
  std::size_t written = 0;
  status s = write_clone(fd, temporary, *store, v.record, reserve, &written);
  port::close_fd(fd);
  if (s.ok()) {
    if (int err = port::rename_durably(temporary.c_str(), new_path.c_str()))
      s = err == EEXIST ? status(errc::already_exists, new_path) : status::from_errno(err, "naming the clone " + new_path);
  }
  if (!s.ok()) {
    (void)port::remove_file(temporary.c_str());
    return s;
  }
  if (out != nullptr) *out = stats_of(v, written, start);
  return {};
}

status restore_version(backing kind, const std::string& name, std::string_view version,
                       const std::string& store_directory, checkout_stats* out) {
  const std::uint64_t start = port::monotonic_ns();
  if (kind == backing::anonymous) return status(errc::invalid_argument, "an anonymous heap has no file to restore into");
  backing_file file;
  if (status s = open_backing(kind, name, true, &file); !s.ok()) return s;
  if (int err = port::lock_writer(file.fd))
    return err == EAGAIN ? status(errc::heap_busy, name + ": another process has the heap open for writing")
                         : status::from_errno(err, "locking " + name);
  layout::superblock sb{};
  int copy = 0;
  if (status s = recovery::read_superblock(file.fd, file.size, &sb, &copy); !s.ok())
    return status(static_cast<errc>(s.code()),
                  name + ": " + s.message() + " (its superblocks are needed: clone the version instead)");
  std::unique_ptr<chunks::chunk_store> store;
  stored_version v;
  if (status s = read_stored_version(store_directory, version, &store, &v); !s.ok()) return s;
  if (std::memcmp(v.record.heap_uuid.data(), sb.uuid, sizeof(sb.uuid)) != 0)
    return status(errc::invalid_argument, "version " + v.id.hex() + " is of another heap than " + name);
  if (v.record.base_address != sb.base || v.record.heap_size > sb.reserve)
    return status(errc::corrupt, "version " + v.id.hex() + " does not fit the address range of " + name);
  // A larger version grows the file; open takes the file's size over a
  // smaller one in the superblocks, as after a growth cut short.
  if (v.record.heap_size > file.size) {
    if (int err = port::grow_file(file.fd, v.record.heap_size)) return status::from_errno(err, "growing " + name);
    file.size = v.record.heap_size;
  }
  std::size_t written = 0;
  if (status s = write_pages_into(file.fd, name, *store, v.record, file.size, &written); !s.ok()) return s;
  if (kind == backing::file) {
    if (status s = clear_checkout_mark(name); !s.ok()) return s;
  }
  status head = v.branch.empty() ? store->set_head_detached(v.id) : store->set_head(v.branch);
  if (!head.ok()) return head;
  if (out != nullptr) *out = stats_of(v, written, start);
  return {};
}

}  // namespace larder
