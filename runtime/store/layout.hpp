// The object store's layout inside its heap (docs/format/store.md): the
// control block found through the root "larder.store", its index stripes,
// client slots and subscriber queues, and the header in front of every
// object. The store format has its own version, separate from the heap's.
#pragma once

#include "port/shared_sync.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace larder::store_layout {

// "LRDSTORE" read as a little-endian word: a big-endian reader sees it
// reversed and refuses the store.
constexpr std::uint64_t kMagic = 0x45524f545344524cull;
constexpr std::uint32_t kFormatMajor = 1;
constexpr std::uint32_t kFormatMinor = 0;
constexpr const char* kRootName = "larder.store";
constexpr const char* kObjectPod = "larder.store.objects";
constexpr const char* kMetaPod = "larder.store.meta";

// 64 stripes keep two clients working on different objects off each
// other's lock with high probability (1/64 per pair) while the control
// block stays under 32 KiB.
constexpr std::uint32_t kStripes = 64;
constexpr std::uint32_t kClients = 128;
constexpr std::uint32_t kSubscribers = 32;
constexpr std::uint32_t kMaxIdSize = 20;      // Plasma's ObjectID
constexpr std::uint64_t kFirstCapacity = 16;  // index slots of a new stripe
constexpr std::uint64_t kFirstRefRows = 16;   // rows of a new reference table

// Index slot values besides objects.
constexpr std::uintptr_t kEmptySlot = 0;
constexpr std::uintptr_t kTombstone = 1;

enum stored_state : std::uint32_t {
  kCreating = 1,  // written by its creator, invisible to get
  kSealed = 2,    // immutable, visible
  kDeleting = 3,  // deleted while referenced: removed at the last release
};

enum object_flags : std::uint8_t {
  kNumberId = 1,    // the id is a 64-bit number (8 bytes, little-endian)
  kMultiField = 2,  // the data is a field table (docs/format/store.md)
};

// In front of every object's data, in the same block; data follows at
// offset 64, its metadata right after the data.
struct object_header {
  std::uint8_t id[kMaxIdSize];
  std::uint8_t id_size;
  std::uint8_t flags;
  std::uint16_t creator;  // client slot that created it
  std::atomic<std::uint32_t> state;
  std::atomic<std::uint32_t> refcount;  // sum of the clients' reference rows
  std::uint64_t hash;
  std::uint64_t data_size;
  std::uint64_t metadata_size;
  // Store clock when it last became unreferenced (or was sealed): the
  // eviction order, oldest first.
  std::atomic<std::uint64_t> last_use;

  unsigned char* data() noexcept { return reinterpret_cast<unsigned char*>(this) + sizeof(object_header); }
};

// An index slot holding an object: its address in the low 48 bits (user
// addresses on x86-64 and AArch64 fit), the top 16 bits of its hash above,
// so that a probe passes most other objects without reading their headers.
constexpr int kTagShift = 48;
inline std::uintptr_t slot_value(const object_header* o) noexcept {
  return reinterpret_cast<std::uintptr_t>(o) | (o->hash >> kTagShift << kTagShift);
}
inline object_header* slot_object(std::uintptr_t v) noexcept {
  return reinterpret_cast<object_header*>(v & ((std::uintptr_t{1} << kTagShift) - 1));
}
inline bool slot_tag_matches(std::uintptr_t v, std::uint64_t hash) noexcept {
  return (v >> kTagShift) == (hash >> kTagShift);
}

// One stripe of the index: an open-addressing table (linear probing) of
// object pointers, guarded by its lock. A stripe grows alone, so a resize
// stops only the readers of 1/kStripes of the ids, for the time it takes
// to rehash that stripe.
struct alignas(64) index_stripe {
  port::robust_lock lock;
  std::uintptr_t* slots;     // capacity entries: 0, kTombstone or slot_value(object)
  std::uint64_t capacity;    // a power of two
  std::uint64_t objects;     // live slots
  std::uint64_t tombstones;
  std::uint64_t bytes;       // data + metadata bytes of its objects
  // Client slot + 1 of the holder, cleared before the lock is released:
  // still set when the lock is next taken means the holder died in it.
  std::uint32_t holder;
  std::uint32_t unused;
  std::uint64_t unused2[2];
};

// A reference row of a client: `count` references to `object`.
struct ref_row {
  std::uintptr_t object;  // 0 empty, kTombstone, or an object_header*
  std::uint64_t count;
};

// A client's rows for the objects of one stripe: an open-addressing table
// written only by its client and only under that stripe's lock, so that
// whoever holds a stripe sees every client's rows for it unchanging.
struct ref_table {
  ref_row* rows;
  std::uint64_t capacity;  // a power of two, or 0
  std::uint64_t used;      // rows that are not empty (tombstones included)
  std::uint64_t unused;
};

enum client_state : std::uint32_t {
  kFreeClient = 0,
  kLiveClient = 1,
  kAbandonedClient = 2,  // left without cleaning up (test hook): dead
  kRecoveringClient = 3, // a recovery is releasing what it held
};

struct alignas(64) client_slot {
  std::atomic<std::uint32_t> state;
  std::uint32_t handle;  // which handle of its process
  port::process_identity who;
  ref_table* tables;     // kStripes of them
  // kRecoveringClient: the process and client slot recovering it; when
  // that client is dead too, the recovery is run again.
  port::process_identity recoverer;
  std::uint32_t recoverer_slot;
  std::uint32_t unused;
  std::uint64_t unused2;
};

// A subscriber's queue: a ring of notifications written by sealers and
// deleters under `lock`, read by its owner. `tail` is also its futex word.
struct notification_entry {
  std::uint8_t id[kMaxIdSize];
  std::uint8_t id_size;
  std::uint8_t kind;   // 1 sealed, 2 deleted
  std::uint8_t flags;  // the object's kNumberId
  std::uint8_t unused;
  std::uint32_t unused2;
  std::uint64_t data_size;
  std::uint64_t metadata_size;
};

struct alignas(64) subscriber_slot {
  port::robust_lock lock;
  std::atomic<std::uint32_t> state;  // 0 free, else the owning client slot + 1
  std::atomic<std::uint32_t> tail;   // entries written (wraps)
  std::atomic<std::uint32_t> head;   // entries read (wraps)
  std::atomic<std::uint32_t> dropped;  // lost because the ring was full
  std::uint32_t capacity;            // a power of two
  std::uint32_t unused;
  notification_entry* ring;
  std::uint64_t unused2[4];
};

struct store_header {
  std::uint64_t magic;
  std::uint32_t format_major;
  std::uint32_t format_minor;
  std::uint32_t stripe_count;
  std::uint32_t client_count;
  std::uint32_t subscriber_count;
  std::uint32_t header_size;  // sizeof(store_header): the layout signature
  std::uint64_t capacity;     // bytes of objects; 0: as many as the heap holds
  // On a heap with shared writers: the run of clients (layout::
  // shared_writers_record::session) that initialised the locks below; in
  // another run their bytes are stale and the first store opened
  // initialises them again.
  std::uint64_t locks_session;
  std::uint64_t unused[2];
  alignas(64) std::atomic<std::uint64_t> clock;
  alignas(64) std::atomic<std::uint32_t> seal_seq;  // futex word of waiting gets
  std::atomic<std::uint32_t> waiters;
  std::atomic<std::uint32_t> subscriber_mask;  // bit i: subscribers[i] in use
  alignas(64) port::robust_lock admin_lock;  // client and subscriber slots
  index_stripe stripes[kStripes];
  client_slot clients[kClients];
  subscriber_slot subscribers[kSubscribers];
};

static_assert(sizeof(object_header) == 64);
static_assert(kClients <= 0xffff);
static_assert(offsetof(object_header, state) == 24);
static_assert(offsetof(object_header, last_use) == 56);
static_assert(sizeof(index_stripe) == 128);
static_assert(sizeof(ref_row) == 16);
static_assert(sizeof(client_slot) == 64);
static_assert(offsetof(client_slot, tables) == 24);
static_assert(offsetof(client_slot, recoverer_slot) == 48);
static_assert(sizeof(ref_table) == 32);
static_assert(sizeof(notification_entry) == 48);
static_assert(sizeof(subscriber_slot) == 128);
static_assert(offsetof(store_header, clock) == 64);
static_assert(offsetof(store_header, seal_seq) == 128);
static_assert(offsetof(store_header, admin_lock) == 192);
static_assert(offsetof(store_header, stripes) == 256);
static_assert(sizeof(store_header) == 256 + 64 * 128 + 128 * 64 + 32 * 128);
static_assert(std::is_standard_layout_v<store_header>);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free && std::atomic<std::uint32_t>::is_always_lock_free);

}  // namespace larder::store_layout
