// Checkout: the heap made equal to a version in place, loading only the
// pages that differ, then the allocator's process-local state rebuilt as an
// open builds it. See larder/versions.hpp and docs/versions.md.
#include "allocator/thread.hpp"
#include "port/os.hpp"
#include "runtime/checkout_mark.hpp"
#include "runtime/close_journal.hpp"
#include "runtime/heap_impl.hpp"
#include "runtime/pod_graph.hpp"
#include "runtime/pod_restore.hpp"
#include "runtime/process_heap_scope.hpp"
#include "runtime/transaction_engine.hpp"
#include "runtime/versions_state.hpp"

#include <algorithm>
#include <cstring>

namespace larder {

namespace {

using chunks::page_entry;

// Pages loaded per batch: chunks are read (and verified) a batch ahead of
// being written, so damage found in the first batch leaves the heap as it
// was.
constexpr std::size_t kBatchPages = (std::size_t{64} << 20) / port::kOsPageSize;
constexpr std::size_t kPagesPerSegment = layout::kSegmentSize / port::kOsPageSize;
constexpr std::size_t kHeaderPages = alloc::kSegmentHeaderSize / port::kOsPageSize;

// What a lazy checkout still loads before it returns: the metadata
// segment and every segment header, which setting the region up reads
// at once anyway.
bool loaded_at_once(std::size_t page) {
  return page < kPagesPerSegment || page % kPagesPerSegment < kHeaderPages;
}

// Pages whose chunk differs between two tables.
void add_table_difference(const std::vector<page_entry>& a, const std::vector<page_entry>& b, page_bitmap* out) {
  std::size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    if (j == b.size() || (i < a.size() && a[i].page < b[j].page)) {
      out->add(a[i++].page);
    } else if (i == a.size() || b[j].page < a[i].page) {
      out->add(b[j++].page);
    } else {
      if (a[i].chunk != b[j].chunk) out->add(a[i].page);
      ++i;
      ++j;
    }
  }
}

// Without a version current in this process: every used page whose bytes
// differ from the target's, and every target page outside the used areas
// (not read: reading a hole may take storage).
void add_content_difference(const heap_impl& impl, const std::vector<page_entry>& target, page_bitmap* out,
                            std::size_t* compared) {
  const std::vector<page_span> used = used_pages(impl);
  page_bitmap in_use;
  for (const page_span& s : used) {
    for (std::size_t p = s.first; p < s.first + s.count; ++p) {
      in_use.add(p);
      const void* bytes = reinterpret_cast<const void*>(impl.region.base() + p * port::kOsPageSize);
      if (chunks::page_fingerprint(bytes) != chunk_at(target, p)) out->add(p);
      ++*compared;
    }
  }
  for (const page_entry& e : target)
    if (!in_use.contains(e.page)) out->add(e.page);
}

std::vector<page_span> spans_of(const std::vector<std::size_t>& pages) {
  std::vector<page_span> spans;
  for (std::size_t p : pages) {
    if (!spans.empty() && spans.back().first + spans.back().count == p) {
      ++spans.back().count;
    } else {
      spans.push_back({p, 1});
    }
  }
  return spans;
}

// Gives `spans` storage in a file or shm backing before they are written:
// a write to a hole on a full file system would be a SIGBUS.
status reserve_spans(const heap_impl& impl, const std::vector<page_span>& spans) {
  for (const page_span& span : spans) {
    const void* start = reinterpret_cast<const void*>(impl.region.base() + span.first * port::kOsPageSize);
    if (int err = impl.reserve_storage(start, span.count * port::kOsPageSize))
      return status::from_errno(err, "giving " + impl.name + " storage for the version's pages");
  }
  return {};
}

void write_pages(const heap_impl& impl, const std::vector<std::size_t>& pages, std::size_t first, std::size_t count,
                 const char* staging) {
  auto* base = reinterpret_cast<char*>(impl.region.base());
  for (std::size_t i = 0; i < count; ++i)
    std::memcpy(base + pages[first + i] * port::kOsPageSize, staging + i * port::kOsPageSize, port::kOsPageSize);
}

// Segments at or above segments_high read as zero (region::acquire takes
// them for fresh memory): what a lowered segments_high leaves above it is
// given back.
void zero_above(heap_impl& impl, std::size_t new_high, std::size_t old_high) {
  if (old_high <= new_high) return;
  void* start = reinterpret_cast<void*>(impl.region.base() + (new_high << layout::kSegmentShift));
  (void)port::decommit(start, (old_high - new_high) << layout::kSegmentShift, impl.fd >= 0);
}

// The pages to load, ascending. `taken` gets the pages taken from
// written_since_cut, which a checkout failing before the heap changes gives
// back. `by_content`: no version was current, so the pages were compared
// by their bytes.
status pages_to_load(heap_impl& impl, versions_state& v, const std::vector<page_entry>& target,
                     std::vector<std::size_t>* out, page_bitmap* taken, std::size_t* compared, bool* by_content) {
  const bool writes_known = writes_since_cut_known(impl, v);
  *by_content = !writes_known;
  if (writes_known) {
    if (status s = impl.collect_for_versions(); !s.ok()) return s;
  }
  page_bitmap load = take_written(impl);
  *taken = load;
  if (writes_known) {
    add_table_difference(v.table, target, &load);
  } else {
    load.clear();
    add_content_difference(impl, target, &load, compared);
  }
  load.for_each([&](std::size_t p) { out->push_back(p); });
  return {};
}

// Tracking again, as before the checkout (versions start it if nobody had),
// with the pages loaded reported to the program's next collect.
status track_again(heap_impl& impl, tracker_backend backend, bool by_program, page_bitmap unreported,
                   const std::vector<std::size_t>& loaded) {
  impl.versions_observing = true;
  status s = impl.start_tracking(backend == tracker_backend::none ? tracker_backend::automatic : backend);
  if (!s.ok() && !s.is(errc::unsupported)) return s;
  impl.lost_writes = !s.ok();
  impl.tracking_by_program = s.ok() && by_program;
  if (impl.tracking_by_program) {
    for (std::size_t p : loaded) unreported.add(p);
    impl.unreported_writes = std::move(unreported);
  }
  impl.written_since_cut.clear();
  return {};
}

// A uffd tracker stays through a checkout: unregistering and protecting the
// whole heap again would cost more than loading 1 % of it. The checkout's
// own writes are collected after and reported to the program only (its
// next collect_dirty), not to the next checkpoint: they equal the version.
bool keeps_tracker(const heap_impl& impl) {
  return impl.tracker && impl.tracker->kind() == port::tracker_kind::uffd_async;
}

// Where the checkout wrote: the pages it loaded, and the metadata segment
// and segment headers that setting the region up writes. Collecting only
// these keeps the collect's cost off the heap's size; a write elsewhere
// stays marked and reaches the next checkpoint, which stores the page as
// it is then. Runs closer than one page table (512 pages) are scanned as
// one: a scan call costs more than walking that gap.
std::vector<port::written_run> checkout_writes(const heap_impl& impl, std::size_t high,
                                               const std::vector<std::size_t>& loaded) {
  constexpr std::size_t kJoinGap = 512;
  page_bitmap pages;
  for (std::size_t p = 0; p < kPagesPerSegment; ++p) pages.add(p);
  for (std::size_t s = 1; s < high; ++s)
    for (std::size_t p = 0; p < kHeaderPages; ++p) pages.add(s * kPagesPerSegment + p);
  for (std::size_t p : loaded) pages.add(p);
  std::vector<port::written_run> out;
  std::size_t end = 0;  // past the last run's last page
  pages.for_each([&](std::size_t p) {
    if (!out.empty() && p < end + kJoinGap) {
      out.back().pages = p + 1 - (out.back().start - impl.region.base()) / port::kOsPageSize;
    } else {
      out.push_back({impl.region.base() + p * port::kOsPageSize, 1});
    }
    end = p + 1;
  });
  return out;
}

status track_kept(heap_impl& impl, const std::vector<std::size_t>& loaded, const std::vector<std::size_t>& lazy) {
  const std::size_t high = std::max<std::size_t>(impl.meta()->segments_high, 1);
  {
    std::lock_guard guard(impl.tracker_lock);
    if (int err = impl.tracker->track(impl.region.base(), high << layout::kSegmentShift, 0))
      return status::from_errno(err, "tracking writes to " + impl.name);
  }
  const std::vector<port::written_run> written = checkout_writes(impl, high, loaded);
  if (status s = impl.collect_for_versions(&written); !s.ok()) return s;
  std::lock_guard guard(impl.collect_lock);
  // A lazy page is installed write-protected, as unwritten: the program
  // learns of it here, as of the pages loaded at once.
  if (impl.tracking_by_program)
    for (std::size_t p : lazy) impl.unreported_writes.add(p);
  impl.written_since_cut.clear();
  impl.lost_writes = false;
  return {};
}

// The used pages of the heap as it is now that `before` did not hold (they
// had no storage here), less the `lazy` ones (ascending): storage given to
// one of those now would make it present, and the loader could not install
// it. By spans, not pages: a heap of 1 GiB has 262,144 pages.
std::vector<page_span> newly_used(const heap_impl& impl, const std::vector<page_span>& before,
                                  const std::vector<std::size_t>& lazy) {
  std::vector<page_span> out;
  auto add = [&](std::size_t first, std::size_t end) {  // [first, end) less the lazy pages
    auto it = std::lower_bound(lazy.begin(), lazy.end(), first);
    for (; first < end; ++it) {
      const std::size_t stop = it != lazy.end() && *it < end ? *it : end;
      if (stop > first) out.push_back({first, stop - first});
      first = stop + 1;
    }
  };
  auto old = before.begin();
  for (const page_span& s : used_pages(impl)) {
    std::size_t first = s.first;
    const std::size_t end = s.first + s.count;
    while (first < end) {
      while (old != before.end() && old->first + old->count <= first) ++old;
      if (old == before.end() || old->first >= end) {
        add(first, end);
        break;
      }
      if (old->first > first) add(first, old->first);
      first = old->first + old->count;
    }
  }
  return out;
}

// `spans` less the pages of `segments` (ascending).
std::vector<page_span> outside_segments(const std::vector<page_span>& spans, const std::vector<std::size_t>& segments) {
  std::vector<page_span> out;
  for (const page_span& s : spans) {
    const std::size_t end = s.first + s.count;
    for (std::size_t first = s.first; first < end;) {
      const std::size_t k = first / kPagesPerSegment;
      const std::size_t stop = std::min(end, (k + 1) * kPagesPerSegment);
      if (!std::binary_search(segments.begin(), segments.end(), k)) {
        if (!out.empty() && out.back().first + out.back().count == first)
          out.back().count += stop - first;
        else
          out.push_back({first, stop - first});
      }
      first = stop;
    }
  }
  return out;
}

std::vector<recovery::persist_range> ranges_of(const heap_impl& impl, const std::vector<std::size_t>& pages) {
  std::vector<recovery::persist_range> out;
  for (const page_span& s : spans_of(pages))
    out.push_back({reinterpret_cast<const void*>(impl.region.base() + s.first * port::kOsPageSize),
                   s.count * port::kOsPageSize});
  return out;
}

// Refuses a lazy checkout where pages cannot be loaded on first touch,
// before anything changes; starts the uffd tracker where nothing tracks.
status prepare_lazy(heap_impl& impl) {
  if (impl.kind == backing::file)
    return status(errc::unsupported, impl.name + ": a file heap cannot be checked out lazily (a shared mapping of a "
                                                 "regular file takes no userfaultfd missing faults): check it out eagerly");
  if (!impl.tracker) {
    if (status s = impl.start_tracking(tracker_backend::uffd_async); !s.ok())
      return status(errc::unsupported, impl.name + ": a lazy checkout needs the uffd write-protect tracker: " + s.message());
    // Writes before now are unknown: the pages to load are found by content.
    impl.versions_observing = true;
    impl.lost_writes = true;
  }
  if (!keeps_tracker(impl))
    return status(errc::unsupported, impl.name + ": a lazy checkout needs the uffd write-protect tracker, and the heap "
                                                 "is tracked another way");
  std::lock_guard guard(impl.tracker_lock);
  if (const char* why = impl.tracker->lazy_refusal())
    return status(errc::unsupported, impl.name + ": a lazy checkout cannot load pages on first touch here: " + why +
                                         "; check it out eagerly");
  return {};
}

}  // namespace

status check_out(heap_impl& impl, std::string_view name, const checkout_options& options, checkout_stats* out) {
  process_heap_scope scope;
  const std::uint64_t start = port::monotonic_ns();
  *out = {};
  if (!impl.can_write()) return status(errc::read_only, impl.name + ": a read-only heap cannot be checked out");
  if (in_transaction(&impl)) return status(errc::invalid_argument, "checkout inside a transaction on the heap");
  const bool partial = !options.pods.empty();
  if (partial && options.lazy) return status(errc::invalid_argument, "a checkout of some pods is not lazy");
  if (partial && !options.remote.empty())
    return status(errc::invalid_argument, "a checkout of some pods reads the heap's own store: pull the version first");
  versions_state* v = nullptr;
  if (status s = open_versions(impl, &v); !s.ok()) return s;
  chunks::version_id id;
  std::string branch;
  chunks::version_record target;
  std::unique_ptr<remote_checkout> remote;
  if (status s = options.remote.empty() ? read_named_version(*v->store, name, &id, &branch, &target)
                                        : open_remote_version(*v, options.remote, name, &remote, &id, &branch, &target);
      !s.ok())
    return s;
  if (status s = version_of_this_heap(impl, id, target); !s.ok()) return s;

  if (options.lazy) {
    if (status s = prepare_lazy(impl); !s.ok()) return s;
  }
  std::unique_lock held(impl.tx_lock, std::try_to_lock);
  if (!held.owns_lock()) return status(errc::invalid_argument, "checkout while another thread runs a transaction");
  if (!impl.tx_failure.empty())
    return status(errc::tx_aborted, impl.name + ": an earlier failure left it in doubt (" + impl.tx_failure.text() +
                                        "); reopen the heap to recover it");
  std::vector<std::size_t> pages, lazy;
  page_bitmap taken;
  auto unchanged = [&](status failed) {
    give_back_written(impl, taken);
    if (remote) (void)v->store->release();  // what was fetched stays, as garbage
    return failed;
  };
  std::unique_ptr<pod_restore> restore;
  bool by_content = false;
  std::size_t committed = std::max<std::size_t>(impl.region.committed(), target.heap_size);
  // Every block a thread holds (caches, delayed frees) goes back to its
  // page, and every thread's local heap of this region is retired.
  alloc::forget_region(&impl.region);
  if (partial) {
    auto target_meta = std::make_unique<layout::heap_meta>();
    restore = std::make_unique<pod_restore>();
    if (status s = read_target_meta(*v, target.pages, target_meta.get()); !s.ok()) return s;
    if (status s = plan_pod_restore(impl, *target_meta, target.pages, options.pods, restore.get()); !s.ok()) return s;
    pages = restore->pages;
    committed = std::max<std::size_t>(impl.region.committed(), restore->high << layout::kSegmentShift);
  } else if (status s = pages_to_load(impl, *v, target.pages, &pages, &taken, &out->pages_compared, &by_content);
             !s.ok()) {
    return s;
  }
  // The store is to hold every chunk the version names: those of pages
  // equal to the heap's are its current version's, or, found by content,
  // are put from the heap now, before anything changes it.
  if (remote && by_content) {
    if (status s = store_equal_pages(impl, *v->store, target.pages, pages); !s.ok()) return unchanged(s);
  }
  if (options.lazy) {
    std::vector<std::size_t> now;
    for (std::size_t p : pages) (loaded_at_once(p) ? now : lazy).push_back(p);
    pages.swap(now);
  }
  if (remote) {
    if (status s = fetch_pages(*remote, target.pages, pages); !s.ok()) return unchanged(s);
    out->chunks_fetched = remote->fetch->chunks_fetched();
    out->bytes_fetched = remote->fetch->bytes_fetched();
  }
  if (committed > impl.region.committed() && impl.fd >= 0) {
    if (int err = impl.grow_backing(committed)) return unchanged(status::from_errno(err, "growing " + impl.name));
  }
  if (status s = reserve_spans(impl, spans_of(pages)); !s.ok()) return unchanged(s);
  std::vector<char> staging(std::min(pages.size(), kBatchPages) * port::kOsPageSize);
  const std::size_t first_batch = std::min(pages.size(), kBatchPages);
  if (status s = read_pages(*v->store, target.pages, pages.data(), first_batch, staging.data()); !s.ok()) return unchanged(s);
  // Every chunk the version names is in the heap's store now, unless pages
  // are left to load on touch: then it is published once they are.
  if (remote && lazy.empty()) {
    if (status s = publish_remote_version(*v, *remote); !s.ok()) return unchanged(s);
  }

  // From here the heap changes: nothing may fail before the region is
  // whole again, or the heap is left for a reopen and another checkout.
  // Not every page it changes is reported written (lazy ones, zero ones
  // given back), so the reference graph is read again in full when next
  // asked for.
  forget_pod_graph(impl);
  if (impl.kind == backing::file) {
    if (status s = set_checkout_mark(impl.name, id.hex()); !s.ok()) return unchanged(s);
  }
  // A partial restore gives its segments' storage back: their used pages,
  // zero ones too, need it again.
  const std::vector<page_span> used_before =
      partial ? outside_segments(used_pages(impl), restore->segments) : used_pages(impl);
  const bool kept = keeps_tracker(impl);
  const tracker_backend backend = impl.tracking_backend;
  const bool by_program = impl.tracking_by_program;
  page_bitmap unreported = impl.unreported_writes;
  if (!kept) impl.stop_tracking();
  alloc::unregister_region(&impl.region);
  impl.region.destroy();
  const std::size_t old_high = impl.meta()->segments_high;
  if (partial) restore_pod_metadata(impl, *restore);
  status s;
  for (std::size_t done = 0; done < pages.size(); done += kBatchPages) {
    const std::size_t n = std::min(kBatchPages, pages.size() - done);
    if (done != 0 && !(s = read_pages(*v->store, target.pages, pages.data() + done, n, staging.data())).ok()) break;
    write_pages(impl, pages, done, n, staging.data());
  }
  if (s.ok() && !partial) zero_above(impl, impl.meta()->segments_high, old_high);
  if (!partial) {
    // The heap is no longer the current version; the target's table is
    // kept from here for the lazy pages.
    v->has_current = false;
    v->table = std::move(target.pages);
  }
  if (s.ok() && !lazy.empty()) {
    // Before the region is set up again: nothing may read a lazy page
    // while it still holds the old bytes. The source lives in `v` from
    // now on, whatever fails after: the loader may use it until finished.
    std::vector<std::uintptr_t> addresses;
    addresses.reserve(lazy.size());
    for (std::size_t p : lazy) addresses.push_back(impl.region.base() + p * port::kOsPageSize);
    // The version may reach past what the tracker covers (it began at the
    // heap's size then): a lazy page must be registered before it can fault.
    const std::size_t high = std::max<std::size_t>(impl.meta()->segments_high, 1);
    std::lock_guard guard(impl.tracker_lock);
    v->lazy_moves_head = false;
    v->remote = std::move(remote);
    v->chunks_fetched = v->bytes_fetched = 0;
    v->lazy = std::make_unique<lazy_source>(*v->store, v->remote ? v->remote->fetch.get() : nullptr, v->table,
                                            impl.region.base());
    if (int err = impl.tracker->track(impl.region.base(), high << layout::kSegmentShift, 0))
      s = status::from_errno(err, "tracking writes to " + impl.name);
    else if (int e = impl.tracker->load_lazily(std::move(addresses), impl.kind == backing::shm, v->lazy.get()))
      s = status::from_errno(e, "loading the pages of " + impl.name + " on first touch");
  }
  impl.settled_marks = ~std::uint64_t{0};
  for (recovery::log_storage& storage : impl.lane_storage) storage = {};
  if (status started = impl.start_region(committed, true); !started.ok()) {
    impl.tx_failure.set("a checkout could not set the heap up again: " + started.message());
    return started;
  }
  if (!s.ok()) {
    impl.tx_failure.set("a checkout stopped half way: " + s.message());
    if (remote) (void)v->store->release();
    return s;
  }
  // The heap holds the version from here, but a failure leaves it as one
  // half way does: refusing work until reopened, a file heap marked.
  auto unfinished = [&](status failed) {
    impl.tx_failure.set("a checkout could not finish: " + failed.message());
    return failed;
  };
  // Pages of the version that were holes here and did not differ (zero
  // in both) get the storage the version's segment headers say they have.
  if (status stored = reserve_spans(impl, newly_used(impl, used_before, lazy)); !stored.ok()) return unfinished(stored);
  if (partial) {
    // The heap is no version now: the pages restored (written, so the
    // tracker reports them) reach the next checkpoint, whose parent stays
    // the version current before.
    if (status t = kept ? impl.collect_for_versions() : track_again(impl, backend, by_program, std::move(unreported), pages);
        !t.ok())
      return unfinished(t);
    if (kept) {
      // A page zero in the version was given back, not written: the
      // tracker does not report it, so every page of the restored segments
      // counts as written.
      page_bitmap restored;
      for (std::size_t k : restore->segments)
        for (std::size_t p = k * kPagesPerSegment; p < (k + 1) * kPagesPerSegment; ++p) restored.add(p);
      give_back_written(impl, restored);
    } else {
      v->has_current = false;
    }
  } else if (status t = kept ? track_kept(impl, pages, lazy) : track_again(impl, backend, by_program, std::move(unreported), pages);
             !t.ok()) {
    return unfinished(t);
  }
  if (impl.kind == backing::file) {
    const std::vector<recovery::persist_range> loaded = ranges_of(impl, pages);
    if (status w = write_back(impl, &loaded); !w.ok()) return unfinished(w);
    if (status c = clear_checkout_mark(impl.name); !c.ok()) return unfinished(c);
  }
  out->id = id.hex();
  out->pages_loaded = pages.size();
  out->pages_lazy = lazy.size();
  out->total_ns = port::monotonic_ns() - start;
  if (partial) return {};  // HEAD stays: the heap is not that version
  v->has_current = true;
  v->current = id;
  v->lazy_head_branch = branch;
  v->follows = branch;
  v->follows_known = true;
  {
    std::lock_guard guard(impl.tracker_lock);
    if (v->lazy) {  // HEAD moves when every page is loaded (finish_lazy)
      v->lazy_moves_head = true;
      return {};
    }
  }
  return branch.empty() ? v->store->set_head_detached(id) : v->store->set_head(branch);
}

}  // namespace larder
