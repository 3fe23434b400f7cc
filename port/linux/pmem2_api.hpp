// libpmem2's functions, loaded when first needed: it pulls in a dozen
// libraries (ndctl, daxctl, udev...) that programs using only the
// allocator, or heaps that are not files, should not pay for at start.
// Shared by the heap's flush probe (pmem_linux.cpp) and pmem files
// (pmem_file_linux.cpp).
#pragma once

#include <libpmem2.h>

namespace larder::port {

struct pmem2_api {
  decltype(&pmem2_source_from_fd) source_from_fd;
  decltype(&pmem2_source_alignment) source_alignment;
  decltype(&pmem2_source_delete) source_delete;
  decltype(&pmem2_config_new) config_new;
  decltype(&pmem2_config_delete) config_delete;
  decltype(&pmem2_config_set_required_store_granularity) set_granularity;
  decltype(&pmem2_config_set_length) set_length;
  decltype(&pmem2_config_set_offset) set_offset;
  decltype(&pmem2_config_set_vm_reservation) set_vm_reservation;
  decltype(&pmem2_vm_reservation_new) reservation_new;
  decltype(&pmem2_vm_reservation_delete) reservation_delete;
  decltype(&pmem2_vm_reservation_get_address) reservation_address;
  decltype(&pmem2_map_new) map_new;
  decltype(&pmem2_map_delete) map_delete;
  decltype(&pmem2_map_get_store_granularity) get_granularity;
  decltype(&pmem2_get_flush_fn) get_flush;
  decltype(&pmem2_get_drain_fn) get_drain;
  decltype(&pmem2_get_memcpy_fn) get_memcpy;
  const char* (*errormsg)();
};

// nullptr when libpmem2 (1.11 or later) is not installed.
const pmem2_api* load_pmem2();

}  // namespace larder::port
