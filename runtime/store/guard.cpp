// This process's view of its stores (guard.hpp): the handles attached to
// each, and the write protection of each store's metadata pod outside
// store operations, with page protections or protection keys.
//
// The protected ranges are the metadata pod's segments, without their
// 8 KiB headers (the allocator's page descriptors, which other pods'
// allocation never touches but which stay writable for the allocator's
// bookkeeping). They are computed again whenever protection is put back,
// since the pod gains and loses segments during operations.
#include "runtime/store/guard.hpp"

#include "allocator/region.hpp"
#include "allocator/segment.hpp"
#include "port/memory_guard.hpp"
#include "port/os.hpp"
#include "runtime/heap_impl.hpp"
#include "runtime/store/store_impl.hpp"

#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace larder::store_internal {

struct process_store {
  const store_header* header = nullptr;
  const alloc::region* region = nullptr;
  std::uint32_t meta_pod = 0;
  int handles = 0;
  store_protection protection = store_protection::none;
  std::mutex lock;
  int in_flight = 0;  // guard: operations of this process running
  int key = 0;        // keys: the protection key
  std::vector<std::pair<void*, std::size_t>> ranges;  // protected now
};

namespace {

std::mutex g_lock;
std::vector<std::unique_ptr<process_store>> g_stores;
thread_local int t_depth[16];  // keys: this thread's operations in flight, by key

std::vector<std::pair<void*, std::size_t>> metadata_ranges(const process_store& p) {
  std::vector<std::pair<void*, std::size_t>> ranges;
  const alloc::region& region = *p.region;
  std::size_t high = region.meta()->segments_high;
  for (std::size_t i = 1; i < high; ++i) {
    std::uint32_t e = region.entry(i);
    if (layout::entry_pod(e) != p.meta_pod) continue;
    layout::segment_state state = layout::entry_state(e);
    std::uintptr_t start = alloc::segment_index_to_address(region.base(), i);
    std::size_t span = 1;
    if (state == layout::kSegmentHugeHead) {
      span = reinterpret_cast<const alloc::segment*>(start)->span;
    } else if (state != layout::kSegmentPages) {
      continue;
    }
    ranges.emplace_back(reinterpret_cast<void*>(start + alloc::kSegmentHeaderSize),
                        (span << layout::kSegmentShift) - alloc::kSegmentHeaderSize);
  }
  return ranges;
}

void apply(process_store& p, bool writable, int key) {
  for (auto [start, size] : p.ranges)
    (void)(p.protection == store_protection::guard ? port::guard_pages(start, size, writable)
                                                   : port::guard_key_assign(start, size, key));
}

// Guard mode: the first operation of the process in flight makes the
// metadata writable, the last one to finish read-only again.
void open_guard(process_store& p) {
  std::lock_guard<std::mutex> guard(p.lock);
  if (p.protection == store_protection::guard && p.in_flight++ == 0) apply(p, true, 0);
}

void close_guard(process_store& p) {
  std::lock_guard<std::mutex> guard(p.lock);
  if (p.protection != store_protection::guard || --p.in_flight != 0) return;
  p.ranges = metadata_ranges(p);
  apply(p, false, 0);
}

// A thread that ran guarded operations exits: the allocator's thread-exit
// handler gives the thread's pages of the metadata pod away, writing free
// lists inside them. In glibc a thread's C++ thread_local destructors run
// before its thread-specific-data destructors, and those run in the order
// their keys were made; the allocator's key is made when larder starts.
// So the guard opens in a thread_local destructor and closes in the
// destructor of a key made after the allocator's.
// The stores a thread guarded: trivially destructible, so that it is still
// there when the key's destructor reads it.
struct thread_stores {
  process_store* stores[8];
  int count;
};
thread_local thread_stores t_stores;
struct open_at_exit {
  bool armed = false;
  ~open_at_exit() {
    for (int i = 0; i < t_stores.count; ++i) open_guard(*t_stores.stores[i]);
  }
};
thread_local open_at_exit t_open_at_exit;
unsigned g_exit_key = 0;
bool g_exit_key_ready = false;

void after_allocator_exit(void* value) {
  auto* mine = static_cast<thread_stores*>(value);
  for (int i = 0; i < mine->count; ++i) close_guard(*mine->stores[i]);
}

void note_thread_uses(process_store& p) {
  for (int i = 0; i < t_stores.count; ++i)
    if (t_stores.stores[i] == &p) return;
  if (t_stores.count == 8 || !g_exit_key_ready) return;
  t_stores.stores[t_stores.count++] = &p;
  t_open_at_exit.armed = true;
  (void)port::thread_exit_key_set(g_exit_key, &t_stores);
}

}  // namespace

status attach_process(store_impl& s, store_protection protection, bool* first) {
  std::lock_guard<std::mutex> guard(g_lock);
  process_store* p = nullptr;
  for (auto& each : g_stores)
    if (each->header == s.header) p = each.get();
  if (p != nullptr && p->handles > 0 && p->protection != protection)
    return status(errc::invalid_argument, "another protection is in force for this store in this process");
  if (p == nullptr) {
    g_stores.push_back(std::make_unique<process_store>());
    p = g_stores.back().get();
    p->header = s.header;
  }
  *first = p->handles == 0;
  if (*first) {
    if (protection == store_protection::keys) {
      const char* why = "";
      if (!port::guard_keys_available(&why)) return status(errc::unsupported, why);
      if (int err = port::guard_key_allocate(&p->key)) return status::from_errno(err, "allocating a protection key");
    }
    p->protection = protection;
    p->region = &s.hi->region;
    p->meta_pod = s.meta_pod;
    if (protection == store_protection::guard && !g_exit_key_ready)
      g_exit_key_ready = port::thread_exit_key(after_allocator_exit, &g_exit_key) == 0;
  }
  p->handles += 1;
  s.process = p;
  if (*first && protection != store_protection::none) {
    std::lock_guard<std::mutex> ranges(p->lock);
    p->ranges = metadata_ranges(*p);
    apply(*p, false, p->key);
  }
  return {};
}

void detach_process(store_impl& s) noexcept {
  process_store* p = std::exchange(s.process, nullptr);
  if (p == nullptr) return;
  std::lock_guard<std::mutex> guard(g_lock);
  if (--p->handles != 0) return;
  std::lock_guard<std::mutex> ranges(p->lock);
  if (p->protection == store_protection::guard) apply(*p, true, 0);
  if (p->protection == store_protection::keys) {
    apply(*p, true, 0);
    port::guard_key_free(p->key);
  }
  p->ranges.clear();
  p->protection = store_protection::none;
}

void guard_enter(store_impl& s) noexcept {
  process_store* p = s.process;
  if (p == nullptr || p->protection == store_protection::none) return;
  if (p->protection == store_protection::keys) {
    if (t_depth[p->key]++ == 0) port::guard_key_allow_writes(p->key, true);
    return;
  }
  note_thread_uses(*p);
  open_guard(*p);
}

void guard_exit(store_impl& s) noexcept {
  process_store* p = s.process;
  if (p == nullptr || p->protection == store_protection::none) return;
  if (p->protection == store_protection::guard) return close_guard(*p);
  if (--t_depth[p->key] != 0) return;
  {
    // New segments of the pod get the key before this thread gives up
    // its right to write them.
    std::lock_guard<std::mutex> guard(p->lock);
    auto now = metadata_ranges(*p);
    if (now != p->ranges) {
      apply(*p, true, 0);
      p->ranges = std::move(now);
      apply(*p, true, p->key);
    }
  }
  port::guard_key_allow_writes(p->key, false);
}

}  // namespace larder::store_internal
