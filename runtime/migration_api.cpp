// The public calls of include/larder/tiers.hpp, and the migrator's end at
// close. The heap's migration record (recovery/layout.hpp) mirrors the
// policy, so that `larder stat` in another process and an open after a
// crash find the tier.
#include "runtime/migration_state.hpp"

#include "runtime/heap_impl.hpp"
#include "runtime/migration_test_hooks.hpp"

#include <larder/tiers.hpp>

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

// The policy's first tier, with an absolute path: the next open after a
// crash may run in another directory.
status absolute_tier(const migration_policy& p, tier_config* out) {
  *out = p.tiers.front();
  std::error_code ec;
  std::filesystem::path path = std::filesystem::absolute(out->path, ec);
  if (ec) return status(errc::invalid_argument, "tier path " + out->path + ": " + ec.message());
  out->path = path.string();
  return {};
}

void write_record(heap_impl& impl, const migration_policy& p, const tier_config* tier) {
  layout::migration_record& r = impl.meta()->migration;
  r.dram_budget = p.dram_budget;
  r.prefetch_pod = p.prefetch_pod ? 1 : 0;
  if (tier == nullptr) return;
  r.capacity = tier->capacity;
  std::memset(r.tier_path, 0, sizeof r.tier_path);
  std::memcpy(r.tier_path, tier->path.data(), tier->path.size());
  r.tier = tier->kind == tier_kind::pmem ? layout::kPmemTier : layout::kDiskTier;
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
  tier_config tier;
  if (!p.tiers.empty()) {
    if (status s = absolute_tier(p, &tier); !s.ok()) return s;
  }
  if (status s = ensure_migration_tracking(*impl); !s.ok()) return s;

  migration_state& m = state_of(*impl);
  bool run;
  {
    std::lock_guard guard(m.lock);
    const bool new_tier = !p.tiers.empty() && (!m.tier || tier.path != m.policy.tiers.front().path);
    if (new_tier) {
      if (m.tier && evicted_pages_recorded(*impl) != 0)
        return status(errc::invalid_argument, impl->name + ": pages are evicted to " + m.policy.tiers.front().path +
                                                  "; the tier changes once they are back (touched, or at close)");
      // No page of this heap is in a tier now (an open after a crash
      // brought them back): what a tier file there holds is stale.
      remove_migration_tier(tier);
      std::unique_ptr<tiers::tier> fresh;
      if (status s = open_migration_tier(tier, impl->kind == backing::shm, &fresh); !s.ok()) return s;
      std::unique_ptr<tiers::tier> old = std::move(m.tier);
      m.serving_tier.store(fresh.get(), std::memory_order_release);
      m.tier = std::move(fresh);
      if (old) {
        old.reset();
        remove_migration_tier(m.policy.tiers.front());
      }
    }
    std::vector<tier_config> tiers = m.policy.tiers;
    m.policy = p;
    if (p.tiers.empty())
      m.policy.tiers = std::move(tiers);  // evicted pages are still served from it
    else
      m.policy.tiers.front().path = tier.path;
    m.budget.store(p.dram_budget);
    write_record(*impl, m.policy, new_tier ? &tier : nullptr);
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
  if (m.tier && !out.tiers.empty()) {
    tiers::tier_usage u = m.tier->usage();
    out.tiers.front().capacity_bytes = u.capacity_pages * kPage;
    out.tiers.front().used_bytes = u.used_pages * kPage;
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
    {
      std::lock_guard guard(impl.collect_lock);
      if (impl.tracker) impl.tracker->finish_all();
    }
    if (evicted_pages_recorded(impl) == 0) {
      m.serving_tier.store(nullptr);
      m.tier.reset();
      if (!m.policy.tiers.empty()) remove_migration_tier(m.policy.tiers.front());
      migration_kill_point();
      impl.meta()->migration = {};
    }
  }
  impl.migration.reset();
}

}  // namespace larder
