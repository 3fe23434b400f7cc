// Named roots: an open-addressing table of (name, address, size) in the
// heap's metadata block, probed linearly from the name's hash.
#include <larder/heap.hpp>

#include "recovery/records.hpp"
#include "runtime/heap_impl.hpp"
#include "runtime/transaction_engine.hpp"

#include <larder/transaction.hpp>

#include <cstring>

namespace larder {

namespace {

using recovery::kRootFree;
using recovery::kRootLive;
using recovery::kRootRemoved;

bool name_ok(std::string_view name) {
  return !name.empty() && name.size() <= layout::kRootNameMax && name.find('\0') == std::string_view::npos;
}

// The live slot holding `name`, or nullptr; `*insert_at` receives the first
// slot where it could be added.
layout::root_record* probe(layout::heap_meta* meta, std::string_view name, layout::root_record** insert_at) {
  std::uint32_t hash = recovery::root_name_hash(name);
  layout::root_record* first_free = nullptr;
  for (std::size_t i = 0; i < layout::kMaxRoots; ++i) {
    layout::root_record& rec = meta->roots[(hash + i) % layout::kMaxRoots];
    if (rec.in_use == kRootFree) {
      if (first_free == nullptr) first_free = &rec;
      break;
    }
    if (rec.in_use == kRootRemoved) {
      if (first_free == nullptr) first_free = &rec;
      continue;
    }
    if (rec.in_use == kRootLive && rec.name_hash == hash && name == rec.name) return &rec;
  }
  if (insert_at != nullptr) *insert_at = first_free;
  return nullptr;
}

}  // namespace

// Root and pod records change failure-atomically: inside the caller's
// transaction, or one of their own.
//
// With shared writers the tables' lock is held from the change to the end
// of its transaction, so no other client sees (and builds a probe chain
// on) a record that a rollback of this one would take back.
status heap::change_metadata(status (*change)(heap&, void*), void* context) {
  if (in_transaction(impl_)) {
    if (impl_->shared_writers()) hold_tables_to_end(impl_);
    return change(*this, context);
  }
  try {
    transaction tx(*this);
    if (impl_->shared_writers()) hold_tables_to_end(impl_);
    status s = change(*this, context);
    if (!s.ok()) {
      tx.abort();
      return s;
    }
    return tx.commit();
  } catch (const error& e) {
    return e.result();
  }
}

status heap::set_root(std::string_view name, void* object, std::size_t size) {
  if (impl_ == nullptr) return status(errc::invalid_argument, "the heap is not open");
  if (!name_ok(name)) return status(errc::invalid_argument, "a root name has 1 to 95 bytes");
  if (!contains(object)) return status(errc::invalid_argument, "a root must point into its heap");
  if (!impl_->can_write()) return status(errc::read_only, "cannot set a root");
  struct args {
    std::string_view name;
    void* object;
    std::size_t size;
  } a{name, object, size};
  return change_metadata(
      [](heap& h, void* context) -> status {
        auto* a = static_cast<args*>(context);
        tables_guard guard(h.impl());
        layout::root_record* slot = nullptr;
        layout::root_record* rec = probe(h.impl()->meta(), a->name, &slot);
        if (rec == nullptr) {
          if (slot == nullptr) return status(errc::table_full, "all 4096 roots are in use");
          rec = slot;
          // The root table gets its storage as it fills (heap_impl.cpp).
          if (int err = h.impl()->reserve_storage(rec, sizeof(*rec)))
            return status::from_errno(err, "giving the root table storage");
        }
        if (status s = transactional_snapshot(h.impl(), rec, sizeof(*rec)); !s.ok()) return s;
        if (rec == slot) {
          std::memset(rec, 0, sizeof(*rec));
          std::memcpy(rec->name, a->name.data(), a->name.size());
          rec->name_hash = recovery::root_name_hash(a->name);
        }
        rec->object = reinterpret_cast<std::uint64_t>(a->object);
        rec->size = a->size;
        rec->in_use = kRootLive;
        recovery::seal(rec);
        return {};
      },
      &a);
}

void* heap::find_root(std::string_view name, std::size_t* size) const noexcept {
  if (impl_ == nullptr || !name_ok(name)) return nullptr;
  tables_guard guard(impl_);
  layout::root_record* rec = probe(impl_->meta(), name, nullptr);
  if (rec == nullptr) return nullptr;
  if (size != nullptr) *size = rec->size;
  return reinterpret_cast<void*>(rec->object);
}

status heap::remove_root(std::string_view name) {
  if (impl_ == nullptr) return status(errc::invalid_argument, "the heap is not open");
  if (!name_ok(name)) return status(errc::invalid_argument, "a root name has 1 to 95 bytes");
  if (!impl_->can_write()) return status(errc::read_only, "cannot remove a root");
  return change_metadata(
      [](heap& h, void* context) -> status {
        std::string_view name = *static_cast<std::string_view*>(context);
        tables_guard guard(h.impl());
        layout::root_record* rec = probe(h.impl()->meta(), name, nullptr);
        if (rec == nullptr) return status(errc::not_found, std::string(name));
        if (status s = transactional_snapshot(h.impl(), rec, sizeof(*rec)); !s.ok()) return s;
        rec->in_use = kRootRemoved;
        recovery::seal(rec);
        return {};
      },
      &name);
}

std::vector<root_info> heap::roots() const {
  std::vector<root_info> result;
  if (impl_ == nullptr) return result;
  tables_guard guard(impl_);
  for (const auto& rec : impl_->meta()->roots) {
    if (rec.in_use != kRootLive) continue;
    result.push_back({rec.name, reinterpret_cast<void*>(rec.object), rec.size});
  }
  return result;
}

}  // namespace larder
