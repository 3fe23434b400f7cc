// The byte-entropy test in front of each page's zstd attempt.
#include "tiers/chunks/compressibility.hpp"

#include "tiers/chunks/format.hpp"

#include <array>
#include <cmath>
#include <cstdint>

namespace larder::chunks {
namespace {

// n * log2(n) for every count a byte value can reach in one page.
const std::array<float, kPageSize + 1>& n_log_n() {
  static const std::array<float, kPageSize + 1> table = [] {
    std::array<float, kPageSize + 1> t{};
    for (std::size_t n = 1; n <= kPageSize; ++n) t[n] = static_cast<float>(static_cast<double>(n) * std::log2(static_cast<double>(n)));
    return t;
  }();
  return table;
}

}  // namespace

double page_entropy_bits(const void* page) noexcept {
  // Four histograms, so that runs of one byte value do not serialize on
  // one counter.
  std::uint16_t counts[4][256] = {};
  const auto* bytes = static_cast<const unsigned char*>(page);
  for (std::size_t i = 0; i < kPageSize; i += 4) {
    ++counts[0][bytes[i]];
    ++counts[1][bytes[i + 1]];
    ++counts[2][bytes[i + 2]];
    ++counts[3][bytes[i + 3]];
  }
  const auto& table = n_log_n();
  double sum = 0;
  for (std::size_t b = 0; b < 256; ++b) sum += table[counts[0][b] + counts[1][b] + counts[2][b] + counts[3][b]];
  // H = log2(N) - sum(n log2 n) / N
  return std::log2(static_cast<double>(kPageSize)) - sum / static_cast<double>(kPageSize);
}

bool worth_compressing(const void* page) noexcept { return page_entropy_bits(page) <= kMaxEntropyBits; }

}  // namespace larder::chunks
