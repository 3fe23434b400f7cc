// Versions of a heap (docs/versions.md): checkpoint() records the whole
// heap (data, allocator metadata, pods, roots) as a version in a chunk
// store (docs/format/chunks.md), costing what changed since the last one;
// checkout() brings the open heap back or forward to any version, loading
// only the pages that differ. version_store reads a store's history and
// does its housekeeping. `larder checkpoint`, `log`, `checkout` and
// `versions` are the command-line front ends (docs/tools/larder.md).
#pragma once

#include <larder/export.hpp>
#include <larder/heap.hpp>
#include <larder/status.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace larder {

// Where a heap's versions go: `directory` (made a chunk store if it is not
// one); a `branch` makes HEAD that branch ("main": heads/main), none
// leaves HEAD as the store has it (heads/main in a new store). Call before the
// heap's first checkpoint or checkout; a file heap's default is the
// directory "<file>.versions" beside it, and shm and anonymous heaps have
// none (checkpoint fails with invalid_argument until one is named).
// Errors: invalid_argument (a store is in use already, a bad branch name).
LARDER_EXPORT status use_version_store(heap& h, const std::string& directory, std::string_view branch = {});
// The store a heap uses or would use: "" when it has none.
LARDER_EXPORT std::string version_store_of(const heap& h);

struct checkpoint_stats {
  std::string id;               // the version's id: 32 hex digits
  std::size_t pages_considered = 0;  // pages read (every used page at a process's first checkpoint)
  std::size_t pages_in_version = 0;  // non-zero pages the version names
  std::size_t new_chunks = 0;        // chunks the store did not hold yet
  std::uint64_t bytes_stored = 0;    // pack bytes they took
  std::uint64_t held_ns = 0;    // how long transactions (and this heap's tx lock) were held off
  std::uint64_t held_collect_ns = 0;  // of held_ns, the last collect of the pages written (the tracker's scan)
  std::uint64_t total_ns = 0;
};

// Records the heap as one version, with `message`, as the child of the
// version the heap was last checkpointed at or checked out to in this
// process (none before: a new line of history), and moves HEAD's branch to
// it. The cut: the written pages are copied while the program runs, then
// the pages written meanwhile are copied with no transaction in flight;
// the version is the heap as of that instant, so it never holds part of a
// transaction, and transactions wait only for that last copy (held_ns).
// Stores made outside transactions by other threads meanwhile may land in
// it or not, page by page (docs/versions.md). Starts page-write tracking
// if the program has not. Durable once this returns OK, whatever the
// heap's backing.
// The calling thread must not be in a transaction on `h`. Errors:
// read_only, invalid_argument (no store, inside a transaction, the heap
// not open), tx_aborted (the heap's durable state is in doubt), or the
// store's (corrupt, out_of_space, an errno value).
LARDER_EXPORT status checkpoint(heap& h, std::string_view message, checkpoint_stats* out);
// Throwing convenience.
LARDER_EXPORT checkpoint_stats checkpoint(heap& h, std::string_view message);

struct checkout_stats {
  std::string id;                  // the version checked out
  std::size_t pages_compared = 0;  // pages fingerprinted (no version current in this process)
  std::size_t pages_loaded = 0;    // pages written before checkout returned: read from the store or zeroed
  std::size_t pages_lazy = 0;      // lazy: pages left to load on first touch
  std::uint64_t total_ns = 0;      // until checkout returned (lazy: until the heap was usable)
  // From a remote (checkout_options::remote): chunks fetched before
  // checkout returned, and their bytes as stored (zstd frames where that
  // saved). A lazy checkout's total is lazy_checkout_progress's.
  std::uint64_t chunks_fetched = 0;
  std::uint64_t bytes_fetched = 0;
};

struct checkout_options {
  // Return as soon as the heap is usable and load each differing page on
  // its first touch (userfaultfd missing faults), a thread loading the
  // rest meanwhile. Anonymous and shm heaps with the uffd write-protect
  // tracker (Linux 6.7+) only: a file heap (a MAP_SHARED regular file
  // takes no missing faults), or a heap tracked another way, is refused
  // with `unsupported` before anything changes. See docs/versions.md,
  // "Lazy checkout".
  bool lazy = false;
  // Restore only these pods (ids, as pod_info::id) and leave the rest of
  // the heap as it is; empty: the whole heap. Each chosen pod becomes what
  // the version holds: its segments (headers and pages) and its pod
  // record; segments it gained since are given back, and a pod created
  // since (no record in the version) is removed. Roots and HEAD stay as
  // they are: the heap is no version after, and its next checkpoint's
  // parent is the version current before. Refused (invalid_argument)
  // where the version puts a chosen pod's segment where another pod or an
  // undo-log lane lives now, and with `lazy`. docs/versions.md,
  // "Restoring some pods".
  std::vector<std::uint32_t> pods = {};
  // Check the version out straight from this remote (as push_versions
  // takes one: a directory, or "rados:POOL[@CONF]"), not from the heap's
  // store: the name is resolved there, and only the chunks of pages that
  // differ from the heap's, and that the heap's store lacks, are fetched
  // (with `lazy`, each on its page's first touch). They are added to the
  // heap's store, which gets the version, and the ref named (moved as
  // pull moves it), once it holds every chunk the version names; HEAD
  // then moves as for any checkout. Not with `pods`. See docs/versions.md,
  // "Checking out from a remote".
  std::string remote = {};
};

// The pods to restore for the roots `names` of `version` (checkout_options::
// pods): the pod holding each root's object in the version, in the order
// of `names`, then every other pod those reach over the reference graph
// the version recorded at its checkpoint (references.hpp), ascending, so
// that a root's objects come back whole. A version records the graph where
// the checkpointing process kept it (it asked for pod_graph while
// tracking); one without has only the roots' own pods, so name the pods
// their objects point into too. Errors: not_found (no such root in
// the version) and checkout's.
LARDER_EXPORT status pods_of_roots(heap& h, std::string_view version, const std::vector<std::string>& names,
                                   std::vector<std::uint32_t>* out);

// Makes the heap equal to `version` (a full id, an unambiguous prefix of
// one, or a ref: "main", "heads/main", "tags/x"), in place: only pages
// that differ are loaded, at once or (options.lazy) on first touch. A
// branch name makes HEAD that branch; anything else detaches HEAD at the
// version.
// Preconditions: no transaction running, and no other thread using the
// heap until this returns. Every pointer into the heap taken before is
// invalid after (find objects again through roots); thread caches and
// pod_scopes of the heap are reset. On a file heap the pages loaded and
// the allocator's metadata are durable once this returns OK. A crash in
// the middle leaves the heap part old, part new: a file heap then refuses
// to open (corrupt) until restore_version() writes a version into it;
// check an shm heap's version out again (docs/versions.md, "Checkout").
// Errors: not_found (no such version), invalid_argument (an ambiguous
// prefix, a version of another heap, a precondition), unsupported (lazy
// where it cannot be), read_only, corrupt (a damaged chunk: nothing of the
// heap was changed yet; or an earlier lazy checkout's page that could not
// be loaded), or an errno value. From a remote also: not_a_heap (no chunk
// store there), already_exists (the heap's store has the ref named where
// the version does not descend from it), the remote's (timed_out, say),
// each before anything of the heap changes.
LARDER_EXPORT status checkout(heap& h, std::string_view version, const checkout_options& options,
                              checkout_stats* out);
LARDER_EXPORT status checkout(heap& h, std::string_view version, checkout_stats* out);
// Throwing convenience.
LARDER_EXPORT checkout_stats checkout(heap& h, std::string_view version, const checkout_options& options = {});

// Where a lazy checkout stands: pages still to load, and pages that could
// not be loaded (a damaged or missing chunk, a remote that stopped
// answering: they read as zeros, never as a signal). All zero when none
// is under way, but for the fetch counts.
struct lazy_checkout_state {
  std::size_t pages_pending = 0;
  std::size_t pages_failed = 0;
  std::string error;  // the first failure, when pages_failed != 0
  // The last lazy checkout from a remote in this process: chunks fetched
  // and their bytes as stored, from its start (checkout_stats' included),
  // kept once it finished until the next lazy checkout.
  std::uint64_t chunks_fetched = 0;
  std::uint64_t bytes_fetched = 0;
};
LARDER_EXPORT lazy_checkout_state lazy_checkout_progress(heap& h);
// Waits until a lazy checkout has loaded every page (one from a remote
// then publishes the version and its ref in the heap's store). Errors:
// corrupt when a page could not be loaded; the heap is then failed
// (transactions and checkpoints refuse with tx_aborted) until it is
// reopened; from a remote also the store's (already_exists: the ref moved
// meanwhile). Checkpoint, checkout, diff, stop_tracking and close wait the
// same way first.
LARDER_EXPORT status finish_checkout(heap& h);

// ---- versions outside an open heap ----------------------------------------

// Writes a new file heap at `new_path` holding exactly `version` of the
// store at `store_directory`: the version's pages (storage only for the
// non-zero ones), superblocks for its size with `reserve` bytes of address
// space (0: 64 GiB, or the version's size when larger), durable before
// this returns. The clone keeps the heap's uuid and base address, so it
// cannot be open in a process beside the heap it came from (address_taken):
// open it in another process (docs/versions.md, "Clones"). Its versions go
// to its own store, "<new_path>.versions". `out->pages_loaded`: the pages
// written. Errors: already_exists (new_path), not_found, invalid_argument
// (a reserve that does not fit), corrupt (a damaged chunk or manifest: no
// file is left at new_path), not_a_heap (not a store), or an errno value.
LARDER_EXPORT status clone_version(const std::string& store_directory, std::string_view version,
                                   const std::string& new_path, std::uint64_t reserve = 0,
                                   checkout_stats* out = nullptr);

// Opens `version` read-only straight from the store at `store_directory`
// (a version id, an unambiguous prefix of one, or a ref), without the
// heap: its pages are read into memory at the heap's base address, so it
// cannot be open beside the heap itself or a clone of it in one process
// (address_taken). Roots, pods and allocator queries work; allocation
// fails with EROFS and every change with read_only (docs/versions.md,
// "Reading a version"). Errors: not_found, not_a_heap (not a store),
// corrupt (a damaged chunk or manifest, or segments open refuses),
// address_taken, or an errno value.
LARDER_EXPORT status open_version(const std::string& store_directory, std::string_view version, heap* out);

// Writes `version` into the backing of the heap `name` without opening it
// as a heap: every page after the superblocks becomes the version's (zero
// where the version holds none), the heap's own superblocks stay, and HEAD
// follows as checkout() moves it. For a heap that does not open, such as
// one a crash left half way through a checkout (docs/versions.md,
// "Restoring a heap that does not open"); a crash in the middle of this is
// mended by running it again. No process may have the heap open.
// Errors: heap_busy, not_found, not_a_heap or corrupt (the superblocks:
// clone the version instead), invalid_argument (a version of another
// heap), corrupt (a damaged chunk: the heap may be part written), or an
// errno value.
LARDER_EXPORT status restore_version(backing kind, const std::string& name, std::string_view version,
                                     const std::string& store_directory, checkout_stats* out = nullptr);

// ---- versions beyond one store: push and pull ---------------------------------

// A REMOTE is a directory (another disk, a network share: a chunk store
// like any other, made one when it is absent or empty) or "rados:POOL[@CONF]"
// (a Ceph pool; CONF the cluster's ceph.conf), where larder was built with
// librados: through the module liblarder_rados.so, loaded on the first such
// remote and looked for as the GPU tier's is (docs/tiers.md).
struct transfer_options {
  bool all = false;    // every version and ref of the source, not one
  bool force = false;  // move refs that would not go forward (a branch elsewhere, a tag)
};

struct transfer_stats {
  std::size_t versions_sent = 0;         // versions the destination lacked
  std::size_t refs_set = 0;              // refs created or moved there
  std::uint64_t chunks_asked = 0;        // chunk names the destination was asked about
  std::uint64_t chunks_sent = 0;         // chunks it lacked, sent
  std::uint64_t chunk_bytes_sent = 0;    // their bytes as stored (zstd frames where that saved)
  std::uint64_t version_bytes_sent = 0;  // manifests and base tables
  std::uint64_t total_ns = 0;
};

// Copies `version` (a ref, an id or an unambiguous prefix; empty: HEAD)
// of the store at `store_directory` to `remote`, with the ref it names
// (HEAD's branch), sending only the chunks the remote lacks, asked in
// batches. Chunks are durable there before the manifest naming them, and
// that before the ref: killed at any instant, the remote still reads every
// version and ref it had, and running it again sends only what did not
// arrive. The version keeps its id, so `checkout` or `clone_version` on the
// other side names it as here. A branch there moves only forward (to a
// descendant of what it names) and a tag not at all, unless `force`.
// Errors: not_found (no such version), not_a_heap (the remote is not a
// chunk store), already_exists (a ref that would not go forward), corrupt
// (a damaged chunk or manifest on either side: named), unsupported (a Ceph
// remote in a build without it, or where its module does not load), or an
// errno value.
LARDER_EXPORT status push_versions(const std::string& store_directory, const std::string& remote,
                                   std::string_view version, const transfer_options& options, transfer_stats* out);
// The other way: `version` of `remote` (empty: every ref there and the
// versions they name) into the store at `store_directory`, made a store
// when it is absent or empty. Same guarantees and errors as push_versions.
LARDER_EXPORT status pull_versions(const std::string& remote, const std::string& store_directory,
                                   std::string_view version, const transfer_options& options, transfer_stats* out);

struct version_info {
  std::string id;
  std::string parent;  // "" for the first of a line
  std::uint64_t created_ns = 0;
  std::string message;
  std::string heap_uuid;
  std::uint64_t heap_size = 0;
  std::size_t pages = 0;       // non-zero pages
  // JSON at the cut: {"roots":[{name,offset,size}],"pods":[{id,name,bytes}],
  // "segments":[[first,count,pod]],"edges":[[from,to,pages]]} (the last
  // two absent from older versions; docs/versions.md).
  std::string roots_and_pods;
  std::vector<std::string> refs;  // refs naming it ("heads/main", "tags/v1")
  bool damaged = false;           // the manifest fails its check; `message` says why
};

struct store_problem {
  std::string file;  // relative to the store
  std::string what;
};
struct store_verify_report {
  std::vector<store_problem> problems;
  std::vector<std::string> affected_versions;  // ids of versions a problem touches
  std::uint64_t chunks_checked = 0, versions_checked = 0;
  bool clean() const noexcept { return problems.empty(); }
};
struct store_gc_report {
  std::uint64_t packs_removed = 0, packs_written = 0, chunks_copied = 0, chunks_dropped = 0;
  std::uint64_t bytes_freed = 0;
};
struct version_space {
  std::string id;
  std::uint64_t pages = 0;
  std::uint64_t unique_bytes = 0;     // stored only for this version
  std::uint64_t shared_bytes = 0;     // shared with other versions
  std::uint64_t freed_by_delete = 0;  // what gc would free after deleting only it
};
struct store_space {
  std::vector<version_space> versions;
  std::uint64_t packs = 0, chunks = 0, pack_bytes = 0;
};

// What differs between two versions, or a version and the live heap
// (docs/versions.md, "History"). Pages compare by chunk (fingerprint), so
// `bytes` is the differing pages' size, 4 KiB each.
struct area_difference {
  std::int64_t pod = -1;      // the pod whose pages these are; -1: heap metadata and undo-log lanes
  std::int64_t segment = -1;  // when the versions do not record which pod a segment held: the 4 MiB segment
  std::string name;           // the pod's name
  std::uint64_t pages = 0, bytes = 0;
  std::uint64_t bytes_in_use_before = 0, bytes_in_use_after = 0;  // the pod's, from each side's pod table
};
struct root_difference {
  std::string name;
  std::string change;  // "added", "removed", "moved" (another object or size) or "written" (its object's pages)
};
struct version_diff {
  std::string from, to;  // version ids; `to` is "" for the live heap
  std::vector<root_difference> roots;
  std::vector<area_difference> areas;  // pods (or segments) with differing pages, or whose pod-table entry differs
  std::uint64_t pages = 0, bytes = 0;
  std::size_t pages_fingerprinted = 0;  // live pages read (none between two versions)
};

// What differs between `version` and the heap as it is now. With a version
// current in this process (its last checkpoint or checkout) and the writes
// since known, only the pages written since are read and fingerprinted;
// else every used page. The heap may be open read-only. Preconditions: the
// calling thread is not in a transaction on `h`; other threads may run
// (the comparison is taken while no transaction runs). Errors as checkout's.
LARDER_EXPORT status diff(heap& h, std::string_view version, version_diff* out);

struct ref_info {
  std::string name;  // "heads/<n>" or "tags/<n>"
  std::string id;
};

// A chunk store opened on its own, for history and housekeeping. Any
// number may be open on one directory, in any number of processes, beside
// heaps checkpointing into it. One object is used by one thread at a time.
class LARDER_EXPORT version_store {
 public:
  version_store() noexcept;
  ~version_store();
  version_store(version_store&&) noexcept;
  version_store& operator=(version_store&&) noexcept;
  // not_a_heap when `directory` is not a chunk store; newer_format.
  static status open(const std::string& directory, version_store* out);

  // The versions from HEAD back along first parents; with `all`, every
  // version in the store, newest first.
  status log(bool all, std::vector<version_info>* out);
  // HEAD: "heads/<branch>", or a version id when detached.
  status head(std::string* out);
  // A full id for `name` (as checkout takes it).
  status resolve(std::string_view name, std::string* id);
  status verify(store_verify_report* out);
  // Reclaims chunks no version names (run it after deleting versions).
  status gc(store_gc_report* out);
  status du(store_space* out);

  // What differs between versions `from` and `to` (names as resolve takes
  // them), from their manifests alone: no page is read.
  status diff(std::string_view from, std::string_view to, version_diff* out);
  // Branches and tags. `ref` is "heads/<n>" or "tags/<n>", <n> of letters,
  // digits, '.', '_' and '-'. create_ref names `version` (HEAD when empty);
  // already_exists when the ref exists. delete_ref refuses (invalid_argument)
  // the branch HEAD is on; not_found when there is no such ref.
  status refs(std::vector<ref_info>* out);
  status create_ref(std::string_view ref, std::string_view version);
  status delete_ref(std::string_view ref);
  // Removes a version (gc then reclaims the chunks only it named); refused
  // (invalid_argument) while a ref or a detached HEAD names it, unless
  // `force`, which leaves such refs naming nothing. Children keep their
  // parent's id.
  status delete_version(std::string_view version, bool force);

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

}  // namespace larder
