// A version opened read-only straight from its store: anonymous memory at
// the heap's base, filled from the chunks, set up as a read-only heap. See
// heap_options::version and docs/versions.md ("Reading a version").
#include "port/os.hpp"
#include "runtime/heap_impl.hpp"
#include "runtime/version_pages.hpp"

#include <larder/versions.hpp>

#include <errno.h>

#include <cstring>

namespace larder {

namespace {

status fill(heap_impl& impl, chunks::chunk_store& store, const chunks::version_record& v) {
  auto* base = reinterpret_cast<char*>(v.base_address);
  std::memcpy(base, &impl.superblock, sizeof(impl.superblock));
  std::memcpy(base + layout::kSuperblockSize, &impl.superblock, sizeof(impl.superblock));
  return for_each_page_run(store, v, [&](std::size_t first, std::size_t count, const char* bytes) -> status {
    std::memcpy(base + first * port::kOsPageSize, bytes, count * port::kOsPageSize);
    return {};
  });
}

}  // namespace

status open_version(const std::string& store_directory, std::string_view version, heap* out) {
  std::unique_ptr<chunks::chunk_store> store;
  stored_version v;
  if (status s = read_stored_version(store_directory, version, &store, &v); !s.ok()) return s;
  const chunks::version_record& r = v.record;
  auto impl = std::make_unique<heap_impl>();
  impl->kind = backing::anonymous;
  impl->name = store_directory + "@" + v.id.hex();
  impl->writable = false;
  impl->superblock = version_superblock(r, r.heap_size);
  impl->domain = recovery::make_memory_domain();
  if (int err = port::map_fixed(r.base_address, r.heap_size, -1, true)) {
    if (err == EEXIST)
      return status(errc::address_taken, "version " + v.id.hex() +
                                             " must be mapped at its heap's base address, which is in use in this "
                                             "process (by the heap itself, or a clone of it): read it in another process");
    return status::from_errno(err, "mapping version " + v.id.hex());
  }
  if (status s = fill(*impl, *store, r); !s.ok()) {
    (void)port::unmap(reinterpret_cast<void*>(r.base_address), r.heap_size);
    return s;
  }
  // start_region checks the segments (as any read-only open does) and
  // unmaps the heap when it fails.
  if (status s = impl->start_region(r.heap_size, false); !s.ok()) return s;
  (void)out->close();
  out->impl_ = impl.release();
  return {};
}

}  // namespace larder
