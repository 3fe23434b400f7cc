// Versions of a heap: the store a heap uses, the pages a version covers,
// names of versions, and the public versions API (larder/versions.hpp)
// over checkpoint.cpp and checkout.cpp.
#include "port/options.hpp"
#include "runtime/versions_state.hpp"

#include "allocator/segment.hpp"
#include "recovery/records.hpp"
#include "runtime/heap_impl.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace larder {

namespace {

constexpr std::size_t kPagesPerSegment = layout::kSegmentSize / port::kOsPageSize;
constexpr std::size_t kPagesPerSlice = layout::kSliceSize / port::kOsPageSize;
constexpr std::size_t kHeaderPages = alloc::kSegmentHeaderSize / port::kOsPageSize;

void add_span(std::vector<page_span>* out, std::size_t first, std::size_t count) {
  if (!out->empty() && out->back().first + out->back().count == first) {
    out->back().count += count;
  } else {
    out->push_back({first, count});
  }
}

// The slices of a pages segment handed out with storage, as page spans;
// the header always.
void add_pages_segment(const alloc::segment& s, std::size_t first_page, std::vector<page_span>* out) {
  const std::uint64_t skipped = s.free_slices | s.holes;
  add_span(out, first_page, kHeaderPages);
  if ((skipped & 1) == 0) add_span(out, first_page + kHeaderPages, kPagesPerSlice - kHeaderPages);
  for (std::size_t i = 1; i < layout::kSlicesPerSegment; ++i) {
    if (((skipped >> i) & 1) == 0) add_span(out, first_page + i * kPagesPerSlice, kPagesPerSlice);
  }
}

// Runs of segments holding one pod's pages, [first, count, pod], so that a
// diff of two manifests can say which pods differ without reading pages.
nlohmann::json pod_segments(const heap_impl& impl) {
  nlohmann::json runs = nlohmann::json::array();
  const std::size_t high = std::min<std::size_t>(__atomic_load_n(&impl.meta()->segments_high, __ATOMIC_ACQUIRE),
                                                 impl.region.committed() >> layout::kSegmentShift);
  std::uint32_t huge_pod = 0;
  for (std::size_t k = 1; k < high; ++k) {
    const std::uint32_t entry = impl.region.entry(k);
    std::uint32_t pod = layout::entry_pod(entry);
    switch (layout::entry_state(entry)) {
      case layout::kSegmentHugeHead: huge_pod = pod; break;
      case layout::kSegmentHugeTail: pod = huge_pod; break;
      case layout::kSegmentPages: break;
      default: continue;
    }
    if (!runs.empty()) {
      nlohmann::json& last = runs.back();
      if (last[0].get<std::size_t>() + last[1].get<std::size_t>() == k && last[2].get<std::uint32_t>() == pod) {
        last[1] = last[1].get<std::size_t>() + 1;
        continue;
      }
    }
    runs.push_back({k, 1, pod});
  }
  return runs;
}

bool is_hex(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

}  // namespace

void versions_state_deleter::operator()(versions_state* v) const noexcept { delete v; }

std::string uuid_text(const std::uint8_t* u) {
  char text[40];
  std::snprintf(text, sizeof(text), "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
                u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
  return text;
}

status staging_buffer::reserve(std::size_t bytes) {
  bytes = std::max<std::size_t>((bytes + port::kOsPageSize - 1) & ~(port::kOsPageSize - 1), port::kOsPageSize);
  if (bytes <= size_) return {};
  release();
  void* p = nullptr;
  if (int err = port::map_aligned(bytes, port::kOsPageSize, &p)) return status::from_errno(err, "mapping a staging buffer");
  data_ = static_cast<char*>(p);
  size_ = bytes;
  return {};
}

void staging_buffer::release() noexcept {
  if (data_ != nullptr) (void)port::unmap(data_, size_);
  data_ = nullptr;
  size_ = 0;
}

const chunks::fingerprint& chunk_at(const std::vector<chunks::page_entry>& table, std::size_t page) {
  auto it = std::lower_bound(table.begin(), table.end(), page,
                             [](const chunks::page_entry& e, std::size_t p) { return e.page < p; });
  return it != table.end() && it->page == page ? it->chunk : chunks::zero_page();
}

status read_pages(chunks::chunk_store& store, const std::vector<chunks::page_entry>& table, const std::size_t* pages,
                  std::size_t count, char* out, chunks::fetching_reader* fetch) {
  std::vector<chunks::fingerprint> names;
  std::vector<std::size_t> slots;
  for (std::size_t i = 0; i < count; ++i) {
    const chunks::fingerprint& name = chunk_at(table, pages[i]);
    if (name == chunks::zero_page()) {
      std::memset(out + i * port::kOsPageSize, 0, port::kOsPageSize);
    } else {
      names.push_back(name);
      slots.push_back(i);
    }
  }
  if (names.empty()) return {};
  std::vector<char> read(names.size() * port::kOsPageSize);
  if (status s = fetch != nullptr ? fetch->get_batch(names.data(), names.size(), read.data())
                                  : store.get_batch(names.data(), names.size(), read.data());
      !s.ok())
    return s;
  for (std::size_t k = 0; k < slots.size(); ++k)
    std::memcpy(out + slots[k] * port::kOsPageSize, read.data() + k * port::kOsPageSize, port::kOsPageSize);
  return {};
}

status version_of_this_heap(const heap_impl& impl, const chunks::version_id& id, const chunks::version_record& r) {
  if (std::memcmp(r.heap_uuid.data(), impl.superblock.uuid, r.heap_uuid.size()) != 0)
    return status(errc::invalid_argument, "version " + id.hex() + " is of heap " + uuid_text(r.heap_uuid.data()) +
                                              ", not of " + impl.name + " (" + uuid_text(impl.superblock.uuid) + ")");
  if (r.base_address != impl.region.base() || r.heap_size > impl.region.reserve())
    return status(errc::corrupt, "version " + id.hex() + " does not fit the heap's address range");
  return {};
}

status open_versions(heap_impl& impl, versions_state** out, bool create) {
  // A version is the heap at one instant, cut while no transaction runs:
  // other processes' writes cannot be held still from here.
  if (impl.shared_writers())
    return status(errc::unsupported, impl.name + ": versions need a heap with one writer; this one has shared writers");
  if (status s = finish_lazy(impl); !s.ok()) return s;
  if (!impl.versions) {
    if (impl.kind != backing::file)
      return status(errc::invalid_argument,
                    "a shm or anonymous heap has no default version store: name one (use_version_store)");
    impl.versions.reset(new versions_state());
    impl.versions->directory = impl.name + ".versions";
  }
  versions_state* v = impl.versions.get();
  if (!v->store) {
    chunks::store_options options;
    options.create = create;
    if (status s = chunks::chunk_store::open(v->directory, options, &v->store); !s.ok()) return s;
  }
  *out = v;
  return {};
}

bool writes_since_cut_known(const heap_impl& impl, const versions_state& v) {
  return v.has_current && impl.versions_observing && impl.tracker && !impl.lost_writes;
}

page_bitmap take_written(heap_impl& impl) {
  std::lock_guard guard(impl.collect_lock);
  page_bitmap taken = std::move(impl.written_since_cut);
  impl.written_since_cut.clear();
  return taken;
}

void give_back_written(heap_impl& impl, const page_bitmap& taken) {
  std::lock_guard guard(impl.collect_lock);
  impl.written_since_cut.add(taken);
}

std::vector<page_span> used_pages(const heap_impl& impl) {
  std::vector<page_span> out;
  const std::size_t meta_end = layout::kMetaOffset + sizeof(layout::heap_meta);
  add_span(&out, layout::kMetaOffset / port::kOsPageSize,
           (meta_end + port::kOsPageSize - 1) / port::kOsPageSize - layout::kMetaOffset / port::kOsPageSize);
  const std::size_t high = std::min<std::size_t>(__atomic_load_n(&impl.meta()->segments_high, __ATOMIC_ACQUIRE),
                                                 impl.region.committed() >> layout::kSegmentShift);
  for (std::size_t k = 1; k < high; ++k) {
    const std::size_t first_page = k * kPagesPerSegment;
    switch (layout::entry_state(impl.region.entry(k))) {
      case layout::kSegmentPages:
        add_pages_segment(*reinterpret_cast<const alloc::segment*>(impl.region.base() + (k << layout::kSegmentShift)),
                          first_page, &out);
        break;
      case layout::kSegmentHugeHead:
      case layout::kSegmentHugeTail:
      case layout::kSegmentLog: add_span(&out, first_page, kPagesPerSegment); break;
      default: break;
    }
  }
  return out;
}

status read_named_version(chunks::chunk_store& store, std::string_view name, chunks::version_id* id,
                          std::string* branch, chunks::version_record* out) {
  if (status s = resolve_version(store, name, id, branch); !s.ok()) return s;
  return store.read_version(*id, out);
}

status resolve_version(chunks::chunk_store& store, std::string_view name, chunks::version_id* id, std::string* branch) {
  branch->clear();
  std::string text(name);
  if (text == "HEAD") {
    chunks::head_state head;
    if (status s = store.get_head(&head); !s.ok()) return s;
    if (!head.has_version) return status(errc::not_found, "HEAD names no version yet");
    *id = head.id;
    if (!head.detached) *branch = head.branch;
    return {};
  }
  std::vector<std::string> refs;
  if (text.starts_with("heads/") || text.starts_with("tags/")) {
    refs.push_back(text);
  } else {
    refs = {"heads/" + text, "tags/" + text};
  }
  for (const std::string& ref : refs) {
    if (store.get_ref(ref, id).ok()) {
      if (ref.starts_with("heads/")) *branch = ref;
      return {};
    }
  }
  if (chunks::fingerprint::parse(text, id)) return {};
  if (text.size() < 4 || !is_hex(text))
    return status(errc::not_found, "no version, branch or tag \"" + text + "\" (a version prefix has 4 hex digits or more)");
  std::vector<chunks::version_summary> all;
  if (status s = store.list_versions(&all); !s.ok()) return s;
  int found = 0;
  for (const auto& v : all) {
    if (!v.id.hex().starts_with(text)) continue;
    *id = v.id;
    ++found;
  }
  if (found == 0) return status(errc::not_found, "no version starts with " + text);
  if (found > 1) return status(errc::invalid_argument, "\"" + text + "\" is a prefix of " + std::to_string(found) + " versions");
  return {};
}

std::string roots_and_pods_json(heap_impl& impl, const std::vector<pod_edge>* edges) {
  std::vector<std::size_t> in_use(layout::kMaxPods), held(layout::kMaxPods);
  impl.region.usage(in_use.data(), held.data());
  nlohmann::json roots = nlohmann::json::array(), pods = nlohmann::json::array();
  std::lock_guard guard(impl.meta_lock);
  const layout::heap_meta* m = impl.meta();
  for (const layout::root_record& r : m->roots) {
    if (r.in_use != recovery::kRootLive) continue;
    roots.push_back({{"name", std::string(r.name, strnlen(r.name, sizeof r.name))},
                     {"offset", r.object - impl.region.base()},
                     {"size", r.size}});
  }
  for (std::size_t i = 0; i < layout::kMaxPods; ++i) {
    const layout::pod_record& p = m->pods[i];
    if (p.in_use != recovery::kPodLive) continue;
    pods.push_back({{"id", i}, {"name", std::string(p.name, strnlen(p.name, sizeof p.name))}, {"bytes", in_use[i]}});
  }
  nlohmann::json out{{"roots", roots}, {"pods", pods}, {"segments", pod_segments(impl)}};
  if (edges != nullptr) {
    nlohmann::json list = nlohmann::json::array();
    for (const pod_edge& e : *edges) list.push_back({e.from, e.to, e.pages});
    out["edges"] = std::move(list);
  }
  return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool recorded_edges(const std::string& metadata, std::vector<pod_edge>* out) {
  out->clear();
  const nlohmann::json j = nlohmann::json::parse(metadata, nullptr, false);
  if (!j.is_object()) return false;
  auto it = j.find("edges");
  if (it == j.end() || !it->is_array()) return false;
  // Entries that are not what roots_and_pods_json writes are skipped.
  for (const nlohmann::json& e : *it) {
    if (!e.is_array() || e.size() != 3 || !e[0].is_number_unsigned() || !e[1].is_number_unsigned() ||
        !e[2].is_number_unsigned())
      continue;
    const std::uint64_t from = e[0].get<std::uint64_t>(), to = e[1].get<std::uint64_t>();
    if (from >= layout::kMaxPods || to >= layout::kMaxPods) continue;
    out->push_back({static_cast<std::uint32_t>(from), static_cast<std::uint32_t>(to), e[2].get<std::uint64_t>()});
  }
  std::sort(out->begin(), out->end(),
            [](const pod_edge& a, const pod_edge& b) { return a.from != b.from ? a.from < b.from : a.to < b.to; });
  return true;
}

// ---- public API ----------------------------------------------------------

status use_version_store(heap& h, const std::string& directory, std::string_view branch) {
  heap_impl* impl = h.impl();
  if (impl == nullptr) return status(errc::invalid_argument, "the heap is not open");
  if (directory.empty()) return status(errc::invalid_argument, "no version store directory given");
  if (impl->versions && impl->versions->store)
    return status(errc::invalid_argument, "the heap uses the version store " + impl->versions->directory + " already");
  std::unique_ptr<versions_state, versions_state_deleter> fresh(new versions_state());
  fresh->directory = directory;
  chunks::store_options options;
  options.create = true;
  if (status s = chunks::chunk_store::open(directory, options, &fresh->store); !s.ok()) return s;
  if (!branch.empty()) {
    fresh->follows = "heads/" + std::string(branch);
    fresh->follows_known = true;
    if (status s = fresh->store->set_head(fresh->follows); !s.ok()) return s;
  }
  impl->versions = std::move(fresh);
  return {};
}

std::string version_store_of(const heap& h) {
  heap_impl* impl = h.impl();
  if (impl == nullptr) return {};
  if (impl->versions) return impl->versions->directory;
  return impl->kind == backing::file ? impl->name + ".versions" : std::string();
}

status checkpoint(heap& h, std::string_view message, checkpoint_stats* out) {
  if (h.impl() == nullptr) return status(errc::invalid_argument, "the heap is not open");
  checkpoint_stats ignored;
  if (status s = take_checkpoint(*h.impl(), message, out != nullptr ? out : &ignored); !s.ok()) return s;
  // A program that collects itself ends the placement epochs.
  if (!h.impl()->tracking_by_program) placement_end_epoch(h);
  return {};
}

checkpoint_stats checkpoint(heap& h, std::string_view message) {
  checkpoint_stats out;
  throw_if_error(checkpoint(h, message, &out));
  return out;
}

status checkout(heap& h, std::string_view version, const checkout_options& options, checkout_stats* out) {
  if (h.impl() == nullptr) return status(errc::invalid_argument, "the heap is not open");
  checkout_stats ignored;
  if (status s = check_out(*h.impl(), version, options, out != nullptr ? out : &ignored); !s.ok()) return s;
  // The version's pod table may lack the pods placement was using. The
  // checkout is done either way: a failure only turns placement off.
  if (h.impl()->placement) {
    if (status s = restart_placement(h); !s.ok())
      port::warning("automatic placement of %s is off after the checkout: %s", h.impl()->name.c_str(),
                    s.to_string().c_str());
  }
  return {};
}

status checkout(heap& h, std::string_view version, checkout_stats* out) { return checkout(h, version, {}, out); }

checkout_stats checkout(heap& h, std::string_view version, const checkout_options& options) {
  checkout_stats out;
  throw_if_error(checkout(h, version, options, &out));
  return out;
}

}  // namespace larder
