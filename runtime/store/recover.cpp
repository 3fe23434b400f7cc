// Crash isolation of the store: settling a stripe a client died holding,
// finding dead clients and releasing what they held (store::recover), and
// the invariant walker (store::check).
//
// Why a dead client can always be undone: every change of the index runs
// in a heap transaction, which the heap rolls back; every change of
// reference counts is made under the object's stripe lock as single-word
// writes to the client's row and to the object's count, and the row is
// the truth: a stripe found left by a dead holder gets each count the dead
// client's rows touch recomputed as the sum of all rows, before anyone
// else reads it. Releasing a dead client then recomputes the counts
// without its rows and only afterwards drops the rows, so a recovery that
// is itself cut short can be run again with the same result.
#include <larder/store.hpp>

#include "allocator/alloc.hpp"
#include "runtime/heap_impl.hpp"
#include "runtime/store/store_impl.hpp"

#include <algorithm>
#include <memory>
#include <set>

namespace larder {

using namespace store_internal;

namespace store_internal {
namespace {

bool same_process(const port::process_identity& a, const port::process_identity& b) noexcept {
  return a.pid == b.pid && a.start_ticks == b.start_ticks;
}

// Removes the stripe's deleted objects nobody references any more (a
// client may have died between its last release and the removal).
void remove_released(store_impl& s, index_stripe& stripe) noexcept {
  for (std::uint64_t i = 0; i < stripe.capacity; ++i) {
    std::uintptr_t v = stripe.slots[i];
    if (v <= kTombstone) continue;
    auto* o = slot_object(v);
    if (o->state.load() == kDeleting && o->refcount.load() == 0) (void)remove_object(s, stripe, &stripe.slots[i]);
  }
}

}  // namespace

bool client_is_dead(const store_impl& s, std::uint32_t c, const port::process_identity& self) noexcept {
  const client_slot& slot = s.header->clients[c];
  switch (slot.state.load()) {
    case kAbandonedClient: return true;
    case kLiveClient:
      // A handle of this process is alive until it is closed or abandoned.
      if (same_process(slot.who, self)) return false;
      return !port::identity_alive(slot.who);
    case kRecoveringClient: {
      if (!same_process(slot.recoverer, self)) return !port::identity_alive(slot.recoverer);
      // Recovered by a handle of this process: dead if that handle is. A
      // handle closing recovers its own slot.
      std::uint32_t by = slot.recoverer_slot;
      if (by == c) return false;
      return by >= kClients || s.header->clients[by].state.load() != kLiveClient;
    }
    default: return false;
  }
}

void settle_stripe(store_impl& s, index_stripe& stripe, std::uint32_t client) noexcept {
  store_header* h = s.header;
  client_slot& dead = h->clients[client];
  std::uint32_t live = kLiveClient;
  dead.state.compare_exchange_strong(live, kAbandonedClient);
  s.recovery_due = true;
  std::uint32_t n = stripe_number(h, stripe);
  if (dead.tables != nullptr) {
    ref_table& table = dead.tables[n];
    for (std::uint64_t i = 0; i < table.capacity; ++i) {
      ref_row& row = table.rows[i];
      if (row.object <= kTombstone) continue;
      auto* o = reinterpret_cast<object_header*>(row.object);
      o->refcount.store(static_cast<std::uint32_t>(rows_total(h, n, o)));
      if (row.count == 0) row.object = kTombstone;
    }
  }
  remove_released(s, stripe);
}

status recover_client(store_impl& s, std::uint32_t client) noexcept {
  store_header* h = s.header;
  client_slot& c = h->clients[client];
  for (std::uint32_t n = 0; n < kStripes; ++n) {
    index_stripe& stripe = h->stripes[n];
    stripe_lock lock(s, stripe);
    if (!lock.result().ok()) return lock.result();
    if (c.tables != nullptr) {
      ref_table& table = c.tables[n];
      for (std::uint64_t i = 0; i < table.capacity; ++i) {
        ref_row& row = table.rows[i];
        if (row.object <= kTombstone) continue;
        auto* o = reinterpret_cast<object_header*>(row.object);
        std::uint32_t left = static_cast<std::uint32_t>(rows_total(h, n, o, client));
        if (left == 0 && o->refcount.load() != 0)
          o->last_use.store(h->clock.fetch_add(1, std::memory_order_relaxed), std::memory_order_relaxed);
        o->refcount.store(left);
        row.count = 0;
        row.object = kTombstone;
      }
    }
    if (s.kill_point()) return stopped_status();
    for (std::uint64_t i = 0; i < stripe.capacity; ++i) {
      std::uintptr_t v = stripe.slots[i];
      if (v <= kTombstone) continue;
      auto* o = slot_object(v);
      if (o->state.load() == kCreating && o->creator == client) {
        if (status st = remove_object(s, stripe, &stripe.slots[i]); !st.ok()) return st;
      }
    }
    remove_released(s, stripe);
    if (s.stopped) return stopped_status();
  }
  if (status st = free_tables(s, c); !st.ok()) return st;
  drop_subscriptions_of(s, client);
  c.state.store(kFreeClient);
  return {};
}

// Every client of an earlier run is gone, but its slot may not say so:
// slots, reference counts, rows and the clock are written without a
// persist (a process crash leaves them whole; a power failure leaves
// whatever other persists happened to carry to the file). So they are not
// trusted to name what those clients left: the whole store is settled
// instead. Idempotent, so a run cut short is settled again by the next.
status settle_new_run(store_impl& s) noexcept {
  store_header* h = s.header;
  for (std::uint32_t c = 0; c < kClients; ++c) {
    if (status st = free_tables(s, h->clients[c]); !st.ok()) return st;
    drop_subscriptions_of(s, c);
    h->clients[c].state.store(kFreeClient);
  }
  std::uint64_t clock = h->clock.load();
  for (index_stripe& stripe : h->stripes) {
    stripe.holder = 0;
    for (std::uint64_t i = 0; i < stripe.capacity; ++i) {
      std::uintptr_t v = stripe.slots[i];
      if (v <= kTombstone) continue;
      auto* o = slot_object(v);
      o->refcount.store(0);
      clock = std::max(clock, o->last_use.load() + 1);
      if (o->state.load() == kSealed) continue;
      if (status st = remove_object(s, stripe, &stripe.slots[i]); !st.ok()) return st;
    }
  }
  h->clock.store(clock);
  return {};
}

}  // namespace store_internal

status store::recover(std::size_t* recovered) {
  if (recovered != nullptr) *recovered = 0;
  store_impl* s = impl_;
  if (s == nullptr) return status(errc::invalid_argument, "the store is not open");
  if (s->stopped) return stopped_status();
  guarded_operation guard(*s);
  s->recovery_due = false;
  // The heap rolls a dead process's transaction back first; the store then
  // settles what it held.
  if (s->hi->shared_writers()) {
    if (status st = s->owner->recover_dead_clients(); !st.ok()) return st;
  }
  store_header* h = s->header;
  const port::process_identity self = port::self_identity();
  for (std::uint32_t c = 0; c < kClients; ++c) {
    if (c == s->client || h->clients[c].state.load() == kFreeClient || !client_is_dead(*s, c, self)) continue;
    // Claimed under the admin lock, so that two recoveries never run
    // for one client at once.
    {
      slot_lock lock(&h->admin_lock);
      if (!lock.result().ok()) return lock.result();
      if (!client_is_dead(*s, c, self)) continue;
      h->clients[c].recoverer = self;
      h->clients[c].recoverer_slot = s->client;
      h->clients[c].state.store(kRecoveringClient);
    }
    if (status st = recover_client(*s, c); !st.ok()) return st;
    if (recovered != nullptr) *recovered += 1;
  }
  return {};
}

namespace {

// Collects what check() finds, up to a few problems.
class problems {
 public:
  void add(const std::string& what) {
    if (count_++ < 8) text_ += (text_.empty() ? "" : "; ") + what;
  }
  status result() const {
    if (count_ == 0) return {};
    return status(errc::corrupt, std::to_string(count_) + " problems in the store: " + text_);
  }

 private:
  std::size_t count_ = 0;
  std::string text_;
};

void check_stripe(const store_header* h, std::uint32_t n, std::set<const void*>* objects,
                  std::size_t* object_bytes, problems* p) {
  const index_stripe& stripe = h->stripes[n];
  std::string where = "stripe " + std::to_string(n);
  if (stripe.capacity == 0 || (stripe.capacity & (stripe.capacity - 1)) != 0) {
    p->add(where + ": capacity " + std::to_string(stripe.capacity) + " is not a power of two");
    return;
  }
  std::uint64_t live = 0, tombs = 0, bytes = 0;
  for (std::uint64_t i = 0; i < stripe.capacity; ++i) {
    std::uintptr_t v = stripe.slots[i];
    if (v == kEmptySlot) continue;
    if (v == kTombstone) {
      ++tombs;
      continue;
    }
    ++live;
    auto* o = slot_object(v);
    object_id id = id_of(o);
    std::string what = where + ", object " + id.text();
    objects->insert(o);
    *object_bytes += alloc::usable_size(o);
    bytes += o->data_size + o->metadata_size;
    if (o->hash != hash_id(id) || o->hash % kStripes != n) p->add(what + ": in the wrong stripe or hash");
    if (!reachable(stripe, i)) p->add(what + ": not found by a lookup");
    std::uint32_t state = o->state.load();
    std::uint32_t refs = o->refcount.load();
    std::uint64_t rows = rows_total(h, n, o);
    if (refs != rows)
      p->add(what + ": count " + std::to_string(refs) + " but the clients' rows hold " + std::to_string(rows));
    if (state == kCreating) {
      if (refs != 0) p->add(what + ": unsealed but referenced");
      if (o->creator >= kClients || h->clients[o->creator].state.load() == kFreeClient)
        p->add(what + ": unsealed by a client that is gone");
    } else if (state == kDeleting) {
      if (refs == 0) p->add(what + ": deleted, unreferenced, still in the index");
    } else if (state != kSealed) {
      p->add(what + ": state " + std::to_string(state));
    }
    if (o->last_use.load() > h->clock.load()) p->add(what + ": last use after the store's clock");
    if (alloc::usable_size(o) < sizeof(object_header) + o->data_size + o->metadata_size)
      p->add(what + ": its block is smaller than its sizes");
  }
  if (live != stripe.objects || tombs != stripe.tombstones || bytes != stripe.bytes)
    p->add(where + ": counts " + std::to_string(stripe.objects) + "/" + std::to_string(stripe.tombstones) + "/" +
           std::to_string(stripe.bytes) + " but the table holds " + std::to_string(live) + "/" +
           std::to_string(tombs) + "/" + std::to_string(bytes));
  if (live + tombs >= stripe.capacity) p->add(where + ": no empty slot");
  if (stripe.holder != 0) p->add(where + ": left held by client " + std::to_string(stripe.holder - 1));
}

void check_clients(const store_header* h, const std::set<const void*>& objects, std::size_t* meta_bytes,
                   problems* p) {
  for (std::uint32_t c = 0; c < kClients; ++c) {
    const client_slot& slot = h->clients[c];
    std::string where = "client " + std::to_string(c);
    if (slot.state.load() == kFreeClient) {
      if (slot.tables != nullptr) p->add(where + ": free but holds reference tables");
      continue;
    }
    if (slot.tables == nullptr) continue;
    *meta_bytes += alloc::usable_size(slot.tables);
    for (std::uint32_t n = 0; n < kStripes; ++n) {
      const ref_table& table = slot.tables[n];
      if (table.rows == nullptr) continue;
      *meta_bytes += alloc::usable_size(table.rows);
      std::uint64_t used = 0;
      for (std::uint64_t i = 0; i < table.capacity; ++i) {
        const ref_row& row = table.rows[i];
        if (row.object == kEmptySlot) continue;
        ++used;
        if (row.object == kTombstone) continue;
        auto* o = reinterpret_cast<const object_header*>(row.object);
        if (objects.count(o) == 0 || o->hash % kStripes != n)
          p->add(where + ": a row for an object not in the stripe's index");
        else if (row.count == 0)
          p->add(where + ": a row of no references");
      }
      if (used != table.used) p->add(where + ": row count differs from its table");
    }
  }
}

}  // namespace

status store::check() const {
  store_impl* s = impl_;
  if (s == nullptr) return status(errc::invalid_argument, "the store is not open");
  guarded_operation guard(*s);
  store_header* h = s->header;
  std::vector<std::unique_ptr<stripe_lock>> locks;
  for (index_stripe& stripe : h->stripes) {
    locks.push_back(std::make_unique<stripe_lock>(*s, stripe));
    if (!locks.back()->result().ok()) return locks.back()->result();
  }
  problems p;
  std::set<const void*> objects;
  std::size_t object_bytes = 0;
  // The control block, the index tables, the reference tables and the
  // subscriber rings are the metadata pod's blocks; objects the object pod's.
  std::size_t meta_bytes = alloc::usable_size(h);
  for (std::uint32_t n = 0; n < kStripes; ++n) {
    // check_stripe sees the stripe with this handle as its holder.
    std::uint32_t held = h->stripes[n].holder;
    h->stripes[n].holder = 0;
    check_stripe(h, n, &objects, &object_bytes, &p);
    h->stripes[n].holder = held;
    meta_bytes += alloc::usable_size(h->stripes[n].slots);
  }
  check_clients(h, objects, &meta_bytes, &p);
  slot_lock admin(&h->admin_lock);
  if (!admin.result().ok()) return admin.result();
  for (std::uint32_t i = 0; i < kSubscribers; ++i) {
    const subscriber_slot& sub = h->subscribers[i];
    std::uint32_t owner = sub.state.load();
    bool listed = (h->subscriber_mask.load() >> i) & 1;
    if (owner == 0) {
      if (sub.ring != nullptr || listed) p.add("subscriber " + std::to_string(i) + ": free but holds a queue");
      continue;
    }
    meta_bytes += sub.ring == nullptr ? 0 : alloc::usable_size(sub.ring);
    if (owner > kClients || h->clients[owner - 1].state.load() == kFreeClient || !listed)
      p.add("subscriber " + std::to_string(i) + ": of a client that is gone");
    if (sub.ring == nullptr || sub.capacity == 0 || (sub.capacity & (sub.capacity - 1)) != 0 ||
        sub.tail.load() - sub.head.load() > sub.capacity)
      p.add("subscriber " + std::to_string(i) + ": a queue out of shape");
  }
  for (const pod_info& pod : s->owner->pods()) {
    if (pod.name == kObjectPod && pod.bytes_in_use != object_bytes)
      p.add("the object pod holds " + std::to_string(pod.bytes_in_use) + " bytes in blocks, the index " +
            std::to_string(object_bytes));
    if (pod.name == kMetaPod && pod.bytes_in_use != meta_bytes)
      p.add("the metadata pod holds " + std::to_string(pod.bytes_in_use) + " bytes in blocks, the store knows " +
            std::to_string(meta_bytes));
  }
  return p.result();
}

}  // namespace larder
