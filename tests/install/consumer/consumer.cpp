// Builds against the installed headers and library only.
#include <larder/larder.h>
#include <larder/larder.hpp>

#include <cstdio>
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
  std::puts("consumer ok");
  return 0;
}
