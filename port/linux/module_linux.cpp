// Linux implementation of port/module.hpp over the dynamic loader.
#include "port/module.hpp"

#include <dlfcn.h>
#include <link.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <unistd.h>

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
