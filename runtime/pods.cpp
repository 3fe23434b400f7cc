// Pods: the pod table of a heap, pod handles, pod_scope, and the
// standard-library adaptors that allocate from a pod.
#include <larder/allocator.hpp>
#include <larder/heap.hpp>
#include <larder/pod.hpp>

#include "allocator/alloc.hpp"
#include "allocator/arena.hpp"
#include "recovery/records.hpp"
#include "runtime/heap_impl.hpp"
#include "runtime/transaction_engine.hpp"

#include <cstring>

namespace larder {

struct pod_record : layout::pod_record {};
static_assert(sizeof(pod_record) == sizeof(layout::pod_record));

namespace {

pod handle_of(layout::heap_meta* meta, std::uint32_t id) {
  return pod(reinterpret_cast<pod_record*>(&meta->pods[id]));
}

}  // namespace

// ---- pod -------------------------------------------------------------------

std::uint32_t pod::id() const noexcept { return record_ ? record_->id : 0; }

std::string_view pod::name() const noexcept { return record_ ? std::string_view(record_->name) : std::string_view(); }

void* pod::allocate(std::size_t size, std::size_t alignment) const noexcept {
  alloc::region* r = record_ ? alloc::find_region(record_) : nullptr;
  if (r == nullptr) {
    errno = EINVAL;
    return nullptr;
  }
  if (heap_impl* impl = transaction_heap_of(record_)) return transactional_allocate(impl, record_->id, size, alignment, __builtin_return_address(0));
  return alloc::allocate_in(r, record_->id, size, alignment);
}

pod_scope::pod_scope(pod p) noexcept : previous_(alloc::tls_heap) {
  alloc::region* r = p.valid() ? alloc::find_region(p.record()) : nullptr;
  alloc::local_heap* h = r != nullptr ? alloc::local_heap_for(r, p.id()) : nullptr;
  if (h != nullptr) alloc::tls_heap = h;
}

// The heap saved at construction may have been closed meanwhile (or dropped
// in a forked child); restore_heap then falls back to the process heap.
pod_scope::~pod_scope() { alloc::restore_heap(static_cast<alloc::local_heap*>(previous_)); }

pod current_pod() noexcept {
  alloc::local_heap* h = alloc::tls_heap;
  alloc::region* r = h->owner_region.load(std::memory_order_acquire);
  if (h == &alloc::g_empty_heap || r == nullptr || r == alloc::g_process_region) return pod();
  return handle_of(r->meta(), h->arena->pod);
}

// ---- the pod table ---------------------------------------------------------

pod heap::default_pod() const noexcept { return impl_ ? handle_of(impl_->meta(), 0) : pod(); }

pod heap::find_pod(std::string_view name) const noexcept {
  if (impl_ == nullptr) return {};
  tables_guard guard(impl_);
  layout::heap_meta* meta = impl_->meta();
  for (std::uint32_t id = 0; id < layout::kMaxPods; ++id) {
    if (meta->pods[id].in_use == 1 && name == meta->pods[id].name) return handle_of(meta, id);
  }
  return {};
}

status heap::make_pod(std::string_view name, pod* out) {
  if (impl_ == nullptr) return status(errc::invalid_argument, "the heap is not open");
  if (name.empty() || name.size() > layout::kPodNameMax || name.find('\0') != std::string_view::npos)
    return status(errc::invalid_argument, "a pod name has 1 to 47 bytes");
  if (pod existing = find_pod(name); existing.valid()) {
    *out = existing;
    return {};
  }
  if (!impl_->can_write()) return status(errc::read_only, "cannot add a pod");
  struct args {
    std::string_view name;
    pod* out;
  } a{name, out};
  return change_metadata(
      [](heap& h, void* context) -> status {
        auto* a = static_cast<args*>(context);
        tables_guard guard(h.impl());
        layout::heap_meta* meta = h.impl()->meta();
        // Looked for again under the lock: another thread, or with shared
        // writers another process, may have made it since.
        for (std::uint32_t id = 0; id < layout::kMaxPods; ++id) {
          if (meta->pods[id].in_use == 1 && a->name == meta->pods[id].name) {
            *a->out = handle_of(meta, id);
            return {};
          }
        }
        for (std::uint32_t id = 1; id < layout::kMaxPods; ++id) {
          layout::pod_record& rec = meta->pods[id];
          if (rec.in_use == 1) continue;
          if (status s = transactional_snapshot(h.impl(), &rec, sizeof(rec)); !s.ok()) return s;
          std::memset(&rec, 0, sizeof(rec));
          std::memcpy(rec.name, a->name.data(), a->name.size());
          rec.id = id;
          rec.in_use = recovery::kPodLive;
          recovery::seal(&rec);
          *a->out = handle_of(meta, id);
          return {};
        }
        return status(errc::table_full, "all 1024 pods are in use");
      },
      &a);
}

pod heap::pod_of(const void* p) const noexcept {
  if (impl_ == nullptr || !impl_->region.contains(p)) return {};
  alloc::segment* head = impl_->region.head_segment(p);
  if (head == nullptr || head->pod >= layout::kMaxPods) return {};
  layout::heap_meta* meta = impl_->meta();
  return meta->pods[head->pod].in_use == 1 ? handle_of(meta, head->pod) : pod();
}

std::vector<pod_info> heap::pods() const {
  std::vector<pod_info> result;
  if (impl_ == nullptr) return result;
  layout::heap_meta* meta = impl_->meta();
  std::vector<std::size_t> in_use(layout::kMaxPods), held(layout::kMaxPods);
  impl_->region.usage(in_use.data(), held.data());
  for (std::uint32_t id = 0; id < layout::kMaxPods; ++id) {
    if (meta->pods[id].in_use != 1) continue;
    result.push_back(pod_info{meta->pods[id].name, id, in_use[id], held[id]});
  }
  return result;
}

// ---- standard-library adaptors --------------------------------------------

void free(void* p) noexcept {
  if (heap_impl* impl = transaction_heap_of(p)) return transactional_free(impl, p);
  alloc::fast_free(p);
}

std::size_t usable_size(const void* p) noexcept { return alloc::usable_size(p); }

void* memory_resource::do_allocate(std::size_t bytes, std::size_t alignment) {
  void* p = pod_.allocate(bytes, alignment);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void memory_resource::do_deallocate(void* p, std::size_t, std::size_t) { larder::free(p); }

bool memory_resource::do_is_equal(const std::pmr::memory_resource& other) const noexcept {
  const auto* o = dynamic_cast<const memory_resource*>(&other);
  return o != nullptr && o->pod_ == pod_;
}

}  // namespace larder
