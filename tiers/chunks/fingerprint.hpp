// Chunk and version names: XXH3-128 fingerprints, their hex form and the
// fixed fingerprint of the all-zero page.
#pragma once

#include "tiers/chunks/format.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace larder::chunks {

struct fingerprint {
  std::uint64_t high = 0, low = 0;

  friend bool operator==(const fingerprint&, const fingerprint&) = default;
  friend auto operator<=>(const fingerprint&, const fingerprint&) = default;
  // 32 lower-case hex digits, high half first.
  std::string hex() const;
  // The inverse of hex(); false for anything else.
  static bool parse(std::string_view text, fingerprint* out);
  fingerprint_bytes bytes() const;
  static fingerprint from(const fingerprint_bytes& b);
};

fingerprint fingerprint_of(const void* data, std::size_t length);
inline fingerprint page_fingerprint(const void* page) { return fingerprint_of(page, kPageSize); }

// The value of a lowercase hexadecimal digit, as every name in a store is
// written; false for anything else.
inline bool hex_digit(char c, unsigned* digit) noexcept {
  if (c >= '0' && c <= '9') {
    *digit = static_cast<unsigned>(c - '0');
  } else if (c >= 'a' && c <= 'f') {
    *digit = static_cast<unsigned>(c - 'a' + 10);
  } else {
    return false;
  }
  return true;
}
// The fingerprint of kPageSize zero bytes: never stored, always readable.
const fingerprint& zero_page();

struct fingerprint_hash {
  std::size_t operator()(const fingerprint& f) const noexcept { return static_cast<std::size_t>(f.low ^ (f.high >> 7)); }
};

}  // namespace larder::chunks
