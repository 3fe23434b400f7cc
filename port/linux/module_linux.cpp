// Linux implementation of port/module.hpp over the dynamic loader.
#include "port/module.hpp"

#include <cxxabi.h>
#include <dlfcn.h>
#include <link.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace larder::port {
namespace {

std::string loader_error() {
  const char* text = ::dlerror();
  return text != nullptr ? text : "unknown loader error";
}

}  // namespace

void* load_module(const char* path, std::string* error) {
  void* handle = ::dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) *error = loader_error();
  return handle;
}

void* module_symbol(void* handle, const char* name, std::string* error) {
  ::dlerror();
  void* symbol = ::dlsym(handle, name);
  if (symbol == nullptr) *error = loader_error();
  return symbol;
}

std::string describe_code(const void* address) {
  char text[64];
  Dl_info info{};
  link_map* map = nullptr;
  if (address == nullptr || ::dladdr1(address, &info, reinterpret_cast<void**>(&map), RTLD_DL_LINKMAP) == 0 ||
      info.dli_fname == nullptr) {
    std::snprintf(text, sizeof text, "%p", address);
    return text;
  }
  std::string file = info.dli_fname[0] != '\0' ? info.dli_fname : "(executable)";
  if (std::size_t slash = file.rfind('/'); slash != std::string::npos) file.erase(0, slash + 1);
  const auto at = reinterpret_cast<std::uintptr_t>(address);
  if (info.dli_sname != nullptr && info.dli_saddr != nullptr) {
    int failed = 0;
    char* demangled = abi::__cxa_demangle(info.dli_sname, nullptr, nullptr, &failed);
    std::string name = failed == 0 && demangled != nullptr ? demangled : info.dli_sname;
    std::free(demangled);
    std::snprintf(text, sizeof text, "+0x%zx (", static_cast<std::size_t>(at - reinterpret_cast<std::uintptr_t>(info.dli_saddr)));
    return name + text + file + ")";
  }
  std::snprintf(text, sizeof text, "+0x%zx", static_cast<std::size_t>(at - reinterpret_cast<std::uintptr_t>(info.dli_fbase)));
  return file + text;
}

std::string directory_of_code(const void* address) {
  Dl_info info{};
  link_map* map = nullptr;
  if (::dladdr1(address, &info, reinterpret_cast<void**>(&map), RTLD_DL_LINKMAP) == 0 || map == nullptr) return {};
  std::string file;
  if (map->l_name[0] != '\0') {
    file = map->l_name;
  } else {
    // The executable: the loader knows it only by argv[0], which may be a
    // bare name found through PATH or relative to another directory.
    char exe[PATH_MAX];
    ssize_t length = ::readlink("/proc/self/exe", exe, sizeof exe);
    if (length <= 0 || static_cast<std::size_t>(length) >= sizeof exe) return {};
    file.assign(exe, static_cast<std::size_t>(length));
  }
  // A library loaded by a relative path: resolved now, not against
  // whatever directory the process is in when a module is looked for.
  if (file[0] != '/') {
    char resolved[PATH_MAX];
    if (::realpath(file.c_str(), resolved) == nullptr) return {};
    file = resolved;
  }
  std::size_t slash = file.rfind('/');
  return slash == std::string::npos ? std::string() : file.substr(0, slash);
}

bool secure_execution() { return ::getauxval(AT_SECURE) != 0; }

}  // namespace larder::port
