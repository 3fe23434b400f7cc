// The YCSB generator of the store benchmark (bench/ycsb.hpp): the workload
// mixes, the Zipfian skew, "latest", scan lengths, insert keys per client and
// determinism for a seed.
#include "ycsb.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>
#include <vector>

namespace ycsb = larder_bench::ycsb;

namespace {

constexpr std::uint64_t kRecords = 10000;
constexpr int kDraws = 200000;

struct fresh_inserts : ycsb::insert_sequence {
  fresh_inserts() { start(kRecords); }
};

std::map<ycsb::op_kind, double> mix(char name) {
  fresh_inserts inserts;
  ycsb::generator gen(*ycsb::find_workload(name), inserts, kDraws, 7);
  std::map<ycsb::op_kind, double> share;
  for (int i = 0; i < kDraws; ++i) share[gen.next().kind] += 1.0 / kDraws;
  return share;
}

TEST(YcsbTest, WorkloadsHaveYcsbMixes) {
  using k = ycsb::op_kind;
  const std::map<char, std::map<k, double>> expected = {
      {'A', {{k::read, 0.5}, {k::update, 0.5}}},  {'B', {{k::read, 0.95}, {k::update, 0.05}}},
      {'C', {{k::read, 1.0}}},                    {'D', {{k::read, 0.95}, {k::insert, 0.05}}},
      {'E', {{k::scan, 0.95}, {k::insert, 0.05}}}, {'F', {{k::read, 0.5}, {k::read_modify_write, 0.5}}}};
  for (const auto& [name, want] : expected) {
    const auto got = mix(name);
    EXPECT_EQ(got.size(), want.size()) << name;
    for (const auto& [kind, share] : want) {
      ASSERT_TRUE(got.count(kind)) << name;
      EXPECT_NEAR(got.at(kind), share, 0.01) << name;
    }
  }
  EXPECT_EQ(ycsb::find_workload('g'), nullptr);
  EXPECT_EQ(ycsb::find_workload('a'), ycsb::find_workload('A'));
}

TEST(YcsbTest, SameSeedSameStreamOtherSeedOther) {
  const ycsb::workload& e = *ycsb::find_workload('E');
  fresh_inserts sa, sb, sc;
  ycsb::generator a(e, sa, 1000, 3), b(e, sb, 1000, 3), c(e, sc, 1000, 4);
  int differ = 0;
  for (int i = 0; i < 1000; ++i) {
    const auto x = a.next(), y = b.next(), z = c.next();
    EXPECT_EQ(x.kind, y.kind);
    EXPECT_EQ(x.record, y.record);
    EXPECT_EQ(x.scan_length, y.scan_length);
    differ += x.record != z.record ? 1 : 0;
  }
  EXPECT_GT(differ, 500);
}

TEST(YcsbTest, ZetaMatchesDirectSumAndGrows) {
  double direct = 0.0;
  for (int i = 1; i <= 3000000; ++i) direct += std::pow(i, -0.99);
  EXPECT_NEAR(ycsb::zeta(3000000, 0.99), direct, 1e-6 * direct);
  EXPECT_DOUBLE_EQ(ycsb::zeta(2, 0.99), 1.0 + std::pow(2.0, -0.99));
}

// With θ = 0.99 over 10,000 records the most popular record takes about
// 1/ζ(10^4) ≈ 10 % of the draws of a plain Zipfian; the scrambled one folds
// 10^10 items onto the records, so its top record is rarer but still far
// above uniform (0.01 %), and it is not record 0.
TEST(YcsbTest, ZipfianIsSkewedAndScrambledScatters) {
  ycsb::random64 rng(11);
  ycsb::zipfian z(kRecords);
  std::vector<int> plain(kRecords);
  for (int i = 0; i < kDraws; ++i) ++plain[z.next(rng)];
  EXPECT_NEAR(plain[0] / double(kDraws), 1.0 / ycsb::zeta(kRecords, 0.99), 0.01);
  EXPECT_GT(plain[0], plain[1]);
  EXPECT_GT(plain[1], plain[100]);

  ycsb::scrambled_zipfian s(kRecords);
  std::vector<int> scrambled(kRecords);
  for (int i = 0; i < kDraws; ++i) {
    const std::uint64_t r = s.next(rng);
    ASSERT_LT(r, kRecords);
    ++scrambled[r];
  }
  const auto top = std::max_element(scrambled.begin(), scrambled.end()) - scrambled.begin();
  EXPECT_GT(scrambled[top], 50 * kDraws / int(kRecords));
  EXPECT_NE(top, 0);
}

// Two clients sharing one insert sequence, interleaved: every insert takes
// a new record, no read goes past the newest insert done, and "latest"
// reads the newest records most.
TEST(YcsbTest, LatestReadsNewRecordsAndClientsShareTheInserts) {
  const ycsb::workload& d = *ycsb::find_workload('D');
  fresh_inserts inserts;
  ycsb::generator gen[2] = {{d, inserts, 20000, 5, 0, 2}, {d, inserts, 20000, 5, 1, 2}};
  std::set<std::uint64_t> inserted;
  std::uint64_t newest = kRecords - 1;
  int recent = 0, reads = 0;
  for (int i = 0; i < 40000; ++i) {
    ycsb::generator& g = gen[i % 2];
    const auto op = g.next();
    if (op.kind == ycsb::op_kind::insert) {
      EXPECT_EQ(op.record, kRecords + inserted.size());
      inserted.insert(op.record);
      g.inserted(op.record);
      newest = op.record;
      continue;
    }
    ASSERT_LE(op.record, newest);
    ++reads;
    recent += newest - op.record < 10 ? 1 : 0;
  }
  EXPECT_NEAR(inserted.size(), 2000.0, 200.0);
  // ζ(10)/ζ(10^4) ≈ 30 % of the reads go to the ten newest records (uniform: 0.1 %).
  EXPECT_GT(recent, reads / 5);
}

TEST(YcsbTest, ScansAreOneToHundredRecordsOfExistingStarts) {
  fresh_inserts inserts;
  ycsb::generator gen(*ycsb::find_workload('E'), inserts, kDraws, 9);
  std::uint32_t shortest = 1000, longest = 0;
  std::uint64_t newest = kRecords - 1;
  for (int i = 0; i < kDraws; ++i) {
    const auto op = gen.next();
    if (op.kind == ycsb::op_kind::insert) {
      gen.inserted(op.record);
      newest = op.record;
      continue;
    }
    ASSERT_LE(op.record, newest);
    shortest = std::min(shortest, op.scan_length);
    longest = std::max(longest, op.scan_length);
  }
  EXPECT_EQ(shortest, 1u);
  EXPECT_EQ(longest, 100u);
}

TEST(YcsbTest, KeyNamesAreHashedRecordNumbers) {
  EXPECT_EQ(ycsb::key_name(0), "user" + std::to_string(ycsb::fnv1a64(0)));
  EXPECT_NE(ycsb::fnv1a64(1), ycsb::fnv1a64(2));
  EXPECT_NE(ycsb::key_name(1), ycsb::key_name(256));
}

}  // namespace
