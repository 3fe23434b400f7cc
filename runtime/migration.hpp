// The migrator of a heap (docs/tiers.md): what it keeps for one open heap,
// and the two places the heap's own life calls it: close, and an open
// after a crash that left pages evicted. The public calls are in
// include/larder/tiers.hpp.
#pragma once

#include <larder/status.hpp>

namespace larder {

class heap_impl;

struct migration_state;
struct migration_state_deleter {
  void operator()(migration_state* m) const noexcept;
};

// Close: stops the migrator's thread, brings every evicted page back
// (while the tracker still serves them) and removes the tier's files.
void end_migration(heap_impl& impl) noexcept;

// A writer open of a shm heap, before anything reads its pages (recovery
// of transactions writes before-images into them): the pages a crash left
// evicted are read back from the tier the heap's migration record names
// and written into the heap, then the tier's files are removed. Pages the
// heap holds again (faulted back before the crash) are kept. `corrupt`
// when the tier cannot give a page back.
status restore_evicted_pages(heap_impl& impl);

}  // namespace larder
