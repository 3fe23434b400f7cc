// open_rados_store and open_remote_tier where librados is not part of the
// library: a clear refusal (rados_store.hpp, tiers/remote_tier.hpp).
#include "tiers/chunks/rados_store.hpp"
#include "tiers/remote_tier.hpp"

namespace larder::chunks {

status open_rados_store(const std::string& spec, bool, std::unique_ptr<remote_store>*) {
  return status(errc::unsupported, "rados:" + spec + ": this library was built without Ceph support (librados)");
}

}  // namespace larder::chunks

namespace larder::tiers {

status open_remote_tier(const std::string& spec, const std::string&, std::uint64_t, std::unique_ptr<tier>*) {
  return status(errc::unsupported, "remote tier " + spec + ": this library was built without Ceph support (librados)");
}

}  // namespace larder::tiers
