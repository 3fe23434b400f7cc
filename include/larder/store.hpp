// larder::store: a shared object store inside a heap (docs/store.md).
//
// Co-located processes (or threads) open the same store and exchange
// immutable objects with no server on the data path: a producer creates an
// object, writes it in place and seals it; consumers get a read-only view
// of the same bytes (zero copy) and release it when done. Every store
// handle is a client with a slot of its own in the store; a client that
// dies in the middle of any operation leaves the store consistent, and the
// next recover() (run by any client on open, on a timed-out wait, or on
// demand) releases what it held and deletes what it left unsealed.
//
//   larder::store s;
//   larder::throw_if_error(larder::store::open(options, &s));
//   larder::object_buffer b;
//   s.create(larder::object_id(42), 1024, 0, &b);   // write into b.data
//   s.seal(larder::object_id(42));
//   larder::object_view v;
//   s.get(larder::object_id(42), &v);                // read v.data
//   s.release(larder::object_id(42));
#pragma once

#include <larder/export.hpp>
#include <larder/heap.hpp>
#include <larder/status.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace larder {

// An object's name: a 64-bit number or up to 20 bytes of binary (Plasma's
// and Lightning's ObjectID). Ids of the two kinds never compare equal.
class LARDER_EXPORT object_id {
 public:
  static constexpr std::size_t max_size = 20;
  object_id() noexcept = default;
  explicit object_id(std::uint64_t number) noexcept;
  // The first `size` bytes of `bytes`; size must be 1..20 (an empty id
  // otherwise, which every operation refuses with invalid_argument).
  static object_id from_binary(const void* bytes, std::size_t size) noexcept;

  bool empty() const noexcept { return size_ == 0; }
  bool is_number() const noexcept { return number_; }
  const std::uint8_t* data() const noexcept { return bytes_; }
  std::size_t size() const noexcept { return size_; }
  // The number in decimal, or the bytes in hex.
  std::string text() const;
  friend LARDER_EXPORT bool operator==(const object_id& a, const object_id& b) noexcept;

 private:
  std::uint8_t bytes_[max_size] = {};
  std::uint8_t size_ = 0;
  bool number_ = false;
};

enum class object_state : std::uint8_t {
  unsealed,  // being written by its creator
  sealed,    // immutable and visible to get
  deleting,  // deleted while referenced: gone at its last release
};
LARDER_EXPORT const char* to_string(object_state state) noexcept;

struct object_info {
  object_id id;
  std::size_t data_size;
  std::size_t metadata_size;
  object_state state;
  std::uint32_t refcount;  // references held by all clients
};

// Where a created object's bytes go. Valid until seal() or abort() of the
// object by this handle.
struct object_buffer {
  std::span<std::byte> data;
  std::span<std::byte> metadata;
};

// A sealed object's bytes, read-only, valid until release() of the
// reference that get() took. Data is 16-byte aligned.
struct object_view {
  std::span<const std::byte> data;
  std::span<const std::byte> metadata;
  bool valid() const noexcept { return data.data() != nullptr; }
};

struct notification {
  enum class kind : std::uint8_t { sealed = 1, deleted = 2 };
  object_id id;
  kind what;
  std::size_t data_size;
  std::size_t metadata_size;
};

// A field of a multi-field object (Lightning's MultiPut/MultiGet).
struct field {
  std::string_view name;
  std::span<const std::byte> value;
};

// How this process keeps the store's metadata (its control block, index
// and reference tables: the pod larder.store.meta) from stray writes
// outside store operations. Object data and the 64-byte header in front
// of it are not covered. Every handle of a process on one store uses the
// same protection.
enum class store_protection : std::uint8_t {
  none,
  // Protection keys (x86-64 PKU): the metadata is tagged with a key whose
  // writes each thread allows only inside a store operation; a register
  // write each way. Where the CPU has no PKU, opening fails with
  // unsupported. A thread that has never run a store operation cannot
  // read the metadata either (Linux denies new keys to other threads).
  keys,
  // A debugging mode for any CPU: the metadata's pages are made read-only
  // (mprotect) when no operation of this process is running, and
  // writable when one starts: two system calls per operation that finds
  // none running, and operations of the process's threads serialise on
  // that switch. Not compatible with the mprotect page-write tracker.
  guard,
};

struct store_options {
  // The heap store::open(options, out) opens or creates (shm, file, or
  // anonymous for one process); unused by open(heap&, ...).
  heap_options heap;
  // Bytes of object data and metadata the store may hold, set when the
  // store is made (ignored afterwards); 0 means as much as the heap holds.
  // A create that does not fit evicts sealed, unreferenced objects, least
  // recently released first, or fails with store_full.
  std::size_t capacity = 0;
  store_protection protection = store_protection::none;
};

struct store_stats {
  std::size_t objects;      // in the index, every state
  std::size_t bytes;        // their data and metadata
  std::size_t capacity;     // 0: the heap's
  std::size_t clients;      // live client slots
  std::size_t evictions;    // objects evicted by this handle
  std::uint32_t format_major;
  std::uint32_t format_minor;
};

class store_impl;  // internal

// A subscription: notifications of seals and deletes, in order, in a queue
// inside the heap. One thread reads it at a time.
class LARDER_EXPORT subscription {
 public:
  subscription() noexcept = default;
  subscription(subscription&& other) noexcept;
  subscription& operator=(subscription&& other) noexcept;
  ~subscription();

  // Waits at most timeout_ms (< 0: no limit) for the next notification.
  // Errors: timed_out, notifications_lost (the queue was full and some
  // were dropped; the count is in the message; the next call goes on),
  // invalid_argument (not subscribed).
  status next(notification* out, std::int64_t timeout_ms);
  bool valid() const noexcept { return impl_ != nullptr; }

 private:
  friend class store;
  store_impl* impl_ = nullptr;
  std::uint32_t slot_ = 0;
};

// Thread-safety: a handle is one client and is used by one thread at a
// time; open one handle per thread for concurrent work (handles are cheap:
// a slot in the store). Any number of handles, in any number of threads
// and processes, may work on one store at once.
//
// Lifetime: the heap passed to open(heap&, ...) must outlive the handle.
// Views and buffers stay valid until released (or sealed), even after the
// object is deleted.
class LARDER_EXPORT store {
 public:
  store() noexcept = default;
  store(store&& other) noexcept;
  store& operator=(store&& other) noexcept;
  ~store();  // close()

  // Attaches a client to the store inside `h`, making the store if the
  // heap has none. Errors: read_only, foreign_build (a store of another
  // format or layout), corrupt (the root is not a store), table_full (every
  // client slot is taken), out_of_space.
  static status open(heap& h, const store_options& options, store* out);
  // Opens or creates options.heap, then the store in it; the handle owns
  // the heap (owner()), so handles opened over that heap must be closed
  // before it. Errors: those of heap::open and of open(heap&).
  static status open(const store_options& options, store* out);
  // Releases this client's references, deletes its unsealed objects and
  // frees its slot; closes the heap if the handle owns it. Idempotent.
  status close();
  bool is_open() const noexcept { return impl_ != nullptr; }

  // Makes an unsealed object of data_size + metadata_size bytes (either
  // may be 0) and hands back where to write it. Only this handle may seal
  // or abort it. Errors: already_exists (unsealed or sealed; a deleted id
  // may be used again), store_full (it does not fit and nothing is
  // evictable, even after recovering dead clients), invalid_argument
  // (empty id; a store call inside a transaction of the heap, true of
  // every operation).
  status create(const object_id& id, std::size_t data_size, std::size_t metadata_size, object_buffer* out);
  // Makes the object immutable and visible; wakes waiting gets and
  // notifies subscribers. Errors: not_found, already_sealed, not_creator.
  status seal(const object_id& id);
  // Deletes an unsealed object of this handle. Errors: not_found,
  // already_sealed, not_creator.
  status abort(const object_id& id);
  // Takes a reference to a sealed object. Errors: not_found (absent or
  // deleted), not_sealed (not sealed yet).
  status get(const object_id& id, object_view* out);
  // As get, waiting at most timeout_ms (< 0: no limit) for the object to
  // be created and sealed. Errors: timed_out, as get otherwise.
  status get(const object_id& id, std::int64_t timeout_ms, object_view* out);
  // Plasma's Get(ids, timeout): one wait for many objects. out gets one
  // view per id; those not sealed in time stay empty (!valid()). Returns
  // OK when every id was got, timed_out when some were not (the views that
  // are valid still hold references).
  status get(std::span<const object_id> ids, std::int64_t timeout_ms, std::vector<object_view>* out);
  // Drops one reference this handle took. Errors: not_found,
  // not_referenced (this handle holds none).
  status release(const object_id& id);
  // Deletes a sealed object. Deferred as in Plasma: while any client holds
  // a reference the object stays readable through the views already got
  // and is removed at the last release; it is gone for everything else at
  // once (get, contains and remove say not_found, and the id may be
  // created again). Errors: not_found, not_sealed (unsealed: use abort).
  status remove(const object_id& id);
  // Whether the object is sealed and not deleted.
  bool contains(const object_id& id) const;
  // Every object, in no order. Errors: those of taking a lock.
  status list(std::vector<object_info>* out) const;
  store_stats stats() const;

  // Notifications of every seal and delete from now on, `capacity` of
  // them queued at most (rounded up to a power of two). Errors:
  // table_full (32 subscriptions per store), out_of_space.
  status subscribe(subscription* out, std::size_t capacity = 1024);

  // --- multi-field objects (Lightning's MultiPut / MultiGet / MultiUpdate)
  // Creates and seals an object holding the named fields. Errors: as
  // create, invalid_argument (duplicate or empty names).
  status put_fields(const object_id& id, std::span<const field> fields);
  // Takes a reference to the object and gives the values of `names` (an
  // empty span for a name it lacks). Release with release(id). Errors: as
  // get, invalid_argument (not a multi-field object).
  status get_fields(const object_id& id, std::span<const std::string_view> names,
                    std::vector<std::span<const std::byte>>* values);
  // Replaces fields (adding new names) by sealing a new version of the
  // object under the same id in one step; readers holding the old version
  // keep it until they release it. Updates by clients at once all land,
  // each into the version the one before it sealed. Errors: as get_fields
  // and create.
  status update_fields(const object_id& id, std::span<const field> fields);

  // --- crash isolation ---------------------------------------------------
  // Finds clients whose process is gone (or that were abandoned) and
  // releases their references, deletes their unsealed objects and frees
  // their slots. Returns the number of clients recovered in *recovered.
  status recover(std::size_t* recovered = nullptr);
  // Verifies every invariant of the store: the index against its objects,
  // reference counts against the clients' reference rows, byte counts, and
  // that the store's pods hold no block the store does not know. Takes
  // every lock for a moment. corrupt with a description when one fails.
  status check() const;

  heap& owner() const noexcept;
  store_impl* impl() const noexcept { return impl_; }

 private:
  store_impl* impl_ = nullptr;
};

}  // namespace larder
