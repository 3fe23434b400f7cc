// What the runtime keeps for a heap's versions (heap_impl::versions) and
// what checkpoint.cpp, checkout.cpp and versions.cpp share: the chunk
// store, the version current in this process and its page table, which
// pages versions cover, and how names resolve to versions.
#pragma once

#include "runtime/page_bitmap.hpp"
#include "port/write_tracker.hpp"
#include "tiers/chunks/chunk_store.hpp"
#include "tiers/chunks/fetching_reader.hpp"
#include "tiers/chunks/remote_store.hpp"

#include <larder/references.hpp>
#include <larder/status.hpp>
#include <larder/versions.hpp>

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace larder {

class heap_impl;

// Where a checkpoint copies its pages while transactions wait. Kept mapped
// (its pages already faulted in) between checkpoints up to kKeptBytes, so
// that the copy is all the wait costs; a larger one is given back after.
class staging_buffer {
 public:
  static constexpr std::size_t kKeptBytes = std::size_t{16} << 20;
  staging_buffer() = default;
  staging_buffer(const staging_buffer&) = delete;
  staging_buffer& operator=(const staging_buffer&) = delete;
  ~staging_buffer() { release(); }
  // At least `bytes` of buffer.
  status reserve(std::size_t bytes);
  // Gives a buffer past kKeptBytes back to the system.
  void trim() noexcept {
    if (size_ > kKeptBytes) release();
  }
  char* data() const noexcept { return data_; }

 private:
  void release() noexcept;
  char* data_ = nullptr;
  std::size_t size_ = 0;
};

// The pages of a lazy checkout come from here, on the tracker's loader
// thread (port::write_tracker::load_lazily): the target's chunks, read
// from the store (through `fetch`, fetching what it lacks from a remote,
// for a checkout from one) and checked against their fingerprints. It
// reads versions_state::table and the store, which nothing else uses until
// finish_lazy (open_versions calls it first).
class lazy_source final : public port::page_source {
 public:
  lazy_source(chunks::chunk_store& store, chunks::fetching_reader* fetch, const std::vector<chunks::page_entry>& table,
              std::uintptr_t base)
      : store_(store), fetch_(fetch), table_(table), base_(base) {}
  int fill(const std::uintptr_t* pages, std::size_t count, void* out) noexcept override;
  // The first failure, as text, once fill failed.
  std::string failure() const;

 private:
  chunks::chunk_store& store_;
  chunks::fetching_reader* fetch_;
  const std::vector<chunks::page_entry>& table_;
  std::uintptr_t base_;
  mutable std::mutex lock_;  // failure_, written on the loader's thread
  std::string failure_;
};

// A checkout from a remote (checkout_options::remote): the remote, the
// version's files as it holds them, and the ref to set in the heap's store
// once that holds every chunk the version names (publish_remote_version).
struct remote_checkout {
  std::unique_ptr<chunks::remote_store> remote;
  std::unique_ptr<chunks::fetching_reader> fetch;  // through the heap's store
  std::string manifest, table;
  std::string ref;  // the ref the version was named by ("heads/x", "tags/x"), or ""
  bool ref_existed = false;  // in the heap's store, naming ref_was, when checked
  chunks::version_id ref_was;
};

struct versions_state {
  std::string directory;
  // One checkpoint or live diff at a time: a checkpoint takes pages out of
  // written_since_cut while it copies them, with transactions running.
  std::mutex cut_lock;
  staging_buffer staging;
  std::unique_ptr<chunks::chunk_store> store;
  // The version the heap equals, but for written_since_cut: set by this
  // process's last checkpoint or checkout.
  bool has_current = false;
  chunks::version_id current;
  std::vector<chunks::page_entry> table;  // current's pages, ascending
  // What this heap's checkpoints move: a branch ("heads/<n>") or, empty, a
  // detached HEAD. Fixed when the heap first needs it (HEAD as it is then),
  // by use_version_store's branch, or by a checkout, so that heaps sharing
  // a store never move each other's branches.
  bool follows_known = false;
  std::string follows;
  // While a lazy checkout from a remote loads pages (`lazy` reads through
  // it, so it goes after).
  std::unique_ptr<remote_checkout> remote;
  // What the last lazy checkout from a remote fetched, once it finished.
  std::uint64_t chunks_fetched = 0, bytes_fetched = 0;
  std::unique_ptr<lazy_source> lazy;  // while a lazy checkout loads pages
  // What HEAD becomes once that checkout has loaded every page (a branch,
  // else detached at `current`): its publication (an fsync'd rename) would
  // cost more than the rest of the checkout.
  std::string lazy_head_branch;
  // Set only when that checkout succeeded: one that failed part way
  // leaves `current` and lazy_head_branch stale.
  bool lazy_moves_head = false;
};

// Heap pages (4 KiB, numbered from the base) [first, first + count).
struct page_span {
  std::size_t first;
  std::size_t count;
};

// The chunk a table names for `page`: the zero page when it names none.
const chunks::fingerprint& chunk_at(const std::vector<chunks::page_entry>& table, std::size_t page);

// Reads the chunks `table` names for heap pages pages[0, count) into `out`,
// 4 KiB each (zero pages as zeros), verified against their fingerprints:
// corrupt when one fails. From `store`, or through `fetch` when given.
status read_pages(chunks::chunk_store& store, const std::vector<chunks::page_entry>& table, const std::size_t* pages,
                  std::size_t count, char* out, chunks::fetching_reader* fetch = nullptr);

// OK when version `id` (`r`) was taken of this heap and fits its address
// range: invalid_argument (another heap) or corrupt otherwise.
status version_of_this_heap(const heap_impl& impl, const chunks::version_id& id, const chunks::version_record& r);

// Waits until a lazy checkout has loaded every page, then moves HEAD to
// its version; pages it could not load (they read as zeros) leave the heap
// failed (tx_failure), HEAD where it was, and give `corrupt`. OK when none
// is under way.
status finish_lazy(heap_impl& impl);

// The store of `impl`, opened at the first call (and created, with
// `create`; not_a_heap otherwise when there is none). A lazy checkout
// still loading pages is finished first (finish_lazy): its failure is
// this call's.
status open_versions(heap_impl& impl, versions_state** out, bool create = true);

// Whether the pages written since `v.current` are all in
// impl.written_since_cut (after a collect_for_versions): only they can
// differ from the current version's table.
bool writes_since_cut_known(const heap_impl& impl, const versions_state& v);

// The pages a version of the heap holds, ascending: the metadata block
// after the superblocks, every page of log and huge segments, and of pages
// segments the header and each slice that is handed out and has storage.
// Everything else reads as zero in a version. The caller holds tx_lock.
std::vector<page_span> used_pages(const heap_impl& impl);

// The version `name` (a ref, "HEAD", a full id or an unambiguous prefix)
// names; `branch` gets "heads/<n>" when name is a branch, else "".
status resolve_version(chunks::chunk_store& store, std::string_view name, chunks::version_id* id,
                       std::string* branch);

// resolve_version, then the version's manifest into `out`.
status read_named_version(chunks::chunk_store& store, std::string_view name, chunks::version_id* id,
                          std::string* branch, chunks::version_record* out);

// The roots and pods of the heap as JSON, for a manifest's metadata, with
// the reference graph's `edges` where given (docs/versions.md).
std::string roots_and_pods_json(heap_impl& impl, const std::vector<pod_edge>* edges = nullptr);
// The edges a version's metadata records, sorted by (from, to); false
// when it records none (versions before the graph was recorded).
bool recorded_edges(const std::string& metadata, std::vector<pod_edge>* out);

std::string uuid_text(const std::uint8_t* uuid);

// The pages written since the last cut, which start over now; on failure
// the caller gives them back.
page_bitmap take_written(heap_impl& impl);
void give_back_written(heap_impl& impl, const page_bitmap& taken);

// What differs between tables `a` and `b` of versions whose
// metadata (roots_and_pods_json) is `meta_a` and `meta_b`.
void compare_versions(const std::vector<chunks::page_entry>& a, const std::string& meta_a,
                      const std::vector<chunks::page_entry>& b, const std::string& meta_b, version_diff* out);

struct version_store::impl {
  std::unique_ptr<chunks::chunk_store> store;
};

// ---- checkout from a remote (remote_checkout.cpp) ----

// Opens `remote`, resolves `name` there (a ref, a full id or an
// unambiguous prefix) and reads the version into `target`; `branch` gets
// the branch named, else "". Refuses (already_exists) a ref the heap's
// store holds that the version could not replace as pull replaces refs.
status open_remote_version(versions_state& v, const std::string& remote, std::string_view name,
                           std::unique_ptr<remote_checkout>* out, chunks::version_id* id, std::string* branch,
                           chunks::version_record* target);
// Puts into the heap's store the chunks it lacks of `target`'s pages that
// are not among `loaded` (ascending): pages whose bytes equal the
// version's, found by content (no version was current), whose chunks the
// version names too. Read from the heap, never fetched.
status store_equal_pages(const heap_impl& impl, chunks::chunk_store& store, const std::vector<chunks::page_entry>& target,
                         const std::vector<std::size_t>& loaded);
// Fetches the chunks of `target` for `pages` that the heap's store lacks.
status fetch_pages(remote_checkout& r, const std::vector<chunks::page_entry>& target, const std::vector<std::size_t>& pages);
// Once the heap's store holds every chunk the version names: the version
// (byte for byte, under its id) and the ref into the heap's store.
status publish_remote_version(versions_state& v, remote_checkout& r);

status take_checkpoint(heap_impl& impl, std::string_view message, checkpoint_stats* out);
status check_out(heap_impl& impl, std::string_view version, const checkout_options& options, checkout_stats* out);

}  // namespace larder
