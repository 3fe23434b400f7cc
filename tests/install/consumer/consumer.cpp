// Builds against the installed headers and library only: makes a heap with
// a root, reopens it, and says which library's malloc the program runs on.
#include <larder/larder.h>
#include <larder/larder.hpp>

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  larder::heap_options options;
  options.kind = larder::backing::file;
  options.name = argv[1];
  {
    larder::heap h(options);
    auto* text = static_cast<char*>(h.allocate(32));
    std::strcpy(text, "installed");
    larder::throw_if_error(h.set_root("text", text, 32));
  }
  larder::heap h(options);
  const char* found = static_cast<const char*>(h.find_root("text"));
  void* p = larder_malloc(100);
  larder_free(p);
  if (found == nullptr || std::string(found) != "installed" || p == nullptr) return 1;
  Dl_info malloc_from{};
  if (dladdr(reinterpret_cast<void*>(&std::malloc), &malloc_from) == 0 || malloc_from.dli_fname == nullptr) return 1;
  std::printf("consumer ok (malloc from %s)\n", malloc_from.dli_fname);
  return 0;
}
