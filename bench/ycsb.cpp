// The YCSB workload generator (ycsb.hpp): workload table, key hashing, the
// Zipfian generators and the per-client operation stream.
#include "ycsb.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>

namespace larder_bench::ycsb {
namespace {

// YCSB's workloads/workload[a-f]: proportions read, update, insert, scan,
// read-modify-write; request distribution; maxscanlength (100 throughout).
constexpr workload kWorkloads[] = {
    {'A', 0.50, 0.50, 0.00, 0.00, 0.00, key_distribution::zipfian, 100},
    {'B', 0.95, 0.05, 0.00, 0.00, 0.00, key_distribution::zipfian, 100},
    {'C', 1.00, 0.00, 0.00, 0.00, 0.00, key_distribution::zipfian, 100},
    {'D', 0.95, 0.00, 0.05, 0.00, 0.00, key_distribution::latest, 100},
    {'E', 0.00, 0.00, 0.05, 0.95, 0.00, key_distribution::zipfian, 100},
    {'F', 0.50, 0.00, 0.00, 0.00, 0.50, key_distribution::zipfian, 100},
};

// YCSB's ScrambledZipfianGenerator draws from this many items before folding.
constexpr std::uint64_t kScrambledItems = 10'000'000'000ULL;
constexpr std::uint64_t kExactZetaTerms = 1'000'000;

double zeta_range(std::uint64_t first, std::uint64_t last, double theta) {
  double sum = 0.0;
  for (std::uint64_t i = first; i <= last; ++i) sum += std::pow(static_cast<double>(i), -theta);
  return sum;
}

}  // namespace

const workload* find_workload(char name) {
  const char upper = static_cast<char>(std::toupper(static_cast<unsigned char>(name)));
  for (const workload& w : kWorkloads) {
    if (w.name == upper) return &w;
  }
  return nullptr;
}

std::uint64_t fnv1a64(std::uint64_t value) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a 64-bit offset basis
  for (int i = 0; i < 8; ++i) {
    hash ^= value & 0xff;
    hash *= 0x100000001b3ULL;  // FNV 64-bit prime
    value >>= 8;
  }
  return hash;
}

std::string key_name(std::uint64_t record) { return "user" + std::to_string(fnv1a64(record)); }

double zeta(std::uint64_t n, double theta) {
  const std::uint64_t m = std::min(n, kExactZetaTerms);
  double sum = zeta_range(1, m, theta);
  if (n == m) return sum;
  // Σ_{i=m+1..n} f(i) ≈ ∫_m^n f + (f(n) − f(m))/2 + (f'(n) − f'(m))/12, f(x) = x^-θ.
  const double dm = static_cast<double>(m), dn = static_cast<double>(n);
  auto f = [theta](double x) { return std::pow(x, -theta); };
  auto df = [theta](double x) { return -theta * std::pow(x, -theta - 1.0); };
  const double integral = (std::pow(dn, 1.0 - theta) - std::pow(dm, 1.0 - theta)) / (1.0 - theta);
  return sum + integral + (f(dn) - f(dm)) / 2.0 + (df(dn) - df(dm)) / 12.0;
}

std::uint64_t random64::next() {
  std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

zipfian::zipfian(std::uint64_t items, double theta) : zipfian(items, theta, zeta(items, theta)) {}

zipfian::zipfian(std::uint64_t items, double theta, double zeta_items)
    : items_(items), theta_(theta), alpha_(1.0 / (1.0 - theta)), zeta2_(zeta(2, theta)), zetan_(zeta_items) {
  eta_ = (1.0 - std::pow(2.0 / static_cast<double>(items_), 1.0 - theta_)) / (1.0 - zeta2_ / zetan_);
}

void zipfian::grow_to(std::uint64_t items) {
  zetan_ += zeta_range(items_ + 1, items, theta_);
  items_ = items;
  eta_ = (1.0 - std::pow(2.0 / static_cast<double>(items_), 1.0 - theta_)) / (1.0 - zeta2_ / zetan_);
}

std::uint64_t zipfian::next(random64& rng, std::uint64_t items) {
  if (items > items_) grow_to(items);
  const double u = rng.unit();
  const double uz = u * zetan_;
  if (uz < 1.0) return 0;
  if (uz < 1.0 + std::pow(0.5, theta_)) return 1;
  const auto v = static_cast<std::uint64_t>(static_cast<double>(items) * std::pow(eta_ * u - eta_ + 1.0, alpha_));
  return std::min(v, items - 1);
}

scrambled_zipfian::scrambled_zipfian(std::uint64_t items)
    : items_(items), base_(kScrambledItems, kZipfianTheta, [] {
        static const double zeta_scrambled = zeta(kScrambledItems, kZipfianTheta);
        return zeta_scrambled;
      }()) {}

std::uint64_t scrambled_zipfian::next(random64& rng) { return fnv1a64(base_.next(rng)) % items_; }

generator::generator(const workload& w, insert_sequence& inserts, std::uint64_t operation_count,
                     std::uint64_t seed, unsigned client, unsigned clients)
    : workload_(w),
      inserts_(inserts),
      rng_(seed * 0x2545f4914f6cdd1dULL + client),
      // YCSB's CoreWorkload: the Zipfian space covers the loaded records and
      // twice the inserts expected (by all clients).
      scrambled_(inserts.newest + 1 +
                 static_cast<std::uint64_t>(static_cast<double>(operation_count) * clients * w.insert * 2.0)),
      latest_(inserts.newest + 1) {}

void generator::inserted(std::uint64_t record) {
  std::uint64_t newest = inserts_.newest.load();
  while (record > newest && !inserts_.newest.compare_exchange_weak(newest, record)) {
  }
}

std::uint64_t generator::choose_existing() {
  const std::uint64_t newest = inserts_.newest.load();
  if (workload_.keys == key_distribution::latest) return newest - latest_.next(rng_, newest + 1);
  for (;;) {  // YCSB redraws records not inserted yet
    const std::uint64_t r = scrambled_.next(rng_);
    if (r <= newest) return r;
  }
}

operation generator::next() {
  double u = rng_.unit();
  const workload& w = workload_;
  if ((u -= w.read) < 0.0) return {op_kind::read, choose_existing()};
  if ((u -= w.update) < 0.0) return {op_kind::update, choose_existing()};
  if ((u -= w.insert) < 0.0) return {op_kind::insert, inserts_.next.fetch_add(1)};
  if ((u -= w.scan) < 0.0) {
    const auto length = static_cast<std::uint32_t>(1 + rng_.below(w.max_scan_length));
    return {op_kind::scan, choose_existing(), length};
  }
  // Only rounding leaves u here in a workload without read-modify-writes.
  return {w.read_modify_write > 0.0 ? op_kind::read_modify_write : op_kind::read, choose_existing()};
}

}  // namespace larder_bench::ycsb
