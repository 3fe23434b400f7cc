// larder::find_outside_pointers: words of a heap's reachable objects that
// point into this process's memory outside every open heap (check.hpp).
#include <larder/check.hpp>

#include "allocator/alloc.hpp"
#include "allocator/heap_map.hpp"
#include "allocator/region.hpp"
#include "port/os.hpp"
#include "port/process_maps.hpp"
#include "recovery/records.hpp"
#include "runtime/heap_impl.hpp"

#include <algorithm>
#include <cstring>

namespace larder {

namespace {

// What lies at `address`, when it is memory of this process that a heap
// object must not point to; empty when it is not.
std::string describe_target(std::uintptr_t address, const std::vector<port::process_mapping>& maps) {
  if (alloc::region* r = alloc::find_region(reinterpret_cast<const void*>(address)); r != nullptr)
    return r == alloc::g_process_region ? "the process heap (liblarder_malloc)" : std::string();
  auto after = std::upper_bound(maps.begin(), maps.end(), address,
                                [](std::uintptr_t a, const port::process_mapping& m) { return a < m.start; });
  if (after == maps.begin()) return {};
  const port::process_mapping& m = *(after - 1);
  if (address >= m.end) return {};
  return m.name.empty() ? "anonymous memory" : m.name;
}

}  // namespace

status find_outside_pointers(const heap& h, std::vector<outside_pointer>* out, std::size_t limit) {
  out->clear();
  heap_impl* impl = h.impl();
  if (impl == nullptr) return status(errc::invalid_argument, "the heap is not open");
  std::vector<port::process_mapping> maps;
  if (int err = port::read_process_mappings(&maps)) return status::from_errno(err, "reading /proc/self/maps");

  alloc::heap_map map;
  map.build(impl->region.view());
  alloc::reach_marks marks = map.new_marks();
  const layout::heap_meta* meta = impl->meta();
  // One stamp for every root: a block two roots reach is scanned once, for
  // the first.
  constexpr std::uint32_t kStamp = 1;
  for (const layout::root_record& rec : meta->roots) {
    if (rec.in_use != recovery::kRootLive) continue;
    alloc::heap_map::reach_result reached;
    map.reach(rec.object, kStamp, false, &marks, &reached);
    for (alloc::block_ref b : reached.blocks) {
      const std::uint64_t start = map.block_start(b);
      const std::size_t bytes = map.block_bytes(b) & ~std::size_t{7};
      for (std::size_t offset = 0; offset < bytes; offset += 8) {
        std::uintptr_t value;
        std::memcpy(&value, reinterpret_cast<const void*>(start + offset), sizeof(value));
        if (value < port::kOsPageSize || impl->region.contains(reinterpret_cast<const void*>(value))) continue;
        std::string target = describe_target(value, maps);
        if (target.empty()) continue;
        if (out->size() == limit) return {};
        out->push_back({std::string(rec.name, ::strnlen(rec.name, sizeof(rec.name))),
                        reinterpret_cast<const void*>(start), offset, value, std::move(target)});
      }
    }
  }
  return {};
}

}  // namespace larder
