// The public calls of larder/references.hpp: the graph, the pods a root
// reaches, and pinning them; the graph itself is pod_graph.cpp's.
#include <larder/references.hpp>

#include "allocator/dirty_map.hpp"
#include "runtime/heap_impl.hpp"
#include "runtime/pod_graph.hpp"
#include "runtime/process_heap_scope.hpp"

#include <larder/tiers.hpp>

#include <string>

namespace larder {

status pod_graph(const heap& h, std::vector<pod_edge>* out) {
  out->clear();
  heap_impl* impl = h.impl();
  if (impl == nullptr) return status(errc::invalid_argument, "the heap is not open");
  return pod_graph_edges(*impl, out);
}

status pods_reached(const heap& h, std::string_view root, std::vector<std::uint32_t>* out) {
  out->clear();
  heap_impl* impl = h.impl();
  if (impl == nullptr) return status(errc::invalid_argument, "the heap is not open");
  process_heap_scope scope;
  const void* object = h.find_root(root);
  if (object == nullptr) return status(errc::not_found, "no root \"" + std::string(root) + "\"");
  const std::uint32_t start = impl->region.contains(object)
                                  ? alloc::pod_of_address(impl->region, reinterpret_cast<std::uintptr_t>(object))
                                  : alloc::kUnownedPod;
  if (start >= layout::kMaxPods)
    return status(errc::invalid_argument, "root \"" + std::string(root) + "\" lies in no pod's segment");
  std::vector<pod_edge> edges;
  if (status s = pod_graph_edges(*impl, &edges); !s.ok()) return s;
  *out = pods_reachable(edges, {start});
  return {};
}

status pin_reached(heap& h, std::string_view root, bool pinned) {
  std::vector<std::uint32_t> pods;
  if (status s = pods_reached(h, root, &pods); !s.ok()) return s;
  layout::heap_meta* meta = h.impl()->meta();
  for (std::uint32_t id : pods)
    if (status s = pin_pod(h, pod(reinterpret_cast<pod_record*>(&meta->pods[id])), pinned); !s.ok()) return s;
  return {};
}

}  // namespace larder
