#include "runtime/placement.hpp"

#include <larder/heap.hpp>
#include <larder/placement.hpp>
#include <larder/transaction.hpp>

#include "allocator/placement.hpp"
#include "allocator/thread.hpp"
#include "port/module.hpp"
#include "port/options.hpp"
#include "port/os.hpp"
#include "runtime/heap_impl.hpp"
#include "runtime/placement_model.hpp"
#include "runtime/process_heap_scope.hpp"
#include "runtime/transaction_engine.hpp"

#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

namespace larder {

namespace {

// What one more pod costs per epoch, in bytes written: a partly filled
// page per size class it serves, its records in each version.
constexpr double kPodOverheadBytes = 4.0 * port::kOsPageSize;
// A site is measured once its probe pod was seen over this many epochs.
constexpr std::uint32_t kEpochsToMeasure = 3;
// After the first decision, the sites are regrouped every this many
// epochs (and whenever a site was newly measured): often enough to follow
// a program whose phases change, rarely enough not to chase noise.
constexpr std::uint64_t kEpochsBetweenDecisions = 8;
constexpr std::size_t kSpareTarget = 8;
constexpr std::uint32_t kMaxAutoPods = 256;
constexpr double kRateSmoothing = 0.5;  // weight of the newest epoch

constexpr const char* kRecordRoot = "larder.placement";
constexpr const char* kRecordPod = "larder.placement";
constexpr std::uint64_t kRecordMagic = 0x32544e454d454350ULL;  // "PCEMENT2"
constexpr std::size_t kRecords = 256;

// The record `larder pods` reads (in the pod "larder.placement", under the
// root of that name). Written in place without a transaction: it is
// advice, so a record torn by a crash fails its checksum and is skipped.
struct site_record {
  std::uint64_t checksum;  // XXH3 of the rest; 0: unused
  std::uint32_t pod;
  std::uint32_t first_pod;
  std::uint32_t block_bytes;
  std::uint8_t reason;
  std::uint8_t group;  // the size group of the site's key
  std::uint8_t unused[2];
  double rate;
  double bytes;
  double saving;
  std::uint32_t epochs;
  std::uint32_t unused_too;
  // Where the site is, as the next run finds it again (port::code_location).
  std::uint64_t offset;
  char file[48];
  char build_id[48];
  char location[96];
};
static_assert(sizeof(site_record) == 256);
struct record_block {
  std::uint64_t magic;
  std::uint32_t count;
  std::uint32_t unused;
  site_record sites[kRecords];
};

std::uint64_t checksum_of(const site_record& r) {
  return XXH3_64bits(reinterpret_cast<const char*>(&r) + sizeof r.checksum, sizeof r - sizeof r.checksum) | 1;
}

// Whether entry `i` of a record is whole: its checksum holds (a crash may
// have torn it) and its reason is one of ours. Copies it to *out.
bool sound_entry(const record_block& block, std::size_t i, site_record* out) {
  std::memcpy(out, &block.sites[i], sizeof *out);
  return out->checksum != 0 && out->checksum == checksum_of(*out) &&
         out->reason <= static_cast<std::uint8_t>(placement_reason::overflow);
}

struct learned_site {
  std::uint64_t key = 0;
  port::code_location where;
  std::uint32_t probe = 0;  // its own pod, where its first allocations went
  std::uint32_t pod = 0;    // where its new allocations go
  placement_reason reason = placement_reason::probing;
  double rate = 0;
  double bytes = 0;
  double saving = 0;
  std::uint32_t epochs = 0;
  std::string location;
};

std::uint32_t block_bytes_of(std::uint64_t key) {
  std::uint32_t group = alloc::key_group(key);
  return group == alloc::kHugeGroup ? 0 : static_cast<std::uint32_t>(alloc::bin_block_size(group));
}

}  // namespace

struct placement_state {
  alloc::placement_table table;
  std::uint32_t overflow = 0;
  // Pages written this epoch, by pod: added to by each tracker collect,
  // the migrator's included.
  std::mutex written_lock;
  std::uint64_t written[layout::kMaxPods] = {};
  // The rest belongs to whoever ends an epoch, one at a time.
  std::mutex epoch_lock;
  std::size_t in_use_before[layout::kMaxPods] = {};  // bytes in blocks, at the last epoch's end
  std::vector<learned_site> sites;                // in the order first seen
  std::unordered_map<std::uint64_t, std::size_t> site_index;
  std::vector<std::uint32_t> auto_pods;  // made or taken over by placement
  std::uint32_t next_name = 1;
  std::uint64_t epochs = 0;
  std::uint64_t last_decision = 0;  // epoch; 0: none yet
  record_block* record = nullptr;
};

void placement_state_deleter::operator()(placement_state* state) const noexcept { delete state; }

const char* to_string(placement_reason reason) noexcept {
  switch (reason) {
    case placement_reason::probing: return "probing";
    case placement_reason::apart: return "apart";
    case placement_reason::bundled: return "bundled";
    case placement_reason::large: return "large";
    case placement_reason::overflow: return "overflow";
  }
  return "unknown";
}

namespace {

// Makes (or takes over, when empty) the next pod named "auto.N".
status make_auto_pod(heap& h, placement_state& st, std::uint32_t* id) {
  for (; st.next_name < 100000; ++st.next_name) {
    std::string name = "auto." + std::to_string(st.next_name);
    pod found = h.find_pod(name);
    if (found.valid()) {
      // One left by an earlier run holds that run's objects: only an empty
      // one may take new sites.
      bool empty = false;
      for (const pod_info& info : h.pods())
        if (info.id == found.id()) empty = info.bytes_in_use == 0;
      if (!empty || std::find(st.auto_pods.begin(), st.auto_pods.end(), found.id()) != st.auto_pods.end()) continue;
    }
    pod made;
    if (status s = h.make_pod(name, &made); !s.ok()) return s;
    ++st.next_name;
    st.auto_pods.push_back(made.id());
    *id = made.id();
    return {};
  }
  return status(errc::table_full, "no free auto.N pod name");
}

// Keeps kSpareTarget pods ready for new sites, and one more for each site
// still in the overflow pod, while the heap holds fewer than kMaxAutoPods
// auto.N pods, counting those earlier runs made.
status supply_spares(heap& h, placement_state& st, std::size_t overflowed) {
  auto auto_pods_in_heap = [&h] {
    std::size_t n = 0;
    for (const pod_info& info : h.pods()) n += info.name.rfind("auto.", 0) == 0;
    return n;
  };
  while (st.table.spares() < kSpareTarget + overflowed && auto_pods_in_heap() < kMaxAutoPods) {
    std::uint32_t id = 0;
    if (status s = make_auto_pod(h, st, &id); !s.ok()) return s.is(errc::table_full) ? status() : s;
    if (!st.table.offer_spare(id)) break;
  }
  return {};
}

void write_record(placement_state& st) {
  record_block* block = st.record;
  if (block == nullptr) return;
  std::vector<const learned_site*> order;
  for (const learned_site& s : st.sites) order.push_back(&s);
  std::stable_sort(order.begin(), order.end(),
                   [](const learned_site* a, const learned_site* b) { return a->pod < b->pod; });
  if (order.size() > kRecords) order.resize(kRecords);
  for (std::size_t i = 0; i < order.size(); ++i) {
    const learned_site& s = *order[i];
    site_record r{};
    r.pod = s.pod;
    r.first_pod = s.probe;
    r.block_bytes = block_bytes_of(s.key);
    r.reason = static_cast<std::uint8_t>(s.reason);
    r.rate = s.rate;
    r.bytes = s.bytes;
    r.saving = s.saving;
    r.epochs = s.epochs;
    r.group = static_cast<std::uint8_t>(alloc::key_group(s.key));
    r.offset = s.where.offset;
    std::strncpy(r.file, s.where.file.c_str(), sizeof r.file - 1);
    std::strncpy(r.build_id, s.where.build_id.c_str(), sizeof r.build_id - 1);
    std::strncpy(r.location, s.location.c_str(), sizeof r.location - 1);
    r.checksum = checksum_of(r);
    // Unchanged records are not written again: they stay clean pages.
    if (std::memcmp(&block->sites[i], &r, sizeof r) != 0) block->sites[i] = r;
  }
  if (block->count != order.size()) block->count = static_cast<std::uint32_t>(order.size());
}

// Sites the allocator met since the last epoch join the learner's list.
void learn_new_sites(placement_state& st) {
  st.table.for_each_site([&](std::uint64_t key, std::uint32_t pod) {
    if (st.site_index.count(key) != 0) return;
    learned_site s;
    s.key = key;
    s.probe = s.pod = pod;
    s.reason = placement_reason::probing;
    if (pod == st.overflow) s.reason = placement_reason::overflow;
    else if (alloc::key_group(key) == alloc::kHugeGroup) s.reason = placement_reason::large;
    s.location = port::describe_code(alloc::key_site(key));
    s.where = port::locate_code(alloc::key_site(key));
    st.site_index.emplace(key, st.sites.size());
    st.sites.push_back(std::move(s));
  });
}

// A probe pod's rate this epoch: the pages its objects filled before the
// epoch that were written, as a share of them. Pages it grew by are
// written whatever the placement (they hold new objects), so they count
// neither way. Pages are counted from the bytes in use, not the pages
// held: a pod holds whole 64 KiB slices, mostly untouched while it grows.
void measure(placement_state& st, const std::vector<std::size_t>& in_use, const std::vector<std::uint64_t>& written) {
  for (learned_site& s : st.sites) {
    if (s.reason == placement_reason::overflow) continue;
    const double before = std::ceil(static_cast<double>(st.in_use_before[s.probe]) / port::kOsPageSize);
    const double now = std::ceil(static_cast<double>(in_use[s.probe]) / port::kOsPageSize);
    s.bytes = static_cast<double>(in_use[s.probe]);
    if (before < 1) continue;  // nothing of it lived there before this epoch
    const double written_before = static_cast<double>(written[s.probe]) - std::max(0.0, now - before);
    const double sample = std::clamp(written_before / before, 0.0, 1.0);
    s.rate = s.epochs == 0 ? sample : (1 - kRateSmoothing) * s.rate + kRateSmoothing * sample;
    ++s.epochs;
  }
  for (std::size_t pod = 0; pod < layout::kMaxPods; ++pod) st.in_use_before[pod] = in_use[pod];
}

// Regroups the measured sites; returns whether any site's pod changed.
bool decide(placement_state& st) {
  std::vector<std::size_t> measured;
  std::vector<site_measure> inputs;
  for (std::size_t i = 0; i < st.sites.size(); ++i) {
    const learned_site& s = st.sites[i];
    if (s.epochs < kEpochsToMeasure || s.reason == placement_reason::overflow || s.reason == placement_reason::large)
      continue;
    measured.push_back(i);
    inputs.push_back({s.key, s.bytes, s.rate});
  }
  bool changed = false;
  const std::vector<site_group> groups = group_sites(inputs, kPodOverheadBytes);
  for (const site_group& g : groups) {
    // The group's new allocations go to the probe pod of its biggest
    // member, which holds objects of the same rate already.
    std::size_t leader = g.members.front();
    for (std::size_t m : g.members)
      if (inputs[m].bytes > inputs[leader].bytes) leader = m;
    const std::uint32_t pod = st.sites[measured[leader]].probe;
    for (std::size_t m : g.members) {
      learned_site& s = st.sites[measured[m]];
      if (g.members.size() > 1) {
        s.reason = placement_reason::bundled;
        double others = g.bytes - s.bytes, others_rate = std::max(0.0, g.rate - s.rate);
        s.saving = split_cost(others, others_rate, s.bytes, s.rate, kPodOverheadBytes) -
                   bundle_cost(others, others_rate, s.bytes, s.rate, kPodOverheadBytes);
      } else {
        s.reason = placement_reason::apart;
        // The least that bundling it into another group would have added.
        double least = -1;
        for (const site_group& other : groups) {
          if (&other == &g) continue;
          double extra = bundle_cost(other.bytes, other.rate, s.bytes, s.rate, kPodOverheadBytes) -
                         split_cost(other.bytes, other.rate, s.bytes, s.rate, kPodOverheadBytes);
          if (least < 0 || extra < least) least = extra;
        }
        s.saving = std::max(0.0, least);
      }
      if (s.pod != pod) {
        s.pod = pod;
        st.table.assign(s.key, pod);
        changed = true;
      }
    }
  }
  return changed;
}

// The sites an earlier run recorded, where this run's code has them too
// (same file, same build): they go to the pods they went to then from
// their first allocation, with what was measured of them, so that a heap
// reopened day after day keeps its pods instead of probing anew.
void adopt_recorded_sites(heap& h, placement_state& st) {
  const record_block& block = *st.record;
  layout::heap_meta* meta = h.impl()->meta();
  auto placement_pod = [meta](std::uint32_t id) {
    return id < layout::kMaxPods && meta->pods[id].in_use == 1 && std::strncmp(meta->pods[id].name, "auto.", 5) == 0;
  };
  const std::size_t count = std::min<std::size_t>(block.count, kRecords);
  for (std::size_t i = 0; i < count; ++i) {
    site_record r;
    if (!sound_entry(block, i, &r) || r.file[0] == '\0') continue;
    const auto reason = static_cast<placement_reason>(r.reason);
    if (reason == placement_reason::overflow || !placement_pod(r.pod) || !placement_pod(r.first_pod)) continue;
    port::code_location where{std::string(r.file, strnlen(r.file, sizeof r.file)),
                              std::string(r.build_id, strnlen(r.build_id, sizeof r.build_id)), r.offset};
    const std::uintptr_t address = port::address_of(where);
    if (address == 0) continue;
    const std::uint64_t key = alloc::site_key(reinterpret_cast<const void*>(address), 0) & ~std::uint64_t{0xFF};
    const std::uint64_t keyed = key | r.group;
    if (st.site_index.count(keyed) != 0 || !st.table.preset(keyed, r.pod)) continue;
    learned_site s;
    s.key = keyed;
    s.where = std::move(where);
    s.probe = r.first_pod;
    s.pod = r.pod;
    s.reason = reason;
    s.rate = r.rate;
    s.bytes = r.bytes;
    s.saving = r.saving;
    s.epochs = r.epochs;
    s.location.assign(r.location, strnlen(r.location, sizeof r.location));
    for (std::uint32_t pod : {r.pod, r.first_pod})
      if (std::find(st.auto_pods.begin(), st.auto_pods.end(), pod) == st.auto_pods.end()) st.auto_pods.push_back(pod);
    st.site_index.emplace(keyed, st.sites.size());
    st.sites.push_back(std::move(s));
  }
  // Measured sites are regrouped at the usual interval from now on.
  if (!st.sites.empty()) st.last_decision = 1;
}

status start_placement_at(heap& h, std::uint64_t generation) {
  heap_impl* impl = h.impl();
  process_heap_scope scope;
  if (!impl->can_write()) return status(errc::read_only, "automatic placement needs a heap open for writing");
  if (impl->shared_writers())
    return status(errc::invalid_argument, "automatic placement needs a heap with one writer (not shared_writers)");
  auto st = std::unique_ptr<placement_state, placement_state_deleter>(new placement_state());
  pod overflow;
  if (status s = h.make_pod("auto.0", &overflow); !s.ok()) return s;
  st->overflow = overflow.id();
  st->table.init(alloc::placement_mode::learned, st->overflow, 1);
  st->table.generation.store(generation, std::memory_order_relaxed);

  std::size_t size = 0;
  void* found = h.find_root(kRecordRoot, &size);
  if (found != nullptr && size == sizeof(record_block)) {
    st->record = static_cast<record_block*>(found);
    // A damaged header is written again; damaged entries fail their
    // checksums until the first decision rewrites them.
    if (st->record->magic != kRecordMagic || st->record->count > kRecords) {
      std::memset(st->record, 0, sizeof(record_block));
      st->record->magic = kRecordMagic;
    }
  } else {
    pod record_pod;
    if (status s = h.make_pod(kRecordPod, &record_pod); !s.ok()) return s;
    // One transaction for the block and its root: a root committed over a
    // plain allocation that a power failure undid would point at nothing.
    void* block = nullptr;
    try {
      transaction tx(h);
      block = tx.allocate(sizeof(record_block), alignof(record_block), record_pod);
      std::memset(block, 0, sizeof(record_block));
      static_cast<record_block*>(block)->magic = kRecordMagic;
      throw_if_error(h.set_root(kRecordRoot, block, sizeof(record_block)));
      throw_if_error(tx.commit());
    } catch (const error& e) {
      return e.result();
    }
    st->record = static_cast<record_block*>(block);
  }
  adopt_recorded_sites(h, *st);
  // Spares after the adopted sites' pods are known: those are not spare.
  if (status s = supply_spares(h, *st, 0); !s.ok()) return s;
  // The state changes hands
  // under the collect lock, which the tracker's collects (the migrator's
  // too) hold while they count writes into it.
  std::lock_guard guard(impl->collect_lock);
  alloc::start_routing(&impl->region, &st->table);
  impl->placement = std::move(st);
  return {};
}

// Sites that met no spare pod when they first allocated get one now, if
// the last epoch made some; returns how many are still waiting.
std::size_t reprobe_overflow(placement_state& st) {
  std::size_t waiting = 0;
  bool moved = false;
  for (learned_site& s : st.sites) {
    if (s.reason != placement_reason::overflow) continue;
    const std::uint32_t pod = st.table.claim_spare();
    if (pod == 0) {
      ++waiting;
      continue;
    }
    s.probe = s.pod = pod;
    s.reason = alloc::key_group(s.key) == alloc::kHugeGroup ? placement_reason::large : placement_reason::probing;
    s.epochs = 0;
    s.rate = 0;
    st.table.assign(s.key, pod);
    moved = true;
  }
  if (moved) st.table.publish();
  return waiting;
}

void end_epoch(heap& h, placement_state& st) {
  heap_impl* impl = h.impl();
  std::lock_guard guard(st.epoch_lock);
  std::vector<std::size_t> in_use(layout::kMaxPods), held(layout::kMaxPods);
  impl->region.usage(in_use.data(), held.data());
  std::vector<std::uint64_t> written(layout::kMaxPods);
  {
    std::lock_guard written_guard(st.written_lock);
    std::copy(std::begin(st.written), std::end(st.written), written.begin());
    std::fill(std::begin(st.written), std::end(st.written), 0);
  }
  ++st.epochs;
  const std::size_t known = st.sites.size();
  learn_new_sites(st);
  measure(st, in_use, written);
  const std::size_t overflowed = reprobe_overflow(st);
  bool newly_measured = false;
  for (const learned_site& s : st.sites) newly_measured |= s.epochs == kEpochsToMeasure;
  bool due = st.last_decision != 0 && st.epochs - st.last_decision >= kEpochsBetweenDecisions;
  if (newly_measured || due) {
    if (decide(st)) st.table.publish();
    st.last_decision = st.epochs;
  }
  // Written at decisions and new sites only, so that the record's pages
  // do not add to every epoch's writes.
  if (newly_measured || due || st.sites.size() != known) write_record(st);
  // A pod made inside the caller's transaction would vanish with its
  // abort; spares are advice, so a failure to make one waits for the next
  // epoch.
  if (in_transaction(impl)) return;
  if (status s = supply_spares(h, st, overflowed); !s.ok())
    port::verbose("automatic placement of %s: no spare pod made: %s", impl->name.c_str(), s.to_string().c_str());
}

}  // namespace

status start_placement(heap& h) { return start_placement_at(h, 1); }

status restart_placement(heap& h) {
  heap_impl* impl = h.impl();
  // The checkout started the region afresh, with no placement table, and
  // dropped every thread's local heaps of it: until the new state is in,
  // allocations of the default pod stay in it. Route caches keyed by the
  // old table's generation must all miss.
  std::uint64_t generation = impl->placement->table.generation.load(std::memory_order_acquire) + 1;
  std::unique_ptr<placement_state, placement_state_deleter> old;
  {
    std::lock_guard guard(impl->collect_lock);
    old = std::move(impl->placement);
  }
  return start_placement_at(h, generation);
}

void placement_note_written(heap_impl& impl, const std::vector<dirty_run>& runs) noexcept {
  placement_state* st = impl.placement.get();
  if (st == nullptr) return;
  std::lock_guard guard(st->written_lock);
  for (const dirty_run& r : runs)
    if (r.pod < layout::kMaxPods) st->written[r.pod] += r.pages;
}

void placement_end_epoch(heap& h) noexcept {
  heap_impl* impl = h.impl();
  placement_state* st = impl->placement.get();
  // A forked child of the process that placed the heap may not write it.
  if (st == nullptr || !impl->can_write()) return;
  // What learning allocates for itself must not land in the heap it
  // measures (the program may be in a pod_scope, under liblarder_malloc).
  process_heap_scope scope;
  // The pkey tracker reports whole pods written: no rate to learn.
  if (impl->tracking_backend == tracker_backend::pkey) return;
  try {
    end_epoch(h, *st);
  } catch (const std::exception& e) {  // out of memory: this epoch is not learned from
    port::warning("automatic placement of %s: %s", impl->name.c_str(), e.what());
  }
}

status placement_sites(const heap& h, std::vector<placement_site>* out) {
  out->clear();
  if (!h.is_open()) return status(errc::invalid_argument, "the heap is not open");
  std::size_t size = 0;
  const auto* block = static_cast<const record_block*>(h.find_root(kRecordRoot, &size));
  if (block == nullptr) return {};
  if (size != sizeof(record_block) || block->magic != kRecordMagic)
    return status(errc::corrupt, std::string("the root ") + kRecordRoot + " is not a placement record");
  std::map<std::uint32_t, std::string> names;
  for (const pod_info& info : h.pods()) names[info.id] = info.name;
  const std::size_t count = std::min<std::size_t>(block->count, kRecords);
  for (std::size_t i = 0; i < count; ++i) {
    site_record r;
    if (!sound_entry(*block, i, &r)) continue;
    placement_site s;
    s.location.assign(r.location, strnlen(r.location, sizeof r.location));
    s.block_bytes = r.block_bytes;
    s.pod = r.pod;
    s.pod_name = names.count(r.pod) ? names[r.pod] : std::string();
    s.first_pod = r.first_pod;
    s.reason = static_cast<placement_reason>(r.reason);
    s.write_rate = r.rate;
    s.bytes = static_cast<std::uint64_t>(r.bytes);
    s.epochs = r.epochs;
    s.saving_bytes = r.saving;
    out->push_back(std::move(s));
  }
  std::stable_sort(out->begin(), out->end(), [](const placement_site& a, const placement_site& b) {
    return a.pod != b.pod ? a.pod < b.pod : a.location < b.location;
  });
  return {};
}

}  // namespace larder
