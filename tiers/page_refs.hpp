// The one check of the pages a tier call is given, shared by every backend
// of tiers/tier.hpp.
#pragma once

#include "tiers/tier.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace larder::tiers {

// The pages sorted by index, or invalid_argument for an address that is
// not page aligned or an index given twice.
inline status sorted_pages(const page_ref* pages, std::size_t count, std::vector<page_ref>* out) {
  out->assign(pages, pages + count);
  std::sort(out->begin(), out->end(), [](const page_ref& a, const page_ref& b) { return a.index < b.index; });
  for (std::size_t i = 0; i < count; ++i) {
    if (reinterpret_cast<std::uintptr_t>((*out)[i].address) % kTierPageSize != 0) {
      return status(errc::invalid_argument, "tier page address not aligned to a page");
    }
    if (i > 0 && (*out)[i].index == (*out)[i - 1].index) {
      return status(errc::invalid_argument, "tier page index given twice in one call");
    }
  }
  return {};
}

// held_pages of a backend that keeps a pod's pages in a map keyed by page
// index: the indexes, ascending. The caller holds the map's lock.
template <class Pods>
std::vector<std::uint64_t> held_indexes(const Pods& pods, std::uint64_t pod) {
  std::vector<std::uint64_t> out;
  auto held = pods.find(pod);
  if (held == pods.end()) return out;
  out.reserve(held->second.size());
  for (const auto& page : held->second) out.push_back(page.first);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace larder::tiers
