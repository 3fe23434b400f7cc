// `larder salvage [--shm] [--json] HEAP OUT`: copies every root of HEAP
// whose object graph is intact into the new heap file OUT and says, root
// by root, what it did; see docs/tools/larder.md.
#include "salvage_command.hpp"

#include "output.hpp"

#include <larder/check.hpp>

#include <cstdio>

salvage_command::salvage_command(CLI::App& app) {
  command_ = app.add_subcommand("salvage", "copy every root whose objects are intact into a new heap");
  command_->add_option("heap", heap_, "heap file path (or shm name with --shm)")->required();
  command_->add_option("out", out_, "the new heap file to write (must not exist)")->required();
  command_->add_flag("--shm", shm_, "HEAP names a POSIX shared-memory object");
  command_->add_flag("--json", json_, "print JSON instead of text");
}

int salvage_command::run() {
  using larder_tool::printable;
  larder::salvage_report r;
  larder::status s = larder::salvage_heap(shm_ ? larder::backing::shm : larder::backing::file, heap_, out_, &r);
  int code = !s.ok() ? larder_tool::exit_code_of(s) : r.lost() == 0 ? larder_tool::kExitOk : larder_tool::kExitDamaged;
  if (json_) {
    using larder_tool::json;
    json roots = json::array();
    for (const auto& root : r.roots) {
      json one = {{"name", root.name}, {"salvaged", root.salvaged}};
      if (root.salvaged) {
        one["blocks"] = root.blocks;
        one["bytes"] = root.bytes;
      } else {
        one["lost_because"] = root.lost_because;
      }
      roots.push_back(std::move(one));
    }
    json out = {{"heap", heap_},
                {"out", out_},
                {"ok", s.ok()},
                {"roots", roots},
                {"notes", r.notes},
                {"salvaged", r.roots.size() - r.lost()},
                {"lost", r.lost()},
                {"blocks", r.blocks},
                {"bytes", r.bytes},
                {"pods", r.pods},
                {"pointers_relocated", r.pointers_relocated}};
    if (!s.ok()) out["error"] = s.to_string();
    larder_tool::print_json(out);
    return code;
  }
  if (!s.ok()) {
    std::fprintf(stderr, "larder: %s\n", printable(s.to_string()).c_str());
    return code;
  }
  for (const auto& n : r.notes) std::printf("note: %s\n", printable(n).c_str());
  for (const auto& root : r.roots) {
    if (root.salvaged)
      std::printf("salvaged: %s (%zu blocks, %s)\n", printable(root.name).c_str(), root.blocks,
                  larder_tool::human_size(root.bytes).c_str());
    else
      std::printf("lost: %s: %s\n", printable(root.name).c_str(), printable(root.lost_because).c_str());
  }
  std::printf("%s -> %s: %zu roots salvaged, %zu lost; %zu blocks (%s) in %zu pods, %zu pointers relocated\n",
              printable(heap_).c_str(), printable(out_).c_str(), r.roots.size() - r.lost(), r.lost(), r.blocks,
              larder_tool::human_size(r.bytes).c_str(), r.pods, r.pointers_relocated);
  return code;
}
