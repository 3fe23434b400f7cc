// larder::heap: a mapped region whose objects outlive the process.
// A heap is mapped at the base address recorded when it was created, so raw
// pointers inside it stay valid after reopen and in other processes. Its
// objects are found again through named roots. See docs/persistence.md for
// what survives a crash (in short: a clean close() makes everything durable;
// transactions come with the undo log).
#pragma once

#include <larder/export.hpp>
#include <larder/placement.hpp>
#include <larder/pod.hpp>
#include <larder/status.hpp>
#include <larder/tracking.hpp>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace larder {

enum class backing : std::uint8_t {
  anonymous,  // private memory; lives as long as the heap is open
  shm,        // a POSIX shared-memory object (name "/like-this"); survives
              // the process until the machine restarts or it is removed
  file,       // a regular file; survives restarts
};

enum class open_mode : std::uint8_t {
  create,          // fail with already_exists if it exists
  open,            // fail with not_found if it does not exist
  open_or_create,  // either
};

struct heap_options {
  backing kind = backing::file;
  std::string name;  // file path or shm object name; unused for anonymous
  open_mode mode = open_mode::open_or_create;
  bool read_only = false;  // map read-only; allocation fails with EROFS
  // Virtual address range reserved at creation: the most the heap can grow
  // to. Nothing is committed or written until it is used. Recorded in the
  // heap; ignored on open.
  std::size_t reserve = std::size_t{64} << 30;
  // Where to map the heap at creation; 0 lets larder choose a free range in
  // the part of the address space that programs rarely use. Ignored on open.
  std::uintptr_t base = 0;
  // Lets several processes (up to 64) have a shm or file heap open for
  // writing at once, each with this set (docs/shared_writers.md). Each
  // allocates from segments of its own and logs its transactions in lanes
  // of its own (one per thread in a transaction at once); a process that dies is recovered by the next one that
  // attaches or calls recover_dead_clients(). Page-write tracking, page
  // capture and versions need a heap with one writer and are refused.
  // An open without it fails with heap_busy while shared writers are
  // attached, and the other way round.
  bool shared_writers = false;
  // Automatic pod placement (larder/placement.hpp, docs/placement.md): what
  // is allocated in the default pod goes to pods chosen by allocation site
  // and size class, regrouped by the write rates tracking measures. Pods
  // the program names are never touched. Needs a heap open for writing by
  // one writer; applies to this open only.
  placement_policy placement = placement_policy::off;
};

// A process that has a heap open as a shared writer.
struct client_info {
  std::uint32_t client;  // 1..64
  int pid;
  bool alive;            // the process still runs
  bool self;             // this process
  std::uint64_t attached_ns;  // CLOCK_REALTIME
};

struct root_info {
  std::string name;
  void* object;
  std::size_t size;
};

struct pod_info {
  std::string name;
  std::uint32_t id;
  std::size_t bytes_in_use;     // bytes in blocks handed out
  std::size_t bytes_committed;  // bytes of pages the pod holds
};

struct heap_stats {
  std::size_t mapped_size;   // bytes of the backing in use (file size)
  std::size_t reserve;       // the reserved address range
  std::size_t segments_in_use;
  std::size_t pods;
  std::size_t roots;
  std::uint32_t format_major;  // on-media format (docs/format/heap.md)
  std::uint32_t format_minor;
  std::uint64_t created_ns;    // CLOCK_REALTIME at creation
  // CLOCK_REALTIME when a writer last closed the heap cleanly; 0 when
  // unknown (never, or not since format 1.4; docs/format/heap.md).
  std::uint64_t last_close_ns;
  std::size_t lanes_in_use;    // undo-log lanes that have held a transaction
  // How a read-only open sees the heap (docs/persistence.md, "Readers"):
  // beside a writer that had it open, or as a private copy in which what
  // a crash left was recovered (a transaction rolled back, a close
  // completed).
  bool beside_live_writer;
  bool private_rollback;
  int writer_pid;  // the live writer's process, beside_live_writer; 0 if unknown
  // Shared writers: this process's client number (0: the heap has one
  // writer, or was opened read-only) and how many clients are attached.
  std::uint32_t client;
  std::size_t clients;
};

// An undo-log lane (docs/transactions.md; docs/format/heap.md, "Lane
// record"). The format records no owner: every lane belongs to the one
// process that has the heap open for writing (heap_stats::writer_pid).
enum class lane_state : std::uint8_t {
  unused,               // never held a transaction
  clean,                // nothing to recover: its last transaction finished
  pending_transaction,  // a transaction that did not commit (in flight beside
                        // a live writer; else the next writer open rolls it back)
  interrupted_close,    // a complete close journal: a close was cut
                        // short, and the next writer open completes it
  damaged,              // its commit slots or log cannot be read (see problem)
};
LARDER_EXPORT const char* to_string(lane_state state) noexcept;

struct lane_info {
  std::uint32_t index;
  lane_state state;
  std::uint64_t last_finished;   // newest transaction number its commit slots record (0: none)
  std::uint64_t last_finished_ns;  // CLOCK_REALTIME in that slot
  std::size_t extents;           // log extents (runs of segments)
  std::size_t log_bytes;         // their size
  std::uint64_t pending_seq;     // pending_transaction, interrupted_close: its number
  std::size_t pending_records;   // and its records
  std::size_t pending_bytes;     // and the log bytes they take
  std::string problem;           // damaged: why
};

class heap_impl;

// Thread-safety: allocation, deallocation, pods and roots may be used from
// any number of threads at once. open/close are not concurrent with other
// calls on the same heap. Only one process may have a heap open for writing
// at a time (heap_busy otherwise), unless every writer opens it with
// heap_options::shared_writers; read-only openers may attach alongside.
class LARDER_EXPORT heap {
 public:
  heap() noexcept = default;
  // Throwing convenience: opens per `options` or throws larder::error.
  explicit heap(const heap_options& options);
  heap(heap&& other) noexcept : impl_(std::exchange(other.impl_, nullptr)) {}
  heap& operator=(heap&& other) noexcept;
  ~heap();

  // Creates or opens a heap. On error `out` is left closed and the backing
  // is left unchanged. Errors: not_a_heap, corrupt, truncated, newer_format,
  // foreign_build, address_taken, heap_busy, not_found, already_exists, or
  // an errno value from the system call that failed.
  static status open(const heap_options& options, heap* out);

  // Removes the file or shm object of a heap that no process has open for
  // writing, after checking that it is a larder heap. Errors: not_found,
  // not_a_heap (nothing removed), heap_busy, or an errno value.
  static status remove(backing kind, const std::string& name);

  // Unmaps the heap after making a file-backed heap durable (msync). Objects
  // in it must no longer be used. Idempotent.
  status close();

  bool is_open() const noexcept { return impl_ != nullptr; }
  void* base() const noexcept;
  std::size_t reserve() const noexcept;
  backing kind() const noexcept;
  std::string uuid() const;  // 36-character text form
  heap_stats stats() const;
  // Every lane that is not unused. On a heap opened read-only that a
  // crash left with work to recover (stats().private_rollback), the lanes
  // as the file holds them, before the private recovery; otherwise as
  // they are now.
  std::vector<lane_info> lanes() const;
  // The processes attached as shared writers (empty on other heaps).
  std::vector<client_info> clients() const;
  // Recovers every shared writer that died: rolls back its transaction,
  // leaves its segments for the others to allocate from, puts back the
  // blocks others freed to it. Attaching does the same; a long-running
  // client calls it to reclaim a dead one's memory sooner. *recovered
  // counts them. Errors: corrupt (a dead client's lane is damaged; the
  // client stays listed).
  status recover_dead_clients(std::size_t* recovered = nullptr);
  bool contains(const void* p) const noexcept;
  // Whether committed transactions survive the machine stopping: true for
  // file heaps, false for shm (they survive the process only) and
  // anonymous heaps. persistence_domain() names how bytes become durable:
  // "persistent memory (libpmem2)", "file (msync/fdatasync)", "memory (not
  // durable)" or "crash simulation" (docs/transactions.md).
  bool durable() const noexcept;
  const char* persistence_domain() const noexcept;

  // --- allocation -------------------------------------------------------
  // From the default pod. nullptr and errno=ENOMEM when full.
  void* allocate(std::size_t size, std::size_t alignment = alignof(std::max_align_t)) noexcept;
  // (errno is EROFS when the heap was opened read-only.)
  // Frees a block of any pod of this heap (or, in fact, any larder block).
  static void deallocate(void* p) noexcept;

  // --- pods -------------------------------------------------------------
  pod default_pod() const noexcept;
  // Finds the pod named `name` or creates it. Errors: table_full,
  // invalid_argument (empty name or longer than 47 bytes), read_only.
  status make_pod(std::string_view name, pod* out);
  pod find_pod(std::string_view name) const noexcept;  // invalid if absent
  std::vector<pod_info> pods() const;
  // The pod holding the block at `p` (any address inside it); invalid when
  // `p` is not in a block of this heap's pods.
  pod pod_of(const void* p) const noexcept;

  // --- named roots ------------------------------------------------------
  // Records `object` (which must be in this heap) under `name`. Replaces an
  // existing root of that name. Errors: invalid_argument, table_full.
  status set_root(std::string_view name, void* object, std::size_t size);
  // nullptr if absent; `size` receives the recorded size.
  void* find_root(std::string_view name, std::size_t* size = nullptr) const noexcept;
  // Forgets the name; the object itself is not freed.
  status remove_root(std::string_view name);
  std::vector<root_info> roots() const;

  // Finds the root `name`, or constructs a T from `args` in the default pod
  // and records it. The constructor runs inside a pod_scope of the default
  // pod, so containers that use larder::allocator place their elements in
  // this heap too. Throws larder::error on a size mismatch or a full heap.
  template <class T, class... Args>
  T* root(std::string_view name, Args&&... args);

  // Destroys and frees the root `name` if it exists and forgets the name.
  template <class T>
  void destroy_root(std::string_view name);

  // --- page-write tracking (larder/tracking.hpp, docs/tracking.md) ------
  // Starts epoch 1 over the whole heap, metadata included; pages the heap
  // grows into later are tracked before their first use. Errors: read_only,
  // unsupported (the backend asked for is not available here: the message
  // says why), invalid_argument (already tracking). After a checkpoint
  // started tracking (larder/versions.hpp) it succeeds and keeps the
  // backend running, whichever `backend` asks for.
  status start_tracking(tracker_backend backend = tracker_backend::automatic);
  // Stops tracking and leaves the heap writable without faults.
  void stop_tracking() noexcept;
  tracker_backend tracking() const noexcept;
  // Ends the current epoch and starts the next in one step: `out` gets the
  // pages written during the epoch, by pod. Also records the statistics
  // that write_statistics() and `larder stat` show. Not concurrent with
  // itself; any other thread may go on writing meanwhile.
  status collect_dirty(dirty_set* out);
  // The statistics recorded at the last collect, by this process or the
  // one tracking the heap; also on heaps opened read-only.
  write_stats write_statistics() const;

  heap_impl* impl() const noexcept { return impl_; }

 private:
  // Reads a version straight from a store (larder/versions.hpp).
  friend status open_version(const std::string& store_directory, std::string_view version, heap* out);
  // Runs change(*this, context) inside the calling thread's transaction on
  // this heap, or in one of its own.
  status change_metadata(status (*change)(heap&, void*), void* context);
  heap_impl* impl_ = nullptr;
};

}  // namespace larder

#include <larder/transaction.hpp>

namespace larder {

template <class T, class... Args>
T* heap::root(std::string_view name, Args&&... args) {
  std::size_t size = 0;
  if (void* found = find_root(name, &size)) {
    if (size != sizeof(T))
      throw error(status(errc::type_mismatch, std::string(name)));
    return static_cast<T*>(found);
  }
  // One transaction for the block and the root record, so that a crash
  // leaves either both or neither; it also keeps two threads from both
  // making the root.
  transaction tx(*this);
  if (void* found = find_root(name, &size)) {
    if (size != sizeof(T)) throw error(status(errc::type_mismatch, std::string(name)));
    return static_cast<T*>(found);
  }
  pod_scope scope(default_pod());
  T* object = tx.make<T>(std::forward<Args>(args)...);
  throw_if_error(set_root(name, object, sizeof(T)));
  return object;
}

template <class T>
void heap::destroy_root(std::string_view name) {
  std::size_t size = 0;
  T* object = static_cast<T*>(find_root(name, &size));
  if (object == nullptr) return;
  if (size != sizeof(T)) throw error(status(errc::type_mismatch, std::string(name)));
  transaction tx(*this);
  throw_if_error(remove_root(name));
  tx.destroy(object);
}

}  // namespace larder
