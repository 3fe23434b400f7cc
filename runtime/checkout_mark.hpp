// The mark a checkout leaves beside a file heap while it writes: the file
// "<heap>.checkout", holding the target version's id. From before the first
// page of the heap changes until the checkout is durable, a crash (or a
// failure half way) would leave the heap part old, part new, which nothing
// in the heap itself shows; the mark makes open refuse such a heap until
// restore_version writes a whole version into it (docs/versions.md,
// "Checkout"). Written through the chunk store's file_ops, so the crash
// harness's power failures cover it too.
#pragma once

#include <larder/status.hpp>

#include <string>

namespace larder {

// Durable once this returns OK.
status set_checkout_mark(const std::string& heap_file, const std::string& version_id);
// Durable once this returns OK; OK also when there is none.
status clear_checkout_mark(const std::string& heap_file);
// corrupt, naming the version, while a mark is there; OK when none is.
status refuse_if_checkout_marked(const std::string& heap_file);

}  // namespace larder
