// `larder clone [--reserve BYTES] [--json] STORE|HEAP VERSION NEWFILE`:
// writes a new file heap holding one version; see docs/tools/larder.md.
#include "clone_command.hpp"

#include "output.hpp"

#include <larder/versions.hpp>

#include <cstdio>
#include <filesystem>
#include <system_error>

clone_command::clone_command(CLI::App& app) {
  command_ = app.add_subcommand("clone", "write a new heap file holding one version");
  command_->add_option("source", source_, "a version store directory, or a heap file (its store is HEAP.versions)")
      ->required();
  command_->add_option("version", version_, "a version id, an unambiguous prefix, or a branch or tag")->required();
  command_->add_option("newfile", out_, "the new heap file to write (must not exist)")->required();
  command_->add_option("--reserve", reserve_, "address space the clone reserves, in bytes (default 64 GiB)");
  command_->add_flag("--json", json_, "print JSON instead of text");
}

int clone_command::run() {
  using larder_tool::printable;
  std::error_code ignored;
  const std::string store = std::filesystem::is_directory(source_, ignored) ? source_ : source_ + ".versions";
  larder::checkout_stats st;
  larder::status s = larder::clone_version(store, version_, out_, reserve_, &st);
  if (!s.ok()) {
    std::fprintf(stderr, "larder: %s\n", printable(s.to_string()).c_str());
    return larder_tool::exit_code_of(s);
  }
  if (json_) {
    larder_tool::print_json({{"id", st.id}, {"clone", out_}, {"pages_written", st.pages_loaded},
                             {"total_ms", static_cast<double>(st.total_ns) / 1e6}});
  } else {
    std::printf("cloned %s into %s: %zu pages written; %.1f ms\n", st.id.c_str(), printable(out_).c_str(),
                st.pages_loaded, static_cast<double>(st.total_ns) / 1e6);
  }
  return larder_tool::kExitOk;
}
