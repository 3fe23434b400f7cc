// port/pmem.hpp over libpmem2.
#include "port/pmem.hpp"

#include <libpmem2.h>

namespace larder::port {

namespace {
struct probe_state {
  pmem2_source* source = nullptr;
  pmem2_config* config = nullptr;
  pmem2_map* map = nullptr;
};

void destroy(probe_state* p) {
  if (p->map != nullptr) pmem2_map_delete(&p->map);
  if (p->config != nullptr) pmem2_config_delete(&p->config);
  if (p->source != nullptr) pmem2_source_delete(&p->source);
  delete p;
}
}  // namespace

bool probe_pmem(int fd, pmem_flushes* out) {
  // libpmem2 learns the granularity only by mapping; one page is enough,
  // and the mapping is kept because the flush functions belong to it.
  auto* p = new probe_state();
  bool ok = pmem2_source_from_fd(&p->source, fd) == 0 && pmem2_config_new(&p->config) == 0 &&
            pmem2_config_set_required_store_granularity(p->config, PMEM2_GRANULARITY_PAGE) == 0 &&
            pmem2_config_set_length(p->config, 4096) == 0 && pmem2_map_new(&p->map, p->config, p->source) == 0;
  if (!ok || pmem2_map_get_store_granularity(p->map) == PMEM2_GRANULARITY_PAGE) {
    destroy(p);
    return false;
  }
  out->flush = pmem2_get_flush_fn(p->map);
  out->drain = pmem2_get_drain_fn(p->map);
  out->probe = p;
  return true;
}

void release_pmem(pmem_flushes* flushes) {
  if (flushes->probe != nullptr) destroy(static_cast<probe_state*>(flushes->probe));
  *flushes = pmem_flushes{};
}

}  // namespace larder::port
