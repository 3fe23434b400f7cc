// Settling plain allocation's changes; see plain_settle.hpp.
#include "runtime/plain_settle.hpp"

#include "allocator/unsettled.hpp"
#include "runtime/heap_impl.hpp"
#include "runtime/transaction_memory.hpp"

namespace larder {

namespace {

class settle_ranges final : public alloc::settle_collector {
 public:
  void add(alloc::settle_group group, void* address, std::size_t size) noexcept override {
    groups_[static_cast<std::size_t>(group)].push_back({address, size});
  }
  const engine_vector<recovery::persist_range>& group(alloc::settle_group g) const noexcept {
    return groups_[static_cast<std::size_t>(g)];
  }

 private:
  engine_vector<recovery::persist_range> groups_[3];
};

}  // namespace

bool plain_changes_pending(const heap_impl& impl) noexcept {
  return impl.writable && impl.domain->durable() &&
         alloc::g_unsettled_marks.load(std::memory_order_acquire) != impl.settled_marks.load(std::memory_order_acquire);
}

int settle_plain_changes(heap_impl& impl, const std::uint32_t* pods, std::size_t pod_count) noexcept {
  if (!plain_changes_pending(impl)) return 0;
  std::uint64_t marks = alloc::g_unsettled_marks.load(std::memory_order_acquire);
  try {
    settle_ranges ranges;
    bool others_left = false;
    if (alloc::collect_unsettled(impl.region, pods, pod_count, ranges, &others_left) != 0) {
      for (auto g : {alloc::settle_group::links, alloc::settle_group::headers, alloc::settle_group::entries}) {
        const auto& group = ranges.group(g);
        if (int err = impl.domain->persist(group.data(), group.size())) {
          // Settle again next time: what was cleared is not known durable.
          alloc::mark_all_unsettled(impl.region);
          return err;
        }
      }
    }
    if (!others_left) impl.settled_marks.store(marks, std::memory_order_release);
  } catch (const std::bad_alloc&) {
    return ENOMEM;
  }
  return 0;
}

}  // namespace larder
