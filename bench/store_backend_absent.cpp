// The factories of the store benchmark's backends that this build left out,
// each saying why (the CMake checks in bench/CMakeLists.txt decide).
#include "store_backend.hpp"

namespace larder_bench {

#ifndef LARDER_BENCH_HAVE_REDIS
std::unique_ptr<store_service> make_redis_service(unsigned /*pipeline_depth*/, std::string* why) {
  *why = "built without hiredis (install libhiredis-dev and reconfigure)";
  return nullptr;
}
#endif

#ifndef LARDER_BENCH_HAVE_MEMCACHED
std::unique_ptr<store_service> make_memcached_service(std::string* why) {
  *why = "built without libmemcached (install libmemcached-dev and reconfigure)";
  return nullptr;
}
#endif

#ifndef LARDER_BENCH_HAVE_LIGHTNING
std::unique_ptr<store_service> make_lightning_service(std::string* why) {
  *why = "built without Lightning (build it with bench/lightning/build.sh and configure with "
         "-DLARDER_BENCH_LIGHTNING_DIR=its build folder)";
  return nullptr;
}
#endif

#ifndef LARDER_BENCH_HAVE_LARDER_STORE
std::unique_ptr<store_service> make_larder_service(std::string* why) {
  *why = "larder's object store (include/larder/store.hpp, bench/store_backend_larder.cpp) is not built yet";
  return nullptr;
}
#endif

}  // namespace larder_bench
