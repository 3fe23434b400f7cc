// Shared objects loaded at run time: parts of larder built as modules of
// their own (the GPU tier, tiers/gpu_module.hpp), so that the libraries
// never depend on what those parts need. The Linux implementation is
// port/linux/module_linux.cpp (dlopen, dlsym, dladdr). Entry point:
// load_module.
#pragma once

#include <string>

namespace larder::port {

// Loads the shared object `path`, binding all its symbols now and keeping
// them to itself (RTLD_NOW | RTLD_LOCAL). A path without '/' goes through
// the loader's search (LD_LIBRARY_PATH, this library's RUNPATH, the
// system's directories). Returns its handle, or nullptr with the loader's
// reason in *error (no such file, not a shared object of this machine, a
// library it needs missing). A module is never unloaded: objects its code
// made may outlive any handle on it, and runtimes linked into it (CUDA's)
// cannot be unloaded safely. Loading it again returns the same handle.
void* load_module(const char* path, std::string* error);

// The address of `name` in the module `handle`, or nullptr with the
// loader's reason in *error.
void* module_symbol(void* handle, const char* name, std::string* error);

// The directory (no trailing '/') of the shared object or executable that
// holds the code at `address`; empty when the loader does not know one.
std::string directory_of_code(const void* address);

}  // namespace larder::port
