// Clients of a heap with shared writers; see shared_writers.hpp.
#include "runtime/shared_writers.hpp"

#include "allocator/alloc.hpp"
#include "allocator/metadata_log.hpp"
#include "allocator/segment.hpp"
#include "port/options.hpp"
#include "port/os.hpp"
#include "recovery/undo_log.hpp"
#include "runtime/heap_impl.hpp"

#include <xxhash.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <mutex>
#include <string>

namespace larder {

namespace {

layout::shared_writers_record& shared_record(heap_impl& impl) { return impl.meta()->shared; }

layout::client_record& record_of(heap_impl& impl, std::uint32_t client) {
  return shared_record(impl).clients[client - 1];
}

// The heap's size as the backing says now: other clients grow it.
std::size_t current_size(heap_impl& impl) {
  std::uint64_t size = 0;
  if (port::file_size(impl.fd, &size) != 0) return impl.region.committed();
  size = std::min<std::uint64_t>(size, impl.superblock.reserve) & ~std::uint64_t{layout::kSegmentSize - 1};
  return static_cast<std::size_t>(size);
}

// Rolls back the transaction a dead client left in its lanes.
status roll_back_lanes_of(heap_impl& impl, std::uint32_t client) {
  layout::heap_meta* meta = impl.meta();
  std::size_t size = current_size(impl);
  for (std::uint32_t i = 0; i < layout::kMaxLanes; ++i) {
    layout::lane_record& lane = meta->lanes[i];
    if (lane.owner_client != client) continue;
    recovery::lane_scan scan;
    if (status s = recovery::scan_lane(lane, impl.region.base(), size, &scan); !s.ok())
      return status(errc::corrupt, "undo-log lane " + std::to_string(i) + ": " + s.message());
    if (status s = recovery::lane_verdict(scan, i); !s.ok()) return s;
    shared_lane_rollback shared(impl.region.base(), impl.meta(), client);
    {
      // What the others change under the segment-table lock (its entries,
      // segments_high) is only judged and written back holding it.
      std::lock_guard guard(impl.region.claim_lock());
      if (status s = recovery::roll_back_lane(&lane, scan, *impl.domain, &shared); !s.ok()) return s;
    }
    settle_after_commit_frees(impl.region.base(), meta, i, scan, &impl.region, [&impl](alloc::segment* head) {
      // Nobody's transaction's: a rollback of the taker's must not undo it.
      alloc::metadata_sink_scope free_is_nobodys(nullptr);
      impl.region.release(head, head->span);
    });
    if (int err = recovery::repair_slots(&lane, scan, *impl.domain))
      return status::from_errno(err, "rewriting a commit slot of undo-log lane " + std::to_string(i));
    lane.owner_client = layout::kNoClient;
    lane.owner_pid = 0;
    lane.owner_start_ticks = 0;
  }
  return {};
}

// With the client lock held.
status recover_client(heap_impl& impl, std::uint32_t client) {
  layout::client_record& rec = record_of(impl, client);
  port::verbose("recovering client %u of %s (process %d), which died", client, impl.name.c_str(), rec.pid);
  if (status s = roll_back_lanes_of(impl, client); !s.ok()) return s;
  impl.region.disown_segments(static_cast<std::uint16_t>(client));
  rec.pid = 0;
  rec.start_ticks = 0;
  rec.attached_ns = 0;
  __atomic_store_n(&rec.state, layout::kClientFree, __ATOMIC_RELEASE);
  return {};
}

status recover_dead_locked(heap_impl& impl, std::size_t* recovered) {
  for (std::uint32_t c = 1; c <= layout::kMaxClients; ++c) {
    if (c == impl.client_index) continue;
    layout::client_record& rec = record_of(impl, c);
    if (__atomic_load_n(&rec.state, __ATOMIC_ACQUIRE) != layout::kClientAttached) continue;
    if (port::identity_alive({rec.pid, 0, rec.start_ticks})) continue;
    if (status s = recover_client(impl, c); !s.ok()) return s;
    if (recovered != nullptr) ++*recovered;
  }
  return {};
}

void init_shared_record(heap_impl& impl) {
  layout::shared_writers_record& shared = shared_record(impl);
  std::memset(static_cast<void*>(&shared), 0, sizeof(shared));
  (void)port::robust_lock_init(&shared.clients_lock);
  (void)port::robust_lock_init(&shared.region_lock);
  (void)port::robust_lock_init(&shared.tables_lock);
  shared.version = layout::kSharedVersion;
  shared.session = port::random64() | 1;
  shared.build_signature = shared_build_signature();
  for (layout::lane_record& lane : impl.meta()->lanes) {
    lane.owner_client = layout::kNoClient;
    lane.owner_pid = 0;
    lane.owner_start_ticks = 0;
  }
  __atomic_store_n(&shared.magic, layout::kSharedMagic, __ATOMIC_RELEASE);
}

}  // namespace

status claim_client_lane(heap_impl& impl, std::uint32_t* lane_index) {
  layout::heap_meta* meta = impl.meta();
  for (std::uint32_t i = 0; i < layout::kMaxLanes; ++i) {
    layout::lane_record& lane = meta->lanes[i];
    if (lane.owner_client != layout::kNoClient) continue;
    port::process_identity me = port::self_identity();
    lane.owner_client = impl.client_index;
    lane.owner_pid = me.pid;
    lane.owner_start_ticks = me.start_ticks;
    // Durable: after a power failure, recovery must still know the lane's
    // transactions for a shared writer's (shared_lane_rollback).
    if (int err = impl.domain->persist(&lane.owner_client, offsetof(layout::lane_record, unused) -
                                                              offsetof(layout::lane_record, owner_client))) {
      lane.owner_client = layout::kNoClient;
      lane.owner_pid = 0;
      lane.owner_start_ticks = 0;
      return status::from_errno(err, "recording the owner of an undo-log lane");
    }
    // Every number below the limit may have been handed out before.
    impl.next_seq[i] = std::max(lane.seq_limit, recovery::committed_seq(lane) + 1);
    impl.client_lanes[i].store(true, std::memory_order_release);
    *lane_index = i;
    return {};
  }
  return status(errc::table_full, "every undo-log lane of the heap belongs to a client (" +
                                      std::to_string(layout::kMaxLanes) + " lanes)");
}

alloc::segment* shared_lane_rollback::pages_segment(std::uintptr_t address) const noexcept {
  if (address < base_ + layout::kSegmentSize) return nullptr;
  std::size_t index = (address - base_) >> layout::kSegmentShift;
  if (index >= layout::kMaxSegments ||
      layout::entry_state(__atomic_load_n(&meta_->segments[index], __ATOMIC_ACQUIRE)) != layout::kSegmentPages)
    return nullptr;
  auto* s = reinterpret_cast<alloc::segment*>(base_ + (index << layout::kSegmentShift));
  return s->magic == alloc::kSegmentMagic ? s : nullptr;
}

std::uint32_t shared_lane_rollback::entry_client(std::size_t index) const noexcept {
  std::size_t head = index;
  layout::segment_state st = layout::entry_state(__atomic_load_n(&meta_->segments[index], __ATOMIC_ACQUIRE));
  if (st == layout::kSegmentHugeTail) {
    while (head > 1 && layout::entry_state(meta_->segments[head]) == layout::kSegmentHugeTail) --head;
    st = layout::entry_state(meta_->segments[head]);
  }
  if (st != layout::kSegmentPages && st != layout::kSegmentHugeHead) return layout::kNoClient;
  const auto* s = reinterpret_cast<const alloc::segment*>(base_ + (head << layout::kSegmentShift));
  if (s->magic != alloc::kSegmentMagic || (st == layout::kSegmentHugeHead && head + s->span <= index))
    return layout::kNoClient;
  return __atomic_load_n(&s->client, __ATOMIC_ACQUIRE);
}

void shared_lane_rollback::changed_since(std::uintptr_t start, const std::uint8_t* before, std::size_t size,
                                         std::vector<range>* out) const {
  std::uintptr_t end = start + size;
  auto high = reinterpret_cast<std::uintptr_t>(&meta_->segments_high);
  if (high >= start && high + 8 <= end) out->push_back({high, 8});
  auto table = reinterpret_cast<std::uintptr_t>(&meta_->segments[0]);
  auto table_end = reinterpret_cast<std::uintptr_t>(&meta_->segments[layout::kMaxSegments]);
  if (start < table_end && end > table) {
    constexpr std::size_t kEntry = sizeof(meta_->segments[0]);
    std::uintptr_t first = std::max(start, table);
    first += (kEntry - (first - table) % kEntry) % kEntry;
    for (std::uintptr_t at = first; at + kEntry <= std::min(end, table_end); at += kEntry) {
      std::uint32_t logged = 0;
      std::memcpy(&logged, before + (at - start), kEntry);
      std::size_t index = (at - table) / kEntry;
      std::uint32_t now = __atomic_load_n(&meta_->segments[index], __ATOMIC_ACQUIRE);
      // Changed since: written back only where the segment is provably the
      // dead client's own (its transaction took it); anything else (a
      // segment another client took, an undo-log extent, a segment whose
      // dead owner was disowned first) was changed by the others.
      if (now != logged && (client_ == layout::kNoClient || entry_client(index) != client_))
        out->push_back({at, kEntry});
    }
  }
  std::uintptr_t segment = start & ~(layout::kSegmentSize - 1);
  if (end > segment + layout::kSegmentSize) return;  // a header lies in one segment
  if (pages_segment(start) == nullptr) return;
  constexpr std::size_t kPages = offsetof(alloc::segment, pages);
  constexpr std::size_t kWord = offsetof(alloc::page, xthread_free);
  for (std::size_t i = 0; i < layout::kSlicesPerSegment; ++i) {
    std::uintptr_t word = segment + kPages + i * sizeof(alloc::page) + kWord;
    if (word >= start && word + 8 <= end) out->push_back({word, 8});
  }
}

bool shared_lane_rollback::take_back_push(std::uintptr_t block, std::vector<recovery::persist_range>* written) const {
  alloc::segment* s = pages_segment(block);
  if (s == nullptr || (block & (alignof(std::max_align_t) - 1)) != 0) return false;
  void* relinked = nullptr;
  if (!alloc::take_back_push(reinterpret_cast<void*>(block), &relinked)) return false;
  alloc::page* pg = alloc::page_of(s, reinterpret_cast<void*>(block));
  written->push_back({&pg->xthread_free, sizeof(pg->xthread_free)});
  if (relinked != nullptr) written->push_back({relinked, sizeof(void*)});
  return true;
}

void settle_after_commit_frees(std::uintptr_t base, layout::heap_meta* meta, std::uint32_t lane,
                               const recovery::lane_scan& scan, alloc::region* owners,
                               const std::function<void(alloc::segment*)>& free_huge) {
  shared_lane_rollback where(base, meta, layout::kNoClient);
  for (const recovery::found_record& r : scan.records) {
    std::uintptr_t address = r.header->address;
    if (r.header->kind == recovery::kRecordRemotePush) {
      if (alloc::segment* s = where.pages_segment(address)) {
        s->pending_pushes.fetch_and(~(std::uint64_t{1} << lane), std::memory_order_release);
        // The owner may have looked while the bit held it off.
        if (owners != nullptr) owners->note_foreign_free(__atomic_load_n(&s->client, __ATOMIC_ACQUIRE));
      }
    } else if (r.header->kind == recovery::kRecordHugeFree) {
      // Still marked: freed by nobody since the commit (a free takes the
      // header away, and a new use of the segment starts it afresh).
      std::size_t index = (address - base) >> layout::kSegmentShift;
      if ((address & (layout::kSegmentSize - 1)) != 0 || index == 0 || index >= layout::kMaxSegments ||
          layout::entry_state(meta->segments[index]) != layout::kSegmentHugeHead)
        continue;
      auto* head = reinterpret_cast<alloc::segment*>(address);
      if (head->magic == alloc::kSegmentMagic && head->freeing_lane == lane + 1) free_huge(head);
    }
  }
}

std::uint64_t shared_build_signature() noexcept {
  struct {
    std::uint64_t version, clients, record, lock, layout, glibc;
  } parts{layout::kSharedVersion, layout::kMaxClients, sizeof(layout::shared_writers_record),
          port::robust_lock_layout(), layout::kLayoutSignature, port::c_library_version()};
  return XXH3_64bits(&parts, sizeof(parts));
}

status attach_client(heap_impl& impl, bool first) {
  layout::shared_writers_record& shared = shared_record(impl);
  if (first) {
    init_shared_record(impl);
  } else if (shared.magic != layout::kSharedMagic || shared.version != layout::kSharedVersion ||
             shared.build_signature != shared_build_signature()) {
    return status(errc::foreign_build,
                  impl.name + ": the processes writing this heap use a larder build whose shared-writer layout "
                              "differs from this one's (version " + std::to_string(shared.version) + ", signature " +
                      std::to_string(shared.build_signature) + "; this build: version " +
                      std::to_string(layout::kSharedVersion) + ", signature " +
                      std::to_string(shared_build_signature()) + ")");
  }
  port::process_identity me = port::self_identity();
  if (me.start_ticks == 0)
    return status(errc::unsupported, impl.name + ": shared writers tell a live client from a dead one by "
                                                 "/proc/<pid>/stat, which this process cannot read");
  impl.clients_lock.bind(&shared.clients_lock, nullptr, nullptr);
  std::lock_guard guard(impl.clients_lock);
  if (!first) {
    impl.region.bind_shared_lock();
    if (status s = recover_dead_locked(impl, nullptr); !s.ok()) return s;
  }
  std::uint32_t slot = 0;
  for (std::uint32_t c = 1; c <= layout::kMaxClients && slot == 0; ++c)
    if (__atomic_load_n(&record_of(impl, c).state, __ATOMIC_ACQUIRE) == layout::kClientFree) slot = c;
  if (slot == 0)
    return status(errc::table_full, impl.name + ": " + std::to_string(layout::kMaxClients) +
                                        " processes have the heap open for writing, the most it takes");
  impl.client_index = slot;
  // Attached before it owns anything, so that a kill from here on leaves a
  // dead client that the next one recovers, lane and all.
  layout::client_record& rec = record_of(impl, slot);
  rec.pid = me.pid;
  rec.start_ticks = me.start_ticks;
  rec.attached_ns = port::realtime_ns();
  rec.foreign_frees = 0;
  ++shared.clients_ever;
  __atomic_store_n(&rec.state, layout::kClientAttached, __ATOMIC_RELEASE);
  std::uint32_t lane = 0;
  if (status s = claim_client_lane(impl, &lane); !s.ok()) {
    __atomic_store_n(&rec.state, layout::kClientFree, __ATOMIC_RELEASE);
    impl.client_index = 0;
    return s;
  }
  impl.region.share(static_cast<std::uint16_t>(slot), first);
  impl.meta_lock.bind(&shared.tables_lock, nullptr, nullptr);
  return {};
}

void forget_clients(heap_impl& impl) noexcept {
  layout::shared_writers_record& shared = shared_record(impl);
  if (shared.magic == 0) return;
  std::memset(static_cast<void*>(&shared), 0, sizeof(shared));
  for (layout::lane_record& lane : impl.meta()->lanes) {
    lane.owner_client = layout::kNoClient;
    lane.owner_pid = 0;
    lane.owner_start_ticks = 0;
  }
  // Segments name no client on a heap with one writer (page_collect and
  // set_full tell shared heaps by it).
  impl.region.mark_all_segments(layout::kNoClient);
}

void detach_client(heap_impl& impl) noexcept {
  std::uint32_t me = impl.client_index;
  std::lock_guard guard(impl.clients_lock);
  // A failed transaction left its lane for recovery: the slot stays, and
  // the next client to look recovers it once this process is gone.
  if (!impl.tx_failure.empty()) return;
  for (std::uint32_t i = 0; i < layout::kMaxLanes; ++i) {
    if (!impl.client_lanes[i].exchange(false, std::memory_order_acq_rel)) continue;
    layout::lane_record& lane = impl.meta()->lanes[i];
    lane.owner_client = layout::kNoClient;
    lane.owner_pid = 0;
    lane.owner_start_ticks = 0;
  }
  impl.region.disown_segments(static_cast<std::uint16_t>(me));
  layout::client_record& rec = record_of(impl, me);
  rec.pid = 0;
  rec.start_ticks = 0;
  rec.attached_ns = 0;
  __atomic_store_n(&rec.state, layout::kClientFree, __ATOMIC_RELEASE);
}

status recover_dead_clients(heap_impl& impl, std::size_t* recovered) {
  if (recovered != nullptr) *recovered = 0;
  if (impl.client_index == 0) return {};
  std::lock_guard guard(impl.clients_lock);
  return recover_dead_locked(impl, recovered);
}

}  // namespace larder
