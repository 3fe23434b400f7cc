// The store's index: per-stripe open-addressing tables of object pointers
// (layout.hpp), the stripe lock, the transactions that change the index,
// and object ids.
#include "runtime/store/store_impl.hpp"

#include "runtime/heap_impl.hpp"
#include "runtime/transaction_engine.hpp"

#include <cerrno>
#include <cstring>

namespace larder {
namespace store_internal {

status stopped_status() { return status(errc::tx_aborted, "the client stopped at a kill point"); }

namespace {

// SplitMix64's finaliser: every input bit reaches every output bit, so the
// stripe (low bits) and the slot (high bits) are independent.
std::uint64_t mix(std::uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::uint64_t slot_start(std::uint64_t hash, std::uint64_t capacity) noexcept {
  return (hash >> 16) & (capacity - 1);
}

// The first slot on the probe path of `hash` whose object has `id` and
// passes `wanted`, or nullptr.
template <class Wanted>
std::uintptr_t* probe(index_stripe& stripe, std::uint64_t hash, const object_id& id, Wanted&& wanted) noexcept {
  std::uint64_t mask = stripe.capacity - 1;
  for (std::uint64_t i = slot_start(hash, stripe.capacity);; i = (i + 1) & mask) {
    std::uintptr_t v = stripe.slots[i];
    if (v == kEmptySlot) return nullptr;
    if (v == kTombstone || !slot_tag_matches(v, hash)) continue;
    auto* o = slot_object(v);
    if (o->hash == hash && same_id(o, id) && wanted(o)) return &stripe.slots[i];
  }
}

void place(std::uintptr_t* slots, std::uint64_t capacity, object_header* object) noexcept {
  for (std::uint64_t i = slot_start(object->hash, capacity);; i = (i + 1) & (capacity - 1)) {
    if (slots[i] == kEmptySlot) {
      slots[i] = slot_value(object);
      return;
    }
  }
}

// Rebuilds the stripe's table with `capacity` slots and no tombstones.
status rebuild(store_impl& s, store_tx& tx, index_stripe& stripe, std::uint64_t capacity) noexcept {
  auto* slots = static_cast<std::uintptr_t*>(tx.allocate(s.meta_pod, capacity * sizeof(std::uintptr_t)));
  if (slots == nullptr) return status(errc::out_of_space, "growing the store's index");
  std::memset(slots, 0, capacity * sizeof(std::uintptr_t));
  for_each_object(stripe, [&](std::uintptr_t*, object_header* o) { place(slots, capacity, o); });
  if (status st = tx.snapshot(&stripe.slots, offsetof(index_stripe, bytes) - offsetof(index_stripe, slots)); !st.ok())
    return st;
  if (stripe.slots != nullptr) tx.free(stripe.slots);
  stripe.slots = slots;
  stripe.capacity = capacity;
  stripe.tombstones = 0;
  return {};
}

}  // namespace

std::uint64_t hash_id(const object_id& id) noexcept {
  std::uint64_t h = mix(id.size() * 2 + (id.is_number() ? 1 : 0));
  for (std::size_t at = 0; at < id.size(); at += 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, id.data() + at, id.size() - at < 8 ? id.size() - at : 8);
    h = mix(h ^ word);
  }
  return h;
}

bool same_id(const object_header* o, const object_id& id) noexcept {
  return o->id_size == id.size() && ((o->flags & kNumberId) != 0) == id.is_number() &&
         std::memcmp(o->id, id.data(), id.size()) == 0;
}

object_id id_of(const object_header* o) {
  if (o->flags & kNumberId) {
    std::uint64_t number = 0;
    std::memcpy(&number, o->id, sizeof(number));
    return object_id(number);
  }
  return object_id::from_binary(o->id, o->id_size);
}

// ---- the stripe lock -----------------------------------------------------

stripe_lock::stripe_lock(store_impl& s, index_stripe& stripe) noexcept : s_(s), stripe_(stripe) {
  bool owner_died = false;
  if (int err = port::robust_lock_acquire(&stripe.lock, &owner_died)) {
    result_ = status(errc::corrupt, "a lock of the store's index cannot be taken (" + std::string(larder::strerror(err)) + ")");
    return;
  }
  held_ = true;
  // A dead holder's transaction is rolled back (by the heap) before the
  // stripe is settled from what that leaves.
  if (owner_died) {
    if (s.hi->shared_writers()) (void)s.owner->recover_dead_clients();
    port::robust_lock_mark_consistent(&stripe.lock);
  }
  if (std::uint32_t left_by = stripe.holder; left_by != 0) settle_stripe(s, stripe, left_by - 1);
  stripe.holder = s.client + 1;
}

stripe_lock::~stripe_lock() {
  if (!held_) return;
  // A client stopped at a kill point leaves the stripe as a killed one would.
  if (!s_.stopped) stripe_.holder = 0;
  port::robust_lock_release(&stripe_.lock);
}

slot_lock::slot_lock(port::robust_lock* lock) noexcept : lock_(lock) {
  bool owner_died = false;
  if (int err = port::robust_lock_acquire(lock, &owner_died)) {
    lock_ = nullptr;
    result_ = status(errc::corrupt, "a lock of the store cannot be taken (" + std::string(larder::strerror(err)) + ")");
    return;
  }
  if (owner_died) port::robust_lock_mark_consistent(lock);
}

slot_lock::~slot_lock() {
  if (lock_ != nullptr) port::robust_lock_release(lock_);
}

// ---- transactions ----------------------------------------------------------

store_tx::~store_tx() {
  if (tx_ == nullptr) return;
  tx_->abort();
  tx_->~transaction();
}

status store_tx::begin() noexcept {
  try {
    tx_ = new (storage_) transaction(*s_.owner);
  } catch (const error& e) {
    return e.result();
  } catch (const std::bad_alloc&) {
    return status::from_errno(ENOMEM, "beginning a transaction");
  }
  return {};
}

void* store_tx::allocate(std::uint32_t pod, std::size_t size) noexcept {
  return transactional_allocate(s_.hi, pod, size, 16);
}

status store_tx::snapshot(const void* p, std::size_t size) noexcept { return transactional_snapshot(s_.hi, p, size); }

void store_tx::free(void* p) noexcept { transactional_free(s_.hi, p); }

status store_tx::commit() noexcept {
  status st = tx_->commit();
  tx_->~transaction();
  tx_ = nullptr;
  return st;
}

// ---- the index ---------------------------------------------------------------

std::uintptr_t* find_slot(index_stripe& stripe, std::uint64_t hash, const object_id& id) noexcept {
  return probe(stripe, hash, id,
               [](const object_header* o) { return o->state.load(std::memory_order_relaxed) != kDeleting; });
}

std::uintptr_t* find_referenced_slot(index_stripe& stripe, std::uint64_t hash, const object_id& id,
                                     const ref_table& table) noexcept {
  return probe(stripe, hash, id, [&](const object_header* o) {
    const ref_row* row = find_row(table, o);
    return row != nullptr && row->count != 0;
  });
}

bool reachable(const index_stripe& stripe, std::uint64_t i) noexcept {
  auto* o = slot_object(stripe.slots[i]);
  for (std::uint64_t k = slot_start(o->hash, stripe.capacity); k != i; k = (k + 1) & (stripe.capacity - 1))
    if (stripe.slots[k] == kEmptySlot) return false;
  return true;
}

status insert_object(store_impl& s, store_tx& tx, index_stripe& stripe, object_header* object) noexcept {
  // At most half full counting tombstones: a lookup of an absent id (every
  // create makes one) probes to an empty slot, and linear probing's runs
  // grow fast past that.
  if ((stripe.objects + stripe.tombstones + 1) * 2 > stripe.capacity) {
    std::uint64_t capacity = (stripe.objects + 1) * 4 > stripe.capacity ? stripe.capacity * 2 : stripe.capacity;
    if (status st = rebuild(s, tx, stripe, capacity); !st.ok()) return st;
  }
  std::uint64_t mask = stripe.capacity - 1;
  std::uint64_t i = slot_start(object->hash, stripe.capacity);
  while (stripe.slots[i] > kTombstone) i = (i + 1) & mask;
  bool reused = stripe.slots[i] == kTombstone;
  if (status st = tx.snapshot(&stripe.slots[i], sizeof(std::uintptr_t)); !st.ok()) return st;
  if (status st = tx.snapshot(&stripe.objects, offsetof(index_stripe, holder) - offsetof(index_stripe, objects)); !st.ok())
    return st;
  stripe.slots[i] = slot_value(object);
  stripe.objects += 1;
  stripe.tombstones -= reused ? 1 : 0;
  stripe.bytes += object->data_size + object->metadata_size;
  return {};
}

status erase_object(store_tx& tx, index_stripe& stripe, std::uintptr_t* slot) noexcept {
  auto* object = slot_object(*slot);
  if (status st = tx.snapshot(slot, sizeof(std::uintptr_t)); !st.ok()) return st;
  if (status st = tx.snapshot(&stripe.objects, offsetof(index_stripe, holder) - offsetof(index_stripe, objects)); !st.ok())
    return st;
  *slot = kTombstone;
  stripe.objects -= 1;
  stripe.tombstones += 1;
  stripe.bytes -= object->data_size + object->metadata_size;
  tx.free(object);
  return {};
}

status remove_object(store_impl& s, index_stripe& stripe, std::uintptr_t* slot) noexcept {
  auto* object = slot_object(*slot);
  bool was_sealed = object->state.load(std::memory_order_relaxed) != kCreating;
  notification_entry note = note_of(object, 2);
  store_tx tx(s);
  if (status st = tx.begin(); !st.ok()) return st;
  if (s.kill_point()) return stopped_status();
  if (status st = erase_object(tx, stripe, slot); !st.ok()) return st;
  if (s.kill_point()) return stopped_status();
  if (status st = tx.commit(); !st.ok()) return st;
  if (was_sealed) notify(s, note);
  return {};
}

}  // namespace store_internal
}  // namespace larder
