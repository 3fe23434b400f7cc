// The PKRU register of x86-64 protection keys: reading and writing the
// calling thread's rights, and where the register sits in a signal frame.
// Shared by the pkey write tracker and the memory guard.
#pragma once

#include <cpuid.h>

#include <cstddef>
#include <cstdint>

namespace larder::port {

inline constexpr std::uint32_t kAccessDisable = 1;
inline constexpr std::uint32_t kWriteDisable = 2;

inline std::uint32_t read_pkru() noexcept {
  std::uint32_t eax, edx;
  asm volatile(".byte 0x0f,0x01,0xee" : "=a"(eax), "=d"(edx) : "c"(0));  // rdpkru
  return eax;
}
inline void write_pkru(std::uint32_t value) noexcept {
  asm volatile(".byte 0x0f,0x01,0xef" : : "a"(value), "c"(0), "d"(0) : "memory");  // wrpkru
}
inline std::uint32_t key_bits(int key, std::uint32_t bits) noexcept { return bits << (2 * key); }

// Offset of the PKRU component in a (standard-format) XSAVE area, which is
// the format of the signal frame; 0 when the CPU has none.
inline std::size_t pkru_offset() noexcept {
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid_count(0xD, 9, &eax, &ebx, &ecx, &edx)) return 0;
  return ebx;
}

}  // namespace larder::port
