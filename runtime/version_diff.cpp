// Diffs: what differs between two versions (their manifests alone) or a
// version and the live heap (its pages fingerprinted, only those written
// since the current version where the tracker knows them). See
// larder/versions.hpp and docs/versions.md, "History".
#include "runtime/heap_impl.hpp"
#include "runtime/process_heap_scope.hpp"
#include "runtime/transaction_engine.hpp"
#include "runtime/versions_state.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <set>
#include <utility>

namespace larder {

namespace {

using chunks::page_entry;

constexpr std::size_t kPagesPerSegment = layout::kSegmentSize / port::kOsPageSize;

// What a version's metadata (roots_and_pods_json) says, as far as it says it.
struct version_meta {
  struct root {
    std::uint64_t offset = 0, size = 0;
  };
  struct pod {
    std::string name;
    std::uint64_t bytes = 0;
  };
  std::map<std::string, root> roots;
  std::map<std::int64_t, pod> pods;
  bool has_segments = false;                  // versions before segments were recorded have none
  std::map<std::size_t, std::int64_t> segment_pod;  // first segment of a run → pod; see pod_of
  std::map<std::size_t, std::size_t> run_end;

  // The pod whose pages segment `k` held; -1: none recorded (metadata, lanes).
  std::int64_t pod_of(std::size_t k) const {
    auto it = segment_pod.upper_bound(k);
    if (it == segment_pod.begin()) return -1;
    --it;
    return k < run_end.at(it->first) ? it->second : -1;
  }
};

// Metadata that does not parse, or parts of it that are not what
// roots_and_pods_json writes, are left out: the diff then says less.
version_meta parse_meta(const std::string& text) {
  version_meta m;
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return m;
  auto number = [](const nlohmann::json& v) { return v.is_number_unsigned() ? v.get<std::uint64_t>() : 0; };
  if (auto it = j.find("roots"); it != j.end() && it->is_array()) {
    for (const auto& r : *it)
      if (r.is_object() && r.contains("name") && r["name"].is_string())
        m.roots[r["name"].get<std::string>()] = {number(r.value("offset", nlohmann::json())),
                                                 number(r.value("size", nlohmann::json()))};
  }
  if (auto it = j.find("pods"); it != j.end() && it->is_array()) {
    for (const auto& p : *it) {
      if (!p.is_object() || !p.contains("id") || !p["id"].is_number_unsigned()) continue;
      const nlohmann::json name = p.value("name", nlohmann::json());
      m.pods[p["id"].get<std::int64_t>()] = {name.is_string() ? name.get<std::string>() : std::string(),
                                             number(p.value("bytes", nlohmann::json()))};
    }
  }
  if (auto it = j.find("segments"); it != j.end() && it->is_array()) {
    m.has_segments = true;
    for (const auto& run : *it) {
      if (!run.is_array() || run.size() != 3 || !run[0].is_number_unsigned() || !run[1].is_number_unsigned() ||
          !run[2].is_number_unsigned())
        continue;
      const std::size_t first = run[0].get<std::size_t>();
      m.segment_pod[first] = run[2].get<std::int64_t>();
      m.run_end[first] = first + run[1].get<std::size_t>();
    }
  }
  return m;
}

// Pages whose chunk differs between two tables, ascending.
std::vector<std::size_t> differing_pages(const std::vector<page_entry>& a, const std::vector<page_entry>& b) {
  std::vector<std::size_t> out;
  std::size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    if (j == b.size() || (i < a.size() && a[i].page < b[j].page)) {
      out.push_back(a[i++].page);
    } else if (i == a.size() || b[j].page < a[i].page) {
      out.push_back(b[j++].page);
    } else {
      if (a[i].chunk != b[j].chunk) out.push_back(a[i].page);
      ++i;
      ++j;
    }
  }
  return out;
}

bool any_in(const std::vector<std::size_t>& pages, std::uint64_t offset, std::uint64_t size) {
  const std::size_t first = offset / port::kOsPageSize;
  const std::size_t end = (offset + std::max<std::uint64_t>(size, 1) + port::kOsPageSize - 1) / port::kOsPageSize;
  auto it = std::lower_bound(pages.begin(), pages.end(), first);
  return it != pages.end() && *it < end;
}

void compare_roots(const version_meta& a, const version_meta& b, const std::vector<std::size_t>& pages,
                   version_diff* out) {
  for (const auto& [name, r] : a.roots) {
    auto it = b.roots.find(name);
    if (it == b.roots.end()) {
      out->roots.push_back({name, "removed"});
    } else if (it->second.offset != r.offset || it->second.size != r.size) {
      out->roots.push_back({name, "moved"});
    } else if (any_in(pages, r.offset, r.size)) {
      out->roots.push_back({name, "written"});
    }
  }
  for (const auto& [name, r] : b.roots)
    if (!a.roots.contains(name)) out->roots.push_back({name, "added"});
}

}  // namespace

void compare_versions(const std::vector<page_entry>& a, const std::string& meta_a, const std::vector<page_entry>& b,
                      const std::string& meta_b, version_diff* out) {
  const version_meta ma = parse_meta(meta_a), mb = parse_meta(meta_b);
  const std::vector<std::size_t> pages = differing_pages(a, b);
  const bool by_pod = ma.has_segments || mb.has_segments;
  // Keyed by (pod, segment): segment is -1 when pods are known.
  std::map<std::pair<std::int64_t, std::int64_t>, area_difference> areas;
  for (std::size_t page : pages) {
    const std::size_t k = page / kPagesPerSegment;
    std::int64_t pod = -1, segment = -1;
    if (k != 0 && by_pod) {
      pod = mb.pod_of(k);
      if (pod < 0) pod = ma.pod_of(k);
    } else if (k != 0) {
      segment = static_cast<std::int64_t>(k);
    }
    area_difference& d = areas[{pod, segment}];
    d.pod = pod;
    d.segment = segment;
    ++d.pages;
    d.bytes += port::kOsPageSize;
  }
  // Pods whose table entry differs, though none of their pages may.
  std::set<std::int64_t> pods;
  for (const auto& [id, p] : ma.pods) pods.insert(id);
  for (const auto& [id, p] : mb.pods) pods.insert(id);
  for (std::int64_t id : pods) {
    auto pa = ma.pods.find(id), pb = mb.pods.find(id);
    const bool same = pa != ma.pods.end() && pb != mb.pods.end() && pa->second.name == pb->second.name &&
                      pa->second.bytes == pb->second.bytes;
    auto area = areas.find({id, -1});
    if (area == areas.end() && same) continue;
    area_difference& d = areas[{id, -1}];
    d.pod = id;
    d.name = pb != mb.pods.end() ? pb->second.name : pa != ma.pods.end() ? pa->second.name : std::string();
    d.bytes_in_use_before = pa != ma.pods.end() ? pa->second.bytes : 0;
    d.bytes_in_use_after = pb != mb.pods.end() ? pb->second.bytes : 0;
  }
  for (auto& [key, d] : areas) out->areas.push_back(std::move(d));
  out->pages = pages.size();
  out->bytes = pages.size() * port::kOsPageSize;
  compare_roots(ma, mb, pages, out);
}

namespace {

bool in_used(const std::vector<page_span>& used, std::size_t page) {
  auto it = std::upper_bound(used.begin(), used.end(), page, [](std::size_t p, const page_span& s) { return p < s.first; });
  return it != used.begin() && page < std::prev(it)->first + std::prev(it)->count;
}

// The table a checkpoint would record now. The caller holds tx_lock.
status live_table(heap_impl& impl, versions_state& v, std::vector<page_entry>* out, std::size_t* fingerprinted) {
  const std::vector<page_span> used = used_pages(impl);
  const char* base = reinterpret_cast<const char*>(impl.region.base());
  auto add_live = [&](std::size_t page) {
    const chunks::fingerprint f = chunks::page_fingerprint(base + page * port::kOsPageSize);
    ++*fingerprinted;
    if (f != chunks::zero_page()) out->push_back({page, f});
  };
  if (!writes_since_cut_known(impl, v)) {
    for (const page_span& s : used)
      for (std::size_t p = s.first; p < s.first + s.count; ++p) add_live(p);
    return {};
  }
  if (status s = impl.collect_for_versions(); !s.ok()) return s;
  std::vector<std::size_t> written;
  {
    std::lock_guard guard(impl.collect_lock);
    impl.written_since_cut.for_each([&](std::size_t p) {
      if (in_used(used, p)) written.push_back(p);
    });
  }
  // The current table outside the used areas and the written pages, with
  // the written pages fingerprinted in their place.
  std::size_t j = 0;
  auto add_written = [&](std::size_t upto) {
    for (; j < written.size() && written[j] < upto; ++j) add_live(written[j]);
  };
  for (const page_entry& e : v.table) {
    add_written(e.page);
    if (j < written.size() && written[j] == e.page) continue;
    if (in_used(used, e.page)) out->push_back(e);
  }
  add_written(~std::size_t{0});
  return {};
}

}  // namespace

status diff(heap& h, std::string_view version, version_diff* out) {
  *out = {};
  heap_impl* impl = h.impl();
  if (impl == nullptr) return status(errc::invalid_argument, "the heap is not open");
  if (in_transaction(impl)) return status(errc::invalid_argument, "diff inside a transaction on the heap");
  process_heap_scope scope;
  versions_state* v = nullptr;
  if (status s = open_versions(*impl, &v, impl->can_write()); !s.ok()) return s;
  chunks::version_id id;
  std::string branch;
  chunks::version_record target;
  if (status s = read_named_version(*v->store, version, &id, &branch, &target); !s.ok()) return s;
  std::vector<page_entry> live;
  std::string live_meta;
  {
    std::lock_guard one_at_a_time(v->cut_lock);
    std::lock_guard held(impl->tx_lock);
    if (status s = live_table(*impl, *v, &live, &out->pages_fingerprinted); !s.ok()) return s;
    live_meta = roots_and_pods_json(*impl);
  }
  compare_versions(target.pages, target.metadata, live, live_meta, out);
  out->from = id.hex();
  return {};
}

status version_store::diff(std::string_view from, std::string_view to, version_diff* out) {
  *out = {};
  if (!impl_) return status(errc::invalid_argument, "no version store is open");
  chunks::version_record records[2];
  std::string ids[2];
  const std::string_view names[2] = {from, to};
  for (int i = 0; i < 2; ++i) {
    chunks::version_id id;
    std::string branch;
    if (status s = resolve_version(*impl_->store, names[i], &id, &branch); !s.ok()) return s;
    if (status s = impl_->store->read_version(id, &records[i]); !s.ok()) return s;
    ids[i] = id.hex();
  }
  compare_versions(records[0].pages, records[0].metadata, records[1].pages, records[1].metadata, out);
  out->from = ids[0];
  out->to = ids[1];
  return {};
}

}  // namespace larder
