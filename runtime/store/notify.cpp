// Subscriptions (store::subscribe, subscription::next): a ring of
// notifications per subscriber inside the heap, fed by seals and removals
// under the ring's lock and read by its subscriber, who waits on the
// ring's tail word. A full ring drops what does not fit and counts it.
#include <larder/store.hpp>

#include "runtime/store/store_impl.hpp"

#include <chrono>
#include <cstring>
#include <utility>

namespace larder {

using namespace store_internal;

namespace store_internal {

notification_entry note_of(const object_header* object, std::uint8_t kind) noexcept {
  notification_entry note{};
  std::memcpy(note.id, object->id, sizeof(note.id));
  note.id_size = object->id_size;
  note.kind = kind;
  note.flags = object->flags & kNumberId;
  note.data_size = object->data_size;
  note.metadata_size = object->metadata_size;
  return note;
}

namespace {

void free_subscriber(store_impl& s, std::uint32_t i) noexcept {
  slot_lock admin(&s.header->admin_lock);
  subscriber_slot& sub = s.header->subscribers[i];
  s.header->subscriber_mask.fetch_and(~(1u << i));
  store_tx tx(s);
  if (sub.ring != nullptr && tx.begin().ok() && tx.snapshot(&sub.ring, sizeof(sub.ring)).ok()) {
    tx.free(sub.ring);
    sub.ring = nullptr;
    (void)tx.commit();
  }
  sub.state.store(0);
}

}  // namespace

void notify(store_impl& s, const notification_entry& note) noexcept {
  std::uint32_t mask = s.header->subscriber_mask.load();
  while (mask != 0) {
    std::uint32_t i = __builtin_ctz(mask);
    mask &= mask - 1;
    subscriber_slot& sub = s.header->subscribers[i];
    {
      slot_lock lock(&sub.lock);
      if (!lock.result().ok()) continue;
      if (sub.state.load() != 0 && sub.ring != nullptr) {
        std::uint32_t tail = sub.tail.load();
        if (tail - sub.head.load() < sub.capacity) {
          sub.ring[tail & (sub.capacity - 1)] = note;
          sub.tail.store(tail + 1);
        } else {
          sub.dropped.fetch_add(1);
        }
      }
    }
    port::futex_wake_all(&sub.tail);
  }
}

void announce_seal(store_impl& s, const notification_entry& note) noexcept {
  s.header->seal_seq.fetch_add(1);
  if (s.header->waiters.load() != 0) port::futex_wake_all(&s.header->seal_seq);
  notify(s, note);
}

void drop_subscriptions_of(store_impl& s, std::uint32_t client) noexcept {
  for (std::uint32_t i = 0; i < kSubscribers; ++i)
    if (s.header->subscribers[i].state.load() == client + 1) free_subscriber(s, i);
}

}  // namespace store_internal

namespace {

// A free subscriber slot of `capacity` entries for this client, claimed
// under the admin lock.
status claim_subscriber(store_impl& s, std::uint32_t capacity, std::uint32_t* found) {
  store_header* h = s.header;
  slot_lock admin(&h->admin_lock);
  if (!admin.result().ok()) return admin.result();
  for (std::uint32_t i = 0; i < kSubscribers && *found == kSubscribers; ++i)
    if (h->subscribers[i].state.load() == 0) *found = i;
  if (*found == kSubscribers) return status(errc::table_full, "every subscriber queue of the store is taken");
  subscriber_slot& sub = h->subscribers[*found];
  store_tx tx(s);
  if (status st = tx.begin(); !st.ok()) return st;
  if (status st = tx.snapshot(&sub.ring, sizeof(sub.ring)); !st.ok()) return st;
  sub.ring = static_cast<notification_entry*>(tx.allocate(s.meta_pod, capacity * sizeof(notification_entry)));
  if (sub.ring == nullptr) return status(errc::out_of_space, "making a subscriber queue");
  if (status st = tx.commit(); !st.ok()) return st;
  sub.capacity = capacity;
  sub.head.store(0);
  sub.tail.store(0);
  sub.dropped.store(0);
  sub.state.store(s.client + 1);
  h->subscriber_mask.fetch_or(1u << *found);
  return {};
}

}  // namespace

status store::subscribe(subscription* out, std::size_t capacity) {
  return run_operation(*this, {}, [&](store_impl& s) -> status {
    if (capacity == 0 || capacity > (std::size_t{1} << 24)) return status(errc::invalid_argument, "a queue capacity");
    std::uint32_t rounded = 1;
    while (rounded < capacity) rounded *= 2;
    std::uint32_t found = kSubscribers;
    if (status st = claim_subscriber(s, rounded, &found); !st.ok()) return st;
    *out = subscription();
    out->impl_ = impl_;
    out->slot_ = found;
    return {};
  });
}

subscription::subscription(subscription&& other) noexcept
    : impl_(std::exchange(other.impl_, nullptr)), slot_(other.slot_) {}

subscription& subscription::operator=(subscription&& other) noexcept {
  if (this != &other) {
    this->~subscription();
    impl_ = std::exchange(other.impl_, nullptr);
    slot_ = other.slot_;
  }
  return *this;
}

subscription::~subscription() {
  store_impl* s = std::exchange(impl_, nullptr);
  if (s == nullptr || s->stopped) return;
  guarded_operation guard(*s);
  if (s->header->subscribers[slot_].state.load() == s->client + 1) free_subscriber(*s, slot_);
}

status subscription::next(notification* out, std::int64_t timeout_ms) {
  if (impl_ == nullptr) return status(errc::invalid_argument, "not subscribed");
  guarded_operation guard(*impl_);
  subscriber_slot& sub = impl_->header->subscribers[slot_];
  if (sub.state.load() != impl_->client + 1) return status(errc::invalid_argument, "the subscription was closed");
  using clock = std::chrono::steady_clock;
  auto deadline = clock::now() + std::chrono::milliseconds(timeout_ms < 0 ? 0 : timeout_ms);
  for (;;) {
    if (std::uint32_t lost = sub.dropped.exchange(0); lost != 0)
      return status(errc::notifications_lost, std::to_string(lost) + " notifications");
    std::uint32_t head = sub.head.load();
    std::uint32_t tail = sub.tail.load();
    if (head != tail) {
      const notification_entry& e = sub.ring[head & (sub.capacity - 1)];
      if (e.flags & kNumberId) {
        std::uint64_t number = 0;
        std::memcpy(&number, e.id, sizeof(number));
        out->id = object_id(number);
      } else {
        out->id = object_id::from_binary(e.id, e.id_size);
      }
      out->what = e.kind == 1 ? notification::kind::sealed : notification::kind::deleted;
      out->data_size = e.data_size;
      out->metadata_size = e.metadata_size;
      sub.head.store(head + 1);
      return {};
    }
    std::int64_t left_ns = -1;
    if (timeout_ms >= 0) {
      left_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - clock::now()).count();
      if (left_ns <= 0) return status(errc::timed_out, "no notification");
    }
    port::futex_wait(&sub.tail, tail, left_ns);
  }
}

}  // namespace larder
