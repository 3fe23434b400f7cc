// heap_impl: what the runtime keeps for one open heap: the mapping, its
// backing, the current superblock and the allocator region over it.
#pragma once

#include "allocator/region.hpp"
#include "allocator/thread.hpp"
#include "port/os.hpp"
#include "port/write_tracker.hpp"
#include "recovery/layout.hpp"
#include "recovery/persist.hpp"
#include "recovery/undo_log.hpp"
#include "runtime/lane_claims.hpp"
#include "runtime/migration.hpp"
#include "runtime/page_bitmap.hpp"
#include "runtime/placement.hpp"
#include "runtime/pod_graph.hpp"
#include "runtime/shared_writers.hpp"
#include "runtime/sync_group.hpp"
#include "runtime/writer_first_mutex.hpp"

#include <larder/heap.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace larder {

struct versions_state;
struct versions_state_deleter {
  void operator()(versions_state* v) const noexcept;
};

// Why the heap must be reopened before the next transaction: a commit or
// abort that could not be made durable, a checkout that stopped half way.
// Set once; the first reason stays. Read and set from any thread.
class sticky_failure {
 public:
  bool empty() const noexcept { return !set_.load(std::memory_order_acquire); }
  std::string text() const {
    std::lock_guard guard(lock_);
    return text_;
  }
  void set(std::string why) {
    std::lock_guard guard(lock_);
    if (!text_.empty()) return;
    text_ = std::move(why);
    set_.store(true, std::memory_order_release);
  }

 private:
  mutable std::mutex lock_;
  std::string text_;
  std::atomic<bool> set_{false};
};

class heap_impl {
 public:
  static status open(const heap_options& options, heap_impl** out);
  static status remove(backing kind, const std::string& name);
  status close();

  alloc::region region;
  layout::superblock superblock{};
  int superblock_copy = 0;
  int fd = -1;
  // A writer's second descriptor of the backing, which holds its file
  // locks (heap_impl.cpp says why).
  int lock_fd = -1;
  backing kind = backing::file;
  bool writable = true;
  std::string name;
  std::string temporary_name;  // a new file heap's name until it is complete
  // Read-only opens (docs/persistence.md, "Readers"): beside a live writer
  // the view is the writer's memory as it changes; after a crash it is a
  // private copy with the crashed transactions rolled back, the file
  // untouched.
  bool beside_live_writer = false;
  int writer_pid = 0;  // beside_live_writer: its process, when the system says
  bool rolled_back_privately = false;
  std::vector<lane_info> lanes_found;  // rolled_back_privately: the lanes as the file holds them
  // Pod and root tables; with shared writers, the heap's lock of them,
  // which a change then holds until its transaction has committed (another
  // client must not build on a record a rollback could take back).
  // tables_guard takes it unless this thread holds it already.
  port::shareable_mutex meta_lock;
  std::atomic<std::uintptr_t> meta_lock_holder{0};

  // Shared writers (runtime/shared_writers.hpp): this process's client
  // (0 on a heap with one writer), whether it attached first, and which
  // lanes are its own (claimed under clients_lock, one at attach and more
  // as its threads run transactions at once; runtime/lane_claims.hpp).
  std::uint32_t client_index = 0;
  bool first_client = false;
  std::atomic<bool> client_lanes[layout::kMaxLanes] = {};
  port::shareable_mutex clients_lock;
  bool shared_writers() const noexcept { return client_index != 0; }
  bool attaching = false;  // holds the attach lock (port::lock_attach)
  // Other clients grow the backing: the region learns its size when the
  // segment table reaches past what it knows.
  void sync_committed() noexcept {
    if (!shared_writers() || fd < 0) return;
    if ((__atomic_load_n(&meta()->segments_high, __ATOMIC_ACQUIRE) << layout::kSegmentShift) <= region.committed())
      return;
    std::uint64_t size = 0;
    if (port::file_size(fd, &size) == 0) region.note_committed(size & ~std::uint64_t{layout::kSegmentSize - 1});
  }
  // Undoes the mapping and the region of an open that failed to attach.
  void unmap_unattached() noexcept;
  // Lets go of the locks and closes both descriptors.
  void close_descriptors() noexcept;

  // Durability (recovery/persist.hpp) and transactions (runtime/
  // transaction.cpp; docs/transactions.md, "Concurrency").
  // Each transaction holds tx_lock shared from begin to end and one lane
  // (runtime/lane_claims.hpp); what must see every transaction still
  // (a checkpoint's cut, a checkout, version_diff, close) and a
  // transaction capturing pages take it exclusive. tx_alloc_lock is held
  // by the one transaction that allocates or frees, from then to its end,
  // so that allocator metadata is in at most one uncommitted lane, and
  // while a lane grows. next_seq[i] is the number lane i gives its next
  // transaction; it, lane_storage[i] and the lane record belong to the
  // thread that holds lane i (lanes[i].busy).
  std::unique_ptr<recovery::persist_domain> domain;
  writer_first_mutex tx_lock;
  std::mutex tx_alloc_lock;
  // A nested transaction that starts page capture (runtime/transaction.cpp,
  // capture_alone): transactions beginning meanwhile wait.
  std::atomic<bool> capture_upgrading{false};
  std::uint64_t next_seq[layout::kMaxLanes] = {};
  lane_slot lanes[layout::kMaxLanes];
  recovery::log_storage lane_storage[layout::kMaxLanes];
  // What transactions persist through: concurrent ones share syncs.
  sync_group transaction_domain{domain, lanes, layout::kMaxLanes};
  // Reading a hole of the backing takes storage (tmpfs, shm): what is read
  // gets storage too, not only what is written (port::
  // hole_reads_take_storage).
  bool hole_reads_take_storage = false;
  // alloc::g_unsettled_marks when this heap's marked segments were last
  // settled (runtime/plain_settle.hpp); none yet after an open. Set
  // under tx_alloc_lock.
  std::atomic<std::uint64_t> settled_marks{~std::uint64_t{0}};
  // Set when a commit or abort could not be made durable: the heap must be
  // reopened (which recovers it) before the next transaction.
  sticky_failure tx_failure;

  // Page-write tracking (runtime/tracking.cpp). collect_lock serialises
  // start, stop and collect and keeps the tracker alive through them;
  // tracker_lock guards the pointer against the segments_claimed hook,
  // which runs inside allocations (possibly ones made by collect itself).
  std::mutex collect_lock;
  std::mutex tracker_lock;
  std::unique_ptr<port::write_tracker> tracker;
  tracker_backend tracking_backend = tracker_backend::none;
  std::uint64_t epoch = 0;  // the current epoch's number, while tracking
  std::vector<port::written_run> written_buffer;
  int tracking_pid = port::process_id();
  void reset_tracking_locks_after_fork() noexcept;
  status start_tracking(tracker_backend backend);
  void stop_tracking() noexcept;
  status collect_dirty(dirty_set* out);
  // The reference graph between pods (runtime/pod_graph.hpp), kept from
  // the first time it is asked for while this process tracks the heap:
  // every collect reads again the pages it reports. Under collect_lock.
  std::unique_ptr<pod_graph_state> references;

  // Versions (runtime/versions.cpp). Every collect, the program's and
  // versions' own, adds to written_since_cut, so neither takes pages from
  // the other: the pages written since the last checkpoint or checkout;
  // unreported_writes holds what versions collected and the program's
  // next collect_dirty has not reported yet (kept while the program
  // tracks). Under collect_lock. lost_writes: tracking stopped since the
  // cut, so written_since_cut is incomplete.
  std::unique_ptr<versions_state, versions_state_deleter> versions;
  bool versions_observing = false;
  bool tracking_by_program = false;
  bool lost_writes = false;
  page_bitmap written_since_cut;
  page_bitmap unreported_writes;
  // Ends the tracker's epoch for versions: written pages go to both sets.
  // With `within`, only those runs need be collected (a tracker that can
  // only collect everything does that).
  status collect_for_versions(const std::vector<port::written_run>* within = nullptr);

  // Tier migration (runtime/migration.cpp; docs/tiers.md), once a policy
  // was set or a pod pinned. migration_observing: the migrator started the
  // tracker, which the program may then take as its own.
  std::unique_ptr<migration_state, migration_state_deleter> migration;
  // Automatic placement (runtime/placement.hpp), when the heap was opened
  // with it.
  std::unique_ptr<placement_state, placement_state_deleter> placement;
  bool migration_observing = false;
  // `migration` while a budget is set, for threads acquiring segments
  // (on_segments_acquired), which take no lock.
  std::atomic<migration_state*> budget_holder{nullptr};
  // Set by the close of an anonymous heap whose evicted pages were not
  // brought back (end_migration): they read as zeros until the unmap.
  bool evicted_pages_abandoned = false;
  // Collects the written pages (only those of `within`, where given) for
  // whoever else watches them: the program's next collect_dirty and the
  // versions' written_since_cut still report them. Appends them to `out`
  // where given. Takes collect_lock.
  status collect_observed(const std::vector<port::written_run>* within, std::vector<port::written_run>* out);

  layout::heap_meta* meta() const noexcept { return region.meta(); }
  // Gives [start, start + size) of the heap storage in the backing before
  // it is first written (port::reserve_file_range; file and shm heaps
  // only). 0 or an errno value, ENOSPC when the file system is full.
  int reserve_storage(const void* start, std::size_t size) const noexcept;
  // False when opened read-only, and in a forked child of the process that
  // has it open (see allocator/thread.cpp).
  bool can_write() const noexcept { return writable && region.writable(); }
  // Sets the region up over the mapped heap (for a writer, adopting what
  // is in it: region::adopt_existing), as an open does; a checkout does it
  // again after replacing the heap's pages. On failure the heap is unmapped.
  status start_region(std::size_t committed, bool adopt);
  // Grows a file or shm backing (and the superblocks) to `size`; 0 or an
  // errno value.
  int grow_backing(std::size_t size) { return grow(this, size); }

 private:
  status create_new(const heap_options& options);
  status open_existing(std::uint64_t file_size);
  status take_writer_lock(bool shared_writers);
  status map_at(std::uintptr_t base, std::size_t reserve);
  void choose_domain();
  status publish(const heap_options& options);
  status choose_base_and_map(const heap_options& options, std::size_t reserve);
  status recover_for_reading();
  int reserve_fixed_metadata() const noexcept;
  static int grow(void* context, std::size_t size);
  static int reserve_backing(void* context, std::uintptr_t start, std::size_t size);
  static int on_segments_claimed(void* context, std::uintptr_t start, std::size_t size, std::uint32_t pod);
  static void on_segments_acquired(void* context, std::size_t count) noexcept;
};

// Holds heap_impl::meta_lock, unless the calling thread does already (a
// root or pod change of a heap with shared writers holds it across its
// transaction).
class tables_guard {
 public:
  explicit tables_guard(heap_impl* impl) noexcept : impl_(impl) {
    std::uintptr_t me = alloc::current_tid();
    if (impl_->meta_lock_holder.load(std::memory_order_relaxed) == me) {
      impl_ = nullptr;
      return;
    }
    impl_->meta_lock.lock();
    impl_->meta_lock_holder.store(me, std::memory_order_relaxed);
  }
  ~tables_guard() {
    if (impl_ == nullptr) return;
    impl_->meta_lock_holder.store(0, std::memory_order_relaxed);
    impl_->meta_lock.unlock();
  }
  tables_guard(const tables_guard&) = delete;
  tables_guard& operator=(const tables_guard&) = delete;

 private:
  heap_impl* impl_;
};

}  // namespace larder
