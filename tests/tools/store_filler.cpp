// Opens (or makes) the object store in a file heap as a shared writer,
// creates and seals objects 1..5 of 1 KiB, leaves object 6 unsealed, holds
// a reference to object 1, says "ready" on standard output and waits: the
// `larder store` test kills it to leave a dead client behind.
#include <larder/store.hpp>

#include <unistd.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: store_filler HEAP\n");
    return 2;
  }
  larder::store_options options;
  options.heap.name = argv[1];
  options.heap.reserve = std::size_t{1} << 30;
  larder::store s;
  if (larder::status st = larder::store::open(options, &s); !st.ok()) {
    std::fprintf(stderr, "%s\n", st.to_string().c_str());
    return 1;
  }
  for (std::uint64_t key = 1; key <= 6; ++key) {
    larder::object_buffer b;
    if (!s.create(larder::object_id(key), 1024, 0, &b).ok()) return 1;
    for (std::byte& x : b.data) x = static_cast<std::byte>(key);
    if (key != 6 && !s.seal(larder::object_id(key)).ok()) return 1;
  }
  larder::object_view v;
  if (!s.get(larder::object_id(1), &v).ok()) return 1;
  std::printf("ready\n");
  std::fflush(stdout);
  for (;;) ::pause();
}
