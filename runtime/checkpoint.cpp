// Checkpoint: the written pages copied and put while transactions run, the
// cut (the pages written meanwhile copied while no transaction runs), then
// the manifest's commit. See larder/versions.hpp and docs/versions.md.
#include "port/os.hpp"
#include "runtime/heap_impl.hpp"
#include "runtime/pod_graph.hpp"
#include "runtime/process_heap_scope.hpp"
#include "runtime/transaction_engine.hpp"
#include "runtime/versions_state.hpp"

#include <algorithm>
#include <cstring>

namespace larder {

namespace {

// Pages copied for a checkpoint while transactions wait: up to this many
// bytes the copy is all that holds them up; past it (only without a
// tracker, when every used page is read at the cut) the checkpoint puts
// straight from the heap, in batches of this size, holding them throughout.
constexpr std::size_t kStagingLimit = std::size_t{64} << 20;
// Pages written during a pre-copy round that are copied at the cut without
// another round: about 0.3 ms of memcpy. Past it another round runs off the
// lock, at most kMaxExtraRounds times (a program writing faster than the
// copies keep up pays for its writes at the cut instead).
constexpr std::size_t kCutCopyPages = 1024;
constexpr int kMaxExtraRounds = 2;

bool in_spans(const std::vector<page_span>& used, std::size_t page) {
  auto it = std::upper_bound(used.begin(), used.end(), page, [](std::size_t p, const page_span& s) { return p < s.first; });
  return it != used.begin() && page < std::prev(it)->first + std::prev(it)->count;
}

// The pages of `used` in `written` (every one without it), ascending.
std::vector<std::size_t> pages_to_read(const std::vector<page_span>& used, const page_bitmap* written) {
  std::vector<std::size_t> pages;
  if (written == nullptr) {
    for (const page_span& s : used)
      for (std::size_t p = s.first; p < s.first + s.count; ++p) pages.push_back(p);
    return pages;
  }
  written->for_each([&](std::size_t p) {
    if (in_spans(used, p)) pages.push_back(p);
  });
  return pages;
}

// The parent's table less the pages now outside the used areas, with the
// pages read (ascending) in their place; zero pages are not listed.
std::vector<chunks::page_entry> next_table(const std::vector<chunks::page_entry>& parent, const std::vector<page_span>& used,
                                           const std::vector<chunks::page_entry>& read) {
  std::vector<chunks::page_entry> out;
  out.reserve(parent.size() + read.size());
  std::size_t j = 0;
  auto add_read = [&](std::size_t upto) {
    for (; j < read.size() && read[j].page < upto; ++j)
      if (read[j].chunk != chunks::zero_page()) out.push_back(read[j]);
  };
  for (const chunks::page_entry& e : parent) {
    add_read(e.page);
    if (j < read.size() && read[j].page == e.page) continue;  // read again above
    if (in_spans(used, e.page)) out.push_back(e);
  }
  add_read(~std::size_t{0});
  return out;
}

// Copies `pages` of the heap to the staging buffer a batch at a time and
// puts each batch: the fingerprint and the bytes stored are of one copy,
// whatever the program writes meanwhile. Appends the names to `out`.
status copy_and_put(heap_impl& impl, versions_state& v, const std::vector<std::size_t>& pages,
                    std::vector<chunks::page_entry>* out) {
  const std::size_t batch = std::min(pages.size(), staging_buffer::kKeptBytes / port::kOsPageSize);
  if (status s = v.staging.reserve(batch * port::kOsPageSize); !s.ok()) return s;
  const auto* base = reinterpret_cast<const char*>(impl.region.base());
  std::vector<chunks::fingerprint> names(batch);
  for (std::size_t done = 0; done < pages.size(); done += batch) {
    const std::size_t n = std::min(batch, pages.size() - done);
    for (std::size_t i = 0; i < n; ++i)
      std::memcpy(v.staging.data() + i * port::kOsPageSize, base + pages[done + i] * port::kOsPageSize, port::kOsPageSize);
    if (status s = v.store->put(v.staging.data(), n, names.data()); !s.ok()) return s;
    for (std::size_t i = 0; i < n; ++i) out->push_back({pages[done + i], names[i]});
  }
  return {};
}

// The pages written since the last collect (collected now) move from
// impl.written_since_cut to `now` and are added to `taken`, which a failed
// checkpoint gives back.
status collect_written(heap_impl& impl, page_bitmap* taken, page_bitmap* now) {
  if (status s = impl.collect_for_versions(); !s.ok()) return s;
  *now = take_written(impl);
  taken->add(*now);
  return {};
}

// Makes sure every write from now on is seen: starts tracking (or begins
// observing the program's tracker) and says whether the writes since the
// last cut are known, so that only they need reading.
status observe_writes(heap_impl& impl, bool* writes_known) {
  {
    std::lock_guard guard(impl.collect_lock);
    *writes_known = impl.versions_observing && impl.tracker && !impl.lost_writes;
    impl.versions_observing = true;
    impl.lost_writes = false;
  }
  if (!impl.tracker) {
    status s = impl.start_tracking(tracker_backend::automatic);
    // Without a tracker every checkpoint reads every used page. One the
    // program started meanwhile (invalid_argument: already tracking) is as
    // good: the writes before it are unknown, and *writes_known says so.
    if (!s.ok() && !s.is(errc::unsupported) && !s.is(errc::invalid_argument)) return s;
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

// False once tracking stopped since the cut began (even if it started
// again): the tracker no longer vouches for every write since.
bool tracking_vouches(heap_impl& impl) {
  std::lock_guard guard(impl.collect_lock);
  return impl.tracker && !impl.lost_writes;
}

// The version's pages as of the cut. Off the lock: the pages written
// since the last cut (every used page at a process's first checkpoint) are
// copied and put while transactions run, then, for as long as many were
// written meanwhile, the pages written during the last round. Under
// tx_lock: the pages written since the last collect, and any page the
// rounds could not vouch for, are copied; the lock goes as soon as the
// copy is taken. A page copied off the lock and not written since stands
// for its content at the cut, since the collect under the lock reports
// every page written after the previous collect. Without a tracker every
// used page is read under the lock. `table` gets the pages read, ascending
// (the caller merges them with the parent's), `taken` every page taken
// from written_since_cut.
status cut(heap_impl& impl, versions_state& v, bool writes_known, std::vector<page_span>* used,
           std::vector<chunks::page_entry>* table, page_bitmap* taken, std::uint64_t* heap_size, checkpoint_stats* out) {
  const bool tracked = impl.tracker != nullptr;
  std::vector<chunks::page_entry> copied;  // in the order copied: a later copy of a page replaces an earlier one
  page_bitmap fresh;                       // pages whose latest copy the program has not written since
  if (tracked) {
    page_bitmap written = take_written(impl);
    taken->add(written);
    *used = used_pages(impl);  // an estimate: allocation goes on
    std::vector<std::size_t> pages = pages_to_read(*used, writes_known ? &written : nullptr);
    for (int round = 0; round <= kMaxExtraRounds && (round == 0 || pages.size() > kCutCopyPages); ++round) {
      if (status s = copy_and_put(impl, v, pages, &copied); !s.ok()) return s;
      for (std::size_t p : pages) fresh.add(p);
      if (status s = collect_written(impl, taken, &written); !s.ok()) {
        if (tracking_vouches(impl)) return s;
        break;  // the program stopped tracking: every used page is read under the lock
      }
      written.for_each([&](std::size_t p) { fresh.remove(p); });
      *used = used_pages(impl);
      pages = pages_to_read(*used, &written);
    }
  }

  std::unique_lock held(impl.tx_lock);
  const std::uint64_t held_from = port::monotonic_ns();
  if (!impl.tx_failure.empty())
    return status(errc::tx_aborted, impl.name + ": an earlier transaction could not be made durable (" + impl.tx_failure.text() +
                                        "); reopen the heap to recover it");
  // The program may have stopped tracking during the rounds.
  const bool still_tracked = tracked && tracking_vouches(impl);
  // Then every used page is read now: no copy off the lock stands for one.
  if (!still_tracked) fresh.clear();
  page_bitmap written;
  if (still_tracked) {
    if (status s = collect_written(impl, taken, &written); !s.ok()) return s;
    out->held_collect_ns = port::monotonic_ns() - held_from;
    written.for_each([&](std::size_t p) { fresh.remove(p); });
  }
  *used = used_pages(impl);
  *heap_size = impl.region.committed();
  std::vector<std::size_t> pages;
  if (!still_tracked || !writes_known) {
    for (const page_span& sp : *used)
      for (std::size_t p = sp.first; p < sp.first + sp.count; ++p)
        if (!still_tracked || !fresh.contains(p)) pages.push_back(p);
  } else {
    taken->for_each([&](std::size_t p) {
      if (!fresh.contains(p) && in_spans(*used, p)) pages.push_back(p);
    });
  }

  // Copied while held, then put from the copy; past the staging limit,
  // put batch by batch from the heap, held throughout.
  std::vector<chunks::fingerprint> names(pages.size());
  const std::size_t batch = std::min(pages.size(), kStagingLimit / port::kOsPageSize);
  status s = v.staging.reserve(batch * port::kOsPageSize);
  const auto* base = reinterpret_cast<const char*>(impl.region.base());
  for (std::size_t done = 0; s.ok() && done < pages.size(); done += batch) {
    const std::size_t n = std::min(batch, pages.size() - done);
    for (std::size_t i = 0; i < n; ++i)
      std::memcpy(v.staging.data() + i * port::kOsPageSize, base + pages[done + i] * port::kOsPageSize, port::kOsPageSize);
    if (pages.size() <= batch && held.owns_lock()) {
      out->held_ns = port::monotonic_ns() - held_from;
      held.unlock();
    }
    s = v.store->put(v.staging.data(), n, names.data() + done);
  }
  if (held.owns_lock()) {
    out->held_ns = port::monotonic_ns() - held_from;
    held.unlock();
  }
  v.staging.trim();
  if (!s.ok()) return s;

  // The pages read, each once: the copies at the cut, then the latest
  // copy of each page still fresh and used.
  table->clear();
  table->reserve(pages.size() + copied.size());
  for (std::size_t i = 0; i < pages.size(); ++i) table->push_back({pages[i], names[i]});
  for (auto it = copied.rbegin(); it != copied.rend(); ++it) {
    if (!fresh.contains(it->page) || !in_spans(*used, it->page)) continue;
    fresh.remove(it->page);
    table->push_back(*it);
  }
  std::sort(table->begin(), table->end(),
            [](const chunks::page_entry& a, const chunks::page_entry& b) { return a.page < b.page; });
  out->pages_considered = table->size();
  return {};
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
  std::lock_guard one_at_a_time(v->cut_lock);

  bool writes_known = false;
  if (status s = observe_writes(impl, &writes_known); !s.ok()) return s;
  chunks::version_record record;
  std::memcpy(record.heap_uuid.data(), impl.superblock.uuid, record.heap_uuid.size());
  record.base_address = impl.region.base();
  record.message = message;

  const std::uint64_t chunks_before = v->store->chunks_put(), bytes_before = v->store->bytes_put();
  // observe_writes forgot that writes went unseen: a failure must not.
  const bool writes_were_known = writes_known;
  writes_known = writes_known && v->has_current;
  std::vector<page_span> used;
  std::vector<chunks::page_entry> read;
  page_bitmap taken;
  status s = cut(impl, *v, writes_known, &used, &read, &taken, &record.heap_size, out);
  // Read just after the cut, off the transaction lock (walking the pods'
  // usage takes longer than the copy): a summary for `larder log`, and,
  // where this process keeps the reference graph (the program asked for
  // it), the graph for pods_of_roots, as of the cut's last collect.
  // Keeping it costs every collect a pass over the written pages, so a
  // checkpoint does not start it.
  std::vector<pod_edge> edges;
  const bool graph_kept = pod_graph_kept(impl);
  if (s.ok() && graph_kept) s = pod_graph_edges(impl, &edges);
  if (s.ok()) record.metadata = roots_and_pods_json(impl, graph_kept ? &edges : nullptr);
  if (s.ok()) s = parent_of(impl, *v, &record.has_parent, &record.parent);
  chunks::version_id id;
  if (s.ok()) {
    record.pages = next_table(writes_known ? v->table : std::vector<chunks::page_entry>{}, used, read);
    s = v->store->commit(record, &id);
  }
  if (!s.ok()) {
    (void)v->store->release();
    give_back_written(impl, taken);
    if (!writes_were_known) {
      std::lock_guard guard(impl.collect_lock);
      impl.lost_writes = true;
    }
    return s;
  }
  v->has_current = true;
  v->current = id;
  v->table = std::move(record.pages);
  out->id = id.hex();
  out->pages_in_version = v->table.size();
  out->new_chunks = v->store->chunks_put() - chunks_before;
  out->bytes_stored = v->store->bytes_put() - bytes_before;
  out->total_ns = port::monotonic_ns() - start;
  // The version is committed either way; HEAD not following it is said.
  return move_head(*v, id);
}

}  // namespace larder
