// The chunk store: a directory of content-addressed 4 KiB chunks in pack
// files, versions (manifests) naming them, refs naming versions, and its
// housekeeping (gc, verify, du). Format: docs/format/chunks.md. Entry point:
// chunk_store::open.
//
// Thread-safety: one chunk_store object is used by one thread at a time.
// Any number of objects, in any number of processes, may use one directory
// at once: writers (put ... commit) hold the store lock shared, gc holds it
// exclusively, readers take no lock (packs and manifests never change once
// published, and an open pack stays readable after gc removes it).
#pragma once

#include "port/uring.hpp"
#include "tiers/chunks/fingerprint.hpp"
#include "tiers/chunks/format.hpp"
#include "tiers/chunks/manifest.hpp"

#include <larder/status.hpp>

#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

struct ZSTD_DCtx_s;


namespace larder::chunks {

class file_ops;
class pack_writer;

struct store_options {
  bool create = false;       // make the directory a store when it is not one yet
  bool use_uring = true;     // false: plain pread/pwrite (also the fallback)
  bool use_direct_io = true; // O_DIRECT pack writes where the file system takes them
  bool compress = true;      // zstd where it saves kMinCompressionSaving bytes
  // gc compacts a pack whose live bytes fall below this fraction of its records' bytes.
  double compact_below = 0.5;
  // A writer finishes its pack and starts another past this size.
  std::uint64_t pack_target_bytes = std::uint64_t{64} << 20;
  // Where every write, sync, rename and removal goes (file_ops.hpp);
  // nullptr: the real ones. Must outlive the store. Crash sweeps pass a
  // fault_file_ops.
  file_ops* files = nullptr;
};

struct store_info {
  bool uring = false;      // reads and writes go through io_uring
  bool direct_io = false;  // the last pack written was opened O_DIRECT
  std::uint64_t packs = 0, chunks = 0;
  std::uint64_t stored_bytes = 0;  // record bytes (headers and payloads) of all packs
  std::uint64_t pack_bytes = 0;    // file sizes of all packs
  std::uint64_t compressed_chunks = 0;
};

// A chunk as a store holds it, as it travels between stores: the payload
// is the page (raw) or its zstd frame, as in a pack record.
struct stored_chunk {
  fingerprint name;
  encoding how = encoding::raw;
  std::string payload;
};

struct version_summary {
  version_id id;
  bool has_parent = false;
  version_id parent;
  std::uint64_t created_ns = 0;
  std::uint64_t page_count = 0;
  std::string message;
  bool damaged = false;  // the manifest fails its id check or does not parse (message says why)
};

struct ref_entry {
  std::string name;  // "heads/<branch>" or "tags/<tag>"
  version_id id;
};

// HEAD: a branch (which may not exist yet) or a detached version.
struct head_state {
  bool detached = false;
  std::string branch;  // "heads/<name>" unless detached
  version_id id;       // the version, when detached or the branch exists
  bool has_version = false;
};

struct gc_report {
  std::uint64_t packs_removed = 0;    // dead or compacted packs deleted
  std::uint64_t packs_written = 0;    // new packs holding copied live chunks
  std::uint64_t chunks_copied = 0;
  std::uint64_t chunks_dropped = 0;
  std::uint64_t bytes_freed = 0;      // pack file bytes removed minus written
  std::uint64_t temporaries_removed = 0;
};

struct verify_problem {
  std::string file;  // relative to the store
  std::string what;
  bool has_chunk = false;
  fingerprint chunk;
};

struct verify_report {
  std::vector<verify_problem> problems;
  std::vector<version_id> affected_versions;  // name a damaged or missing chunk, or are damaged
  std::uint64_t chunks_checked = 0, versions_checked = 0, temporaries = 0;
  bool clean() const { return problems.empty(); }
};

struct version_usage {
  version_id id;
  std::uint64_t pages = 0;          // non-zero pages
  std::uint64_t unique_bytes = 0;   // stored bytes of chunks no other version names
  std::uint64_t shared_bytes = 0;   // stored bytes of chunks other versions name too
  std::uint64_t freed_by_delete = 0;  // pack bytes gc would free after deleting only this version
};

class chunk_store {
 public:
  // Opens (or with options.create, creates) the store at `directory`:
  // loads every pack's index, rebuilding a missing or damaged one from its
  // pack. not_a_heap when the directory is not a store; newer_format.
  static status open(const std::string& directory, const store_options& options, std::unique_ptr<chunk_store>* out);
  ~chunk_store();
  chunk_store(const chunk_store&) = delete;
  chunk_store& operator=(const chunk_store&) = delete;

  // ---- chunks ------------------------------------------------------------
  // Stores `count` pages (kPageSize bytes each, contiguous) and names them
  // in `names`. Zero pages and chunks the store holds already are not
  // written again. Takes the store lock shared until commit() or release():
  // until then gc cannot remove what these pages deduplicate against. Not
  // durable before commit() or flush().
  status put(const void* pages, std::size_t count, fingerprint* names);
  // Finishes the pack being written: durable once this returns OK.
  status flush();
  // Reads one chunk into `page`; corrupt (naming chunk and pack) when its
  // record fails verification, not_found when the store has no such chunk.
  status get(const fingerprint& name, void* page);
  // Reads `count` chunks into consecutive pages, sorted by pack and
  // offset and read with many requests in flight.
  status get_batch(const fingerprint* names, std::size_t count, void* pages);

  // ---- versions -----------------------------------------------------------
  // Makes every chunk put so far durable, then commits the manifest `v`
  // (its created_ns filled in when 0). Every chunk `v` names must be in the
  // store (not_found otherwise). Durable once this returns OK; releases the
  // store lock. When `v`'s parent is the version this object committed
  // last, the manifest lists only the pages that differ from the base
  // table that one was on, until they grow past an eighth of it;
  // otherwise `v`'s pages become a new base table (tables/).
  status commit(const version_record& v, version_id* id);
  // Lets go of the store lock without committing (chunks put stay, as
  // garbage for gc unless a later version names them).
  status release();
  // corrupt when the manifest's bytes, or those of the base table it is
  // on, do not match their ids, or that table is missing. out->pages is
  // the version's whole table either way.
  status read_version(const version_id& id, version_record* out);
  // The bytes of the manifest `id` and of its base table (*table empty
  // when it is on none), each checked against its id: what another store
  // needs to hold the same version under the same id. not_found; corrupt.
  status read_version_files(const version_id& id, std::string* manifest, std::string* table);
  status list_versions(std::vector<version_summary>* out);
  // Removes the version; refuses (invalid_argument) while a ref or HEAD
  // names it unless `force`. Its chunks are reclaimed by gc.
  status delete_version(const version_id& id, bool force);

  // ---- refs ---------------------------------------------------------------
  // `name` is "heads/<n>" or "tags/<n>", <n> of letters, digits, '.', '_',
  // '-' (not starting with '.'). Each update is atomic and durable. With
  // `expected`, the update happens only if the ref names that version now
  // (already_exists otherwise): a branch advanced by two writers at once.
  // An all-zero `expected`: only while no such ref exists.
  status set_ref(const std::string& name, const version_id& id, const version_id* expected = nullptr);
  status get_ref(const std::string& name, version_id* id);
  status delete_ref(const std::string& name);
  status list_refs(std::vector<ref_entry>* out);
  status set_head(const std::string& branch);  // "heads/<n>"
  status set_head_detached(const version_id& id);
  status get_head(head_state* out);

  // ---- exchange with another store (exchange.cpp) ---------------------------
  // present[i]: whether the store holds names[i] (the zero page always).
  // Takes the store lock shared, as put does, so what it reports stays in
  // the store until import_version() or release().
  status contains(const fingerprint* names, std::size_t count, std::vector<bool>* present);
  // The chunks `names` as stored, each verified first (corrupt, naming the
  // chunk and its pack; not_found).
  status get_stored(const fingerprint* names, std::size_t count, std::vector<stored_chunk>* out);
  // Adds chunks as received, each checked against its name first (corrupt:
  // nothing of it is stored); ones the store holds are skipped. Takes the
  // store lock as put does; durable after flush(), import_version() or
  // release().
  status put_stored(const stored_chunk* chunks, std::size_t count);
  // Publishes a version under the same id as in the store it came from:
  // its base table (`table`; empty when it is on none, or when this store
  // holds it) first, then the manifest, both verbatim, once every chunk it
  // names is in the store and durable (not_found otherwise). corrupt when
  // the bytes fail their checks. Durable once this returns OK; releases
  // the store lock.
  status import_version(std::string_view manifest, std::string_view table, version_id* id);
  // Whether tables/<id> is here.
  bool holds_table(const fingerprint& id) const;

  // ---- housekeeping --------------------------------------------------------
  status gc(gc_report* report);
  status verify(verify_report* report);
  status du(std::vector<version_usage>* out);
  store_info info() const;
  // Chunks this object's put() stored (not found in the store) and the
  // record bytes they took, since it was opened: cheap, unlike info().
  std::uint64_t chunks_put() const noexcept { return chunks_put_; }
  std::uint64_t bytes_put() const noexcept { return bytes_put_; }

 private:
  struct pack_state {
    std::uint64_t id = 0;
    int fd = -1;                      // open for reading once published
    std::uint64_t size = 0;
    bool removed = false;             // gone from the directory
    std::string damage;               // why the pack or its index could not be read whole
    std::vector<index_entry> entries;
  };
  // This object's last commit: the version, its pages and its base table.
  struct last_commit {
    bool known = false;
    version_id version;
    std::vector<page_entry> pages;
    fingerprint table;
    std::vector<page_entry> table_pages;
  };
  struct location {
    std::uint32_t pack;  // index in packs_
    std::uint32_t stored_size;
    std::uint64_t offset;
  };
  struct wanted_record {
    location where;
    std::size_t index;  // in the caller's names
  };
  // The requests of one round of a batch read: request i ends with
  // record `last` of the sorted batch.
  struct read_span {
    std::size_t last;
  };
  // A batch read holds up to kReadRoundBytes of records in memory at once,
  // reads records at most kMaxReadGap bytes apart in one request (the gap
  // read through), and makes no request longer than kMaxReadSpan: several
  // requests per round keep the disk busy, as larger rounds or requests,
  // decoded while the disk waits, did not (measured with
  // chunk_store_bench).
  static constexpr std::size_t kReadRoundBytes = std::size_t{2} << 20;
  static constexpr std::size_t kMaxReadGap = 16 << 10;
  static constexpr std::size_t kMaxReadSpan = std::size_t{128} << 10;
  chunk_store() = default;
  status refresh(bool drop_removed);
  status load_pack(std::uint64_t pack_id);
  status ensure_writer();
  status note_added(status added, const fingerprint& name, const index_entry& e);
  status ensure_locked();
  // Into `pages` (consecutive), or with `stored` into stored[i] as stored.
  status read_records(const fingerprint* names, std::size_t count, char* pages, stored_chunk* stored,
                      bool refresh_on_miss);
  std::size_t plan_reads(const std::vector<wanted_record>& reads, std::size_t first);
  status read_all_versions(std::vector<std::pair<version_id, version_record>>* out, verify_report* damage);
  status read_named(const std::string& name, const fingerprint& id, std::string* bytes);
  status publish_table(const std::string& bytes, const fingerprint& id);
  bool follows_last(const version_record& v) const;
  bool exists(const std::string& path) const;
  status remove_unused_tables(const std::vector<std::pair<version_id, version_record>>& versions);
  status remove_temporaries(std::uint64_t* removed);
  status remove_temporaries_in(const std::string& dir, std::uint64_t* removed);
  status remove_ref_temporaries(std::uint64_t* removed);
  using chunk_set = std::unordered_set<fingerprint, fingerprint_hash>;
  // Drops a pack from the index. The chunks it was the index's copy of go
  // into *unindexed for index_other_copies (one pass for many packs), or,
  // with none given, are looked for in the other packs at once.
  void forget_pack(std::uint32_t slot, chunk_set* unindexed = nullptr);
  void index_other_copies(chunk_set* unindexed);
  bool canonical(std::uint32_t slot, const index_entry& e) const;
  status update_ref_file(const std::string& name, const std::string* content, const version_id* expected);
  std::string pack_path(std::uint64_t pack_id) const;

  std::string root_, packs_dir_, versions_dir_, tables_dir_, refs_dir_;
  store_options options_;
  file_ops* files_ = nullptr;  // options_.files or the real ones
  std::unique_ptr<port::io_queue> io_;
  ZSTD_DCtx_s* zstd_ = nullptr;
  int lock_fd_ = -1;
  bool locked_ = false;
  bool last_direct_ = false;
  std::vector<pack_state> packs_;
  std::unordered_map<fingerprint, location, fingerprint_hash> index_;
  std::uint64_t chunks_put_ = 0;
  std::uint64_t bytes_put_ = 0;
  std::unique_ptr<pack_writer> writer_;
  // Batch reads' working memory, kept from one read to the next.
  std::vector<wanted_record> reads_;
  std::vector<port::io_request> read_requests_;
  std::vector<read_span> read_spans_;
  std::unique_ptr<char[]> read_buffer_;  // kReadRoundBytes
  std::uint32_t writer_slot_ = 0;  // packs_ slot of the pack being written
  last_commit last_;
};

}  // namespace larder::chunks
