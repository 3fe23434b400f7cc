// The memory guard (port/memory_guard.hpp) on Linux: mprotect, and the
// pkey system calls with PKRU writes for protection keys.
#include "port/memory_guard.hpp"

#include "port/linux/kernel_abi.hpp"
#include "port/linux/pkru.hpp"
#include "port/linux/tracker_backends.hpp"

#include <errno.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace larder::port {

int guard_pages(void* p, std::size_t size, bool writable) {
  return ::mprotect(p, size, writable ? PROT_READ | PROT_WRITE : PROT_READ) == 0 ? 0 : errno;
}

bool guard_keys_available(const char** why) {
  tracker_probe probe = backends::probe_pkey();
  if (why != nullptr) *why = probe.available ? "" : probe.reason;
  return probe.available;
}

int guard_key_allocate(int* key) {
  if (!guard_keys_available(nullptr)) return ENOTSUP;
  long k = ::syscall(kabi::kSysPkeyAlloc, 0, kWriteDisable);
  if (k < 0) return errno;
  *key = static_cast<int>(k);
  return 0;
}

void guard_key_free(int key) { ::syscall(kabi::kSysPkeyFree, key); }

int guard_key_assign(void* p, std::size_t size, int key) {
  return ::syscall(kabi::kSysPkeyMprotect, p, size, PROT_READ | PROT_WRITE, key) == 0 ? 0 : errno;
}

void guard_key_allow_writes(int key, bool allow) noexcept {
  std::uint32_t pkru = read_pkru() & ~key_bits(key, kAccessDisable | kWriteDisable);
  if (!allow) pkru |= key_bits(key, kWriteDisable);
  write_pkru(pkru);
}

}  // namespace larder::port
