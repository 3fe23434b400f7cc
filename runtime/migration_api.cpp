// The public calls of include/larder/tiers.hpp, and the migrator's end at
// close. The heap's migration record (recovery/layout.hpp) mirrors the
// policy, so that `larder stat` in another process and an open after a
// crash find the tier.
#include "runtime/migration_state.hpp"

#include "runtime/heap_impl.hpp"
#include "runtime/migration_test_hooks.hpp"
#include "runtime/versions_state.hpp"

#include <larder/tiers.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace larder {
namespace {

constexpr std::uint64_t kPage = port::kOsPageSize;

migration_state& state_of(heap_impl& impl) {
  static std::mutex creation;
  std::lock_guard guard(creation);
  if (!impl.migration) impl.migration.reset(new migration_state(impl, port::process_id()));
  return *impl.migration;
}

// The heap's migration state, where this process made it: a forked child
// (which may not write the heap, and lacks the thread and the loader) sees
// only what the heap records.
migration_state* own_state(const heap_impl& impl) {
  migration_state* m = impl.migration.get();
  return m != nullptr && m->pid == port::process_id() ? m : nullptr;
}

// The policy's tiers, files with absolute paths (the next open after a
// crash may run in another directory), GPU devices by index; refuses a
// tier named twice.
status resolved_tiers(const migration_policy& p, std::vector<tier_config>* out) {
  for (tier_config t : p.tiers) {
    if (t.kind == tier_kind::disk || t.kind == tier_kind::pmem) {
      std::error_code ec;
      std::filesystem::path path = std::filesystem::absolute(t.path, ec);
      if (ec) return status(errc::invalid_argument, "tier path " + t.path + ": " + ec.message());
      t.path = path.string();
    }
    if (t.kind == tier_kind::gpu && t.path.empty()) t.path.push_back('0');  // device 0
    for (const tier_config& other : *out)
      if (other.kind == t.kind && other.path == t.path)
        return status(errc::invalid_argument, "the policy names tier " + t.path + " twice");
    out->push_back(std::move(t));
  }
  return {};
}

bool same_tiers(const std::vector<tier_config>& a, const std::vector<tier_config>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const tier_config& x, const tier_config& y) {
    return x.kind == y.kind && x.path == y.path && x.capacity == y.capacity;
  });
}

// Closes the tiers (no page may be evicted to them) and removes their files.
void close_tiers(migration_state& m) {
  {
    // A loader still in fill() (a page touched as it was abandoned) is
    // done with the tiers before they go.
    std::unique_lock moving(m.moving);
    for (std::atomic<tiers::tier*>& level : m.serving) level.store(nullptr, std::memory_order_release);
  }
  m.chain.clear();
  for (const tier_config& t : m.policy.tiers) remove_migration_tier(t);
}

// Opens `configs` as the heap's tiers, in place of none.
status open_tiers(migration_state& m, const std::vector<tier_config>& configs) {
  heap_impl& impl = m.impl;
  char heap_id[64];
  const std::string uuid = uuid_text(impl.superblock.uuid);
  std::snprintf(heap_id, sizeof heap_id, "%s-%d", uuid.c_str(), m.pid);
  std::vector<std::unique_ptr<tiers::tier>> chain;
  for (const tier_config& t : configs) {
    // No page of this heap is in a tier now (an open after a crash
    // brought them back): what a tier file there holds is stale.
    remove_migration_tier(t);
    std::unique_ptr<tiers::tier> opened;
    if (status s = open_migration_tier(t, impl.kind == backing::shm, heap_id, &opened); !s.ok()) return s;
    chain.push_back(std::move(opened));
  }
  m.chain = std::move(chain);
  for (std::size_t level = 0; level < m.chain.size(); ++level)
    m.serving[level].store(m.chain[level].get(), std::memory_order_release);
  return {};
}

// The record names the top tier where it is a file (disk, pmem): a shm
// heap's one tier, which an open after a crash restores from. An
// anonymous heap's tiers are seen by its own process only.
void write_record(heap_impl& impl, const migration_policy& p) {
  layout::migration_record& r = impl.meta()->migration;
  r.dram_budget = p.dram_budget;
  r.prefetch_pod = p.prefetch_pod ? 1 : 0;
  const tier_config* top = p.tiers.empty() ? nullptr : &p.tiers.front();
  if (top == nullptr || (top->kind != tier_kind::disk && top->kind != tier_kind::pmem)) {
    r.tier = layout::kNoTier;
    return;
  }
  r.capacity = top->capacity;
  std::memset(r.tier_path, 0, sizeof r.tier_path);
  std::memcpy(r.tier_path, top->path.data(), top->path.size());
  r.tier = top->kind == tier_kind::pmem ? layout::kPmemTier : layout::kDiskTier;
}

migration_policy policy_in_record(const layout::migration_record& r) {
  migration_policy p;
  p.dram_budget = r.dram_budget;
  p.prefetch_pod = r.prefetch_pod != 0;
  if (r.tier == layout::kDiskTier || r.tier == layout::kPmemTier)
    p.tiers.push_back({r.tier == layout::kPmemTier ? tier_kind::pmem : tier_kind::disk,
                       std::string(r.tier_path, strnlen(r.tier_path, sizeof r.tier_path)), r.capacity});
  return p;
}

}  // namespace

const char* to_string(tier_kind kind) noexcept {
  switch (kind) {
    case tier_kind::disk: return "disk";
    case tier_kind::pmem: return "pmem";
    case tier_kind::gpu: return "gpu";
    case tier_kind::remote: return "remote";
  }
  return "unknown";
}

status set_migration_policy(heap& h, const migration_policy& p) {
  heap_impl* impl = h.impl();
  if (impl == nullptr) return status(errc::invalid_argument, "the heap is not open");
  if (!impl->can_write()) return status(errc::read_only, impl->name + ": a read-only heap has no migrator");
  if (impl->kind == backing::file)
    return status(errc::unsupported, impl->name + ": a file heap is not migrated: its pages are the file's, which the "
                                                  "kernel's own paging writes back and drops (migration is for anonymous "
                                                  "and shm heaps)");
  if (impl->shared_writers())
    return status(errc::unsupported, impl->name + ": migration sees one process's touches; this heap has shared writers");
  if (p.dram_budget != 0 && p.tiers.empty())
    return status(errc::invalid_argument, impl->name + ": a DRAM budget needs a tier to move pods to");
  if (p.tiers.size() > kMaxTiers)
    return status(errc::invalid_argument, impl->name + ": a policy names at most " + std::to_string(kMaxTiers) + " tiers");
  if (impl->kind == backing::shm && p.tiers.size() > 1)
    return status(errc::unsupported, impl->name + ": a shm heap moves pods to one disk tier, the one its evicted pages "
                                                  "are restored from after a crash; several tiers are for anonymous heaps");
  std::vector<tier_config> tiers;
  if (status s = resolved_tiers(p, &tiers); !s.ok()) return s;
  if (status s = ensure_migration_tracking(*impl); !s.ok()) return s;

  migration_state& m = state_of(*impl);
  bool run;
  {
    std::lock_guard guard(m.lock);
    if (!tiers.empty() && (m.chain.empty() || !same_tiers(tiers, m.policy.tiers))) {
      if (!m.chain.empty() && evicted_pages_recorded(*impl) != 0)
        return status(errc::invalid_argument, impl->name + ": pages are evicted to " + m.policy.tiers.front().path +
                                                  "; the tiers change once they are back (touched, or at close)");
      close_tiers(m);
      if (status s = open_tiers(m, tiers); !s.ok()) {
        close_tiers(m);
        m.policy = {};
        m.budget.store(0);
        write_record(*impl, m.policy);
        impl->budget_holder.store(nullptr, std::memory_order_release);
        m.wake.notify_all();
        return status::from_errno(s.code(), s.message() + "; the heap is left with no tiers and no budget");
      }
    }
    std::vector<tier_config> kept = std::move(m.policy.tiers);
    m.policy = p;
    // No tiers named: the ones in use stay, as evicted pages are served
    // from them.
    m.policy.tiers = tiers.empty() ? std::move(kept) : std::move(tiers);
    m.budget.store(p.dram_budget);
    write_record(*impl, m.policy);
    run = p.dram_budget != 0;
    if (run) start_migrator_thread(m);
  }
  impl->budget_holder.store(run ? &m : nullptr, std::memory_order_release);
  if (!run) stop_migrator_thread(m);
  return {};
}

migration_policy migration_policy_of(const heap& h) {
  heap_impl* impl = h.impl();
  if (impl == nullptr) return {};
  if (migration_state* m = own_state(*impl)) {
    std::lock_guard guard(m->lock);
    return m->policy;
  }
  return policy_in_record(impl->meta()->migration);
}

status pin_pod(heap& h, pod p, bool pinned) {
  heap_impl* impl = h.impl();
  if (impl == nullptr) return status(errc::invalid_argument, "the heap is not open");
  if (!impl->can_write()) return status(errc::read_only, impl->name + ": a read-only heap has no migrator");
  if (!p.valid() || p.id() >= layout::kMaxPods) return status(errc::invalid_argument, "pin_pod: not a pod");
  migration_state& m = state_of(*impl);
  std::lock_guard guard(m.lock);
  m.pinned[p.id()] = pinned;
  return {};
}

status evict_pod(heap& h, pod p) {
  heap_impl* impl = h.impl();
  if (impl == nullptr) return status(errc::invalid_argument, "the heap is not open");
  if (!p.valid()) return status(errc::invalid_argument, "evict_pod: not a pod");
  migration_state* m = own_state(*impl);
  if (m == nullptr) return status(errc::invalid_argument, impl->name + ": no tier to evict to (set_migration_policy with a tier)");
  std::lock_guard guard(m->lock);
  return evict_one_pod(*m, p.id());
}

status migrate(heap& h) {
  heap_impl* impl = h.impl();
  if (impl == nullptr) return status(errc::invalid_argument, "the heap is not open");
  migration_state* m = own_state(*impl);
  if (m == nullptr) return {};
  std::lock_guard guard(m->lock);
  return migration_pass(*m);
}

migration_stats migration_info(const heap& h) {
  migration_stats out;
  heap_impl* impl = h.impl();
  if (impl == nullptr) return out;
  out.resident_bytes = resident_pod_bytes(*impl, nullptr);
  out.evicted_bytes = evicted_pages_recorded(*impl) * kPage;
  migration_policy policy = migration_policy_of(h);
  for (const tier_config& t : policy.tiers) out.tiers.push_back({t.kind, t.path, t.capacity, 0});
  migration_state* own = own_state(*impl);
  if (own == nullptr) return out;
  migration_state& m = *own;
  out.evictions = m.evictions.load();
  out.faults = m.faults.load();
  out.prefetched_pages = m.prefetched_pages.load();
  out.lost_pages = m.lost_pages.load();
  std::lock_guard guard(m.lock);
  for (std::size_t level = 0; level < m.chain.size() && level < out.tiers.size(); ++level) {
    tiers::tier_usage u = m.chain[level]->usage();
    out.tiers[level].capacity_bytes = u.capacity_pages * kPage;
    out.tiers[level].used_bytes = u.used_pages * kPage;
  }
  return out;
}

void end_migration(heap_impl& impl) noexcept {
  if (own_state(impl) == nullptr) {
    impl.migration.reset();  // a forked child's copy: let go of, untouched
    return;
  }
  migration_state& m = *impl.migration;
  stop_migrator_thread(m);
  if (impl.can_write()) {
    // An anonymous heap's memory goes with the close: bringing its evicted
    // pages back would be reads for nothing. A shm heap's stay.
    const bool abandon = impl.kind == backing::anonymous;
    {
      std::lock_guard guard(impl.collect_lock);
      if (impl.tracker && abandon)
        impl.tracker->abandon_on_touch();
      else if (impl.tracker)
        impl.tracker->finish_all();
    }
    impl.evicted_pages_abandoned = abandon && evicted_pages_recorded(impl) != 0;
    {
      std::lock_guard guard(m.lock);
      clear_bits_of_pages_back(m);
    }
    if (abandon || evicted_pages_recorded(impl) == 0) {
      close_tiers(m);
      migration_kill_point();
      impl.meta()->migration = {};
    }
  }
  impl.migration.reset();
}

}  // namespace larder
