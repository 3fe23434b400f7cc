// Housekeeping of a chunk store: gc (dead chunks reclaimed, sparse packs
// compacted), verify (every chunk, index and manifest checked, damage
// traced to the versions it affects) and du (space per version).
#include "tiers/chunks/chunk_store.hpp"

#include "tiers/chunks/file_ops.hpp"
#include "port/directory.hpp"
#include "port/os.hpp"
#include "tiers/chunks/files.hpp"
#include "tiers/chunks/pack_reader.hpp"
#include "tiers/chunks/pack_writer.hpp"

#include <algorithm>
#include <cstring>
#include <cerrno>
#include <set>
#include <unordered_set>

namespace larder::chunks {
namespace {

using chunk_counts = std::unordered_map<fingerprint, std::uint32_t, fingerprint_hash>;

std::uint64_t record_bytes(const index_entry& e) { return sizeof(record_header) + e.stored_size; }

// How many versions name each chunk (a version counts once per chunk).
// A base table keeps no chunk alive: a version names every page of its
// own, whatever table it is written on.
chunk_counts count_names(const std::vector<std::pair<version_id, version_record>>& versions) {
  chunk_counts counts;
  for (const auto& [id, v] : versions) {
    std::unordered_set<fingerprint, fingerprint_hash> seen;
    for (const page_entry& e : v.pages) {
      if (seen.insert(e.chunk).second) ++counts[e.chunk];
    }
  }
  return counts;
}

// The names in `directory`; none when it does not exist (a 1.0 store has
// no tables/ until a 1.1 writer commits).
status list_if_there(const std::string& directory, std::vector<std::string>* out) {
  status s = list_directory(directory, out);
  if (s.code() == ENOENT) {
    out->clear();
    return {};
  }
  return s;
}

}  // namespace

// Removes the base tables no manifest in `versions` (every one) is on.
status chunk_store::remove_unused_tables(const std::vector<std::pair<version_id, version_record>>& versions) {
  std::set<std::string> used;
  for (const auto& [id, v] : versions)
    if (v.has_table) used.insert(v.table.hex());
  std::vector<std::string> names;
  if (status s = list_if_there(tables_dir_, &names); !s.ok()) return s;
  bool removed = false;
  for (const std::string& name : names) {
    fingerprint id;
    if (!fingerprint::parse(name, &id) || used.contains(name)) continue;
    std::string path = tables_dir_ + "/" + name;
    if (int err = files_->remove(path.c_str()); err != 0 && err != ENOENT) return status::from_errno(err, "removing " + path);
    removed = true;
  }
  if (!removed) return {};
  int err = files_->sync_directory(tables_dir_.c_str());
  return err == 0 ? status{} : status::from_errno(err, "syncing " + tables_dir_);
}

// Every manifest, fully decoded. A damaged one is an error, or, with
// `damage`, a problem recorded there and skipped.
status chunk_store::read_all_versions(std::vector<std::pair<version_id, version_record>>* out, verify_report* damage) {
  out->clear();
  std::vector<std::string> names;
  if (status s = list_directory(versions_dir_, &names); !s.ok()) return s;
  for (const std::string& name : names) {
    version_id id;
    if (!fingerprint::parse(name, &id)) continue;
    version_record v;
    status s = read_version(id, &v);
    if (s.is(errc::not_found)) continue;  // deleted since listed
    if (!s.ok()) {
      if (damage == nullptr) return s;
      damage->problems.push_back(verify_problem{"versions/" + name, s.to_string(), false, {}});
      damage->affected_versions.push_back(id);
      continue;
    }
    out->emplace_back(id, std::move(v));
  }
  return {};
}

status chunk_store::remove_temporaries_in(const std::string& dir, std::uint64_t* removed) {
  std::vector<std::string> names;
  if (status s = list_if_there(dir, &names); !s.ok()) return s;
  for (const std::string& name : names) {
    if (!is_temporary(name)) continue;
    std::string path = dir + "/" + name;
    if (int err = files_->remove(path.c_str()); err != 0 && err != ENOENT) {
      return status::from_errno(err, "removing " + path);
    }
    ++*removed;
  }
  return {};
}

status chunk_store::remove_temporaries(std::uint64_t* removed) {
  for (const std::string& dir : {packs_dir_, versions_dir_, tables_dir_}) {
    if (status s = remove_temporaries_in(dir, removed); !s.ok()) return s;
  }
  return remove_ref_temporaries(removed);
}

status chunk_store::gc(gc_report* report) {
  *report = gc_report{};
  if (locked_ || writer_) return status(errc::invalid_argument, "chunks put are not committed: commit() or release() first");
  // Exclusive: no writer is between put and commit, so every chunk a
  // future manifest names is either named by a manifest now or not yet
  // deduplicated against anything gc sees.
  if (int err = port::lock_file(lock_fd_, true, true)) return status::from_errno(err, "locking " + root_);
  locked_ = true;
  status s = [&]() -> status {
    if (status t = remove_temporaries(&report->temporaries_removed); !t.ok()) return t;
    if (status t = refresh(true); !t.ok()) return t;
    std::vector<std::pair<version_id, version_record>> versions;
    if (status t = read_all_versions(&versions, nullptr); !t.ok()) {
      return status(static_cast<errc>(t.code()),
                    t.message() + " (gc cannot tell what it names: delete the version or restore the file)");
    }
    if (status t = remove_unused_tables(versions); !t.ok()) return t;
    chunk_counts live = count_names(versions);
    std::vector<std::uint32_t> doomed;
    std::uint64_t written = 0, removed = 0;
    std::vector<char> page(kPageSize);
    std::uint32_t existing = static_cast<std::uint32_t>(packs_.size());
    for (std::uint32_t slot = 0; slot < existing; ++slot) {
      if (packs_[slot].removed || !packs_[slot].damage.empty()) continue;  // verify reports damaged packs
      std::uint64_t total = 0, kept = 0;
      for (const index_entry& e : packs_[slot].entries) {
        total += record_bytes(e);
        if (canonical(slot, e) && live.contains(fingerprint::from(e.fingerprint))) kept += record_bytes(e);
      }
      if (kept == total || static_cast<double>(kept) >= options_.compact_below * static_cast<double>(total)) continue;
      for (const index_entry& e : packs_[slot].entries) {
        fingerprint name = fingerprint::from(e.fingerprint);
        if (!canonical(slot, e) || !live.contains(name)) {
          ++report->chunks_dropped;
          continue;
        }
        if (status t = read_records(&name, 1, page.data(), nullptr, false); !t.ok()) return t;
        if (status t = ensure_writer(); !t.ok()) return t;
        index_entry moved;
        if (status t = writer_->add(name, page.data(), &moved); !t.ok()) return t;
        index_[name] = location{writer_slot_, moved.stored_size, moved.offset};
        ++report->chunks_copied;
        if (writer_->size() >= options_.pack_target_bytes) {
          ++report->packs_written;
          if (status t = flush(); !t.ok()) return t;
          written += packs_[writer_slot_].size;
        }
      }
      doomed.push_back(slot);
    }
    if (writer_) {
      ++report->packs_written;
      if (status t = flush(); !t.ok()) return t;
      written += packs_[writer_slot_].size;
    }
    // The copies are durable and published: only now do the old packs go.
    chunk_set unindexed;
    status removing;
    for (std::uint32_t slot : doomed) {
      std::string index = packs_dir_ + "/" + index_name(packs_[slot].id), pack = pack_path(packs_[slot].id);
      if (int err = files_->remove(index.c_str()); err != 0 && err != ENOENT) {
        removing = status::from_errno(err, "removing " + index);
        break;
      }
      if (int err = files_->remove(pack.c_str()); err != 0 && err != ENOENT) {
        removing = status::from_errno(err, "removing " + pack);
        break;
      }
      removed += packs_[slot].size;
      ++report->packs_removed;
      forget_pack(slot, &unindexed);
    }
    index_other_copies(&unindexed);
    if (!removing.ok()) return removing;
    report->bytes_freed = removed > written ? removed - written : 0;
    int err = files_->sync_directory(packs_dir_.c_str());
    return err == 0 ? status{} : status::from_errno(err, "syncing " + packs_dir_);
  }();
  if (writer_) {
    forget_pack(writer_slot_);
    writer_.reset();
  }
  status r = release();
  return s.ok() ? r : s;
}

status chunk_store::verify(verify_report* report) {
  *report = verify_report{};
  if (status s = refresh(true); !s.ok()) return s;
  std::vector<std::string> names;
  for (const std::string& dir : {packs_dir_, versions_dir_, tables_dir_}) {
    if (status s = list_if_there(dir, &names); !s.ok()) return s;
    for (const std::string& n : names) report->temporaries += is_temporary(n);
  }
  // (pack slot, offset) of every record that reads back whole and right.
  std::set<std::pair<std::uint32_t, std::uint64_t>> good;
  std::vector<char> page(kPageSize);
  std::string bytes;
  for (std::uint32_t slot = 0; slot < packs_.size(); ++slot) {
    const pack_state& p = packs_[slot];
    if (p.removed || (writer_ && slot == writer_slot_)) continue;
    std::string file = "packs/" + pack_name(p.id);
    std::vector<index_entry> scanned, indexed;
    status s = scan_pack(p.fd, p.id, pack_path(p.id), &scanned, &bytes);
    if (!s.ok()) report->problems.push_back(verify_problem{file, s.to_string(), false, {}});
    for (const index_entry& e : scanned) {
      fingerprint name = fingerprint::from(e.fingerprint);
      ++report->chunks_checked;
      const char* why = decode_record(bytes.data() + e.offset, bytes.size() - e.offset, name, zstd_, page.data());
      if (why != nullptr) {
        report->problems.push_back(verify_problem{file, std::string("chunk ") + name.hex() + ": " + why, true, name});
      } else {
        good.emplace(slot, e.offset);
      }
    }
    std::uint64_t indexed_size = 0;
    std::string index_file = "packs/" + index_name(p.id);
    s = load_index(packs_dir_, p.id, &indexed, &indexed_size);
    if (!s.ok()) {
      report->problems.push_back(verify_problem{index_file, s.to_string(), false, {}});
      continue;
    }
    auto by_offset = [](const index_entry& a, const index_entry& b) { return a.offset < b.offset; };
    std::sort(indexed.begin(), indexed.end(), by_offset);
    bool same = indexed_size == bytes.size() && indexed.size() == scanned.size();
    for (std::size_t i = 0; same && i < indexed.size(); ++i) {
      same = std::memcmp(&indexed[i], &scanned[i], sizeof(index_entry)) == 0;
    }
    if (!same) report->problems.push_back(verify_problem{index_file, "does not match its pack", false, {}});
  }
  std::vector<std::pair<version_id, version_record>> versions;
  if (status s = read_all_versions(&versions, report); !s.ok()) return s;
  report->versions_checked = versions.size() + report->affected_versions.size();
  std::unordered_set<fingerprint, fingerprint_hash> reported;
  for (const auto& [id, v] : versions) {
    bool affected = false;
    for (const page_entry& e : v.pages) {
      auto it = index_.find(e.chunk);
      bool whole = it != index_.end() && good.contains({it->second.pack, it->second.offset});
      if (whole) continue;
      affected = true;
      if (reported.insert(e.chunk).second) {
        std::string where = it == index_.end() ? std::string("missing from every pack")
                                               : "unreadable in pack " + pack_name(packs_[it->second.pack].id);
        report->problems.push_back(verify_problem{"versions/" + id.hex(), "chunk " + e.chunk.hex() + " " + where, true, e.chunk});
      }
    }
    if (affected) report->affected_versions.push_back(id);
  }
  std::sort(report->affected_versions.begin(), report->affected_versions.end());
  return {};
}

status chunk_store::du(std::vector<version_usage>* out) {
  out->clear();
  if (status s = refresh(false); !s.ok()) return s;
  std::vector<std::pair<version_id, version_record>> versions;
  if (status s = read_all_versions(&versions, nullptr); !s.ok()) return s;
  chunk_counts counts = count_names(versions);
  // What gc frees of a pack whose live record bytes are `live`: all of
  // it, or what compaction into a pack of its own saves.
  auto freed = [&](const pack_state& p, std::uint64_t total, std::uint64_t live) -> std::uint64_t {
    if (live == 0) return p.size;
    if (static_cast<double>(live) >= options_.compact_below * static_cast<double>(total)) return 0;
    return p.size - std::min(p.size, pack_size_for(live));
  };
  std::vector<std::uint64_t> total(packs_.size()), live(packs_.size());
  for (std::uint32_t slot = 0; slot < packs_.size(); ++slot) {
    for (const index_entry& e : packs_[slot].entries) {
      total[slot] += record_bytes(e);
      if (canonical(slot, e) && counts.contains(fingerprint::from(e.fingerprint))) live[slot] += record_bytes(e);
    }
  }
  for (const auto& [id, v] : versions) {
    version_usage u;
    u.id = id;
    u.pages = v.pages.size();
    std::unordered_map<std::uint32_t, std::uint64_t> unique_per_pack;
    std::unordered_set<fingerprint, fingerprint_hash> seen;
    for (const page_entry& e : v.pages) {
      auto it = index_.find(e.chunk);
      if (!seen.insert(e.chunk).second || it == index_.end()) continue;
      std::uint64_t bytes = sizeof(record_header) + it->second.stored_size;
      if (counts[e.chunk] == 1) {
        u.unique_bytes += bytes;
        unique_per_pack[it->second.pack] += bytes;
      } else {
        u.shared_bytes += bytes;
      }
    }
    for (const auto& [slot, bytes] : unique_per_pack) {
      const pack_state& p = packs_[slot];
      u.freed_by_delete += freed(p, total[slot], live[slot] - bytes) - freed(p, total[slot], live[slot]);
    }
    out->push_back(u);
  }
  return {};
}

}  // namespace larder::chunks
