// Kernel interfaces newer than the system headers: userfaultfd async
// write-protect (Linux 6.7), the PAGEMAP_SCAN ioctl (6.7) and the pkey
// system calls. Values are the kernel's uapi ones; support is detected at
// run time, never assumed from these definitions.
#pragma once

#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

#include <cstdint>

namespace larder::port::kabi {

inline constexpr std::uint64_t kUffdFeatureWpUnpopulated = std::uint64_t{1} << 13;
inline constexpr std::uint64_t kUffdFeatureWpAsync = std::uint64_t{1} << 15;
inline constexpr int kUffdUserModeOnly = 1;  // UFFD_USER_MODE_ONLY

// <linux/fs.h>: struct pm_scan_arg and struct page_region.
struct page_region {
  std::uint64_t start;
  std::uint64_t end;
  std::uint64_t categories;
};
struct pm_scan_arg {
  std::uint64_t size;
  std::uint64_t flags;
  std::uint64_t start;
  std::uint64_t end;
  std::uint64_t walk_end;
  std::uint64_t vec;
  std::uint64_t vec_len;
  std::uint64_t max_pages;
  std::uint64_t category_inverted;
  std::uint64_t category_mask;
  std::uint64_t category_anyof_mask;
  std::uint64_t return_mask;
};
inline constexpr std::uint64_t kPmScanWpMatching = 1 << 0;
inline constexpr std::uint64_t kPmScanCheckWpAsync = 1 << 1;
inline constexpr std::uint64_t kPageIsWritten = 1 << 1;
inline constexpr unsigned long kPagemapScan = _IOWR('f', 16, pm_scan_arg);

#ifndef SYS_pkey_mprotect
inline constexpr long kSysPkeyMprotect = 329;
inline constexpr long kSysPkeyAlloc = 330;
inline constexpr long kSysPkeyFree = 331;
#else
inline constexpr long kSysPkeyMprotect = SYS_pkey_mprotect;
inline constexpr long kSysPkeyAlloc = SYS_pkey_alloc;
inline constexpr long kSysPkeyFree = SYS_pkey_free;
#endif
inline constexpr int kSegvPkuErr = 4;  // si_code SEGV_PKUERR

}  // namespace larder::port::kabi
