// Linux implementation of port/module.hpp over the dynamic loader.
#include "port/module.hpp"

#include <cxxabi.h>
#include <dlfcn.h>
#include <link.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

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

namespace {

struct loaded_file {
  std::string file;  // base name
  std::string build_id;
  std::uintptr_t start = 0, end = 0;  // its PT_LOAD segments
};

std::string base_name(std::string path) {
  if (std::size_t slash = path.rfind('/'); slash != std::string::npos) path.erase(0, slash + 1);
  return path;
}

// The GNU build id in the PT_NOTE segments of one loaded file.
std::string build_id_of(const dl_phdr_info* info) {
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_NOTE) continue;
    const auto* at = reinterpret_cast<const std::uint8_t*>(info->dlpi_addr + ph.p_vaddr);
    const std::uint8_t* end = at + ph.p_memsz;
    while (at + sizeof(ElfW(Nhdr)) <= end) {
      const auto* note = reinterpret_cast<const ElfW(Nhdr)*>(at);
      const std::uint8_t* name = at + sizeof(ElfW(Nhdr));
      const std::uint8_t* desc = name + ((note->n_namesz + 3) & ~3u);
      if (desc + note->n_descsz > end) break;
      if (note->n_type == NT_GNU_BUILD_ID && note->n_namesz == 4 && std::memcmp(name, "GNU", 4) == 0) {
        std::string hex;
        char two[3];
        for (std::uint32_t k = 0; k < note->n_descsz; ++k) {
          std::snprintf(two, sizeof two, "%02x", desc[k]);
          hex += two;
        }
        return hex;
      }
      at = desc + ((note->n_descsz + 3) & ~3u);
    }
  }
  return {};
}

std::vector<loaded_file> loaded_files() {
  std::vector<loaded_file> files;
  ::dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* context) -> int {
        loaded_file f;
        std::uintptr_t low = ~std::uintptr_t{0}, high = 0;
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          const ElfW(Phdr)& ph = info->dlpi_phdr[i];
          if (ph.p_type != PT_LOAD) continue;
          low = std::min<std::uintptr_t>(low, info->dlpi_addr + ph.p_vaddr);
          high = std::max<std::uintptr_t>(high, info->dlpi_addr + ph.p_vaddr + ph.p_memsz);
        }
        if (high == 0) return 0;
        f.start = low & ~std::uintptr_t{4095};
        f.end = high;
        if (info->dlpi_name != nullptr && info->dlpi_name[0] != '\0') {
          f.file = base_name(info->dlpi_name);
        } else {
          char exe[PATH_MAX];
          ssize_t length = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
          f.file = length > 0 ? base_name(std::string(exe, static_cast<std::size_t>(length))) : "(executable)";
        }
        f.build_id = build_id_of(info);
        static_cast<std::vector<loaded_file>*>(context)->push_back(std::move(f));
        return 0;
      },
      &files);
  return files;
}

}  // namespace

code_location locate_code(const void* address) {
  const auto at = reinterpret_cast<std::uintptr_t>(address);
  for (loaded_file& f : loaded_files())
    if (at >= f.start && at < f.end) return {std::move(f.file), std::move(f.build_id), at - f.start};
  return {};
}

std::uintptr_t address_of(const code_location& where) {
  for (const loaded_file& f : loaded_files())
    if (f.file == where.file && f.build_id == where.build_id && where.offset < f.end - f.start)
      return f.start + where.offset;
  return 0;
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
