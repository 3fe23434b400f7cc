// Push and pull: versions copied from one chunk store to another
// (remote_store.hpp), sending only the chunks the destination lacks.
// Entry points: plan_transfer (which versions and refs a name stands for),
// transfer (the copy), check_ref_move (the rule for refs). docs/versions.md,
// "Push and pull".
#pragma once

#include "tiers/chunks/remote_store.hpp"

#include <larder/status.hpp>

#include <cstdint>
#include <string_view>
#include <vector>

namespace larder::chunks {

struct transfer_plan {
  std::vector<version_id> versions;  // to copy
  std::vector<ref_entry> refs;       // to set on the destination once they are there
};

struct transfer_stats {
  std::uint64_t versions_sent = 0;       // versions the destination lacked
  std::uint64_t refs_set = 0;            // refs created or moved
  std::uint64_t chunks_asked = 0;        // names the destination was asked about
  std::uint64_t chunks_sent = 0;         // chunks it lacked
  std::uint64_t chunk_bytes_sent = 0;    // their payload bytes, as stored (zstd where that saved)
  std::uint64_t version_bytes_sent = 0;  // manifests and base tables
};

// What `what` names in `from`: with `all`, every version and ref; "" every
// ref and the versions they name; else a ref ("heads/x", "tags/x", or "x"
// as heads/x, then tags/x: that version and that ref), a version id or an
// unambiguous prefix of one (4 hex digits or more: the version alone).
// Errors: not_found, invalid_argument (an ambiguous prefix).
status plan_transfer(remote_store& from, std::string_view what, bool all, transfer_plan* out);

// Whether the ref `r` of `from` may replace, in the store `there` (for
// messages), the ref of that name, which names `now` (not r.id) there: a
// branch moves only forward (r.id descends from `now` in `from`), a tag not
// at all. already_exists, saying why, otherwise.
status check_ref_move(remote_store& from, const ref_entry& r, const version_id& now, const std::string& there);

// Copies plan.versions that `to` lacks, oldest first, then sets plan.refs.
// For each version: asks `to` which of its chunks it lacks, in batches (only
// the pages that differ from its parent when `to` holds the parent, whose
// chunks it then holds), sends those, makes them durable, then the manifest
// (and its base table), byte for byte: the version keeps its id. A ref is
// created, or moved when the version it names now is an ancestor of the new
// one (a branch going forward); moving it elsewhere, or moving a tag, needs
// `force` (already_exists otherwise). Stopped at any point (an error, a
// kill, a power failure), `to` still reads every version and ref it had,
// and a second run sends only what did not become durable.
status transfer(remote_store& from, remote_store& to, const transfer_plan& plan, bool force, transfer_stats* stats);

}  // namespace larder::chunks
