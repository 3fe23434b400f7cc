// The marker that makes a place a chunk store (the file "store" of a
// directory store, the object "store" of a pool): made and checked here
// once, for every place a store lives (docs/format/chunks.md).
#pragma once

#include "tiers/chunks/format.hpp"

#include <larder/status.hpp>

#include <string>
#include <string_view>

namespace larder::chunks {

// A new store's marker: this format's version, a fresh uuid, now.
store_header new_store_marker();

// Whether `bytes` are a store's marker that this build reads: not_a_heap
// (something else), corrupt (a damaged marker), newer_format. `where`
// names the marker in messages.
status check_store_marker(std::string_view bytes, const std::string& where);

}  // namespace larder::chunks
