#include "placement_output.hpp"

#include <cstdio>
#include <map>
#include <set>

namespace larder_tool {

std::vector<larder::placement_site> placement_sites_or_warn(const larder::heap& h) {
  std::vector<larder::placement_site> sites;
  // The record is advice: a damaged one is worth a warning, not the pods.
  if (larder::status s = larder::placement_sites(h, &sites); !s.ok())
    std::fprintf(stderr, "larder: warning: the placement record cannot be read: %s\n", s.to_string().c_str());
  return sites;
}

std::string placement_why(const larder::placement_site& s) {
  char text[160];
  switch (s.reason) {
    case larder::placement_reason::probing:
      std::snprintf(text, sizeof text, "probing: a pod of its own until 3 epochs are measured (%u so far)", s.epochs);
      break;
    case larder::placement_reason::apart:
      std::snprintf(text, sizeof text, "apart: bundling it would write %s more per epoch",
                    human_size(static_cast<std::uint64_t>(s.saving_bytes)).c_str());
      break;
    case larder::placement_reason::bundled:
      std::snprintf(text, sizeof text, "bundled with sites of like rate: saves %s per epoch",
                    human_size(static_cast<std::uint64_t>(s.saving_bytes)).c_str());
      break;
    case larder::placement_reason::large:
      std::snprintf(text, sizeof text, "large: huge blocks keep a pod of their own");
      break;
    case larder::placement_reason::overflow:
      std::snprintf(text, sizeof text, "overflow: no spare pod was left when it first allocated");
      break;
  }
  return text;
}

json placement_sites_json(const std::vector<larder::placement_site>& sites, std::uint32_t pod) {
  json list = json::array();
  for (const auto& s : sites) {
    if (s.pod != pod) continue;
    list.push_back({{"site", s.location}, {"block_bytes", s.block_bytes}, {"first_pod", s.first_pod},
                    {"reason", larder::to_string(s.reason)}, {"write_rate", s.write_rate}, {"bytes", s.bytes},
                    {"epochs", s.epochs}, {"saving_bytes", s.saving_bytes}, {"why", placement_why(s)}});
  }
  return list;
}

void print_placement_sites(const std::vector<larder::placement_site>& sites) {
  if (sites.empty()) return;
  std::printf("\nautomatic placement: which sites feed which pod, and why\n");
  std::printf("%-6s %-12s %8s %6s  %s\n", "pod", "block", "rate", "from", "site / why");
  for (const auto& s : sites) {
    std::string block = s.block_bytes == 0 ? "huge" : std::to_string(s.block_bytes) + " B";
    std::printf("%-6u %-12s %8.3f %6u  %s\n%36s%s\n", s.pod, block.c_str(), s.write_rate, s.first_pod,
                printable(s.location).c_str(), "", placement_why(s).c_str());
  }
}

std::string placement_line(const std::vector<larder::placement_site>& sites) {
  if (sites.empty()) return "off (never used on this heap)";
  std::set<std::uint32_t> pods;
  std::map<std::string, int> by_reason;
  for (const auto& s : sites) {
    pods.insert(s.pod);
    ++by_reason[larder::to_string(s.reason)];
  }
  std::string line = std::to_string(sites.size()) + " sites in " + std::to_string(pods.size()) + " pods:";
  const char* separator = " ";
  for (const auto& [reason, count] : by_reason) {
    line += separator + std::to_string(count) + " " + reason;
    separator = ", ";
  }
  return line + " (larder pods shows each)";
}

}  // namespace larder_tool
