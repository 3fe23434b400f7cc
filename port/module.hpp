// Shared objects loaded at run time: parts of larder built as modules of
// their own (the GPU tier, tiers/gpu_module.hpp; Ceph support,
// tiers/rados_module.hpp), so that the libraries never depend on what those
// parts need. The Linux implementation is port/linux/module_linux.cpp
// (dlopen, dlsym, dladdr); the search for a module, module_search.cpp.
// Entry points: find_module_entry, load_module.
#pragma once

#include <larder/status.hpp>

#include <cstdint>
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

// The directory (no trailing '/', absolute) of the shared object or
// executable that holds the code at `address`; empty when the loader does
// not know one.
std::string directory_of_code(const void* address);

// Where code lies in a way that holds from one run of the program to the
// next, whatever address the loader picked: the file that holds it (its
// base name), that file's GNU build id (hex; empty when it has none) and
// the offset from the file's load address.
struct code_location {
  std::string file;
  std::string build_id;
  std::uint64_t offset = 0;
};
// Empty `file` when no loaded file holds `address`. Allocates; never call
// it from malloc.
code_location locate_code(const void* address);
// The address `where` names in this process, or 0 when no file loaded now
// has its name and build id.
std::uintptr_t address_of(const code_location& where);

// Names the code at `address` for people: "function+0x1c (file)", the
// function demangled, or "file+0x1234" (the offset from the file's load
// address) where it has no symbol the loader can see; "0x..." when no
// loaded file holds it. Allocates; never call it from malloc.
std::string describe_code(const void* address);

// Whether the process runs with privileges its invoker lacks (setuid,
// setgid, file capabilities): the environment then chooses no file to load.
bool secure_execution();

// One of larder's modules, and how the user names its file.
struct module_search {
  const char* what;      // names it in errors: "GPU tier"
  const char* file;      // its file name: "liblarder_gpu_tier.so"
  const char* variable;  // the environment variable naming its file instead
};

// The address of `entry` in the module `search` describes. The module is
// the file $variable names where that is set and not empty (nothing else
// is tried); else the first of `file` that loads beside the shared object
// or executable holding larder's code (this function's), in the libdir
// larder was configured to install to, and through the loader's search.
// The variable is read at each call. Errors: unsupported, "WHAT: its
// module could not be loaded: " and each file tried with the loader's
// reason, or "WHAT: not larder's WHAT module: " and the loader's reason
// where a file loads without `entry`.
status find_module_entry(const module_search& search, const char* entry, void** address);

}  // namespace larder::port
