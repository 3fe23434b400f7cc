// Write protection of ranges of this process's mappings, to keep data from
// being written outside the code that owns it: page protections (mprotect:
// every thread at once, a system call per change) and protection keys
// (x86-64 PKU: ranges tagged with a key once, then each thread's writes
// allowed or denied with no system call).
#pragma once

#include <cstddef>

namespace larder::port {

// Makes [p, p + size) read-only, or readable and writable again. p and size
// must be multiples of the OS page size. 0 or an errno value.
int guard_pages(void* p, std::size_t size, bool writable);

// Whether protection keys work here; *why (static text) says why not.
bool guard_keys_available(const char** why);
// A key that denies writes in the calling thread. ENOTSUP without PKU,
// ENOSPC when every key is taken, or another errno value.
int guard_key_allocate(int* key);
void guard_key_free(int key);
// Tags [p, p + size) (page multiples) with `key`, readable and writable as
// far as page protections go; key 0 removes the tag. 0 or an errno value.
int guard_key_assign(void* p, std::size_t size, int key);
// The calling thread's rights on `key`: read and write, or read only.
void guard_key_allow_writes(int key, bool allow) noexcept;

}  // namespace larder::port
