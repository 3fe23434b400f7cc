// The YCSB core workloads A–F as operation streams: the operation mix, the
// request distributions (scrambled Zipfian, "latest", uniform scan lengths)
// and the key names, deterministic for a seed. Entry point: ycsb::generator.
//
// The workloads are those of YCSB's workloads/workload[a-f] files:
//   A  50 % read, 50 % update, Zipfian           (update heavy)
//   B  95 % read,  5 % update, Zipfian           (read mostly)
//   C 100 % read, Zipfian                        (read only)
//   D  95 % read,  5 % insert, latest            (read latest)
//   E  95 % scan,  5 % insert, Zipfian, scans of 1–100 records (uniform)
//   F  50 % read, 50 % read-modify-write, Zipfian
// A record is one value (the benchmark sets its size), not YCSB's ten fields.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace larder_bench::ycsb {

enum class op_kind : std::uint8_t { read, update, insert, scan, read_modify_write };
enum class key_distribution : std::uint8_t { zipfian, latest };

struct workload {
  char name;  // 'A' … 'F'
  double read, update, insert, scan, read_modify_write;  // proportions, summing to 1
  key_distribution keys;
  std::uint32_t max_scan_length;
};

// The workload called `name` (upper or lower case), or nullptr.
const workload* find_workload(char name);

// YCSB's Zipfian constant.
inline constexpr double kZipfianTheta = 0.99;

// FNV-1a over the eight bytes of `value`, low byte first: YCSB's key hash.
std::uint64_t fnv1a64(std::uint64_t value);

// "user" followed by the decimal hash of the record number, as YCSB names
// records inserted in hashed order (its default).
std::string key_name(std::uint64_t record);

// ζ(n, θ) = Σ_{i=1..n} i^-θ, summed exactly up to a million terms and by the
// Euler–Maclaurin formula beyond.
double zeta(std::uint64_t n, double theta);

// A small, fast, seedable generator (splitmix64).
class random64 {
 public:
  explicit random64(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next();
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  std::uint64_t below(std::uint64_t n) { return next() % n; }

 private:
  std::uint64_t state_;
};

// Gray et al.'s Zipfian generator ("Quickly generating billion-record
// synthetic databases", SIGMOD 1994), as YCSB uses it: values in [0, n), 0
// the most popular. The item count may grow between calls (the "latest"
// distribution grows it with every insert); ζ is extended incrementally.
class zipfian {
 public:
  explicit zipfian(std::uint64_t items, double theta = kZipfianTheta);
  zipfian(std::uint64_t items, double theta, double zeta_items);  // ζ(items, theta) known
  std::uint64_t next(random64& rng, std::uint64_t items);
  std::uint64_t next(random64& rng) { return next(rng, items_); }

 private:
  void grow_to(std::uint64_t items);

  std::uint64_t items_;
  double theta_, alpha_, zeta2_, zetan_, eta_;
};

// YCSB's scrambled Zipfian: a Zipfian draw over a huge item space (10^10),
// hashed and folded into [0, items), so the popular records are scattered
// over the key space instead of being the lowest numbers.
class scrambled_zipfian {
 public:
  explicit scrambled_zipfian(std::uint64_t items);
  std::uint64_t next(random64& rng);

 private:
  std::uint64_t items_;
  zipfian base_;
};

struct operation {
  op_kind kind;
  std::uint64_t record;          // record number; the first record of a scan
  std::uint32_t scan_length = 0;
};

// The records inserted during a run, shared by all its clients (YCSB's
// insert key sequence): inserts take the next number, and reads go no
// further than the newest insert done (a lower one may still be under way in
// another client). Lock-free, so it may live in memory the client processes
// share; start() before the clients begin.
struct insert_sequence {
  void start(std::uint64_t record_count) {
    next = record_count;
    newest = record_count - 1;
  }
  std::atomic<std::uint64_t> next{0};
  std::atomic<std::uint64_t> newest{0};
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

// The operation stream of one client. Records 0 … record_count-1 are the
// loaded ones (`inserts` starts from record_count); `operation_count` is the
// client's share of the run, from which YCSB sizes the Zipfian key space to
// cover the records inserted meanwhile (by all `clients`). The caller calls
// inserted() once an insert is done; "latest" reads are relative to the
// newest done.
class generator {
 public:
  generator(const workload& w, insert_sequence& inserts, std::uint64_t operation_count, std::uint64_t seed,
            unsigned client = 0, unsigned clients = 1);
  operation next();
  void inserted(std::uint64_t record);

 private:
  std::uint64_t choose_existing();

  const workload& workload_;
  insert_sequence& inserts_;
  random64 rng_;
  scrambled_zipfian scrambled_;
  zipfian latest_;
};

}  // namespace larder_bench::ycsb
