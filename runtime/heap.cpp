// The public larder::heap class over heap_impl.
#include <larder/heap.hpp>
#include <larder/version.hpp>

#include "allocator/alloc.hpp"
#include "allocator/arena.hpp"
#include "runtime/heap_impl.hpp"
#include "runtime/lane_report.hpp"
#include "runtime/transaction_engine.hpp"
#include "runtime/versions_state.hpp"

#include <cstdio>

namespace larder {

heap::heap(const heap_options& options) { throw_if_error(open(options, this)); }

heap& heap::operator=(heap&& other) noexcept {
  if (this != &other) {
    (void)close();
    impl_ = std::exchange(other.impl_, nullptr);
  }
  return *this;
}

heap::~heap() { (void)close(); }

status heap::open(const heap_options& options, heap* out) {
  heap_impl* impl = nullptr;
  status s = heap_impl::open(options, &impl);
  if (!s.ok()) return s;
  (void)out->close();
  out->impl_ = impl;
  if (options.placement == placement_policy::off) return {};
  if (s = start_placement(*out); !s.ok()) (void)out->close();
  return s;
}

status heap::close() {
  if (impl_ == nullptr) return {};
  // A transaction still open would go on using the heap.
  if (in_transaction(impl_)) return status(errc::invalid_argument, "a transaction on this heap is still open");
  if (!impl_->tx_lock.try_lock())
    return status(errc::invalid_argument, "another thread has a transaction open on this heap");
  impl_->tx_lock.unlock();
  status s = impl_->close();
  delete impl_;
  impl_ = nullptr;
  return s;
}

void* heap::base() const noexcept { return impl_ ? reinterpret_cast<void*>(impl_->region.base()) : nullptr; }
std::size_t heap::reserve() const noexcept { return impl_ ? impl_->region.reserve() : 0; }
backing heap::kind() const noexcept { return impl_ ? impl_->kind : backing::anonymous; }
bool heap::contains(const void* p) const noexcept { return impl_ != nullptr && impl_->region.contains(p); }
bool heap::durable() const noexcept { return impl_ != nullptr && impl_->domain->durable(); }
const char* heap::persistence_domain() const noexcept { return impl_ ? impl_->domain->name() : ""; }

std::string heap::uuid() const { return impl_ == nullptr ? std::string() : uuid_text(impl_->superblock.uuid); }

heap_stats heap::stats() const {
  heap_stats st{};
  if (impl_ == nullptr) return st;
  st.mapped_size = impl_->region.committed();
  st.reserve = impl_->region.reserve();
  st.segments_in_use = impl_->region.segments_in_use();
  st.format_major = impl_->superblock.format_major;
  st.format_minor = impl_->superblock.format_minor;
  st.created_ns = impl_->superblock.created_ns;
  st.beside_live_writer = impl_->beside_live_writer;
  st.private_rollback = impl_->rolled_back_privately;
  st.writer_pid = impl_->writer_pid;
  std::lock_guard guard(impl_->meta_lock);
  st.last_close_ns = impl_->meta()->last_close_ns;
  for (const auto& p : impl_->meta()->pods) st.pods += p.in_use == 1;
  for (const auto& r : impl_->meta()->roots) st.roots += r.in_use == 1;
  for (const auto& l : impl_->meta()->lanes) st.lanes_in_use += l.state == layout::kLaneInUse;
  st.client = impl_->client_index;
  st.clients = clients().size();
  return st;
}

std::vector<client_info> heap::clients() const {
  std::vector<client_info> out;
  if (impl_ == nullptr) return out;
  const layout::shared_writers_record& shared = impl_->meta()->shared;
  if (__atomic_load_n(&shared.magic, __ATOMIC_ACQUIRE) != layout::kSharedMagic) return out;
  for (std::uint32_t c = 1; c <= layout::kMaxClients; ++c) {
    const layout::client_record& rec = shared.clients[c - 1];
    if (__atomic_load_n(&rec.state, __ATOMIC_ACQUIRE) != layout::kClientAttached) continue;
    bool alive = port::identity_alive({rec.pid, 0, rec.start_ticks});
    out.push_back({c, rec.pid, alive, c == impl_->client_index, rec.attached_ns});
  }
  return out;
}

status heap::recover_dead_clients(std::size_t* recovered) {
  if (impl_ == nullptr) return status(errc::invalid_argument, "the heap is not open");
  return larder::recover_dead_clients(*impl_, recovered);
}

std::vector<lane_info> heap::lanes() const {
  if (impl_ == nullptr) return {};
  if (impl_->rolled_back_privately) return impl_->lanes_found;
  return describe_lanes(*impl_->meta(), impl_->region.base(), impl_->region.committed());
}

status heap::remove(backing kind, const std::string& name) { return heap_impl::remove(kind, name); }

const char* version() noexcept { return LARDER_VERSION_STRING; }

void* heap::allocate(std::size_t size, std::size_t alignment) noexcept {
  if (impl_ == nullptr) {
    errno = EINVAL;
    return nullptr;
  }
  if (in_transaction(impl_)) return transactional_allocate(impl_, 0, size, alignment, __builtin_return_address(0));
  return alloc::allocate_in(&impl_->region, 0, size, alignment);
}

void heap::deallocate(void* p) noexcept {
  if (heap_impl* impl = transaction_heap_of(p)) return transactional_free(impl, p);
  alloc::fast_free(p);
}

}  // namespace larder
