// The factories of the store benchmark's backends that this build left out,
// each saying why (the CMake checks in bench/CMakeLists.txt decide).
#include "store_backend.hpp"

namespace larder_bench {

namespace {

[[maybe_unused]] std::unique_ptr<store_service> left_out(std::string* why, const char* reason) {
  *why = reason;
  return nullptr;
}

}  // namespace

#ifndef LARDER_BENCH_HAVE_REDIS
std::unique_ptr<store_service> make_redis_service(unsigned /*pipeline_depth*/, std::string* why) {
  return left_out(why, "built without hiredis (install libhiredis-dev and reconfigure)");
}
#endif

#ifndef LARDER_BENCH_HAVE_MEMCACHED
std::unique_ptr<store_service> make_memcached_service(std::string* why) {
  return left_out(why, "built without libmemcached (install libmemcached-dev and reconfigure)");
}
#endif

#ifndef LARDER_BENCH_HAVE_LIGHTNING
std::unique_ptr<store_service> make_lightning_service(std::string* why) {
  return left_out(why,
                  "built without Lightning (build it with bench/lightning/build.sh and configure with "
                  "-DLARDER_BENCH_LIGHTNING_DIR=its build folder)");
}
#endif

}  // namespace larder_bench
