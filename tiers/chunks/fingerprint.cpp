// XXH3-128 fingerprints of chunks and manifests.
#include "tiers/chunks/fingerprint.hpp"

#include <xxhash.h>

#include <cstring>

namespace larder::chunks {

std::string fingerprint::hex() const {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text(32, '0');
  for (int i = 0; i < 16; ++i) {
    text[static_cast<std::size_t>(15 - i)] = kDigits[(high >> (4 * i)) & 15];
    text[static_cast<std::size_t>(31 - i)] = kDigits[(low >> (4 * i)) & 15];
  }
  return text;
}

bool fingerprint::parse(std::string_view text, fingerprint* out) {
  if (text.size() != 32) return false;
  fingerprint f;
  for (std::size_t i = 0; i < 32; ++i) {
    unsigned digit = 0;
    if (!hex_digit(text[i], &digit)) return false;
    std::uint64_t& half = i < 16 ? f.high : f.low;
    half = (half << 4) | digit;
  }
  *out = f;
  return true;
}

fingerprint_bytes fingerprint::bytes() const {
  fingerprint_bytes b;
  std::memcpy(b.bytes, &high, 8);
  std::memcpy(b.bytes + 8, &low, 8);
  return b;
}

fingerprint fingerprint::from(const fingerprint_bytes& b) {
  fingerprint f;
  std::memcpy(&f.high, b.bytes, 8);
  std::memcpy(&f.low, b.bytes + 8, 8);
  return f;
}

fingerprint fingerprint_of(const void* data, std::size_t length) {
  XXH128_hash_t h = XXH3_128bits(data, length);
  return fingerprint{h.high64, h.low64};
}

const fingerprint& zero_page() {
  static const fingerprint zero = [] {
    static const unsigned char page[kPageSize] = {};
    return page_fingerprint(page);
  }();
  return zero;
}

}  // namespace larder::chunks
