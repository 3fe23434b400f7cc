// Chunks read from a local store, those it lacks fetched from a remote one
// (remote_store.hpp) and added to the local store as they arrive: what a
// checkout straight from a remote reads through (docs/versions.md,
// "Checking out from a remote"). Entry points: fetch (into the local
// store only), get_batch (into pages as well).
#pragma once

#include "tiers/chunks/remote_store.hpp"

#include <larder/status.hpp>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

struct ZSTD_DCtx_s;

namespace larder::chunks {

// Thread-safety: calls are serialized (a remote_store and a chunk_store
// are each used by one thread at a time); the counters may be read from
// any thread. Fetched chunks take the local store's lock as put does and
// are garbage there until a version names them (import_version), durable
// at the latest when that version is imported or the store is released.
class fetching_reader {
 public:
  // `local` and `remote` must outlive the reader.
  fetching_reader(chunk_store& local, remote_store& remote);
  ~fetching_reader();
  fetching_reader(const fetching_reader&) = delete;
  fetching_reader& operator=(const fetching_reader&) = delete;

  // Adds to the local store those of names[0, count) it lacks, fetched from
  // the remote in batches of kFetchBatch (one round trip each). Errors: the
  // remote's (not_found, corrupt naming the chunk and the remote, timed_out,
  // an errno value) or the local store's.
  status fetch(const fingerprint* names, std::size_t count);
  // Reads `count` chunks into consecutive pages (kPageSize each): those
  // the local store lacks are fetched first (one round trip up to
  // kFetchBatch of them), added to it and decoded from what arrived; the
  // rest are read from it. Errors as fetch's.
  status get_batch(const fingerprint* names, std::size_t count, void* pages);

  // Chunks fetched from the remote so far, and their bytes as stored (zstd
  // frames where that saved).
  std::uint64_t chunks_fetched() const noexcept { return chunks_fetched_.load(std::memory_order_relaxed); }
  std::uint64_t bytes_fetched() const noexcept { return bytes_fetched_.load(std::memory_order_relaxed); }

  // 1 MiB of raw pages a round trip, as a push sends them.
  static constexpr std::size_t kFetchBatch = 256;
  // The chunks fetched are made durable in the local store every this many
  // bytes, so that a checkout cut short leaves most of what it fetched for
  // the next one (a push syncs as often).
  static constexpr std::uint64_t kSyncEvery = std::uint64_t{16} << 20;

 private:
  // The distinct names of names[0, count) the local store lacks.
  status lacking(const fingerprint* names, std::size_t count, std::vector<fingerprint>* out);
  // Fetches `missing` (distinct, lacking) in batches into the local store.
  status fetch_missing(const std::vector<fingerprint>& missing);

  chunk_store& local_;
  remote_store& remote_;
  std::mutex lock_;
  ZSTD_DCtx_s* zstd_;
  // Fetched since the local store last made them durable (up to
  // kSyncEvery bytes): still in its pack being written, which it would
  // finish to read one, so they are decoded from here (a chunk two pages
  // name, say).
  std::unordered_map<fingerprint, stored_chunk, fingerprint_hash> unsynced_;
  std::uint64_t unsynced_bytes_ = 0;
  std::atomic<std::uint64_t> chunks_fetched_{0}, bytes_fetched_{0};
};

}  // namespace larder::chunks
