// A checkout straight from a remote (checkout_options::remote): the
// version read there, the chunks the heap's store lacks fetched into it,
// the version and its ref published there once it holds them all.
// checkout.cpp and lazy_checkout.cpp drive these; docs/versions.md,
// "Checking out from a remote".
#include "runtime/heap_impl.hpp"
#include "runtime/versions_state.hpp"
#include "tiers/chunks/transfer.hpp"

#include <algorithm>

namespace larder {

namespace {

using chunks::fingerprint;
using chunks::page_entry;

// The heap's store may already hold the ref named: it must be able to move
// to the version as pull would move it, which is checked before anything
// changes (and once more, atomically, when it moves).
status check_local_ref(versions_state& v, chunks::remote_store& remote, const chunks::ref_entry& r,
                       remote_checkout* out) {
  out->ref = r.name;
  status s = v.store->get_ref(r.name, &out->ref_was);
  if (s.is(errc::not_found)) return {};
  if (!s.ok()) return s;
  out->ref_existed = true;
  if (out->ref_was == r.id) return {};
  if (status m = chunks::check_ref_move(remote, r, out->ref_was, v.directory); !m.ok())
    return status(errc::already_exists, m.message() + " (check the version out by its id)");
  return {};
}

}  // namespace

status open_remote_version(versions_state& v, const std::string& remote, std::string_view name,
                           std::unique_ptr<remote_checkout>* out, chunks::version_id* id, std::string* branch,
                           chunks::version_record* target) {
  if (name.empty()) return status(errc::invalid_argument, "no version named to check out from " + remote);
  auto r = std::make_unique<remote_checkout>();
  if (status s = chunks::open_remote(remote, false, &r->remote); !s.ok()) return s;
  chunks::transfer_plan plan;
  if (status s = chunks::plan_transfer(*r->remote, name, false, &plan); !s.ok()) return s;
  *id = plan.versions.front();
  if (status s = r->remote->get_version(*id, &r->manifest, &r->table); !s.ok()) return s;
  const std::string what = r->remote->where() + ": versions/" + id->hex();
  if (status s = chunks::decode_version(r->manifest, r->table, what, target); !s.ok()) return s;
  branch->clear();
  if (!plan.refs.empty()) {
    if (status s = check_local_ref(v, *r->remote, plan.refs.front(), r.get()); !s.ok()) return s;
    if (r->ref.starts_with("heads/")) *branch = r->ref;
  }
  r->fetch = std::make_unique<chunks::fetching_reader>(*v.store, *r->remote);
  *out = std::move(r);
  return {};
}

status store_equal_pages(const heap_impl& impl, chunks::chunk_store& store, const std::vector<page_entry>& target,
                         const std::vector<std::size_t>& loaded) {
  std::vector<page_entry> equal;
  for (const page_entry& e : target)
    if (!std::binary_search(loaded.begin(), loaded.end(), e.page)) equal.push_back(e);
  std::vector<fingerprint> names(equal.size());
  std::transform(equal.begin(), equal.end(), names.begin(), [](const page_entry& e) { return e.chunk; });
  std::vector<bool> present;
  if (status s = store.contains(names.data(), names.size(), &present); !s.ok()) return s;
  for (std::size_t i = 0; i < equal.size(); ++i) {
    if (present[i]) continue;
    const void* page = reinterpret_cast<const void*>(impl.region.base() + equal[i].page * port::kOsPageSize);
    fingerprint put;
    if (status s = store.put(page, 1, &put); !s.ok()) return s;
    // Compared a moment ago with no other thread in the heap (checkout's
    // precondition): a difference now is a broken precondition.
    if (put != equal[i].chunk)
      return status(errc::invalid_argument, impl.name + ": a page changed while it was checked out");
  }
  return {};
}

status fetch_pages(remote_checkout& r, const std::vector<page_entry>& target, const std::vector<std::size_t>& pages) {
  std::vector<fingerprint> names;
  names.reserve(pages.size());
  for (std::size_t p : pages) names.push_back(chunk_at(target, p));
  return r.fetch->fetch(names.data(), names.size());
}

status publish_remote_version(versions_state& v, remote_checkout& r) {
  chunks::version_id id;
  if (status s = v.store->import_version(r.manifest, r.table, &id); !s.ok()) return s;
  if (r.ref.empty() || (r.ref_existed && r.ref_was == id)) return {};
  const chunks::version_id absent{};
  return v.store->set_ref(r.ref, id, r.ref_existed ? &r.ref_was : &absent);
}

}  // namespace larder
