// The cost model that groups allocation sites into pods (docs/placement.md).
// A pod costs what a checkpoint writes of it per epoch: its size times the
// chance it is written, plus a fixed overhead per pod. Two groups are
// bundled into one pod when that costs less than keeping them apart:
//   bundle = (Sp + So) * min(rp + ro, 1) + c
//   split  = Sp * rp + So * ro + 2c
// Pure and deterministic: no clock, no randomness, ties broken by key.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace larder {

struct site_measure {
  std::uint64_t key;  // the site's identity; orders ties
  double bytes;       // its size S
  double rate;        // its rate r: the share of its pages written per epoch, in [0, 1]
};

struct site_group {
  std::vector<std::size_t> members;  // indexes into the sites given, in the order bundled
  double bytes;
  double rate;
};

double bundle_cost(double pod_bytes, double pod_rate, double site_bytes, double site_rate, double overhead) noexcept;
double split_cost(double pod_bytes, double pod_rate, double site_bytes, double site_rate, double overhead) noexcept;

// Greedy grouping: the sites are taken by falling rate (then rising key),
// and each joins the group where bundling saves the most, or starts a
// group of its own when bundling saves nothing anywhere. The groups come
// out in the order they were started.
std::vector<site_group> group_sites(const std::vector<site_measure>& sites, double overhead);

}  // namespace larder
