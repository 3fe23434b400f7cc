// Opening and mapping a heap's backing directly; see heap_file.hpp.
#include "runtime/heap_file.hpp"

#include "port/os.hpp"
#include "recovery/layout.hpp"

#include <errno.h>

namespace larder {

backing_file::~backing_file() {
  if (fd >= 0) port::close_fd(fd);
}

status open_backing(backing kind, const std::string& path, bool writable, backing_file* out) {
  bool created = false;
  int err = kind == backing::shm ? port::open_shm(path.c_str(), false, false, writable, &out->fd, &created)
                                 : port::open_file(path.c_str(), false, false, writable, &out->fd, &created);
  if (err == ENOENT) return status(errc::not_found, path);
  if (err != 0) return status::from_errno(err, "opening " + path);
  if ((err = port::file_size(out->fd, &out->size)) != 0) return status::from_errno(err, "reading the size of " + path);
  return {};
}

void heap_mapping::unmap() noexcept {
  if (local != nullptr) port::unmap(local, length);
  local = nullptr;
}

status map_heap_file(const backing_file& file, std::uint64_t base, std::uint64_t reserve, bool writable,
                     bool copy_on_write, bool base_only, heap_mapping* out) {
  std::uint64_t readable = file.size < reserve ? file.size : reserve;
  std::size_t length = (readable + port::kOsPageSize - 1) & ~(port::kOsPageSize - 1);
  int err = port::map_fixed(base, length, file.fd, writable, copy_on_write);
  std::uintptr_t at = base;
  if (err == EEXIST && base_only)
    return status(errc::address_taken, "the heap's address range is in use in this process");
  // The recorded range is in use in this process: map anywhere instead,
  // at an address the kernel just handed out (retried if another thread
  // takes it meanwhile).
  for (int attempt = 0; err == EEXIST && attempt < 8; ++attempt) {
    void* hole = nullptr;
    if ((err = port::map_aligned(length, layout::kSegmentSize, &hole)) != 0) break;
    port::unmap(hole, length);
    at = reinterpret_cast<std::uintptr_t>(hole);
    err = port::map_fixed(at, length, file.fd, writable, copy_on_write);
  }
  if (err != 0) return status::from_errno(err, "mapping the heap");
  out->local = reinterpret_cast<std::uint8_t*>(at);
  out->length = length;
  out->readable = readable;
  return {};
}

}  // namespace larder
