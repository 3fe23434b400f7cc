// open_remote: REMOTE as the command line writes it, to a remote_store.
#include "tiers/chunks/remote_store.hpp"

#include "tiers/chunks/directory_store.hpp"
#include "tiers/rados_module.hpp"

namespace larder::chunks {

status open_remote(const std::string& spec, bool create, std::unique_ptr<remote_store>* out) {
  constexpr std::string_view kRados = "rados:";
  if (spec.starts_with(kRados)) return tiers::open_rados_remote(spec.substr(kRados.size()), create, out);
  if (spec.empty()) return status(errc::invalid_argument, "an empty remote");
  std::unique_ptr<directory_store> d;
  if (status s = directory_store::open(spec, store_options{.create = create}, &d); !s.ok()) return s;
  *out = std::move(d);
  return {};
}

}  // namespace larder::chunks
