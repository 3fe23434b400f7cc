// Checkpoint: the cut (pages chosen and copied while no transaction runs),
// then fingerprints, puts and the manifest's commit from the copy. See
// larder/versions.hpp and docs/versions.md.
#include "port/os.hpp"
#include "runtime/heap_impl.hpp"
#include "runtime/process_heap_scope.hpp"
#include "runtime/transaction_engine.hpp"
#include "runtime/versions_state.hpp"

#include <algorithm>
#include <cstring>

namespace larder {

namespace {

// Pages copied for a checkpoint while transactions wait: up to this many
// bytes the copy is all that holds them up; past it the checkpoint puts
// straight from the heap, in batches of this size, holding them throughout.
constexpr std::size_t kStagingLimit = std::size_t{64} << 20;

std::vector<std::size_t> pages_to_read(const std::vector<page_span>& used, const page_bitmap* written) {
  std::vector<std::size_t> pages;
  for (const page_span& s : used) {
    for (std::size_t p = s.first; p < s.first + s.count; ++p)
      if (written == nullptr || written->contains(p)) pages.push_back(p);
  }
  return pages;
}

bool in_spans(const std::vector<page_span>& used, std::size_t page) {
  auto it = std::upper_bound(used.begin(), used.end(), page, [](std::size_t p, const page_span& s) { return p < s.first; });
  return it != used.begin() && page < std::prev(it)->first + std::prev(it)->count;
}

// The parent's table less the pages now outside the used areas, with the
// pages read (ascending) in their place; zero pages are not listed.
std::vector<chunks::page_entry> next_table(const std::vector<chunks::page_entry>& parent, const std::vector<page_span>& used,
                                           const std::vector<std::size_t>& pages,
                                           const std::vector<chunks::fingerprint>& names) {
  std::vector<chunks::page_entry> out;
  out.reserve(parent.size() + pages.size());
  std::size_t j = 0;
  auto add_read = [&](std::size_t upto) {
    for (; j < pages.size() && pages[j] < upto; ++j)
      if (names[j] != chunks::zero_page()) out.push_back({pages[j], names[j]});
  };
  for (const chunks::page_entry& e : parent) {
    add_read(e.page);
    if (j < pages.size() && pages[j] == e.page) continue;  // read again below
    if (in_spans(used, e.page)) out.push_back(e);
  }
  add_read(~std::size_t{0});
  return out;
}

// Makes sure every write from now on is seen: starts tracking (or begins
// observing the program's tracker) and says whether the writes since the
// last cut are known, so that only they need reading.
status observe_writes(heap_impl& impl, bool* writes_known) {
  *writes_known = impl.versions_observing && impl.tracker && !impl.lost_writes;
  impl.versions_observing = true;
  impl.lost_writes = false;
  if (!impl.tracker) {
    status s = impl.start_tracking(tracker_backend::automatic);
    // Without a tracker every checkpoint reads every used page.
    if (!s.ok() && !s.is(errc::unsupported)) return s;
    return {};
  }
  return *writes_known ? impl.collect_for_versions() : status();
}

// The parent of a version cut now: what this process last checkpointed or
// checked out, else HEAD's version when it is one of this heap's.
status parent_of(heap_impl& impl, versions_state& v, bool* has_parent, chunks::version_id* parent) {
  *has_parent = v.has_current;
  *parent = v.current;
  if (v.has_current) return {};
  chunks::head_state head;
  if (status s = v.store->get_head(&head); !s.ok()) return s;
  if (!head.has_version) return {};
  chunks::version_record r;
  if (status s = v.store->read_version(head.id, &r); !s.ok()) return s;
  *has_parent = std::memcmp(r.heap_uuid.data(), impl.superblock.uuid, r.heap_uuid.size()) == 0;
  *parent = head.id;
  return {};
}

status move_head(versions_state& v, const chunks::version_id& id) {
  if (!v.follows_known) {
    chunks::head_state head;
    if (status s = v.store->get_head(&head); !s.ok()) return s;
    v.follows = head.detached ? std::string() : head.branch;
    v.follows_known = true;
  }
  return v.follows.empty() ? v.store->set_head_detached(id) : v.store->set_ref(v.follows, id);
}

}  // namespace

status take_checkpoint(heap_impl& impl, std::string_view message, checkpoint_stats* out) {
  process_heap_scope scope;
  const std::uint64_t start = port::monotonic_ns();
  *out = {};
  if (!impl.can_write()) return status(errc::read_only, impl.name + ": a read-only heap cannot be checkpointed");
  if (in_transaction(&impl))
    return status(errc::invalid_argument, "checkpoint inside a transaction on the heap: it would cut it in half");
  versions_state* v = nullptr;
  if (status s = open_versions(impl, &v); !s.ok()) return s;

  std::unique_lock held(impl.tx_lock);
  const std::uint64_t held_from = port::monotonic_ns();
  if (!impl.tx_failure.empty())
    return status(errc::tx_aborted, impl.name + ": an earlier transaction could not be made durable (" + impl.tx_failure +
                                        "); reopen the heap to recover it");
  bool writes_known = false;
  if (status s = observe_writes(impl, &writes_known); !s.ok()) return s;
  writes_known = writes_known && v->has_current;
  const std::vector<page_span> used = used_pages(impl);
  page_bitmap written = take_written(impl);
  const std::vector<std::size_t> pages = pages_to_read(used, writes_known ? &written : nullptr);
  chunks::version_record record;
  std::memcpy(record.heap_uuid.data(), impl.superblock.uuid, record.heap_uuid.size());
  record.base_address = impl.region.base();
  record.heap_size = impl.region.committed();
  record.message = message;

  // Copied while held, then put from the copy; past the staging limit,
  // put batch by batch from the heap, held throughout.
  const std::uint64_t chunks_before = v->store->chunks_put(), bytes_before = v->store->bytes_put();
  std::vector<chunks::fingerprint> names(pages.size());
  const std::size_t batch = std::min(pages.size(), kStagingLimit / port::kOsPageSize);
  status s = v->staging.reserve(batch * port::kOsPageSize);
  staging_buffer& staging = v->staging;
  const auto* base = reinterpret_cast<const char*>(impl.region.base());
  for (std::size_t done = 0; s.ok() && done < pages.size(); done += batch) {
    const std::size_t n = std::min(batch, pages.size() - done);
    for (std::size_t i = 0; i < n; ++i)
      std::memcpy(staging.data() + i * port::kOsPageSize, base + pages[done + i] * port::kOsPageSize, port::kOsPageSize);
    if (pages.size() <= batch && held.owns_lock()) {
      out->held_ns = port::monotonic_ns() - held_from;
      held.unlock();
    }
    s = v->store->put(staging.data(), n, names.data() + done);
  }
  if (held.owns_lock()) {
    out->held_ns = port::monotonic_ns() - held_from;
    held.unlock();
  }
  staging.trim();
  // Read just after the cut, off the transaction lock (walking the pods'
  // usage takes longer than the copy): a summary for `larder log`.
  if (s.ok()) record.metadata = roots_and_pods_json(impl);
  if (s.ok()) s = parent_of(impl, *v, &record.has_parent, &record.parent);
  chunks::version_id id;
  if (s.ok()) {
    record.pages = next_table(v->has_current ? v->table : std::vector<chunks::page_entry>{}, used, pages, names);
    s = v->store->commit(record, &id);
  }
  if (!s.ok()) {
    (void)v->store->release();
    give_back_written(impl, written);
    return s;
  }
  v->has_current = true;
  v->current = id;
  v->table = std::move(record.pages);
  out->id = id.hex();
  out->pages_considered = pages.size();
  out->pages_in_version = v->table.size();
  out->new_chunks = v->store->chunks_put() - chunks_before;
  out->bytes_stored = v->store->bytes_put() - bytes_before;
  out->total_ns = port::monotonic_ns() - start;
  // The version is committed either way; HEAD not following it is said.
  return move_head(*v, id);
}

}  // namespace larder
