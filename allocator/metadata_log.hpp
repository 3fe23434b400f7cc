// How the allocator's writes to its on-media metadata become part of a
// transaction. While a transaction allocates or frees (runtime/
// transaction.cpp), the calling thread has a metadata_sink; every place
// that changes persistent allocator state (page descriptors, free-list
// links, segment headers, the segment table) reports the range first, so
// the sink can log its before-image and make it durable at commit. With no
// sink the cost is one thread-local load.
//
// The sink is called with a pod arena's lock, or the region's, held: it
// must not allocate through malloc or new (with liblarder_malloc, inside a
// pod_scope of the same heap that re-enters the arena whose lock is held),
// nor call back into the allocator of that region (the region's lock is
// not recursive). The runtime's sink keeps its bookkeeping in memory from
// the OS and makes room in its log before the allocator runs.
#pragma once

#include <cstddef>

namespace larder::alloc {

class metadata_sink {
 public:
  // [address, address + size) is about to change: log its before-image
  // (durably) before returning. Allocator locks may be held (see above).
  virtual void before_write(void* address, std::size_t size) noexcept = 0;
  // [address, address + size) is about to get contents that no rollback
  // needs (memory nothing referenced before), but that must be durable
  // when the transaction commits.
  virtual void fresh(void* address, std::size_t size) noexcept = 0;

 protected:
  ~metadata_sink() = default;
};

// Declared as defined (constinit, initial-exec), so that every use is one
// load from the thread pointer: no TLS wrapper call, no __tls_get_addr.
extern thread_local constinit metadata_sink* t_metadata_sink __attribute__((tls_model("initial-exec")));

inline void note_metadata(void* address, std::size_t size) noexcept {
  if (metadata_sink* sink = t_metadata_sink; __builtin_expect(sink != nullptr, 0)) sink->before_write(address, size);
}
inline void note_fresh(void* address, std::size_t size) noexcept {
  if (metadata_sink* sink = t_metadata_sink; __builtin_expect(sink != nullptr, 0)) sink->fresh(address, size);
}
// True while a transaction changes allocator state on this thread: memory
// must then not be given back to the system (decommit), since a rollback
// may still need its contents.
inline bool metadata_logged() noexcept { return t_metadata_sink != nullptr; }

}  // namespace larder::alloc
