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

// The heap's region handed `segments` new segments to the calling thread
// (region_hooks::segments_acquired): while a budget is set and the heap's
// resident pod pages, with what was loaded and acquired since the last
// pass, are past the budget and an eighth, the thread waits (up to 200 ms)
// for a pass of the migrator. Filling a heap faster than its pods can be
// written out would otherwise overrun the budget.
void hold_for_budget(migration_state& m, std::size_t segments) noexcept;

// Close: stops the migrator's thread, brings every evicted page of a shm
// heap back (while the tracker still serves them; an anonymous heap's are
// forgotten, as its memory goes) and removes the tiers' files.
void end_migration(heap_impl& impl) noexcept;

// A writer open of a shm heap, before anything reads its pages (recovery
// of transactions writes before-images into them): the pages a crash left
// evicted are read back from the tier the heap's migration record names
// and written into the heap, then the tier's files are removed. Pages the
// heap holds again (faulted back before the crash) are kept. `corrupt`
// when the tier cannot give a page back.
status restore_evicted_pages(heap_impl& impl);

}  // namespace larder
