// The reference graph between pods as DOT or JSON; see graph_output.hpp.
#include "graph_output.hpp"

#include "output.hpp"

#include <larder/references.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace larder_tool {

namespace {

// A DOT string's contents: printable() already turned what a terminal
// would obey into escapes, whose backslashes DOT must see as backslashes.
std::string dot_text(std::string_view text) {
  std::string out;
  for (char c : printable(text)) {
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
  return out;
}

std::string as_dot(const std::vector<larder::pod_info>& pods, const std::vector<larder::pod_edge>& edges) {
  std::ostringstream out;
  out << "digraph pods {\n  node [shape=box];\n";
  for (const larder::pod_info& p : pods)
    out << "  pod" << p.id << " [label=\"" << dot_text(p.name) << " (" << p.id << ")\\n"
        << human_size(p.bytes_in_use) << "\"];\n";
  for (const larder::pod_edge& e : edges)
    out << "  pod" << e.from << " -> pod" << e.to << " [label=\"" << e.pages << "\"];\n";
  out << "}\n";
  return out.str();
}

std::string as_json(const std::vector<larder::pod_info>& pods, const std::vector<larder::pod_edge>& edges) {
  json nodes = json::array(), links = json::array();
  for (const larder::pod_info& p : pods) nodes.push_back({{"id", p.id}, {"name", p.name}, {"bytes_in_use", p.bytes_in_use}});
  for (const larder::pod_edge& e : edges) links.push_back({{"from", e.from}, {"to", e.to}, {"pages", e.pages}});
  return json{{"pods", nodes}, {"edges", links}}.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace

int write_pod_graph(const larder::heap& h, const std::string& file, bool as_json_document) {
  std::vector<larder::pod_edge> edges;
  if (larder::status s = larder::pod_graph(h, &edges); !s.ok()) {
    std::fprintf(stderr, "larder: %s\n", printable(s.to_string()).c_str());
    return exit_code_of(s);
  }
  const std::vector<larder::pod_info> pods = h.pods();
  const std::string text = as_json_document ? as_json(pods, edges) : as_dot(pods, edges);
  if (file.empty() || file == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return kExitOk;
  }
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) {
    std::fprintf(stderr, "larder: cannot write %s\n", printable(file).c_str());
    return kExitCannotRun;
  }
  return kExitOk;
}

}  // namespace larder_tool
