// find_module_entry (port/module.hpp): where larder looks for a module of
// its own, the one search every module uses.
#include "port/module.hpp"

#include "port/os.hpp"

#include "larder_config.h"

#include <vector>

namespace larder::port {
namespace {

// The files to try, in order, and whether the environment named the one file.
std::vector<std::string> module_candidates(const module_search& search, bool* named) {
  const char* variable = secure_execution() ? nullptr : get_env(search.variable);
  *named = variable != nullptr && variable[0] != '\0';
  if (*named) return {variable};
  std::vector<std::string> files;
  std::string beside = directory_of_code(reinterpret_cast<const void*>(&find_module_entry));
  if (!beside.empty()) files.push_back(beside + "/" + search.file);
  std::string installed = std::string(LARDER_INSTALL_LIBDIR) + "/" + search.file;
  if (files.empty() || files.front() != installed) files.push_back(installed);
  files.push_back(search.file);
  return files;
}

}  // namespace

// The loader's reasons name the file they are about.
status find_module_entry(const module_search& search, const char* entry, void** address) {
  bool named = false;
  std::string reasons;
  for (const std::string& file : module_candidates(search, &named)) {
    std::string why;
    void* module = load_module(file.c_str(), &why);
    if (module == nullptr) {
      if (!reasons.empty()) reasons += "; ";
      reasons += (file.find('/') == std::string::npos ? "through the loader's search, " : "") + why;
      continue;
    }
    *address = module_symbol(module, entry, &why);
    if (*address != nullptr) return {};
    // Another library of that name: the next place may hold the module.
    if (named) return status(errc::unsupported, std::string(search.what) + ": not larder's " + search.what + " module: " + why);
    if (!reasons.empty()) reasons += "; ";
    reasons += file + " is not larder's " + search.what + " module (" + why + ")";
  }
  return status(errc::unsupported, std::string(search.what) + ": its module could not be loaded" +
                                       (named ? std::string(" (") + search.variable + " names it)" : "") + ": " +
                                       reasons);
}

}  // namespace larder::port
