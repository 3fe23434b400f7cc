// port/pmem_file.hpp over libpmem2: one virtual memory reservation, one
// pmem2 mapping per growth step placed in it at the file offset it maps.
#include "port/pmem_file.hpp"

#include "port/linux/pmem2_api.hpp"
#include "port/os.hpp"

#include <errno.h>

#include <utility>
#include <vector>

namespace larder::port {

struct pmem_file::mapping_state {
  const pmem2_api* api = nullptr;
  int fd = -1;
  std::uint64_t reserved = 0;
  pmem2_source* source = nullptr;
  pmem2_vm_reservation* reservation = nullptr;
  std::vector<pmem2_map*> maps;  // in file order
  pmem2_memcpy_fn memcpy_fn = nullptr;
  pmem2_drain_fn drain_fn = nullptr;

  ~mapping_state() {
    for (auto it = maps.rbegin(); it != maps.rend(); ++it) api->map_delete(&*it);
    if (reservation != nullptr) api->reservation_delete(&reservation);
    if (source != nullptr) api->source_delete(&source);
  }
};

namespace {

// libpmem2's own codes (PMEM2_E_*) lie below every negated errno value.
int from_pmem2(int result, const pmem2_api* api, const char** detail) {
  *detail = api->errormsg();
  return result > PMEM2_E_UNKNOWN && result < 0 ? -result : EINVAL;
}

}  // namespace

pmem_file::pmem_file(std::unique_ptr<mapping_state> state) : state_(std::move(state)) {}
pmem_file::~pmem_file() = default;

int pmem_file::open(int fd, std::uint64_t capacity, std::unique_ptr<pmem_file>* out, const char** detail) {
  *detail = nullptr;
  const pmem2_api* api = load_pmem2();
  if (api == nullptr) {
    *detail = "libpmem2 (1.11 or later) is not installed";
    return ENOTSUP;
  }
  auto state = std::make_unique<mapping_state>();
  state->api = api;
  state->fd = fd;
  std::size_t alignment = 0;
  if (int r = api->source_from_fd(&state->source, fd)) return from_pmem2(r, api, detail);
  if (int r = api->source_alignment(state->source, &alignment)) return from_pmem2(r, api, detail);
  state->reserved = (capacity + alignment - 1) / alignment * alignment;
  if (int r = api->reservation_new(&state->reservation, nullptr, state->reserved)) return from_pmem2(r, api, detail);
  std::unique_ptr<pmem_file> made(new pmem_file(std::move(state)));
  made->alignment_ = alignment;
  made->base_ = static_cast<char*>(api->reservation_address(made->state_->reservation));
  *out = std::move(made);
  return 0;
}

int pmem_file::grow(std::uint64_t length, const char** detail) {
  *detail = nullptr;
  mapping_state& s = *state_;
  if (length <= size_) return 0;
  if (length % alignment_ != 0 || length > s.reserved) return EINVAL;
  if (int err = allocate_file_range(s.fd, size_, length - size_)) return err;
  if (int err = grow_file(s.fd, length)) return err;
  const pmem2_api* api = s.api;
  pmem2_config* config = nullptr;
  pmem2_map* map = nullptr;
  int r = api->config_new(&config);
  if (r == 0) r = api->set_granularity(config, PMEM2_GRANULARITY_PAGE);
  if (r == 0) r = api->set_offset(config, size_);
  if (r == 0) r = api->set_length(config, length - size_);
  if (r == 0) r = api->set_vm_reservation(config, s.reservation, size_);
  if (r == 0) r = api->map_new(&map, config, s.source);
  if (config != nullptr) api->config_delete(&config);
  if (r != 0) return from_pmem2(r, api, detail);
  s.maps.push_back(map);
  if (s.memcpy_fn == nullptr) {
    s.memcpy_fn = api->get_memcpy(map);
    s.drain_fn = api->get_drain(map);
    dax_ = api->get_granularity(map) != PMEM2_GRANULARITY_PAGE;
  }
  size_ = length;
  return 0;
}

void pmem_file::copy(void* to, const void* from, std::size_t length) const {
  state_->memcpy_fn(to, from, length, PMEM2_F_MEM_NONTEMPORAL | PMEM2_F_MEM_NODRAIN);
}

void pmem_file::drain() const { state_->drain_fn(); }

}  // namespace larder::port
