// print_stats(); see stats.hpp.
#include "allocator/stats.hpp"

#include "allocator/arena.hpp"
#include "allocator/options.hpp"
#include "allocator/region.hpp"
#include "port/os.hpp"

namespace larder::alloc {

void print_stats() noexcept {
  message("statistics (pid %d): resident %zu KiB, peak resident %zu KiB", port::process_id(),
          port::resident_bytes() >> 10, port::peak_resident_bytes() >> 10);
  for_each_region(
      [](region* r, void*) {
        message("  heap %u at %p: reserve %zu MiB, %zu segments in use%s", r->slot, reinterpret_cast<void*>(r->base()),
                r->reserve() >> 20, r->segments_in_use(), r->writable() ? "" : " (read-only)");
        // Static: statistics print at exit, and must not allocate.
        static std::size_t in_use[layout::kMaxPods], held[layout::kMaxPods];
        r->usage(in_use, held);
        for (std::uint32_t pod = 0; pod < layout::kMaxPods; ++pod) {
          if (held[pod] == 0) continue;
          message("    pod %u: %zu KiB in blocks, %zu KiB in pages", pod, in_use[pod] >> 10, held[pod] >> 10);
        }
      },
      nullptr);
}

}  // namespace larder::alloc
