// A chunk store's marker (store_marker.hpp).
#include "tiers/chunks/store_marker.hpp"

#include "port/os.hpp"

#include <xxhash.h>

#include <cstddef>
#include <cstring>

namespace larder::chunks {

store_header new_store_marker() {
  store_header h{};
  h.magic = kStoreMagic;
  h.major = kFormatMajor;
  h.minor = kFormatMinor;
  std::uint64_t a = port::random64(), b = port::random64();
  std::memcpy(h.uuid, &a, 8);
  std::memcpy(h.uuid + 8, &b, 8);
  h.created_ns = port::realtime_ns();
  h.checksum = XXH3_64bits(&h, offsetof(store_header, checksum));
  return h;
}

status check_store_marker(std::string_view bytes, const std::string& where) {
  store_header h;
  if (bytes.size() != sizeof h) return status(errc::corrupt, where + ": wrong size for a chunk store's marker");
  std::memcpy(&h, bytes.data(), sizeof h);
  if (h.magic != kStoreMagic) return status(errc::not_a_heap, where + " is not a chunk store's marker");
  if (h.checksum != XXH3_64bits(&h, offsetof(store_header, checksum))) return status(errc::corrupt, where + ": checksum mismatch");
  if (h.major > kFormatMajor) return status(errc::newer_format, where);
  return {};
}

}  // namespace larder::chunks
