// Multi-field objects (Lightning's MultiPut / MultiGet / MultiUpdate): an
// object whose data is a field table (docs/format/store.md) followed by
// the names and values. An update seals a new version under the same id
// in one transaction that also retires the old one.
#include <larder/store.hpp>

#include "runtime/store/store_impl.hpp"

#include <cstring>
#include <string>

namespace larder {

using namespace store_internal;

namespace {

struct field_entry {
  std::uint32_t name_offset;
  std::uint32_t name_size;
  std::uint64_t value_offset;
  std::uint64_t value_size;
};
static_assert(sizeof(field_entry) == 24);
constexpr std::size_t kTableStart = 8;  // u32 count, u32 unused

status validate_fields(std::span<const field> fields, std::size_t* size) {
  std::size_t total = kTableStart + fields.size() * sizeof(field_entry);
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (fields[i].name.empty() || fields[i].name.size() > 0xffff)
      return status(errc::invalid_argument, "a field name must have 1 to 65535 bytes");
    for (std::size_t k = 0; k < i; ++k)
      if (fields[k].name == fields[i].name) return status(errc::invalid_argument, "field " + std::string(fields[i].name) + " twice");
    total += fields[i].name.size() + fields[i].value.size();
  }
  if (total > 0xffffffffull) return status(errc::invalid_argument, "the fields take more than 4 GiB");
  *size = total;
  return {};
}

void write_fields(std::span<const field> fields, std::byte* out) {
  auto count = static_cast<std::uint32_t>(fields.size());
  std::memset(out, 0, kTableStart);
  std::memcpy(out, &count, sizeof(count));
  std::size_t at = kTableStart + fields.size() * sizeof(field_entry);
  for (std::size_t i = 0; i < fields.size(); ++i) {
    field_entry e{};
    e.name_offset = static_cast<std::uint32_t>(at);
    e.name_size = static_cast<std::uint32_t>(fields[i].name.size());
    std::memcpy(out + at, fields[i].name.data(), e.name_size);
    at += e.name_size;
    e.value_offset = at;
    e.value_size = fields[i].value.size();
    if (e.value_size != 0) std::memcpy(out + at, fields[i].value.data(), e.value_size);
    at += e.value_size;
    std::memcpy(out + kTableStart + i * sizeof(field_entry), &e, sizeof(e));
  }
}

// The fields of a sealed multi-field object, checked against its size.
status read_fields(const object_view& view, std::vector<field>* out) {
  auto* o = reinterpret_cast<const object_header*>(view.data.data() - sizeof(object_header));
  if ((o->flags & kMultiField) == 0) return status(errc::invalid_argument, "not a multi-field object");
  const std::byte* data = view.data.data();
  std::size_t size = view.data.size();
  std::uint32_t count = 0;
  std::memcpy(&count, data, sizeof(count));
  if (size < kTableStart || count > (size - kTableStart) / sizeof(field_entry))
    return status(errc::corrupt, "a field table larger than its object");
  out->clear();
  for (std::uint32_t i = 0; i < count; ++i) {
    field_entry e;
    std::memcpy(&e, data + kTableStart + i * sizeof(field_entry), sizeof(e));
    if (e.name_offset > size || e.name_size > size - e.name_offset || e.value_offset > size ||
        e.value_size > size - e.value_offset)
      return status(errc::corrupt, "a field outside its object");
    out->push_back({std::string_view(reinterpret_cast<const char*>(data + e.name_offset), e.name_size),
                    std::span<const std::byte>(data + e.value_offset, e.value_size)});
  }
  return {};
}

}  // namespace

status store::put_fields(const object_id& id, std::span<const field> fields) {
  std::size_t size = 0;
  if (status st = validate_fields(fields, &size); !st.ok()) return st;
  object_buffer buffer;
  if (status st = create(id, size, 0, &buffer); !st.ok()) return st;
  write_fields(fields, buffer.data.data());
  reinterpret_cast<object_header*>(buffer.data.data() - sizeof(object_header))->flags |= kMultiField;
  return seal(id);
}

status store::get_fields(const object_id& id, std::span<const std::string_view> names,
                         std::vector<std::span<const std::byte>>* values) {
  object_view view;
  if (status st = get(id, &view); !st.ok()) return st;
  std::vector<field> fields;
  if (status st = read_fields(view, &fields); !st.ok()) {
    (void)release(id);
    return st;
  }
  values->assign(names.size(), {});
  for (std::size_t i = 0; i < names.size(); ++i)
    for (const field& f : fields)
      if (f.name == names[i]) (*values)[i] = f.value;
  return {};
}

namespace {

// update_fields inside its operation: merges `fields` into the object's
// latest version and seals the result as the next one.
status merge_fields(store& handle, store_impl& s, const object_id& id, std::span<const field> fields) {
  std::size_t ignored = 0;
  if (status st = validate_fields(fields, &ignored); !st.ok()) return st;
  // A version another client sealed between our get and our lock is merged
  // into on the next round: concurrent updates all land, none is lost.
  for (;;) {
    object_view view;
    if (status st = handle.get(id, &view); !st.ok()) return st;
    auto* old = reinterpret_cast<object_header*>(const_cast<std::byte*>(view.data.data()) - sizeof(object_header));
    std::vector<field> merged;
    status result = read_fields(view, &merged);
    std::size_t size = 0;
    if (result.ok()) {
      for (const field& f : fields) {
        bool replaced = false;
        for (field& m : merged)
          if (m.name == f.name) m.value = f.value, replaced = true;
        if (!replaced) merged.push_back(f);
      }
      result = validate_fields(merged, &size);
    }
    std::uint64_t hash = old->hash;
    index_stripe& stripe = stripe_of(s.header, hash);
    notification_entry note{};
    bool superseded = false;
    if (result.ok()) {
      stripe_lock lock(s, stripe);
      result = lock.result();
      std::uintptr_t* slot = result.ok() ? find_slot(stripe, hash, id) : nullptr;
      if (result.ok() && slot == nullptr) result = status(errc::not_found, "object " + id.text());
      superseded = result.ok() && slot_object(*slot) != old;
      store_tx tx(s);
      if (result.ok() && !superseded) result = tx.begin();
      object_header* o = nullptr;
      if (result.ok() && !superseded) {
        o = static_cast<object_header*>(tx.allocate(s.object_pod, sizeof(object_header) + size));
        if (o == nullptr) result = status(errc::store_full, "updating object " + id.text());
      }
      if (o != nullptr) {
        std::memcpy(static_cast<void*>(o), static_cast<const void*>(old), sizeof(object_header));
        o->refcount.store(0);
        o->creator = static_cast<std::uint16_t>(s.client);
        o->data_size = size;
        o->metadata_size = 0;
        o->last_use.store(s.header->clock.fetch_add(1));
        write_fields(merged, reinterpret_cast<std::byte*>(o->data()));
        // The old version leaves the index with the new one's arrival, both
        // in the transaction; our own reference keeps it until released.
        result = tx.snapshot(&old->state, sizeof(old->state));
        if (result.ok()) {
          old->state.store(kDeleting);
          result = insert_object(s, tx, stripe, o);
        }
        if (result.ok() && s.kill_point()) result = stopped_status();
        if (result.ok()) result = tx.commit();
        if (result.ok()) note = note_of(o, 1);
      }
    }
    if (s.stopped) return result;
    // Dropping our reference removes the old version if nobody else reads it.
    status released = handle.release(id);
    if (result.ok() && !released.ok() && !released.is(errc::not_found)) return released;
    if (superseded) continue;
    if (result.ok()) announce_seal(s, note);
    return result;
  }
}

}  // namespace

status store::update_fields(const object_id& id, std::span<const field> fields) {
  return run_operation(*this, {}, [&](store_impl& s) { return merge_fields(*this, s, id, fields); });
}

}  // namespace larder
