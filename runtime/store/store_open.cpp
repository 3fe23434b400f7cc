// Opening and closing store handles (include/larder/store.hpp): making the
// store's control block in a heap, validating it, attaching a client to a
// slot and detaching it; object ids.
#include <larder/store.hpp>

#include "runtime/heap_impl.hpp"
#include "runtime/store/store_impl.hpp"
#include "runtime/transaction_engine.hpp"

#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

namespace larder {

using namespace store_internal;

// ---- object ids ------------------------------------------------------------

object_id::object_id(std::uint64_t number) noexcept : size_(8), number_(true) {
  for (int i = 0; i < 8; ++i) bytes_[i] = static_cast<std::uint8_t>(number >> (8 * i));
}

object_id object_id::from_binary(const void* bytes, std::size_t size) noexcept {
  object_id id;
  if (size == 0 || size > max_size) return id;
  std::memcpy(id.bytes_, bytes, size);
  id.size_ = static_cast<std::uint8_t>(size);
  return id;
}

std::string object_id::text() const {
  if (number_) {
    std::uint64_t number = 0;
    for (int i = 7; i >= 0; --i) number = (number << 8) | bytes_[i];
    return std::to_string(number);
  }
  std::string text;
  char digits[3];
  for (std::size_t i = 0; i < size_; ++i) {
    std::snprintf(digits, sizeof(digits), "%02x", bytes_[i]);
    text += digits;
  }
  return text;
}

bool operator==(const object_id& a, const object_id& b) noexcept {
  return a.size_ == b.size_ && a.number_ == b.number_ && std::memcmp(a.bytes_, b.bytes_, a.size_) == 0;
}

const char* to_string(object_state state) noexcept {
  switch (state) {
    case object_state::unsealed: return "unsealed";
    case object_state::sealed: return "sealed";
    case object_state::deleting: return "deleting";
  }
  return "unknown";
}

namespace {

std::mutex g_handle_lock;
std::uint32_t g_next_handle = 1;

status fresh_locks(store_header* h) {
  if (int err = port::robust_lock_init(&h->admin_lock)) return status::from_errno(err, "initialising the store's locks");
  for (index_stripe& stripe : h->stripes)
    if (int err = port::robust_lock_init(&stripe.lock)) return status::from_errno(err, "initialising the store's locks");
  for (subscriber_slot& sub : h->subscribers)
    if (int err = port::robust_lock_init(&sub.lock)) return status::from_errno(err, "initialising the store's locks");
  h->waiters.store(0);
  return {};
}

status make_store(store_impl& s, const store_options& options, store_header** out) {
  store_tx tx(s);
  if (status st = tx.begin(); !st.ok()) return st;
  // Another handle may have made it since we looked.
  std::size_t size = 0;
  if (void* found = s.owner->find_root(kRootName, &size)) {
    *out = static_cast<store_header*>(found);
    return {};
  }
  auto* h = static_cast<store_header*>(tx.allocate(s.meta_pod, sizeof(store_header)));
  if (h == nullptr) return status(errc::out_of_space, "making the store");
  std::memset(static_cast<void*>(h), 0, sizeof(store_header));
  h->magic = kMagic;
  h->format_major = kFormatMajor;
  h->format_minor = kFormatMinor;
  h->stripe_count = kStripes;
  h->client_count = kClients;
  h->subscriber_count = kSubscribers;
  h->header_size = sizeof(store_header);
  h->capacity = options.capacity;
  h->clock.store(1);
  if (status st = fresh_locks(h); !st.ok()) return st;
  for (index_stripe& stripe : h->stripes) {
    stripe.capacity = kFirstCapacity;
    stripe.slots = static_cast<std::uintptr_t*>(tx.allocate(s.meta_pod, kFirstCapacity * sizeof(std::uintptr_t)));
    if (stripe.slots == nullptr) return status(errc::out_of_space, "making the store");
    std::memset(stripe.slots, 0, kFirstCapacity * sizeof(std::uintptr_t));
  }
  if (status st = s.owner->set_root(kRootName, h, sizeof(store_header)); !st.ok()) return st;
  if (status st = tx.commit(); !st.ok()) return st;
  *out = h;
  return {};
}

status validate(const store_header* h, std::size_t size) {
  if (size < 16 || h->magic != kMagic) return status(errc::corrupt, std::string("the root ") + kRootName + " is not a store");
  if (h->format_major > kFormatMajor)
    return status(errc::newer_format, "store format " + std::to_string(h->format_major) + "." + std::to_string(h->format_minor));
  if (h->format_major != kFormatMajor || size != sizeof(store_header) || h->header_size != sizeof(store_header) ||
      h->stripe_count != kStripes || h->client_count != kClients || h->subscriber_count != kSubscribers)
    return status(errc::foreign_build, "the store was made by a build with another layout");
  return {};
}

status attach_client(store_impl& s) {
  store_header* h = s.header;
  std::uint32_t found = kClients;
  {
    slot_lock lock(&h->admin_lock);
    if (!lock.result().ok()) return lock.result();
    for (std::uint32_t i = 0; i < kClients && found == kClients; ++i)
      if (h->clients[i].state.load() == kFreeClient) found = i;
    if (found != kClients) {
      client_slot& c = h->clients[found];
      c.who = port::self_identity();
      {
        std::lock_guard<std::mutex> guard(g_handle_lock);
        c.handle = g_next_handle++;
      }
      c.state.store(kLiveClient);
    }
  }
  if (found == kClients) return status(errc::table_full, "every client slot of the store is taken");
  s.client = found;
  if (h->clients[found].tables == nullptr) return make_tables(s, h->clients[found]);
  return {};
}

}  // namespace

status store::open(heap& h, const store_options& options, store* out) {
  if (!h.is_open()) return status(errc::invalid_argument, "the heap is not open");
  if (!h.impl()->can_write()) return status(errc::read_only, "a store needs a heap open for writing");
  if (in_transaction(h.impl())) return status(errc::invalid_argument, "a store cannot be opened inside a transaction");
  auto s = std::make_unique<store_impl>();
  s->owner = &h;
  s->hi = h.impl();
  pod objects, meta;
  if (status st = h.make_pod(kObjectPod, &objects); !st.ok()) return st;
  if (status st = h.make_pod(kMetaPod, &meta); !st.ok()) return st;
  s->object_pod = objects.id();
  s->meta_pod = meta.id();
  std::size_t size = 0;
  store_header* header = nullptr;
  {
    // Processes that open a new store at once must make it once: the
    // heap's tables lock is held from the look to the root's commit.
    std::optional<tables_guard> tables;
    if (s->hi->shared_writers()) tables.emplace(s->hi);
    header = static_cast<store_header*>(h.find_root(kRootName, &size));
    if (header == nullptr) {
      if (status st = make_store(*s, options, &header); !st.ok()) return st;
      size = sizeof(store_header);
    }
  }
  if (status st = validate(header, size); !st.ok()) return st;
  s->header = header;
  // The locks hold what the last process to use them left (a file heap
  // after a restart, or a killed holder). With one writing process, its
  // first handle initialises them; with shared writers, the first handle
  // of a run of clients does (under the heap's tables lock, which every
  // opener takes for this).
  bool first = false;
  if (status st = attach_process(*s, options.protection, &first); !st.ok()) return st;
  status st;
  {
    guarded_operation guard(*s);
    if (s->hi->shared_writers()) {
      tables_guard tables(s->hi);
      std::uint64_t session = s->hi->meta()->shared.session;
      if (header->locks_session != session) {
        st = fresh_locks(header);
        if (st.ok()) st = settle_new_run(*s);
        // Half settled, the next opener of the run settles it again.
        if (st.ok()) header->locks_session = session;
      }
    } else if (first) {
      st = fresh_locks(header);
      if (st.ok()) st = settle_new_run(*s);
    }
    if (st.ok()) st = attach_client(*s);
  }
  if (!st.ok()) {
    detach_process(*s);
    return st;
  }
  (void)out->close();
  out->impl_ = s.release();
  // Attaching is one of the moments to look for dead clients.
  return out->recover();
}

status store::open(const store_options& options, store* out) {
  heap h;
  // A store by name is for several processes.
  heap_options shared = options.heap;
  if (shared.kind != backing::anonymous) shared.shared_writers = true;
  if (status st = heap::open(shared, &h); !st.ok()) return st;
  store opened;
  // The heap moves into the handle before the store is opened over it, so
  // that the handle's heap pointer stays valid.
  auto owned = std::make_unique<heap>(std::move(h));
  if (status st = open(*owned, options, &opened); !st.ok()) return st;
  opened.impl_->owned_heap = std::move(*owned);
  opened.impl_->owner = &opened.impl_->owned_heap;
  *out = std::move(opened);
  return {};
}

status store::close() {
  store_impl* s = std::exchange(impl_, nullptr);
  if (s == nullptr) return {};
  std::unique_ptr<store_impl> owned(s);
  status result;
  // A stopped handle leaves its slot as a killed process would.
  if (!s->stopped) {
    guarded_operation guard(*s);
    drop_subscriptions_of(*s, s->client);
    s->slot().recoverer = port::self_identity();
    s->slot().recoverer_slot = s->client;
    s->slot().state.store(kRecoveringClient);
    result = recover_client(*s, s->client);
  }
  detach_process(*s);
  if (s->owned_heap.is_open()) {
    status st = s->owned_heap.close();
    if (result.ok()) result = st;
  }
  return result;
}

store::store(store&& other) noexcept : impl_(std::exchange(other.impl_, nullptr)) {}

store& store::operator=(store&& other) noexcept {
  if (this != &other) {
    (void)close();
    impl_ = std::exchange(other.impl_, nullptr);
  }
  return *this;
}

store::~store() { (void)close(); }

heap& store::owner() const noexcept { return *impl_->owner; }

}  // namespace larder
