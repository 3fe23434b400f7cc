// push_versions and pull_versions (larder/versions.hpp): a chunk store
// and a remote, through tiers/chunks/transfer.hpp.
#include "port/os.hpp"
#include "tiers/chunks/directory_store.hpp"
#include "tiers/chunks/transfer.hpp"

#include <larder/versions.hpp>

namespace larder {
namespace {

// What push sends for "" or "HEAD": HEAD's branch, or its detached version.
status head_name(chunks::chunk_store& store, std::string* out) {
  chunks::head_state head;
  if (status s = store.get_head(&head); !s.ok()) return s;
  if (!head.has_version) return status(errc::not_found, "HEAD names no version yet");
  *out = head.detached ? head.id.hex() : head.branch;
  return {};
}

status run_transfer(chunks::remote_store& from, chunks::remote_store& to, std::string_view version,
                    const transfer_options& options, transfer_stats* out) {
  const std::uint64_t start = port::monotonic_ns();
  chunks::transfer_plan plan;
  chunks::transfer_stats stats;
  status s = chunks::plan_transfer(from, version, options.all, &plan);
  if (s.ok()) s = chunks::transfer(from, to, plan, options.force, &stats);
  *out = {stats.versions_sent, stats.refs_set, stats.chunks_asked, stats.chunks_sent, stats.chunk_bytes_sent,
          stats.version_bytes_sent, port::monotonic_ns() - start};
  return s;
}

}  // namespace

status push_versions(const std::string& store_directory, const std::string& remote, std::string_view version,
                     const transfer_options& options, transfer_stats* out) {
  *out = {};
  std::unique_ptr<chunks::directory_store> local;
  if (status s = chunks::directory_store::open(store_directory, {}, &local); !s.ok()) return s;
  std::string name(version);
  if (!options.all && (name.empty() || name == "HEAD")) {
    if (status s = head_name(local->store(), &name); !s.ok()) return s;
  }
  std::unique_ptr<chunks::remote_store> to;
  if (status s = chunks::open_remote(remote, true, &to); !s.ok()) return s;
  return run_transfer(*local, *to, name, options, out);
}

status pull_versions(const std::string& remote, const std::string& store_directory, std::string_view version,
                     const transfer_options& options, transfer_stats* out) {
  *out = {};
  std::unique_ptr<chunks::remote_store> from;
  if (status s = chunks::open_remote(remote, false, &from); !s.ok()) return s;
  std::unique_ptr<chunks::directory_store> local;
  if (status s = chunks::directory_store::open(store_directory, {.create = true}, &local); !s.ok()) return s;
  return run_transfer(*from, *local, version, options, out);
}

}  // namespace larder
