// larder::version_store: a chunk store's history and housekeeping for
// programs and `larder log` / `larder versions` (larder/versions.hpp).
#include "runtime/versions_state.hpp"

#include <algorithm>
#include <map>

namespace larder {

version_store::version_store() noexcept = default;
version_store::~version_store() = default;
version_store::version_store(version_store&&) noexcept = default;
version_store& version_store::operator=(version_store&&) noexcept = default;

status version_store::open(const std::string& directory, version_store* out) {
  auto fresh = std::make_unique<impl>();
  if (status s = chunks::chunk_store::open(directory, chunks::store_options{}, &fresh->store); !s.ok()) return s;
  out->impl_ = std::move(fresh);
  return {};
}

namespace {

version_info info_of(const chunks::version_summary& summary, const chunks::version_record* record) {
  version_info v;
  v.id = summary.id.hex();
  v.parent = summary.has_parent ? summary.parent.hex() : std::string();
  v.created_ns = summary.created_ns;
  v.message = summary.message;
  v.pages = summary.page_count;
  v.damaged = summary.damaged;
  if (record != nullptr) {
    v.heap_uuid = uuid_text(record->heap_uuid.data());
    v.heap_size = record->heap_size;
    v.roots_and_pods = record->metadata;
  }
  return v;
}

}  // namespace

status version_store::log(bool all, std::vector<version_info>* out) {
  out->clear();
  if (!impl_) return status(errc::invalid_argument, "no version store is open");
  chunks::chunk_store& store = *impl_->store;
  std::vector<chunks::version_summary> summaries;
  if (status s = store.list_versions(&summaries); !s.ok()) return s;
  std::map<chunks::version_id, const chunks::version_summary*> by_id;
  for (const auto& v : summaries) by_id[v.id] = &v;
  std::vector<chunks::ref_entry> refs;
  if (status s = store.list_refs(&refs); !s.ok()) return s;

  std::vector<const chunks::version_summary*> chosen;
  if (all) {
    for (const auto& v : summaries) chosen.push_back(&v);
    std::sort(chosen.begin(), chosen.end(), [](auto* a, auto* b) { return a->created_ns > b->created_ns; });
  } else {
    chunks::head_state head;
    if (status s = store.get_head(&head); !s.ok()) return s;
    bool more = head.has_version;
    chunks::version_id at = head.id;
    // A parent's manifest is committed before its child's, so parents
    // never loop; a missing one ends the walk.
    while (more) {
      auto it = by_id.find(at);
      if (it == by_id.end()) break;
      chosen.push_back(it->second);
      more = it->second->has_parent;
      at = it->second->parent;
    }
  }
  for (const chunks::version_summary* summary : chosen) {
    chunks::version_record record;
    bool readable = !summary->damaged && store.read_version(summary->id, &record).ok();
    version_info v = info_of(*summary, readable ? &record : nullptr);
    for (const auto& r : refs)
      if (r.id == summary->id) v.refs.push_back(r.name);
    out->push_back(std::move(v));
  }
  return {};
}

status version_store::head(std::string* out) {
  if (!impl_) return status(errc::invalid_argument, "no version store is open");
  chunks::head_state head;
  if (status s = impl_->store->get_head(&head); !s.ok()) return s;
  *out = head.detached ? head.id.hex() : head.branch;
  return {};
}

status version_store::resolve(std::string_view name, std::string* id) {
  if (!impl_) return status(errc::invalid_argument, "no version store is open");
  chunks::version_id found;
  std::string branch;
  if (status s = resolve_version(*impl_->store, name, &found, &branch); !s.ok()) return s;
  *id = found.hex();
  return {};
}

status version_store::verify(store_verify_report* out) {
  *out = {};
  if (!impl_) return status(errc::invalid_argument, "no version store is open");
  chunks::verify_report r;
  if (status s = impl_->store->verify(&r); !s.ok()) return s;
  for (const auto& p : r.problems) out->problems.push_back({p.file, p.what});
  for (const auto& id : r.affected_versions) out->affected_versions.push_back(id.hex());
  out->chunks_checked = r.chunks_checked;
  out->versions_checked = r.versions_checked;
  return {};
}

status version_store::gc(store_gc_report* out) {
  *out = {};
  if (!impl_) return status(errc::invalid_argument, "no version store is open");
  chunks::gc_report r;
  if (status s = impl_->store->gc(&r); !s.ok()) return s;
  *out = {r.packs_removed, r.packs_written, r.chunks_copied, r.chunks_dropped, r.bytes_freed};
  return {};
}

status version_store::du(store_space* out) {
  *out = {};
  if (!impl_) return status(errc::invalid_argument, "no version store is open");
  std::vector<chunks::version_usage> usage;
  if (status s = impl_->store->du(&usage); !s.ok()) return s;
  for (const auto& u : usage)
    out->versions.push_back({u.id.hex(), u.pages, u.unique_bytes, u.shared_bytes, u.freed_by_delete});
  const chunks::store_info info = impl_->store->info();
  out->packs = info.packs;
  out->chunks = info.chunks;
  out->pack_bytes = info.pack_bytes;
  return {};
}

}  // namespace larder
