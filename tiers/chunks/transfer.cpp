// Push and pull between two chunk stores (transfer.hpp).
#include "tiers/chunks/transfer.hpp"

#include <algorithm>
#include <unordered_set>

namespace larder::chunks {
namespace {

// Names asked about in one round trip, and chunks sent in one: 1 MiB of
// raw pages, a pack write's worth.
constexpr std::size_t kAskBatch = 4096;
constexpr std::size_t kSendBatch = 256;
// Chunks sent are made durable every this many payload bytes, so that a
// transfer cut short leaves most of what it sent for the next run.
constexpr std::uint64_t kSyncEvery = std::uint64_t{16} << 20;

bool is_hex(std::string_view text) {
  unsigned digit;
  return std::all_of(text.begin(), text.end(), [&](char c) { return hex_digit(c, &digit); });
}

status read_record(remote_store& store, const version_id& id, bool header_only, version_record* out,
                   std::string* manifest = nullptr, std::string* table = nullptr) {
  std::string m, t;
  manifest = manifest != nullptr ? manifest : &m;
  table = table != nullptr ? table : &t;
  if (status s = store.get_version(id, manifest, table); !s.ok()) return s;
  const std::string what = store.where() + ": versions/" + id.hex();
  return header_only ? decode_manifest(*manifest, what, true, out) : decode_version(*manifest, *table, what, out);
}

// Whether `ancestor` is `id` or one of its parents in `store`.
bool descends(remote_store& store, version_id id, const version_id& ancestor) {
  for (;;) {
    if (id == ancestor) return true;
    version_record v;
    if (!read_record(store, id, true, &v).ok() || !v.has_parent) return false;
    id = v.parent;
  }
}

status resolve_name(remote_store& from, std::string_view what, const std::vector<ref_entry>& refs,
                    transfer_plan* out) {
  const std::string text(what);
  std::vector<std::string> candidates;
  if (text.starts_with("heads/") || text.starts_with("tags/")) {
    candidates.push_back(text);
  } else {
    candidates = {"heads/" + text, "tags/" + text};
  }
  for (const std::string& name : candidates) {
    auto it = std::find_if(refs.begin(), refs.end(), [&](const ref_entry& r) { return r.name == name; });
    if (it == refs.end()) continue;
    out->refs.push_back(*it);
    out->versions.push_back(it->id);
    return {};
  }
  if (text.size() < 4 || !is_hex(text)) {
    return status(errc::not_found, "no version, branch or tag \"" + text + "\" in " + from.where() +
                                       " (a version prefix has 4 hex digits or more)");
  }
  std::vector<version_id> all;
  if (status s = from.list_versions(&all); !s.ok()) return s;
  int found = 0;
  for (const version_id& id : all) {
    if (!id.hex().starts_with(text)) continue;
    if (++found == 1) out->versions.push_back(id);
  }
  if (found == 0) return status(errc::not_found, "no version starts with " + text + " in " + from.where());
  if (found > 1) return status(errc::invalid_argument, "\"" + text + "\" is a prefix of " + std::to_string(found) + " versions");
  return {};
}

// One version's copy: the chunks `to` lacks, then its manifest.
class version_copy {
 public:
  version_copy(remote_store& from, remote_store& to, transfer_stats* stats) : from_(from), to_(to), stats_(stats) {}

  // `parent_pages`: the pages of v's parent when `to` holds it, else null.
  status run(const version_id& id, const std::vector<page_entry>* parent_pages, std::vector<page_entry>* pages) {
    std::string manifest, table;
    version_record v;
    if (status s = read_record(from_, id, false, &v, &manifest, &table); !s.ok()) return s;
    std::vector<fingerprint> names = candidates(v.pages, parent_pages);
    if (status s = send_missing(names); !s.ok()) return s;
    if (status s = to_.sync_chunks(); !s.ok()) return s;
    if (v.has_table) {
      bool held = false;
      if (status s = to_.has_table(v.table, &held); !s.ok()) return s;
      if (held) table.clear();
    }
    version_id got;
    if (status s = to_.put_version(manifest, table, &got); !s.ok()) return s;
    if (got != id) return status(errc::corrupt, from_.where() + ": versions/" + id.hex() + ": its bytes do not match its id");
    ++stats_->versions_sent;
    stats_->version_bytes_sent += manifest.size() + table.size();
    *pages = std::move(v.pages);
    return {};
  }

 private:
  // The chunks `to` may lack: those of pages that differ from the parent's
  // when it holds the parent (a version in a store has all its chunks).
  static std::vector<fingerprint> candidates(const std::vector<page_entry>& pages,
                                             const std::vector<page_entry>* parent_pages) {
    std::vector<fingerprint> names;
    for (const page_entry& e : parent_pages != nullptr ? table_changes(*parent_pages, pages) : pages) {
      if (e.chunk != zero_page()) names.push_back(e.chunk);
    }
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    return names;
  }

  status send_missing(const std::vector<fingerprint>& names) {
    std::vector<bool> present;
    std::vector<fingerprint> missing;
    for (std::size_t first = 0; first < names.size(); first += kAskBatch) {
      const std::size_t count = std::min(kAskBatch, names.size() - first);
      if (status s = to_.has_chunks(names.data() + first, count, &present); !s.ok()) return s;
      stats_->chunks_asked += count;
      for (std::size_t i = 0; i < count; ++i) {
        if (!present[i]) missing.push_back(names[first + i]);
      }
      if (status s = send(&missing, names.size() - first == count); !s.ok()) return s;
    }
    return {};
  }

  // Sends whole batches of `missing` (every one with `all`), keeping the rest.
  status send(std::vector<fingerprint>* missing, bool all) {
    std::vector<stored_chunk> chunks;
    std::size_t first = 0;
    for (; missing->size() - first >= (all ? 1 : kSendBatch); first += chunks.size()) {
      const std::size_t count = std::min(kSendBatch, missing->size() - first);
      if (status s = from_.get_chunks(missing->data() + first, count, &chunks); !s.ok()) return s;
      if (status s = to_.put_chunks(chunks); !s.ok()) return s;
      for (const stored_chunk& c : chunks) {
        stats_->chunk_bytes_sent += c.payload.size();
        unsynced_ += c.payload.size();
      }
      stats_->chunks_sent += chunks.size();
      if (unsynced_ >= kSyncEvery) {
        if (status s = to_.sync_chunks(); !s.ok()) return s;
        unsynced_ = 0;
      }
    }
    missing->erase(missing->begin(), missing->begin() + static_cast<std::ptrdiff_t>(first));
    return {};
  }

  remote_store& from_;
  remote_store& to_;
  transfer_stats* stats_;
  std::uint64_t unsynced_ = 0;
};

// The plan's versions `to` lacks, oldest first: a parent is then sent
// before its child, whose chunks need only be asked about where it differs.
status versions_to_send(remote_store& from, const transfer_plan& plan, const std::unordered_set<version_id, fingerprint_hash>& held,
                        std::vector<std::pair<version_record, version_id>>* out) {
  std::unordered_set<version_id, fingerprint_hash> seen;
  for (const version_id& id : plan.versions) {
    if (held.contains(id) || !seen.insert(id).second) continue;
    version_record header;
    if (status s = read_record(from, id, true, &header); !s.ok()) return s;
    out->emplace_back(std::move(header), id);
  }
  std::sort(out->begin(), out->end(), [](const auto& a, const auto& b) {
    return a.first.created_ns != b.first.created_ns ? a.first.created_ns < b.first.created_ns : a.second < b.second;
  });
  return {};
}

status set_refs(remote_store& from, remote_store& to, const std::vector<ref_entry>& refs, bool force,
                transfer_stats* stats) {
  std::vector<ref_entry> there;
  if (status s = to.list_refs(&there); !s.ok()) return s;
  for (const ref_entry& r : refs) {
    auto it = std::find_if(there.begin(), there.end(), [&](const ref_entry& t) { return t.name == r.name; });
    const version_id* now = it != there.end() ? &it->id : nullptr;
    if (now != nullptr && *now == r.id) continue;
    if (now != nullptr && !force) {
      if (status s = check_ref_move(from, r, *now, to.where()); !s.ok())
        return status(errc::already_exists, s.message() + " (--force moves it)");
    }
    if (status s = to.set_ref(r.name, r.id, now); !s.ok()) return s;
    ++stats->refs_set;
  }
  return {};
}

}  // namespace

status check_ref_move(remote_store& from, const ref_entry& r, const version_id& now, const std::string& there) {
  if (r.name.starts_with("tags/")) {
    return status(errc::already_exists,
                  "tag " + r.name + " in " + there + " names " + now.hex() + ", not " + r.id.hex());
  }
  if (!descends(from, r.id, now)) {
    return status(errc::already_exists, r.name + " in " + there + " names " + now.hex() + ", which " + r.id.hex() +
                                            " does not descend from");
  }
  return {};
}

status plan_transfer(remote_store& from, std::string_view what, bool all, transfer_plan* out) {
  *out = {};
  std::vector<ref_entry> refs;
  if (status s = from.list_refs(&refs); !s.ok()) return s;
  if (!all && !what.empty()) return resolve_name(from, what, refs, out);
  out->refs = refs;
  if (all) return from.list_versions(&out->versions);
  for (const ref_entry& r : refs) out->versions.push_back(r.id);
  return {};
}

status transfer(remote_store& from, remote_store& to, const transfer_plan& plan, bool force, transfer_stats* stats) {
  *stats = {};
  std::vector<version_id> listed;
  status s = to.list_versions(&listed);
  std::unordered_set<version_id, fingerprint_hash> held(listed.begin(), listed.end());
  std::vector<std::pair<version_record, version_id>> pending;
  if (s.ok()) s = versions_to_send(from, plan, held, &pending);
  version_copy copy(from, to, stats);
  version_id last{};
  std::vector<page_entry> last_pages;
  for (auto& [header, id] : pending) {
    if (!s.ok()) break;
    const std::vector<page_entry>* parent_pages = nullptr;
    version_record parent;
    if (header.has_parent && header.parent == last && !last_pages.empty()) {
      parent_pages = &last_pages;
    } else if (header.has_parent && held.contains(header.parent) && read_record(from, header.parent, false, &parent).ok()) {
      parent_pages = &parent.pages;
    }
    std::vector<page_entry> pages;
    s = copy.run(id, parent_pages, &pages);
    held.insert(id);
    last = id;
    last_pages = std::move(pages);
  }
  if (s.ok()) s = set_refs(from, to, plan.refs, force, stats);
  if (!s.ok()) (void)to.release();
  return s;
}

}  // namespace larder::chunks
