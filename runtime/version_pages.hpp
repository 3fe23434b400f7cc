// What a version read outside an open heap needs, shared by clones and
// restores into a heap's file (version_clone.cpp) and read-only opens of a
// version (version_image.cpp): the version read from its store and checked
// to describe a heap, the superblock of a heap holding it, and its pages in
// batches.
#pragma once

#include "recovery/layout.hpp"
#include "tiers/chunks/chunk_store.hpp"

#include <larder/status.hpp>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace larder {

struct stored_version {
  chunks::version_id id;
  std::string branch;  // "heads/<n>" when named by a branch, else ""
  chunks::version_record record;
};

// Opens an existing store (not_a_heap when `directory` is not one) and
// reads the version `name` names; corrupt when its geometry cannot be a
// heap's (base, size, or a page in the superblocks).
status read_stored_version(const std::string& directory, std::string_view name,
                           std::unique_ptr<chunks::chunk_store>* store, stored_version* out);

// A sealed superblock (generation 1) of a file heap holding the version,
// with `reserve` bytes of address space.
layout::superblock version_superblock(const chunks::version_record& v, std::uint64_t reserve);

// Calls `put(first_page, count, bytes)` for each run of consecutive
// non-zero pages of the version, ascending, reading (and verifying) up to
// 64 MiB of chunks at a time; stops at the first error.
using page_run_fn = std::function<status(std::size_t first_page, std::size_t count, const char* bytes)>;
status for_each_page_run(chunks::chunk_store& store, const chunks::version_record& v, const page_run_fn& put);


}  // namespace larder
