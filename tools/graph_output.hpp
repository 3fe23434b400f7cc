// `larder pods HEAP --graph`: the reference graph between a heap's pods
// (include/larder/references.hpp) as DOT or JSON (docs/tools/larder.md).
#pragma once

#include <larder/heap.hpp>

#include <string>

namespace larder_tool {

// Writes the graph of `h` to `file` (stdout when empty or "-"): DOT, one
// node per pod labelled with its name, id and bytes in use, one edge per
// pair of pods labelled with its pages; with `as_json`, a document with
// `pods` and `edges`. Returns the exit code.
int write_pod_graph(const larder::heap& h, const std::string& file, bool as_json);

}  // namespace larder_tool
