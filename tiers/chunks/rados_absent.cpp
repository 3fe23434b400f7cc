// open_rados_store where librados is not part of the library: a clear
// refusal (rados_store.hpp).
#include "tiers/chunks/rados_store.hpp"

namespace larder::chunks {

status open_rados_store(const std::string& spec, bool, std::unique_ptr<remote_store>*) {
  return status(errc::unsupported, "rados:" + spec + ": this library was built without Ceph support (librados)");
}

}  // namespace larder::chunks
