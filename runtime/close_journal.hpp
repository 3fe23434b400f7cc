// Close's write-back of a file heap. Stores outside transactions reach the
// file only here (docs/persistence.md), and a power failure in the middle
// of a write-back lands an arbitrary subset of the heap's cache lines. So
// the allocator's durable metadata (allocator/durable_metadata.hpp) goes
// first into a close journal in an undo-log lane (recovery/undo_log.hpp),
// durable before the write-back starts and retired after it ends: the
// next open that finds it complete writes its after-images again, which
// leaves the metadata exactly as this close saw it whatever subset of the
// write-back landed. User data outside transactions may still land in
// part, as before.
#pragma once

#include "recovery/persist.hpp"

#include <larder/status.hpp>

#include <vector>

namespace larder {

class heap_impl;

// Makes the whole heap durable, the allocator's metadata atomically, then
// records the close's time (layout::heap_meta::last_close_ns). With
// `only`, just those ranges, the allocator's metadata and the metadata
// block are made durable (a checkout's loaded pages): what else the
// program wrote stays as durable as it was. The
// allocator must be quiescent (thread caches flushed, nothing allocating)
// and no transaction running. Where the journal cannot be written (no
// room for it), the write-back goes ahead without one: once it returns
// OK everything is durable either way.
status write_back(heap_impl& impl, const std::vector<recovery::persist_range>* only = nullptr);

}  // namespace larder
