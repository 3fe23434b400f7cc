// The byte-entropy test that decides which pages get a zstd attempt: its
// measure, and that it lets through what zstd shrinks by an eighth and
// stops what it cannot.
#include "chunk_test_util.hpp"

#include "tiers/chunks/compressibility.hpp"

#include <zstd.h>

namespace larder::chunks::test {
namespace {

bool zstd_saves_an_eighth(const char* page) {
  std::vector<char> out(ZSTD_compressBound(kPage));
  std::size_t n = ZSTD_compress(out.data(), out.size(), page, kPage, 1);
  return !ZSTD_isError(n) && n + kMinCompressionSaving <= kPage;
}

TEST(Compressibility, MeasuresBitsPerByte) {
  std::vector<char> page(kPage, 'x');
  EXPECT_DOUBLE_EQ(page_entropy_bits(page.data()), 0.0);
  for (std::size_t i = 0; i < kPage; ++i) page[i] = static_cast<char>(i % 2);
  EXPECT_NEAR(page_entropy_bits(page.data()), 1.0, 1e-6);
  for (std::size_t i = 0; i < kPage; ++i) page[i] = static_cast<char>(i % 256);
  EXPECT_NEAR(page_entropy_bits(page.data()), 8.0, 1e-6);
}

TEST(Compressibility, SkipsRandomPagesOnly) {
  std::mt19937_64 r(5);
  std::vector<char> page(kPage);
  for (int round = 0; round < 50; ++round) {
    random_page(r, page.data());
    EXPECT_FALSE(worth_compressing(page.data()));
    EXPECT_FALSE(zstd_saves_an_eighth(page.data()));
    compressible_page(static_cast<std::uint64_t>(round), page.data());
    EXPECT_TRUE(worth_compressing(page.data()));
  }
}

// Pages of an object heap: 8-byte pointers into one region, small
// integers and lower-case names. zstd saves an eighth of each; the test
// must not stop them.
TEST(Compressibility, LetsObjectPagesThrough) {
  std::mt19937_64 r(9);
  std::vector<char> page(kPage);
  for (int round = 0; round < 50; ++round) {
    for (std::size_t i = 0; i < kPage; i += 64) {
      std::uint64_t words[4] = {0x7f0000000000 + (r() % (1 << 24)) * 16, r() % 1000, 0x7f0000000000 + (r() % (1 << 24)) * 16,
                                r() % 64};
      std::memcpy(page.data() + i, words, sizeof words);
      for (std::size_t k = 32; k < 64; ++k) page[i + k] = static_cast<char>('a' + r() % 26);
    }
    ASSERT_TRUE(zstd_saves_an_eighth(page.data()));
    EXPECT_TRUE(worth_compressing(page.data())) << page_entropy_bits(page.data());
  }
}

}  // namespace
}  // namespace larder::chunks::test
