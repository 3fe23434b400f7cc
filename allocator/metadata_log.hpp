// How the allocator's writes to its on-media metadata become part of a
// transaction. While a transaction allocates or frees (runtime/
// transaction_log.cpp), the calling thread has a metadata_sink; every place
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

struct metadata_range {
  void* address;
  std::size_t size;
};

class metadata_sink {
 public:
  // [address, address + size) is about to change: log its before-image
  // (durably) before returning. Allocator locks may be held (see above).
  virtual void before_write(void* address, std::size_t size) noexcept = 0;
  // [address, address + size) is about to get contents that no rollback
  // needs (memory nothing referenced before), but that must be durable
  // when the transaction commits.
  virtual void fresh(void* address, std::size_t size) noexcept = 0;
  // For paths that log ahead in batches (allocate_direct_logged), called
  // with no allocator lock held. Whether the before-image of [address,
  // address + size) is in the log already.
  virtual bool logged(const void* address, std::size_t size) const noexcept = 0;
  // Logs the before-images of ranges[0, count) in one batch, durably;
  // ranges[0, changing) are about to change (and must be durable at
  // commit), the rest may change later in the transaction. 0 or an errno
  // value, after which nothing may be written to them.
  virtual int log_batch(const metadata_range* ranges, std::size_t count, std::size_t changing) noexcept = 0;

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

// Runs the allocator with `sink` (nullptr: none) receiving the calling
// thread's metadata writes, until the scope ends.
class metadata_sink_scope {
 public:
  explicit metadata_sink_scope(metadata_sink* sink) noexcept : previous_(t_metadata_sink) { t_metadata_sink = sink; }
  ~metadata_sink_scope() { t_metadata_sink = previous_; }
  metadata_sink_scope(const metadata_sink_scope&) = delete;
  metadata_sink_scope& operator=(const metadata_sink_scope&) = delete;

 private:
  metadata_sink* previous_;
};

}  // namespace larder::alloc
