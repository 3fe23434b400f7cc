// Chunks read through a local store from a remote one (fetching_reader.hpp).
#include "tiers/chunks/fetching_reader.hpp"

#include "tiers/chunks/pack_reader.hpp"

#include <zstd.h>

#include <algorithm>
#include <cstring>

namespace larder::chunks {

fetching_reader::fetching_reader(chunk_store& local, remote_store& remote)
    : local_(local), remote_(remote), zstd_(ZSTD_createDCtx()) {}

fetching_reader::~fetching_reader() { ZSTD_freeDCtx(zstd_); }

status fetching_reader::lacking(const fingerprint* names, std::size_t count, std::vector<fingerprint>* out) {
  out->clear();
  std::vector<bool> present;
  if (status s = local_.contains(names, count, &present); !s.ok()) return s;
  for (std::size_t i = 0; i < count; ++i)
    if (!present[i]) out->push_back(names[i]);
  std::sort(out->begin(), out->end());
  out->erase(std::unique(out->begin(), out->end()), out->end());
  return {};
}

status fetching_reader::fetch_missing(const std::vector<fingerprint>& missing) {
  std::vector<stored_chunk> batch;
  for (std::size_t first = 0; first < missing.size(); first += kFetchBatch) {
    const std::size_t count = std::min(kFetchBatch, missing.size() - first);
    if (status s = remote_.get_chunks(missing.data() + first, count, &batch); !s.ok()) return s;
    if (status s = local_.put_stored(batch.data(), batch.size()); !s.ok()) return s;
    std::uint64_t bytes = 0;
    for (stored_chunk& c : batch) {
      bytes += c.payload.size();
      unsynced_.emplace(c.name, std::move(c));
    }
    chunks_fetched_.fetch_add(batch.size(), std::memory_order_relaxed);
    bytes_fetched_.fetch_add(bytes, std::memory_order_relaxed);
    if ((unsynced_bytes_ += bytes) >= kSyncEvery) {
      unsynced_.clear();
      unsynced_bytes_ = 0;
      if (status s = local_.flush(); !s.ok()) return s;
    }
  }
  return {};
}

status fetching_reader::fetch(const fingerprint* names, std::size_t count) {
  std::lock_guard guard(lock_);
  std::vector<fingerprint> missing;
  if (status s = lacking(names, count, &missing); !s.ok()) return s;
  return fetch_missing(missing);
}

status fetching_reader::get_batch(const fingerprint* names, std::size_t count, void* pages) {
  std::lock_guard guard(lock_);
  std::vector<fingerprint> missing;
  if (status s = lacking(names, count, &missing); !s.ok()) return s;
  if (status s = fetch_missing(missing); !s.ok()) return s;
  std::vector<fingerprint> held;
  std::vector<std::size_t> held_at;
  char* out = static_cast<char*>(pages);
  for (std::size_t i = 0; i < count; ++i) {
    auto it = unsynced_.find(names[i]);
    if (it == unsynced_.end()) {
      held.push_back(names[i]);
      held_at.push_back(i);
      continue;
    }
    const stored_chunk& c = it->second;
    if (const char* why = check_payload(c.name, c.how, c.payload, zstd_, out + i * kPageSize))
      return status(errc::corrupt, remote_.where() + ": chunk " + c.name.hex() + ": " + why);
  }
  if (held.empty()) return {};
  std::vector<char> read(held.size() * kPageSize);
  if (status s = local_.get_batch(held.data(), held.size(), read.data()); !s.ok()) return s;
  for (std::size_t k = 0; k < held.size(); ++k)
    std::memcpy(out + held_at[k] * kPageSize, read.data() + k * kPageSize, kPageSize);
  return {};
}

}  // namespace larder::chunks
