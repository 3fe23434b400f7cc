// On-media format of a heap's fixed part: the two superblock copies and the
// metadata block (pod table, root table, segment table) that follow them.
// All fields are fixed-width little-endian; docs/format/heap.md describes the
// same bytes. Segment and page headers are in allocator/segment.hpp.
#pragma once

#include "port/shared_sync.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace larder::layout {

// "LRDRHEAP" read as a little-endian u64. A big-endian reader sees the
// bytes reversed, so a byte-order mismatch shows as a foreign magic.
inline constexpr std::uint64_t kHeapMagic = 0x504145485244524Cull;
inline constexpr std::uint32_t kFormatMajor = 1;  // incompatible changes
inline constexpr std::uint32_t kFormatMinor = 8;  // compatible additions (1: write statistics, 2: undo-log lanes,
                                                 // 3: root and pod record checksums, 4: quarantined pages,
                                                 // sparse backings, close journals and the last-close time,
                                                 // 5: unsettled segments, 6: shared writers, 7: frees inside
                                                 // shared writers' transactions, 8: evicted pages and the
                                                 // migration record)

inline constexpr std::size_t kSegmentShift = 22;  // 4 MiB segments
inline constexpr std::size_t kSegmentSize = std::size_t{1} << kSegmentShift;
inline constexpr std::size_t kSliceShift = 16;  // 64 KiB slices
inline constexpr std::size_t kSliceSize = std::size_t{1} << kSliceShift;
inline constexpr std::size_t kSlicesPerSegment = kSegmentSize / kSliceSize;

inline constexpr std::size_t kSuperblockSize = 4096;
inline constexpr std::size_t kSuperblockCopies = 2;  // at offsets 0 and 4096
inline constexpr std::size_t kMetaOffset = kSuperblockSize * kSuperblockCopies;

inline constexpr std::size_t kMaxPods = 1024;
inline constexpr std::size_t kMaxRoots = 4096;
inline constexpr std::size_t kPodNameMax = 47;    // bytes, without the NUL
inline constexpr std::size_t kRootNameMax = 95;   // bytes, without the NUL
// Segment 0 holds the superblocks and the metadata block; the segment table
// (4 bytes a segment) bounds the reserve to 2 TiB.
inline constexpr std::size_t kMaxReserve = std::size_t{2} << 40;
inline constexpr std::size_t kMaxSegments = kMaxReserve / kSegmentSize;
// Heaps lie below 2^47 (the user half of a 4-level address space): the
// allocator packs block addresses into 47 bits (allocator/segment.hpp).
inline constexpr std::uint64_t kAddressLimit = std::uint64_t{1} << 47;

enum class backing_kind : std::uint32_t { anonymous = 0, shm = 1, file = 2 };

struct superblock {
  std::uint64_t magic;
  std::uint32_t format_major;
  std::uint32_t format_minor;
  std::uint64_t generation;  // the valid copy with the higher one is current
  std::uint8_t uuid[16];
  std::uint64_t base;     // address the heap is mapped at
  std::uint64_t reserve;  // bytes of address space reserved at base
  std::uint64_t size;     // bytes of the backing in use; the file is at least this long
  std::uint64_t layout_signature;  // build options that change the layout
  std::uint32_t backing;           // backing_kind
  std::uint32_t flags;
  std::uint64_t created_ns;  // CLOCK_REALTIME at creation
  std::uint8_t unused[kSuperblockSize - 96];
  std::uint64_t checksum;  // XXH3-64 of every byte before this field
};
static_assert(sizeof(superblock) == kSuperblockSize);
static_assert(offsetof(superblock, checksum) == kSuperblockSize - 8);
static_assert(std::is_trivially_copyable_v<superblock>);

struct pod_record {
  char name[kPodNameMax + 1];
  std::uint32_t id;
  std::uint32_t in_use;    // 1 when the slot holds a pod
  std::uint64_t checksum;  // XXH3-64 of the bytes before it (format 1.3; recovery/records.hpp)
};
static_assert(sizeof(pod_record) == 64);
static_assert(offsetof(pod_record, checksum) == 56);

struct root_record {
  char name[kRootNameMax + 1];
  std::uint64_t object;  // address inside the heap
  std::uint64_t size;
  std::uint32_t in_use;
  std::uint32_t name_hash;
  std::uint64_t checksum;  // XXH3-64 of the bytes before it (format 1.3; recovery/records.hpp)
};
static_assert(sizeof(root_record) == 128);
static_assert(offsetof(root_record, checksum) == 120);

// Segment table entries: what each 4 MiB segment of the reserve is.
enum segment_state : std::uint32_t {
  kSegmentFree = 0,        // never used, or released (reads as zero)
  kSegmentPages = 1,       // holds heap pages of one pod (pod id in bits 16..31)
  kSegmentHugeHead = 2,    // first segment of one huge block (pod id in bits 16..31)
  kSegmentHugeTail = 3,    // a continuation of the huge block before it
  kSegmentMeta = 4,        // segment 0: superblocks and this block
  kSegmentLog = 5,         // part of an undo-log lane's extent (lane index in bits 16..31)
};
inline constexpr std::uint32_t segment_entry(segment_state state, std::uint32_t pod) {
  return static_cast<std::uint32_t>(state) | (pod << 16);
}
inline constexpr segment_state entry_state(std::uint32_t entry) {
  return static_cast<segment_state>(entry & 0xFFFF);
}
inline constexpr std::uint32_t entry_pod(std::uint32_t entry) { return entry >> 16; }

// "LRDRMETA".
inline constexpr std::uint64_t kMetaMagic = 0x4154454D5244524Cull;

// Page-write tracking, as of the last collect (format 1.1; zero in heaps
// made by 1.0, which reads as "never tracked"). Kept in the heap so that
// `larder stat` can show them for a heap another process has open.
enum tracking_backend_code : std::uint32_t { kNotTracked = 0, kTrackedUffd = 1, kTrackedMprotect = 2, kTrackedPkey = 3 };
struct tracking_record {
  std::uint64_t epoch;           // collects so far; the current epoch's number
  std::uint64_t epoch_start_ns;  // CLOCK_REALTIME when the current epoch began
  std::uint64_t last_epoch_ns;   // length of the last completed epoch
  std::uint32_t backend;         // tracking_backend_code while tracked
  std::uint32_t pid;             // the tracking process, while tracked
  std::uint64_t pages_last;      // pages written in the last completed epoch
  std::uint64_t pages_total;     // summed over all completed epochs
};
static_assert(sizeof(tracking_record) == 48);

// Per pod (index kMaxPods: the metadata pages).
struct pod_write_record {
  std::uint64_t pages_last;          // pages written in the last completed epoch
  std::uint64_t pages_total;         // summed over all completed epochs
  std::uint64_t epochs_written;      // completed epochs in which any page was
  std::uint64_t last_written_epoch;  // the latest of those
};
static_assert(sizeof(pod_write_record) == 32);

// Undo-log lanes (format 1.2; zero in older heaps: no lanes in use). A
// lane's log is a chain of extents, each a run of kSegmentLog segments;
// records (recovery/undo_log.hpp) are written from the start of the first
// extent for every transaction. A transaction commits when the commit slot
// of its parity (seq & 1) holds its seq with a good checksum; its data is
// durable before that. See docs/format/heap.md.
inline constexpr std::size_t kMaxLanes = 64;
inline constexpr std::size_t kMaxLaneExtents = 12;
// Slot 0 lies at bytes 104..135 of its lane and so straddles a 64-byte
// line: seq, time_ns and line_check share the first line (a crash never
// tears them), which is what recovery decides by; checksum, in the next
// line, is what readers before line checks decide by.
struct commit_slot {
  std::uint64_t seq;         // the committed transaction's number in its lane
  std::uint64_t time_ns;     // CLOCK_REALTIME at commit
  std::uint64_t line_check;  // XXH3-64 of seq and time_ns, bit 0 set (0 in older slots)
  std::uint64_t checksum;    // XXH3-64 of the fields before it
};
static_assert(sizeof(commit_slot) == 32);
inline constexpr std::uint32_t kLaneInUse = 1;
struct lane_record {
  std::uint32_t state;         // 0 never used, kLaneInUse
  std::uint32_t extent_count;  // extents[0, extent_count) are valid
  std::uint64_t extents[kMaxLaneExtents];  // first segment index | segment count << 32
  commit_slot commits[2];
  // Every seq the lane has handed out is below this, so a seq is never
  // reused, even when a crash kept the records of its transaction from
  // landing: stale records can never pass for a new transaction's.
  std::uint64_t seq_limit;
  // On a heap with shared writers (format 1.6; zero before and on other
  // heaps): the client whose lane this is, and who that client is, so that
  // its pending transaction is rolled back when it dies. 0: no owner.
  std::uint32_t owner_client;
  std::int32_t owner_pid;
  std::uint64_t owner_start_ticks;
  std::uint8_t unused[256 - 8 - 8 * kMaxLaneExtents - 64 - 8 - 16];
};
static_assert(sizeof(lane_record) == 256);
static_assert(offsetof(lane_record, commits) == 104 && offsetof(lane_record, seq_limit) == 168);
static_assert(offsetof(lane_record, owner_client) == 176);
inline constexpr std::uint64_t lane_extent(std::uint64_t first_segment, std::uint64_t count) {
  return first_segment | (count << 32);
}
inline constexpr std::uint64_t extent_first(std::uint64_t e) { return e & 0xFFFFFFFFu; }
inline constexpr std::uint64_t extent_count(std::uint64_t e) { return e >> 32; }

// Several processes writing one shm or file heap at once (format 1.6;
// zero in older heaps and in heaps never opened with shared writers). Each
// attached process is a client, numbered from 1 (0 names no client). The
// locks are process-shared robust mutexes: their bytes mean nothing once
// every client is gone, and the first client to attach initialises them
// again. Segment headers and lane records name their client.
inline constexpr std::size_t kMaxClients = 64;
inline constexpr std::uint32_t kNoClient = 0;
// "LRDRSHRD".
inline constexpr std::uint64_t kSharedMagic = 0x445248535244524Cull;
// The layout of shared_writers_record and what its fields mean to the
// clients attached at once; a client of another version refuses to attach.
inline constexpr std::uint32_t kSharedVersion = 2;  // 2: frees pushed inside transactions (format 1.7)
enum client_state : std::uint32_t { kClientFree = 0, kClientAttached = 1 };
struct client_record {
  std::int32_t pid;
  std::uint32_t state;          // client_state
  std::uint64_t start_ticks;    // with pid, who the client is (port::process_identity)
  // Frees other clients made into this client's pages (onto the pages'
  // remote-free lists), counted: when it changes, the client looks for
  // them in its full pages, which no queue of its own would bring back.
  std::uint64_t foreign_frees;
  std::uint64_t attached_ns;    // CLOCK_REALTIME
  std::uint8_t unused[32];
};
static_assert(sizeof(client_record) == 64);
struct shared_writers_record {
  std::uint64_t magic;            // kSharedMagic
  std::uint32_t version;          // kSharedVersion
  std::uint32_t unused0;
  std::uint64_t build_signature;  // the build options that change this record's meaning
  std::uint64_t clients_ever;     // attaches since the first one
  // Segments that no client owns (their client left or died), which a
  // client adopts before it carves a new page: a hint, so that clients
  // need not scan the segment table while there are none.
  std::uint64_t unowned_segments;
  // Drawn at random by the first client: names this run of clients, so
  // that what keeps locks of its own in the heap (the object store) knows
  // when their bytes are stale.
  std::uint64_t session;
  std::uint8_t unused[16];
  port::robust_lock clients_lock;  // attaching, detaching, recovering a dead client
  port::robust_lock region_lock;   // the segment table and the backing's size
  port::robust_lock tables_lock;   // pod and root records
  client_record clients[kMaxClients];  // client c is clients[c - 1]
};
static_assert(sizeof(shared_writers_record) == 256 + 64 * kMaxClients);

// Tier migration (format 1.8; zero in older heaps and in heaps never given
// a migration policy): the tier that holds the only copy of evicted pages
// (which pages: the evicted maps of segment headers, allocator/segment.hpp),
// so that an open after a crash loads them back (docs/tiers.md).
inline constexpr std::size_t kTierPathMax = 231;  // bytes, without the NUL
// kPmemTier only ever in an anonymous heap's record, which no open reads
// back: a shm heap's evicted pages go to a disk tier, the one kept across
// processes.
enum migration_tier_code : std::uint32_t { kNoTier = 0, kDiskTier = 1, kPmemTier = 2 };
struct migration_record {
  std::uint32_t tier;          // migration_tier_code
  std::uint32_t prefetch_pod;  // 1: the policy's prefetch_pod
  std::uint64_t capacity;      // bytes the tier may hold
  std::uint64_t dram_budget;   // the policy's, for `larder stat`; 0 none
  char tier_path[kTierPathMax + 1];
};
static_assert(sizeof(migration_record) == 256);

struct heap_meta {
  std::uint64_t magic;
  std::uint64_t segments_high;  // one past the highest segment ever used
  tracking_record tracking;
  pod_record pods[kMaxPods];
  root_record roots[kMaxRoots];
  std::uint32_t segments[kMaxSegments];  // segment table, see segment_state
  pod_write_record pod_writes[kMaxPods + 1];
  // Page-aligned, so that a transaction capturing pages can leave the
  // lanes' own pages unprotected.
  alignas(4096) lane_record lanes[kMaxLanes];
  // CLOCK_REALTIME when a writer last closed the heap cleanly, written
  // after everything else of the close was durable (format 1.4; 0 in older
  // heaps and until their first clean close: unknown).
  std::uint64_t last_close_ns;
  alignas(4096) shared_writers_record shared;  // format 1.6
  migration_record migration;                  // format 1.8
};
static_assert(offsetof(heap_meta, pods) == 64);
static_assert(offsetof(heap_meta, last_close_ns) == 2740224);
static_assert(offsetof(heap_meta, shared) == 2744320);
static_assert(offsetof(heap_meta, migration) == 2748672);
static_assert(kMetaOffset + sizeof(heap_meta) <= kSegmentSize, "metadata must fit in segment 0");
static_assert(std::is_trivially_copyable_v<heap_meta>);

// A build that changes any of these would misread the heap.
inline constexpr std::uint64_t kLayoutSignature =
    (std::uint64_t{kSegmentShift} << 0) | (std::uint64_t{kSliceShift} << 8) |
    (std::uint64_t{kMaxPods} << 16) | (std::uint64_t{kMaxRoots} << 32) | (std::uint64_t{sizeof(void*)} << 56);

}  // namespace larder::layout
