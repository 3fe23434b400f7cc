// port/pmem.hpp over libpmem2 (pmem2_api.hpp), and the loader of libpmem2.
#include "port/pmem.hpp"

#include "port/linux/pmem2_api.hpp"

#include <dlfcn.h>

#include <type_traits>

namespace larder::port {

// Without libpmem2 no file is treated as pmem.
const pmem2_api* load_pmem2() {
  static pmem2_api api;
  static const pmem2_api* loaded = [] () -> const pmem2_api* {
    void* lib = dlopen("libpmem2.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) return nullptr;
    bool ok = true;
    auto get = [&](auto* slot, const char* name) {
      void* symbol = dlsym(lib, name);
      ok = ok && symbol != nullptr;
      *slot = reinterpret_cast<std::remove_pointer_t<decltype(slot)>>(symbol);
    };
    get(&api.source_from_fd, "pmem2_source_from_fd");
    get(&api.source_alignment, "pmem2_source_alignment");
    get(&api.source_delete, "pmem2_source_delete");
    get(&api.config_new, "pmem2_config_new");
    get(&api.config_delete, "pmem2_config_delete");
    get(&api.set_granularity, "pmem2_config_set_required_store_granularity");
    get(&api.set_length, "pmem2_config_set_length");
    get(&api.set_offset, "pmem2_config_set_offset");
    get(&api.set_vm_reservation, "pmem2_config_set_vm_reservation");
    get(&api.reservation_new, "pmem2_vm_reservation_new");
    get(&api.reservation_delete, "pmem2_vm_reservation_delete");
    get(&api.reservation_address, "pmem2_vm_reservation_get_address");
    get(&api.map_new, "pmem2_map_new");
    get(&api.map_delete, "pmem2_map_delete");
    get(&api.get_granularity, "pmem2_map_get_store_granularity");
    get(&api.get_flush, "pmem2_get_flush_fn");
    get(&api.get_drain, "pmem2_get_drain_fn");
    get(&api.get_memcpy, "pmem2_get_memcpy_fn");
    get(&api.errormsg, "pmem2_errormsg");
    return ok ? &api : nullptr;
  }();
  return loaded;
}

namespace {

struct probe_state {
  const pmem2_api* api;
  pmem2_source* source = nullptr;
  pmem2_config* config = nullptr;
  pmem2_map* map = nullptr;
};

void destroy(probe_state* p) {
  if (p->map != nullptr) p->api->map_delete(&p->map);
  if (p->config != nullptr) p->api->config_delete(&p->config);
  if (p->source != nullptr) p->api->source_delete(&p->source);
  delete p;
}

}  // namespace

bool probe_pmem(int fd, pmem_flushes* out) {
  const pmem2_api* api = load_pmem2();
  if (api == nullptr) return false;
  // libpmem2 learns the granularity only by mapping; one page is enough,
  // and the mapping is kept because the flush functions belong to it.
  auto* p = new probe_state{api};
  bool ok = api->source_from_fd(&p->source, fd) == 0 && api->config_new(&p->config) == 0 &&
            api->set_granularity(p->config, PMEM2_GRANULARITY_PAGE) == 0 && api->set_length(p->config, 4096) == 0 &&
            api->map_new(&p->map, p->config, p->source) == 0;
  if (!ok || api->get_granularity(p->map) == PMEM2_GRANULARITY_PAGE) {
    destroy(p);
    return false;
  }
  out->flush = api->get_flush(p->map);
  out->drain = api->get_drain(p->map);
  out->probe = p;
  return true;
}

void release_pmem(pmem_flushes* flushes) {
  if (flushes->probe != nullptr) destroy(static_cast<probe_state*>(flushes->probe));
  *flushes = pmem_flushes{};
}

}  // namespace larder::port
