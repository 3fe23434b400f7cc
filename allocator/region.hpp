// A region is the allocator's view of one mapped heap: the segment table in
// its metadata block, the segments it hands to pod arenas, and the hook
// through which the backing grows. Every open heap, the process heap that
// malloc uses included, is one region, registered so that any block can be
// traced back to the region holding it.
#pragma once

#include "allocator/heap_walk.hpp"
#include "allocator/segment.hpp"
#include "recovery/layout.hpp"

#include "port/shared_sync.hpp"

#include <larder/status.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>

namespace larder::alloc {

struct pod_arena;
class placement_table;
struct huge_request;

// Implemented by whoever maps the heap (the runtime for named heaps).
struct region_hooks {
  void* context = nullptr;
  // Makes the backing at least `size` bytes long (and durable metadata say
  // so). Returns 0 or an errno value; ENOSPC when the disk is full.
  int (*grow)(void* context, std::size_t size) = nullptr;
  // Gives [start, start + size) of the backing its storage again after a
  // decommit made it a hole, before anything is written there. Returns 0
  // or an errno value (ENOSPC: the file system is full).
  int (*reserve_backing)(void* context, std::uintptr_t start, std::size_t size) = nullptr;
  // Called with the region lock held when segments [start, start + size)
  // pass to `pod`, before anything is written to them or about them (page
  // tracking must see those writes). Returns 0, or an errno value that
  // fails the allocation.
  int (*segments_claimed)(void* context, std::uintptr_t start, std::size_t size, std::uint32_t pod) = nullptr;
  // Called after acquire() handed `count` segments to the calling thread,
  // outside the region lock: the heap's memory is about to grow. The tier
  // migrator holds the thread there for a while when the heap is over its
  // DRAM budget, so that filling a heap cannot outrun eviction.
  void (*segments_acquired)(void* context, std::size_t count) = nullptr;
};

class region {
 public:
  // Sets up a region over a mapped heap whose metadata block is initialised.
  // `committed` is how much of the backing exists (the reserve for
  // anonymous memory). `shared`: the mapping is MAP_SHARED.
  void init(std::uintptr_t base, std::size_t reserve, std::size_t committed, bool shared, bool writable,
            region_hooks hooks) noexcept;
  // After open: drops process-local page state left in the heap, folds
  // pending remote frees in, and offers pages with free blocks to their
  // pods. Fails with errc::corrupt on a damaged segment header.
  status adopt_existing();
  // Checks the segment table, every used segment header and every page
  // (free lists at their head only, unless LARDER_DEBUG_FULL), read-only:
  // the walk of heap_walk.hpp, stopped at the first damage, which the error
  // names.
  status validate_segments() const;
  // The full walk (every free list to its end), for LARDER_ASSERT_EXPENSIVE
  // and tests: true when every invariant holds; each broken one is printed
  // as a warning. Only exact while no thread allocates or frees here.
  bool is_valid() const;
  // The heap as mapped here, for the walker.
  heap_view view() const noexcept;
  // Frees huge tails that no head's span covers: what a process stopped
  // between the steps of a huge allocation, growth or free leaves behind.
  // Returns how many. Writer only.
  std::size_t free_unowned_tails() noexcept;
  // Bytes in live blocks and bytes of pages held, per pod (arrays of
  // layout::kMaxPods), from the heap's metadata alone: works on read-only
  // heaps and for pods no thread has allocated from in this process.
  void usage(std::size_t* in_use, std::size_t* held) const noexcept;
  // Frees the process-local state (arenas). The mapping is the caller's.
  void destroy() noexcept;

  bool contains(const void* p) const noexcept {
    auto a = reinterpret_cast<std::uintptr_t>(p);
    return a - base_ < reserve_;
  }
  std::uintptr_t base() const noexcept { return base_; }
  std::size_t reserve() const noexcept { return reserve_; }
  std::size_t committed() const noexcept { return committed_.load(std::memory_order_relaxed); }
  // With shared writers other clients grow the backing: what this one
  // learns of it (never less than it knew).
  void note_committed(std::size_t size) noexcept {
    std::size_t now = committed_.load(std::memory_order_relaxed);
    if (size > reserve_) size = reserve_;
    while (now < size && !committed_.compare_exchange_weak(now, size, std::memory_order_relaxed)) {
    }
  }
  bool writable() const noexcept { return writable_; }
  // Automatic placement (allocator/placement.hpp): set before the first
  // allocation, or nullptr; the table outlives the region's use.
  placement_table* placement() const noexcept { return placement_; }
  void set_placement(placement_table* table) noexcept { placement_ = table; }
  // From now on allocation fails with EROFS and frees are ignored.
  void forbid_writes() noexcept { writable_ = false; }
  bool shared() const noexcept { return shared_; }
  // Storage for a range that may have been decommitted, before it is
  // written (region_hooks::reserve_backing); 0 where there is no backing.
  int reserve_backing(const void* start, std::size_t size) noexcept {
    if (hooks_.reserve_backing == nullptr) return 0;
    return hooks_.reserve_backing(hooks_.context, reinterpret_cast<std::uintptr_t>(start), size);
  }
  layout::heap_meta* meta() const noexcept { return meta_; }
  // Segment-table entry i. Readers outside the region lock (frees,
  // usable_size, page tracking, other processes) see entries change: each
  // is one aligned word, written with release order so that what it
  // publishes (the header) is seen first.
  std::uint32_t entry(std::size_t i) const noexcept { return __atomic_load_n(&meta_->segments[i], __ATOMIC_ACQUIRE); }

  // The arena of `pod`, created on first use; nullptr if out of memory.
  pod_arena* arena(std::uint32_t pod) noexcept;
  pod_arena* existing_arena(std::uint32_t pod) const noexcept {
    return arenas_[pod].load(std::memory_order_acquire);
  }

  // Takes `count` consecutive free segments for `pod`, with the first
  // marked `state` and the rest as huge tails; for a huge block, `huge`
  // says what its header records, written before the segments change
  // hands. `*zeroed` tells whether the memory is known to read as zero.
  // nullptr (errno set) when the reserve or the backing is full.
  segment* acquire(std::size_t count, std::uint32_t pod, layout::segment_state state, bool* zeroed,
                   const huge_request* huge = nullptr) noexcept;
  // Tries to take the `count` segments right after `s`'s run of `span`
  // as its huge tails (in-place growth of a huge block).
  bool extend(segment* s, std::size_t span, std::size_t count) noexcept;
  // Gives back a run of `count` segments starting at `s`. `written` false:
  // nothing was written there since acquire (whose storage may be
  // missing), so its first bytes are left alone.
  void release(segment* s, std::size_t count, bool written = true) noexcept;
  // Gives every retained empty segment back to the OS.
  void purge_retained() noexcept;
  // Lets acquire() move retained memory between segments (port::move_memory).
  // Only for a region in private anonymous memory that nothing tracks or
  // maps elsewhere: the process heap.
  void allow_memory_moves() noexcept { memory_movable_ = true; }

  // The head segment of the run holding address `p` (walks back over huge
  // tails); nullptr if `p` is in no used segment.
  segment* head_segment(const void* p) const noexcept;
  std::size_t segment_index(const void* p) const noexcept {
    return (reinterpret_cast<std::uintptr_t>(p) - base_) >> kSegmentShift;
  }
  std::size_t segments_in_use() const noexcept;
  // Held while segments are claimed (the segments_claimed hook runs under
  // it); page tracking takes it to start without missing a claim. With
  // shared writers, every process's region takes the one in the heap.
  port::shareable_mutex& claim_lock() noexcept { return lock_; }

  // ---- shared writers (several processes writing the heap at once) ----
  // This process is client `client` (1..layout::kMaxClients) of the heap:
  // the segment-table lock becomes the heap's, segments this region takes
  // are marked as the client's, and it allocates only from those. Pages of
  // other clients' segments are freed into their remote lists, and their
  // client is told by a count (note_foreign_free). Call before any
  // allocation. The first client, which adopted the whole heap, takes
  // every segment.
  void share(std::uint16_t client, bool take_all) noexcept;
  // The segment-table lock becomes the heap's (share does it too): before
  // a client attaching recovers the dead ones, while the others go on.
  void bind_shared_lock() noexcept;
  // Marks every used segment as `client`'s, while nothing else runs (the
  // first client; kNoClient for a lone writer's open).
  void mark_all_segments(std::uint16_t client) noexcept;
  std::uint16_t client() const noexcept { return client_; }
  bool shared_writers() const noexcept { return client_ != layout::kNoClient; }
  // What page::owner_tid holds for a page that thread `tid` owns here:
  // with shared writers the client is in bits 48-63, since thread ids are
  // per process (and a forked client's threads share their parent's).
  std::uintptr_t owner_tag(std::uintptr_t tid) const noexcept { return tid | (std::uintptr_t{client_} << 48); }
  bool owns(const segment* s) const noexcept { return __atomic_load_n(&s->client, __ATOMIC_ACQUIRE) == client_; }
  // A pages segment of `pod` that no client owns (its client left or
  // died), made this client's; nullptr when there is none.
  segment* adopt_unowned(std::uint32_t pod) noexcept;
  // Marks every segment of `client` as owned by nobody, for any client to
  // adopt: when it detaches (this process's own, after forget_region) or
  // when it died.
  void disown_segments(std::uint16_t client) noexcept;
  // Counts a free into a page of `owner` (layout::client_record::
  // foreign_frees), and reads this client's count.
  void note_foreign_free(std::uint16_t owner) noexcept {
    if (owner == layout::kNoClient || owner > layout::kMaxClients) return;  // nobody's, or a damaged header
    __atomic_fetch_add(&meta_->shared.clients[owner - 1].foreign_frees, 1, __ATOMIC_RELEASE);
  }
  // Whether client `c` is attached and its process still runs.
  bool client_alive(std::uint16_t c) const noexcept;
  std::uint64_t foreign_frees() const noexcept {
    return shared_writers() ? __atomic_load_n(&meta_->shared.clients[client_ - 1].foreign_frees, __ATOMIC_ACQUIRE)
                            : 0;
  }

  // Fork handlers: take and drop every lock of the region and its arenas.
  void lock_all() noexcept;
  void unlock_all() noexcept;

  std::uint32_t slot = 0;             // index in the region registry
  std::uint64_t generation = 0;       // bumped when the slot is reused

 private:
  void set_entry(std::size_t i, std::uint32_t value) noexcept {
    __atomic_store_n(&meta_->segments[i], value, __ATOMIC_RELEASE);
  }
  int ensure_committed(std::size_t size) noexcept;
  // acquire() under the region lock.
  segment* take_segments(std::size_t count, std::uint32_t pod, layout::segment_state state, bool* zeroed,
                         const huge_request* huge) noexcept;
  int reserve_run(std::size_t first, std::size_t count, layout::segment_state state) noexcept;
  int claim(std::size_t first, std::size_t count, std::uint32_t pod) noexcept;
  bool run_is_free(std::size_t first, std::size_t count) const noexcept;
  void unretain(std::size_t first, std::size_t count) noexcept;
  bool find_retained(std::size_t count, std::size_t* first) noexcept;
  void retain(std::size_t first, std::size_t count) noexcept;
  void drop_retained(std::size_t k) noexcept;
  void note_in_use(std::size_t count) noexcept;
  std::size_t move_retained_into(std::size_t first, std::size_t count) noexcept;
  static constexpr std::uint64_t kPeakDecayNs = 1'000'000'000;

  std::uintptr_t base_ = 0;
  std::size_t reserve_ = 0;
  std::size_t segment_limit_ = 0;
  std::atomic<std::size_t> committed_{0};
  bool shared_ = false;
  bool writable_ = false;
  placement_table* placement_ = nullptr;
  region_hooks hooks_;
  layout::heap_meta* meta_ = nullptr;
  port::shareable_mutex lock_;
  std::uint16_t client_ = layout::kNoClient;
  static void repair_after_death(void* self) noexcept;
  std::size_t search_hint_ = 1;
  std::size_t table_reserved_ = 0;  // segment-table entries below it have storage
  // Runs of free segments kept committed for reuse, oldest first: free in
  // the segment table like any other (so what is on media never depends on
  // them), only not given back to the OS yet.
  struct retained_run {
    std::size_t first;
    std::size_t count;
  };
  static constexpr std::size_t kRetainedRuns = 32;
  retained_run retained_[kRetainedRuns] = {};
  std::size_t retained_runs_ = 0;
  std::size_t retained_count_ = 0;  // segments in all runs
  // Every move leaves the kernel a mapping boundary at each end of both
  // ranges, on segment boundaries below segments_high; moving only while
  // segments_high is below this bounds the mappings a region can cost the
  // process (the kernel's default limit, vm.max_map_count, is 65,530).
  static constexpr std::size_t kMaxMovableSegments = 4096;
  bool memory_movable_ = false;
  // Segments in use, and their recent high-water mark (halving its excess
  // over in_use_ every kPeakDecayNs): retaining up to the mark's excess
  // never commits more than the heap used at its peak.
  std::size_t in_use_ = 0;
  std::size_t peak_in_use_ = 0;
  std::uint64_t peak_checked_ns_ = 0;
  std::mutex arenas_lock_;
  std::atomic<pod_arena*> arenas_[layout::kMaxPods] = {};
};

// ---- registry of live regions -----------------------------------------
inline constexpr std::size_t kMaxRegions = 64;

// Adds `r` (assigning its slot); EMFILE when kMaxRegions are open.
int register_region(region* r) noexcept;
void unregister_region(region* r) noexcept;
// The registered region containing `p`, or nullptr.
region* find_region(const void* p) noexcept;
region* region_at(std::size_t slot) noexcept;
// Calls fn(region, context) for each registered region while holding the
// registry lock, so that none is unregistered (closed) meanwhile.
void for_each_region(void (*fn)(region*, void*), void* context) noexcept;
// Fork handlers: hold the registry lock and every region's locks.
void lock_regions() noexcept;
void unlock_regions() noexcept;

}  // namespace larder::alloc
