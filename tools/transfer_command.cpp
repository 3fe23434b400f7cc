// `larder push [--all] [--force] [--json] HEAP|STORE REMOTE [VERSION]` and
// `larder pull [--all] [--force] [--json] REMOTE HEAP|STORE [VERSION]`:
// versions copied between chunk stores; see docs/tools/larder.md.
#include "transfer_command.hpp"

#include "output.hpp"

#include <larder/versions.hpp>

#include <cstdio>
#include <filesystem>
#include <system_error>

namespace {

std::string count_of(std::uint64_t n, const char* what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

// A heap file's store is HEAP.versions; anything else names a store.
std::string store_of(const std::string& path) {
  std::error_code ignored;
  return std::filesystem::is_regular_file(path, ignored) ? path + ".versions" : path;
}

}  // namespace

transfer_command::transfer_command(CLI::App& app) {
  push_ = app.add_subcommand("push", "copy a version and its ref to another store, sending only missing chunks");
  push_->add_option("store", local_, "a version store directory, or a heap file (its store is HEAP.versions)")
      ->required();
  push_->add_option("remote", remote_, "a directory (made a store when absent or empty), or rados:POOL[@CONF]")
      ->required();
  push_->add_option("version", version_, "a version id, an unambiguous prefix, or a branch or tag (default: HEAD)");
  pull_ = app.add_subcommand("pull", "copy versions and refs from another store, fetching only missing chunks");
  pull_->add_option("remote", remote_, "a version store directory, or rados:POOL[@CONF]")->required();
  pull_->add_option("store", local_,
                    "a version store directory (made when absent or empty), or a heap file (HEAP.versions)")
      ->required();
  pull_->add_option("version", version_, "a version id, an unambiguous prefix, or a branch or tag (default: every ref)");
  for (CLI::App* c : {push_, pull_}) {
    c->add_flag("--all", all_, "every version and ref");
    c->add_flag("--force", force_, "move refs that would not go forward (a branch elsewhere, a tag)");
    c->add_flag("--json", json_, "print JSON instead of text");
  }
}

int transfer_command::run() {
  using larder_tool::human_size;
  using larder_tool::printable;
  if (all_ && !version_.empty()) {
    std::fprintf(stderr, "larder: --all and a VERSION exclude each other\n");
    return larder_tool::kExitUsage;
  }
  const bool push = static_cast<bool>(*push_);
  larder::transfer_options options{.all = all_, .force = force_};
  larder::transfer_stats st;
  larder::status s = push ? larder::push_versions(store_of(local_), remote_, version_, options, &st)
                          : larder::pull_versions(remote_, store_of(local_), version_, options, &st);
  if (!s.ok()) {
    std::fprintf(stderr, "larder: %s\n", printable(s.to_string()).c_str());
    return larder_tool::exit_code_of(s);
  }
  if (json_) {
    larder_tool::print_json({{"versions_sent", st.versions_sent}, {"refs_set", st.refs_set},
                             {"chunks_asked", st.chunks_asked}, {"chunks_sent", st.chunks_sent},
                             {"chunk_bytes_sent", st.chunk_bytes_sent}, {"version_bytes_sent", st.version_bytes_sent},
                             {"total_ms", static_cast<double>(st.total_ns) / 1e6}});
  } else {
    std::printf("%s %s, %llu of %s asked about (%s), %s of manifests; %s set; %.1f ms\n",
                push ? "pushed" : "pulled", count_of(st.versions_sent, "version").c_str(),
                static_cast<unsigned long long>(st.chunks_sent), count_of(st.chunks_asked, "chunk").c_str(),
                human_size(st.chunk_bytes_sent).c_str(), human_size(st.version_bytes_sent).c_str(),
                count_of(st.refs_set, "ref").c_str(), static_cast<double>(st.total_ns) / 1e6);
  }
  return larder_tool::kExitOk;
}
