// The object store's internals shared by its files: a handle's state
// (store_impl), the frame every operation runs in (run_operation,
// run_on_object), the stripe lock, the store's transactions, the index
// (index.cpp), the clients' reference rows (client_refs.cpp), object
// removal, eviction, notifications and recovery (recover.cpp).
#pragma once

#include <larder/heap.hpp>
#include <larder/status.hpp>
#include <larder/store.hpp>
#include <larder/transaction.hpp>

#include "runtime/store/guard.hpp"
#include "runtime/store/layout.hpp"

#include <cstddef>
#include <cstdint>
#include <new>
#include <span>

namespace larder {

class heap_impl;

class store_impl {
 public:
  heap* owner = nullptr;
  heap owned_heap;  // when store::open(options) opened the heap
  heap_impl* hi = nullptr;
  store_layout::store_header* header = nullptr;
  std::uint32_t client = 0;  // this handle's slot
  std::uint32_t object_pod = 0;
  std::uint32_t meta_pod = 0;
  std::size_t evictions = 0;
  store_internal::process_store* process = nullptr;  // guard.hpp
  // A stripe was found left by a dead client, or kRecoverEvery operations
  // went by: recover() at the next call.
  bool recovery_due = false;
  std::uint64_t operations = 0;
  // Test hook (store_test_hooks.hpp): kill points left before this handle
  // stops as if its process were killed there; 0 when unset.
  int steps_to_stop = 0;
  bool stopped = false;

  store_layout::client_slot& slot() const noexcept { return header->clients[client]; }
  // True at the kill point where a stop was asked for: the caller returns
  // stopped_status() at once, writing nothing more.
  bool kill_point() noexcept {
    if (steps_to_stop == 0 || --steps_to_stop != 0) return false;
    stopped = true;
    slot().state.store(store_layout::kAbandonedClient);
    return true;
  }
};

namespace store_internal {

using namespace store_layout;

status stopped_status();
inline constexpr std::uint64_t kRecoverEvery = 65536;  // a power of two
// The start of every operation of a handle: refuses a closed or stopped
// one, and runs the recovery a dead client's stripe asked for.
status store_enter(store& handle);

std::uint64_t hash_id(const object_id& id) noexcept;
inline index_stripe& stripe_of(store_header* h, std::uint64_t hash) noexcept {
  return h->stripes[hash % kStripes];
}
bool same_id(const object_header* o, const object_id& id) noexcept;
object_id id_of(const object_header* o);

// Holds a stripe. A stripe taken while its `holder` word is still set was
// left by a client that died holding it (the robust lock reports that, and
// so does a stop at a kill point): its half-done change of the reference
// counts is settled before anything else reads the stripe.
class stripe_lock {
 public:
  stripe_lock(store_impl& s, index_stripe& stripe) noexcept;
  ~stripe_lock();
  stripe_lock(const stripe_lock&) = delete;
  stripe_lock& operator=(const stripe_lock&) = delete;
  const status& result() const noexcept { return result_; }

 private:
  store_impl& s_;
  index_stripe& stripe_;
  status result_;
  bool held_ = false;
};

// --- the frame of an operation -------------------------------------------
// Runs body(s) as an operation of `handle`: entered (store_enter), with the
// store's metadata writable throughout, once every id in `ids` is known to
// be non-empty (invalid_argument otherwise).
template <class Body>
status run_operation(store& handle, std::span<const object_id> ids, Body&& body) {
  if (status st = store_enter(handle); !st.ok()) return st;
  store_impl& s = *handle.impl();
  guarded_operation guard(s);
  for (const object_id& id : ids)
    if (id.empty()) return status(errc::invalid_argument, "an empty object id");
  return body(s);
}

// Runs body(stripe, hash) holding the stripe of `id`.
template <class Body>
status with_stripe(store_impl& s, const object_id& id, Body&& body) {
  std::uint64_t hash = hash_id(id);
  index_stripe& stripe = stripe_of(s.header, hash);
  stripe_lock lock(s, stripe);
  if (!lock.result().ok()) return lock.result();
  return body(stripe, hash);
}

// An operation on the one object `id`: body(s, stripe, hash), its stripe held.
template <class Body>
status run_on_object(store& handle, const object_id& id, Body&& body) {
  return run_operation(handle, std::span(&id, 1), [&](store_impl& s) {
    return with_stripe(s, id, [&](index_stripe& stripe, std::uint64_t hash) { return body(s, stripe, hash); });
  });
}

// Holds a lock whose data a dead holder cannot leave half changed: the
// admin lock (client and subscriber slots are claimed with single-word
// writes, the state last) and a subscriber's lock (an entry is written
// before the tail moves past it). Its result is corrupt when the lock
// cannot be taken.
class slot_lock {
 public:
  explicit slot_lock(port::robust_lock* lock) noexcept;
  ~slot_lock();
  slot_lock(const slot_lock&) = delete;
  slot_lock& operator=(const slot_lock&) = delete;
  const status& result() const noexcept { return result_; }

 private:
  port::robust_lock* lock_;
  status result_;
};

// A transaction of the heap for one store change: rolled back unless
// committed (the lane the heap recovers when a client dies).
class store_tx {
 public:
  explicit store_tx(store_impl& s) noexcept : s_(s) {}
  ~store_tx();
  store_tx(const store_tx&) = delete;
  store_tx& operator=(const store_tx&) = delete;
  status begin() noexcept;
  // nullptr when the heap is full.
  void* allocate(std::uint32_t pod, std::size_t size) noexcept;
  status snapshot(const void* p, std::size_t size) noexcept;
  void free(void* p) noexcept;
  status commit() noexcept;

 private:
  store_impl& s_;
  alignas(transaction) unsigned char storage_[sizeof(transaction)];
  transaction* tx_ = nullptr;
};

// --- the index (index.cpp); the stripe's lock is held --------------------
// The slot holding the object with `id` that is not being deleted (a
// deleted object still referenced stays in the index, invisible, and its
// id may be used again), or nullptr.
std::uintptr_t* find_slot(index_stripe& stripe, std::uint64_t hash, const object_id& id) noexcept;
// The slot of an object with `id`, in any state, that `table` holds a
// reference to, or nullptr.
std::uintptr_t* find_referenced_slot(index_stripe& stripe, std::uint64_t hash, const object_id& id,
                                     const ref_table& table) noexcept;
// Whether a probe for the object in slot i reaches it.
bool reachable(const index_stripe& stripe, std::uint64_t i) noexcept;
inline object_header* find_object(index_stripe& stripe, std::uint64_t hash, const object_id& id) noexcept {
  std::uintptr_t* slot = find_slot(stripe, hash, id);
  return slot == nullptr ? nullptr : slot_object(*slot);
}
// Adds `object` in `tx` (growing the stripe's table if it must).
status insert_object(store_impl& s, store_tx& tx, index_stripe& stripe, object_header* object) noexcept;
// Takes the object out of the index and frees it, in `tx`.
status erase_object(store_tx& tx, index_stripe& stripe, std::uintptr_t* slot) noexcept;
// Erases the object in a transaction of its own and notifies subscribers
// when it was sealed.
status remove_object(store_impl& s, index_stripe& stripe, std::uintptr_t* slot) noexcept;
template <class F>
void for_each_object(index_stripe& stripe, F&& f) {
  for (std::uint64_t i = 0; i < stripe.capacity; ++i)
    if (stripe.slots[i] > kTombstone) f(&stripe.slots[i], slot_object(stripe.slots[i]));
}

// --- reference rows (client_refs.cpp); the stripe's lock is held -------
inline std::uint32_t stripe_number(const store_header* h, const index_stripe& stripe) noexcept {
  return static_cast<std::uint32_t>(&stripe - h->stripes);
}
ref_row* find_row(const ref_table& table, const object_header* object) noexcept;
// The row for `object`, made with count 0 if the table has none (the table
// grows in a transaction of its own when it must).
status find_or_add_row(store_impl& s, ref_table& table, object_header* object, ref_row** out) noexcept;
// The references the rows of every client but `except` hold on `object`
// of stripe `stripe`.
std::uint64_t rows_total(const store_header* h, std::uint32_t stripe, const object_header* object,
                         std::uint32_t except = kClients) noexcept;
// A table without tombstones and sized for its rows, in `tx`.
status compact_rows(store_impl& s, store_tx& tx, ref_table& table) noexcept;
// Makes and frees a client's kStripes tables.
status make_tables(store_impl& s, client_slot& client) noexcept;
status free_tables(store_impl& s, client_slot& client) noexcept;

// --- subscriptions (notify.cpp) -----------------------------------------
// Queues `note` for every subscriber.
void notify(store_impl& s, const notification_entry& note) noexcept;
// After a seal, with no stripe held: wakes the gets waiting for one and
// queues `note` for every subscriber.
void announce_seal(store_impl& s, const notification_entry& note) noexcept;
notification_entry note_of(const object_header* object, std::uint8_t kind) noexcept;
void drop_subscriptions_of(store_impl& s, std::uint32_t client) noexcept;

// --- eviction (evict.cpp) -------------------------------------------------
// Evicts sealed, unreferenced objects, oldest release first, until `bytes`
// were freed. *freed gets what was. No lock may be held.
status evict(store_impl& s, std::uint64_t bytes, std::uint64_t* freed) noexcept;
std::uint64_t bytes_in_store(const store_header* h) noexcept;

// --- recovery (recover.cpp) -------------------------------------------------
// Makes the reference counts of the stripe's objects agree with the rows
// of `client`, which died holding the stripe, and marks it dead.
void settle_stripe(store_impl& s, index_stripe& stripe, std::uint32_t client) noexcept;
// Releases everything `client` (claimed for recovery) held and frees its slot.
status recover_client(store_impl& s, std::uint32_t client) noexcept;
// With no other client attached (the first handle of a run of clients):
// frees every client slot and its tables and subscriptions, and leaves
// only sealed, unreferenced objects.
status settle_new_run(store_impl& s) noexcept;
// Whether client slot `c` belongs to a client that is gone; `self` is
// this process.
bool client_is_dead(const store_impl& s, std::uint32_t c, const port::process_identity& self) noexcept;

}  // namespace store_internal
}  // namespace larder
