// Branches, tags and deleting versions: version_store's edits of a store's
// history (larder/versions.hpp, docs/versions.md "History").
#include "runtime/versions_state.hpp"

namespace larder {

namespace {

status check_ref_name(std::string_view ref) {
  if (ref.starts_with("heads/") || ref.starts_with("tags/")) return {};
  std::string message(ref);
  message.append(": not a branch (heads/NAME) or tag (tags/NAME)");
  return status(errc::invalid_argument, message);
}

}  // namespace

status version_store::refs(std::vector<ref_info>* out) {
  out->clear();
  if (!impl_) return status(errc::invalid_argument, "no version store is open");
  std::vector<chunks::ref_entry> refs;
  if (status s = impl_->store->list_refs(&refs); !s.ok()) return s;
  for (const auto& r : refs) out->push_back({r.name, r.id.hex()});
  return {};
}

status version_store::create_ref(std::string_view ref, std::string_view version) {
  if (!impl_) return status(errc::invalid_argument, "no version store is open");
  if (status s = check_ref_name(ref); !s.ok()) return s;
  chunks::chunk_store& store = *impl_->store;
  const std::string name(ref);
  chunks::version_id existing;
  if (status s = store.get_ref(name, &existing); s.ok()) {
    return status(errc::already_exists, name + " exists (it names " + existing.hex() + ")");
  } else if (!s.is(errc::not_found)) {
    return s;
  }
  chunks::version_id id;
  std::string branch;
  if (status s = resolve_version(store, version.empty() ? std::string_view("HEAD") : version, &id, &branch); !s.ok())
    return s;
  chunks::version_record record;  // a full id resolves without the version existing
  if (status s = store.read_version(id, &record); !s.ok()) return s;
  return store.set_ref(name, id);
}

status version_store::delete_ref(std::string_view ref) {
  if (!impl_) return status(errc::invalid_argument, "no version store is open");
  if (status s = check_ref_name(ref); !s.ok()) return s;
  chunks::head_state head;
  if (status s = impl_->store->get_head(&head); !s.ok()) return s;
  if (!head.detached && head.branch == ref)
    return status(errc::invalid_argument, "HEAD is on " + head.branch + ": check another branch or version out first");
  return impl_->store->delete_ref(std::string(ref));
}

status version_store::delete_version(std::string_view version, bool force) {
  if (!impl_) return status(errc::invalid_argument, "no version store is open");
  chunks::version_id id;
  std::string branch;
  if (status s = resolve_version(*impl_->store, version, &id, &branch); !s.ok()) return s;
  return impl_->store->delete_version(id, force);
}

}  // namespace larder
