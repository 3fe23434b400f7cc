// larder::store's object operations (include/larder/store.hpp): create,
// seal, abort, get (with and without waiting), release, remove, contains,
// list. Opening and closing handles are store_open.cpp.
//
// Every operation holds the stripe of its object for its whole length;
// changes of the index (create, removal) run in a heap transaction inside
// it, and reference counting (get, release) writes single words in an
// order recover.cpp can settle, so the hot paths run no transaction.
#include <larder/store.hpp>

#include "runtime/heap_impl.hpp"
#include "runtime/store/store_impl.hpp"
#include "runtime/transaction_engine.hpp"

#include <chrono>
#include <cstring>
#include <limits>

namespace larder {

using namespace store_internal;

namespace {

status not_open() { return status(errc::invalid_argument, "the store is not open"); }

// Makes the object in its stripe; out_of_space when the heap is full.
status create_locked(store_impl& s, index_stripe& stripe, std::uint64_t hash, const object_id& id,
                     std::size_t data_size, std::size_t metadata_size, object_header** out) {
  stripe_lock lock(s, stripe);
  if (!lock.result().ok()) return lock.result();
  if (find_slot(stripe, hash, id) != nullptr) return status(errc::already_exists, "object " + id.text());
  store_tx tx(s);
  if (status st = tx.begin(); !st.ok()) return st;
  if (s.kill_point()) return stopped_status();
  void* block = tx.allocate(s.object_pod, sizeof(object_header) + data_size + metadata_size);
  if (block == nullptr) return status(errc::out_of_space, "creating object " + id.text());
  auto* o = static_cast<object_header*>(block);
  std::memset(static_cast<void*>(o), 0, sizeof(object_header));
  std::memcpy(o->id, id.data(), id.size());
  o->id_size = static_cast<std::uint8_t>(id.size());
  o->flags = id.is_number() ? kNumberId : 0;
  o->state.store(kCreating, std::memory_order_relaxed);
  o->creator = static_cast<std::uint16_t>(s.client);
  o->hash = hash;
  o->data_size = data_size;
  o->metadata_size = metadata_size;
  if (s.kill_point()) return stopped_status();
  if (status st = insert_object(s, tx, stripe, o); !st.ok()) return st;
  if (s.kill_point()) return stopped_status();
  if (status st = tx.commit(); !st.ok()) return st;
  if (s.kill_point()) return stopped_status();
  *out = o;
  return {};
}

// Makes room by eviction when the object does not fit the capacity or the
// heap; store_full when nothing evictable is left.
status create_or_evict(store_impl& s, const object_id& id, std::size_t data_size, std::size_t metadata_size,
                       object_header** out) {
  std::uint64_t bytes = data_size + metadata_size;
  if (std::uint64_t capacity = s.header->capacity; capacity != 0) {
    if (bytes > capacity) return status(errc::store_full, "the object is larger than the store's capacity");
    std::uint64_t used = bytes_in_store(s.header);
    if (used + bytes > capacity) {
      std::uint64_t freed = 0;
      if (status st = evict(s, used + bytes - capacity, &freed); !st.ok()) return st;
      if (used - freed + bytes > capacity) return status(errc::store_full, "creating object " + id.text());
    }
  }
  std::uint64_t hash = hash_id(id);
  index_stripe& stripe = stripe_of(s.header, hash);
  status st = create_locked(s, stripe, hash, id, data_size, metadata_size, out);
  if (st.is(errc::out_of_space)) {
    std::uint64_t freed = 0;
    if (status e = evict(s, sizeof(object_header) + bytes, &freed); !e.ok()) return e;
    if (freed == 0) return status(errc::store_full, "creating object " + id.text());
    st = create_locked(s, stripe, hash, id, data_size, metadata_size, out);
    if (st.is(errc::out_of_space)) return status(errc::store_full, "creating object " + id.text());
  }
  return st;
}

status get_now(store_impl& s, const object_id& id, object_view* out) {
  return with_stripe(s, id, [&](index_stripe& stripe, std::uint64_t hash) -> status {
    object_header* o = find_object(stripe, hash, id);
    if (o == nullptr) return status(errc::not_found, "object " + id.text());
    if (o->state.load(std::memory_order_relaxed) != kSealed) return status(errc::not_sealed, "object " + id.text());
    ref_row* row = nullptr;
    if (status st = find_or_add_row(s, s.slot().tables[stripe_number(s.header, stripe)], o, &row); !st.ok()) return st;
    if (s.kill_point()) return stopped_status();
    o->refcount.fetch_add(1, std::memory_order_relaxed);
    if (s.kill_point()) return stopped_status();
    row->count += 1;
    auto* data = reinterpret_cast<const std::byte*>(o->data());
    out->data = {data, o->data_size};
    out->metadata = {data + o->data_size, o->metadata_size};
    return {};
  });
}

}  // namespace

status store_internal::store_enter(store& handle) {
  store_impl* s = handle.impl();
  if (s == nullptr) return not_open();
  if (s->stopped) return stopped_status();
  // Now and then, whether or not anything asked: a dead client's
  // references keep objects from eviction until it is recovered.
  if ((++s->operations & (kRecoverEvery - 1)) == 0) s->recovery_due = true;
  // The operation's own transactions would join it, and its changes
  // would be visible to others before it commits.
  if (in_transaction(s->hi)) return status(errc::invalid_argument, "a store operation inside a transaction of its heap");
  if (s->recovery_due) {
    s->recovery_due = false;
    if (status st = handle.recover(); !st.ok()) return st;
  }
  return {};
}

status store::create(const object_id& id, std::size_t data_size, std::size_t metadata_size, object_buffer* out) {
  return run_operation(*this, std::span(&id, 1), [&](store_impl& s) -> status {
    constexpr std::size_t kMost = std::numeric_limits<std::size_t>::max() / 4;
    if (data_size > kMost || metadata_size > kMost) return status(errc::invalid_argument, "an object size too large");
    object_header* o = nullptr;
    status st = create_or_evict(s, id, data_size, metadata_size, &o);
    if (st.is(errc::store_full)) {
      // Dead clients may hold references that keep objects from eviction.
      std::size_t recovered = 0;
      if (status r = recover(&recovered); !r.ok()) return r;
      if (recovered != 0) st = create_or_evict(s, id, data_size, metadata_size, &o);
    }
    if (!st.ok()) return st;
    auto* data = reinterpret_cast<std::byte*>(o->data());
    out->data = {data, data_size};
    out->metadata = {data + data_size, metadata_size};
    return {};
  });
}

status store::seal(const object_id& id) {
  return run_operation(*this, std::span(&id, 1), [&](store_impl& s) -> status {
    notification_entry note;
    status st = with_stripe(s, id, [&](index_stripe& stripe, std::uint64_t hash) -> status {
      object_header* o = find_object(stripe, hash, id);
      if (o == nullptr) return status(errc::not_found, "object " + id.text());
      if (o->state.load(std::memory_order_relaxed) != kCreating)
        return status(errc::already_sealed, "object " + id.text());
      if (o->creator != s.client) return status(errc::not_creator, "object " + id.text());
      recovery::persist_domain& domain = *s.hi->domain;
      // Durable before it is visible: a sealed object is whole after a crash.
      // The header too: put_fields marks the object multi-field after create.
      if (domain.durable()) {
        if (int err = domain.persist(o, sizeof(object_header) + o->data_size + o->metadata_size))
          return status::from_errno(err, "making object " + id.text() + " durable");
      }
      o->last_use.store(s.header->clock.fetch_add(1, std::memory_order_relaxed), std::memory_order_relaxed);
      o->state.store(kSealed, std::memory_order_release);
      if (domain.durable()) {
        if (int err = domain.persist(&o->state, sizeof(o->state)))
          return status::from_errno(err, "making the seal of object " + id.text() + " durable");
      }
      if (s.kill_point()) return stopped_status();
      note = note_of(o, 1);
      return {};
    });
    if (st.ok()) announce_seal(s, note);
    return st;
  });
}

status store::abort(const object_id& id) {
  return run_on_object(*this, id, [&](store_impl& s, index_stripe& stripe, std::uint64_t hash) -> status {
    std::uintptr_t* slot = find_slot(stripe, hash, id);
    if (slot == nullptr) return status(errc::not_found, "object " + id.text());
    auto* o = slot_object(*slot);
    if (o->state.load(std::memory_order_relaxed) != kCreating)
      return status(errc::already_sealed, "object " + id.text());
    if (o->creator != s.client) return status(errc::not_creator, "object " + id.text());
    return remove_object(s, stripe, slot);
  });
}

status store::get(const object_id& id, object_view* out) {
  return run_operation(*this, std::span(&id, 1), [&](store_impl& s) { return get_now(s, id, out); });
}

status store::get(const object_id& id, std::int64_t timeout_ms, object_view* out) {
  std::vector<object_view> views;
  status st = get(std::span<const object_id>(&id, 1), timeout_ms, &views);
  if (st.ok()) *out = views[0];
  return st;
}

namespace {

// get(ids, timeout_ms) inside its operation: takes a reference to each
// object as it is sealed, until all are or the time is up.
status wait_and_get(store& handle, store_impl& s, std::span<const object_id> ids, std::int64_t timeout_ms,
                    std::vector<object_view>* out) {
  out->assign(ids.size(), object_view{});
  using clock = std::chrono::steady_clock;
  auto deadline = clock::now() + std::chrono::milliseconds(timeout_ms < 0 ? 0 : timeout_ms);
  std::size_t missing = ids.size();
  bool recovered = false;
  s.header->waiters.fetch_add(1);
  status result;
  for (;;) {
    std::uint32_t seq = s.header->seal_seq.load();
    for (std::size_t i = 0; i < ids.size() && result.ok(); ++i) {
      if ((*out)[i].valid()) continue;
      status st = get_now(s, ids[i], &(*out)[i]);
      if (st.ok()) {
        missing -= 1;
      } else if (!st.is(errc::not_found) && !st.is(errc::not_sealed)) {
        result = st;
      }
    }
    if (!result.ok() || missing == 0) break;
    std::int64_t left_ns = -1;
    if (timeout_ms >= 0) {
      left_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - clock::now()).count();
      if (left_ns <= 0) {
        // A failed wait is one of the moments to look for dead clients:
        // one may have died holding what we wait for.
        if (!recovered) {
          recovered = true;
          s.header->waiters.fetch_sub(1);
          if (status st = handle.recover(); !st.ok()) return st;
          s.header->waiters.fetch_add(1);
          continue;
        }
        result = status(errc::timed_out, std::to_string(missing) + " of " + std::to_string(ids.size()) + " objects");
        break;
      }
    }
    port::futex_wait(&s.header->seal_seq, seq, left_ns);
  }
  s.header->waiters.fetch_sub(1);
  if (!result.ok() && !result.is(errc::timed_out)) {
    for (std::size_t i = 0; i < ids.size(); ++i)
      if ((*out)[i].valid()) (void)handle.release(ids[i]);
    out->assign(ids.size(), object_view{});
  }
  return result;
}

}  // namespace

status store::get(std::span<const object_id> ids, std::int64_t timeout_ms, std::vector<object_view>* out) {
  return run_operation(*this, ids, [&](store_impl& s) { return wait_and_get(*this, s, ids, timeout_ms, out); });
}

status store::release(const object_id& id) {
  return run_on_object(*this, id, [&](store_impl& s, index_stripe& stripe, std::uint64_t hash) -> status {
    ref_table& table = s.slot().tables[stripe_number(s.header, stripe)];
    std::uintptr_t* slot = find_referenced_slot(stripe, hash, id, table);
    if (slot == nullptr) {
      if (find_slot(stripe, hash, id) == nullptr) return status(errc::not_found, "object " + id.text());
      return status(errc::not_referenced, "object " + id.text());
    }
    auto* o = slot_object(*slot);
    ref_row* row = find_row(table, o);
    std::uint32_t left = o->refcount.fetch_sub(1, std::memory_order_relaxed) - 1;
    if (s.kill_point()) return stopped_status();
    row->count -= 1;
    if (row->count == 0) row->object = kTombstone;
    if (s.kill_point()) return stopped_status();
    if (left != 0) return {};
    o->last_use.store(s.header->clock.fetch_add(1, std::memory_order_relaxed), std::memory_order_relaxed);
    if (o->state.load(std::memory_order_relaxed) == kDeleting) return remove_object(s, stripe, slot);
    return {};
  });
}

status store::remove(const object_id& id) {
  return run_on_object(*this, id, [&](store_impl& s, index_stripe& stripe, std::uint64_t hash) -> status {
    std::uintptr_t* slot = find_slot(stripe, hash, id);
    if (slot == nullptr) return status(errc::not_found, "object " + id.text());
    auto* o = slot_object(*slot);
    std::uint32_t state = o->state.load(std::memory_order_relaxed);
    if (state == kCreating) return status(errc::not_sealed, "object " + id.text() + " (abort it instead)");
    if (o->refcount.load(std::memory_order_relaxed) != 0) {
      o->state.store(kDeleting, std::memory_order_relaxed);
      // Durable as a seal is, or a power failure would bring the object back.
      recovery::persist_domain& domain = *s.hi->domain;
      if (domain.durable()) {
        if (int err = domain.persist(&o->state, sizeof(o->state)))
          return status::from_errno(err, "making the delete of object " + id.text() + " durable");
      }
      return {};
    }
    return remove_object(s, stripe, slot);
  });
}

bool store::contains(const object_id& id) const {
  store_impl* s = impl_;
  if (s == nullptr || s->stopped || id.empty()) return false;
  guarded_operation guard(*s);
  bool sealed = false;
  (void)with_stripe(*s, id, [&](index_stripe& stripe, std::uint64_t hash) {
    object_header* o = find_object(stripe, hash, id);
    sealed = o != nullptr && o->state.load(std::memory_order_relaxed) == kSealed;
    return status();
  });
  return sealed;
}

status store::list(std::vector<object_info>* out) const {
  store_impl* s = impl_;
  if (s == nullptr) return not_open();
  guarded_operation guard(*s);
  out->clear();
  for (index_stripe& stripe : s->header->stripes) {
    stripe_lock lock(*s, stripe);
    if (!lock.result().ok()) return lock.result();
    for_each_object(stripe, [&](std::uintptr_t*, object_header* o) {
      std::uint32_t state = o->state.load(std::memory_order_relaxed);
      out->push_back({id_of(o), o->data_size, o->metadata_size,
                      state == kCreating ? object_state::unsealed
                      : state == kSealed ? object_state::sealed
                                         : object_state::deleting,
                      o->refcount.load(std::memory_order_relaxed)});
    });
  }
  return {};
}

store_stats store::stats() const {
  store_stats st{};
  store_impl* s = impl_;
  if (s == nullptr) return st;
  guarded_operation guard(*s);
  for (const index_stripe& stripe : s->header->stripes) st.objects += stripe.objects;
  st.bytes = bytes_in_store(s->header);
  st.capacity = s->header->capacity;
  for (const client_slot& c : s->header->clients) st.clients += c.state.load() == kLiveClient ? 1 : 0;
  st.evictions = s->evictions;
  st.format_major = s->header->format_major;
  st.format_minor = s->header->format_minor;
  return st;
}

}  // namespace larder
