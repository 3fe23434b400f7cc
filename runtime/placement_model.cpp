#include "runtime/placement_model.hpp"

#include <algorithm>
#include <numeric>

namespace larder {

double bundle_cost(double pod_bytes, double pod_rate, double site_bytes, double site_rate, double overhead) noexcept {
  return (pod_bytes + site_bytes) * std::min(pod_rate + site_rate, 1.0) + overhead;
}

double split_cost(double pod_bytes, double pod_rate, double site_bytes, double site_rate, double overhead) noexcept {
  return pod_bytes * pod_rate + site_bytes * site_rate + 2 * overhead;
}

std::vector<site_group> group_sites(const std::vector<site_measure>& sites, double overhead) {
  std::vector<std::size_t> order(sites.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (sites[a].rate != sites[b].rate) return sites[a].rate > sites[b].rate;
    return sites[a].key < sites[b].key;
  });
  std::vector<site_group> groups;
  for (std::size_t index : order) {
    const site_measure& s = sites[index];
    site_group* best = nullptr;
    double best_saving = 0;
    for (site_group& g : groups) {
      double saving = split_cost(g.bytes, g.rate, s.bytes, s.rate, overhead) -
                      bundle_cost(g.bytes, g.rate, s.bytes, s.rate, overhead);
      if (saving > best_saving) {
        best_saving = saving;
        best = &g;
      }
    }
    if (best == nullptr) {
      groups.push_back({{index}, s.bytes, s.rate});
      continue;
    }
    best->members.push_back(index);
    best->bytes += s.bytes;
    best->rate = std::min(best->rate + s.rate, 1.0);
  }
  return groups;
}

}  // namespace larder
