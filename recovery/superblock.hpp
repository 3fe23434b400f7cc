// Reading, validating and updating the two superblock copies of a heap.
// An update writes the stale copy with a higher generation, so a crash in
// the middle leaves the other copy intact: the update is atomic.
#pragma once

#include "recovery/layout.hpp"
#include "recovery/persist.hpp"

#include <larder/status.hpp>

namespace larder::recovery {

// Fills the checksum of `sb` from its other fields.
void seal_superblock(layout::superblock* sb) noexcept;
bool superblock_checksum_ok(const layout::superblock& sb) noexcept;

// Reads both copies from the start of `fd` (a file `file_size` bytes long)
// and returns the current one in `out`, with its copy index in `*copy`.
// Errors: not_a_heap (neither copy has the magic), corrupt (no copy passes
// its checksum), newer_format, foreign_build, truncated (the file is shorter
// than the superblock says or than the superblocks themselves).
status read_superblock(int fd, std::uint64_t file_size, layout::superblock* out, int* copy);

// Writes `sb` over the stale copy in the mapped heap at `base` with a
// higher generation and makes it durable in `domain`, then does the same
// for the other copy, so that each copy alone is up to date. `*current` is
// the copy index in use, updated as each write lands.
int write_superblock(void* base, layout::superblock* sb, int* current, persist_domain& domain) noexcept;

}  // namespace larder::recovery
