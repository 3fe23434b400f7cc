// The clients' reference rows: per client and stripe, an open-addressing
// table of (object, count) in the heap (layout.hpp, ref_table), written
// only by its client under the stripe's lock. An object's reference count
// is the sum of its rows over every client, which is what lets recovery
// release exactly what a dead client held (recover.cpp).
#include "runtime/store/store_impl.hpp"

#include <cstring>

namespace larder::store_internal {
namespace {

std::uint64_t row_start(const object_header* object, std::uint64_t capacity) noexcept {
  return (object->hash >> 40) & (capacity - 1);
}

void place_row(ref_row* rows, std::uint64_t capacity, const ref_row& row) noexcept {
  auto* object = reinterpret_cast<const object_header*>(row.object);
  for (std::uint64_t i = row_start(object, capacity);; i = (i + 1) & (capacity - 1)) {
    if (rows[i].object == kEmptySlot) {
      rows[i] = row;
      return;
    }
  }
}

status regrow(store_impl& s, ref_table& table) noexcept {
  store_tx tx(s);
  if (status st = tx.begin(); !st.ok()) return st;
  if (status st = compact_rows(s, tx, table); !st.ok()) return st;
  if (s.kill_point()) return stopped_status();
  return tx.commit();
}

}  // namespace

status compact_rows(store_impl& s, store_tx& tx, ref_table& table) noexcept {
  std::uint64_t live = 0;
  for (std::uint64_t i = 0; i < table.capacity; ++i) live += table.rows[i].object > kTombstone ? 1 : 0;
  std::uint64_t capacity = kFirstRefRows;
  while (capacity < (live + 1) * 4) capacity *= 2;
  auto* rows = static_cast<ref_row*>(tx.allocate(s.meta_pod, capacity * sizeof(ref_row)));
  if (rows == nullptr) return status(errc::out_of_space, "growing a client's reference table");
  std::memset(rows, 0, capacity * sizeof(ref_row));
  for (std::uint64_t i = 0; i < table.capacity; ++i)
    if (table.rows[i].object > kTombstone) place_row(rows, capacity, table.rows[i]);
  if (status st = tx.snapshot(&table, sizeof(table)); !st.ok()) return st;
  if (table.rows != nullptr) tx.free(table.rows);
  table.rows = rows;
  table.capacity = capacity;
  table.used = live;
  return {};
}

ref_row* find_row(const ref_table& table, const object_header* object) noexcept {
  if (table.capacity == 0) return nullptr;
  std::uint64_t mask = table.capacity - 1;
  auto key = reinterpret_cast<std::uintptr_t>(object);
  for (std::uint64_t i = row_start(object, table.capacity);; i = (i + 1) & mask) {
    std::uintptr_t v = table.rows[i].object;
    if (v == key) return &table.rows[i];
    if (v == kEmptySlot) return nullptr;
  }
}

status find_or_add_row(store_impl& s, ref_table& table, object_header* object, ref_row** out) noexcept {
  if (ref_row* row = find_row(table, object)) {
    *out = row;
    return {};
  }
  // At most half full counting tombstones: rows are probed on every get.
  if ((table.used + 1) * 2 > table.capacity) {
    if (status st = regrow(s, table); !st.ok()) return st;
  }
  std::uint64_t mask = table.capacity - 1;
  std::uint64_t i = row_start(object, table.capacity);
  while (table.rows[i].object > kTombstone) i = (i + 1) & mask;
  ref_row* row = &table.rows[i];
  // A tombstone's count is already 0, a fresh row's too.
  if (row->object == kEmptySlot) table.used += 1;
  row->object = reinterpret_cast<std::uintptr_t>(object);
  *out = row;
  return {};
}

std::uint64_t rows_total(const store_header* h, std::uint32_t stripe, const object_header* object,
                         std::uint32_t except) noexcept {
  std::uint64_t total = 0;
  for (std::uint32_t i = 0; i < kClients; ++i) {
    const client_slot& c = h->clients[i];
    if (i == except || c.state.load(std::memory_order_acquire) == kFreeClient || c.tables == nullptr) continue;
    if (const ref_row* row = find_row(c.tables[stripe], object)) total += row->count;
  }
  return total;
}

status make_tables(store_impl& s, client_slot& client) noexcept {
  store_tx tx(s);
  if (status st = tx.begin(); !st.ok()) return st;
  auto* tables = static_cast<ref_table*>(tx.allocate(s.meta_pod, kStripes * sizeof(ref_table)));
  if (tables == nullptr) return status(errc::out_of_space, "making a client's reference tables");
  std::memset(tables, 0, kStripes * sizeof(ref_table));
  if (status st = tx.snapshot(&client.tables, sizeof(client.tables)); !st.ok()) return st;
  client.tables = tables;
  return tx.commit();
}

status free_tables(store_impl& s, client_slot& client) noexcept {
  if (client.tables == nullptr) return {};
  store_tx tx(s);
  if (status st = tx.begin(); !st.ok()) return st;
  for (std::uint32_t i = 0; i < kStripes; ++i)
    if (client.tables[i].rows != nullptr) tx.free(client.tables[i].rows);
  if (status st = tx.snapshot(&client.tables, sizeof(client.tables)); !st.ok()) return st;
  tx.free(client.tables);
  client.tables = nullptr;
  return tx.commit();
}

}  // namespace larder::store_internal
