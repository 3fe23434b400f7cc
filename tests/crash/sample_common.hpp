// What the crash-test samples (list_sample, hashmap_sample, btree_sample)
// share: arguments, the seeded random numbers their workloads draw, the
// keyed workload and its model, the run phase's loop, the two phases around
// a sample's own run and check, and the leak check.
// Public API only (larder.hpp, transaction.hpp, crashtest.hpp).
//
// A sample is run by the crash-test driver:
//   larder crashtest [--every | --random N | --kill N] -- SAMPLE [OPS [SEED]]
// In its run phase it performs OPS operations (default 1000), each its own
// transaction that also advances an operation counter in the root, and
// acknowledges each after its commit returns. In its check phase it opens
// the heap (which recovers it), requires the counter k to be the number
// acknowledged or one more, replays the first k operations of the same
// seeded workload on a std:: model, and compares: contents, the
// structure's invariants, and the heap's bytes in use. It exits 1 with a
// message on the first difference.
#pragma once

#include <larder/crashtest.hpp>
#include <larder/larder.hpp>
#include <larder/transaction.hpp>

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace sample {

struct arguments {
  std::uint64_t operations = 1000;
  std::uint64_t seed = 1;
};

[[noreturn]] inline void fail(const char* format, ...) {
  std::va_list list;
  va_start(list, format);
  std::fputs("check failed: ", stderr);
  std::vfprintf(stderr, format, list);
  std::fputc('\n', stderr);
  va_end(list);
  std::exit(1);
}

// `placed` among the arguments after the seed: both phases open the heap
// with automatic pod placement (docs/placement.md).
inline larder::placement_policy g_placement = larder::placement_policy::off;

inline arguments parse(int argc, char** argv) {
  arguments a;
  for (int i = 3; i < argc; ++i)
    if (std::strcmp(argv[i], "placed") == 0) g_placement = larder::placement_policy::sites;
  auto number = [&](int i) {
    char* end = nullptr;
    unsigned long long v = std::strtoull(argv[i], &end, 10);
    if (end == argv[i] || *end != '\0') {
      std::fprintf(stderr, "usage: %s [OPERATIONS [SEED]]\n", argv[0]);
      std::exit(2);
    }
    return static_cast<std::uint64_t>(v);
  };
  if (argc > 1) a.operations = number(1);
  if (argc > 2) a.seed = number(2);
  return a;
}

// splitmix64: small, fast, and the same everywhere, so a check phase
// draws exactly what its run phase drew.
class random {
 public:
  explicit random(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t x = (state_ += 0x9E3779B97F4A7C15ull);
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
  }
  std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : next() % n; }

 private:
  std::uint64_t state_;
};

// Keyed workloads (hash map, B-tree): put, erase or update a key drawn from
// a key space half as large as the operation count, so keys come back.
enum class op_kind { put, erase, update };
struct keyed_op {
  op_kind kind;
  std::uint64_t key;
  std::uint64_t value;
};
inline keyed_op next_keyed_op(random& r, std::uint64_t operations) {
  std::uint64_t space = operations / 2 < 16 ? 16 : operations / 2;
  std::uint64_t roll = r.below(10);
  keyed_op op{roll < 5 ? op_kind::put : roll < 8 ? op_kind::erase : op_kind::update, r.below(space), r.next()};
  return op;
}
inline const char* to_string(op_kind k) { return k == op_kind::put ? "put" : k == op_kind::erase ? "erase" : "update"; }

// What a keyed workload's structure should hold: key to value.
using keyed_model = std::map<std::uint64_t, std::uint64_t>;
inline void apply_keyed_op(keyed_model& m, const keyed_op& op) {
  switch (op.kind) {
    case op_kind::put: m[op.key] = op.value; break;
    case op_kind::erase: m.erase(op.key); break;
    case op_kind::update:
      if (auto it = m.find(op.key); it != m.end()) it->second = op.value;
      break;
  }
}

// The model after the first k operations of the keyed workload.
inline keyed_model keyed_model_after(const arguments& a, std::uint64_t k) {
  random r(a.seed);
  keyed_model m;
  for (std::uint64_t i = 0; i < k; ++i) apply_keyed_op(m, next_keyed_op(r, a.operations));
  return m;
}

// Bytes in blocks handed out, over every pod of the heap.
inline std::size_t bytes_in_use(const larder::heap& h) {
  std::size_t total = 0;
  for (const auto& p : h.pods()) total += p.bytes_in_use;
  return total;
}

// The heap's bytes in use must be exactly the blocks the structure holds:
// anything more was leaked by a rolled-back or half-done transaction.
inline void check_no_leak(const larder::heap& h, const std::vector<const void*>& blocks, const char* when) {
  std::size_t expected = 0;
  for (const void* b : blocks) expected += larder::usable_size(b);
  std::size_t in_use = bytes_in_use(h);
  if (in_use != expected)
    fail("%s: the heap has %zu bytes in use but the structure holds %zu blocks of %zu bytes (%+lld)", when, in_use,
         blocks.size(), expected, static_cast<long long>(in_use) - static_cast<long long>(expected));
}

// After recovery the heap must go on working: blocks allocated now must
// not overlap any block the structure holds, and rolling that
// transaction back must give them all back.
inline void check_still_usable(larder::heap& h, const std::vector<const void*>& blocks, std::size_t block_size) {
  std::set<const void*> live(blocks.begin(), blocks.end());
  {
    larder::transaction tx(h);
    for (int i = 0; i < 64; ++i) {
      void* p = tx.allocate(block_size);
      for (const void* b : blocks) {
        auto* a = static_cast<const char*>(p);
        auto* s = static_cast<const char*>(b);
        if (a < s + larder::usable_size(b) && s < a + block_size)
          fail("after recovery, a new block at %p overlaps the live block at %p", p, b);
      }
      if (!live.insert(p).second) fail("after recovery, block %p was handed out twice", p);
    }
    tx.abort();
  }
  check_no_leak(h, blocks, "after a rolled-back transaction in the check phase");
}

// The run phase's loop: performs operations [root->operations, operations)
// on `root`, each in its own transaction, and acknowledges each after its
// commit returns. `next(i)` draws operation i; those an earlier run did are
// drawn too and skipped, so that the draws stay in step with the check
// phase's replay.
template <class Root, class Next, class Perform>
void run_operations(larder::heap& h, Root* root, std::uint64_t operations, Next next, Perform perform) {
  for (std::uint64_t i = 0; i < operations; ++i) {
    auto op = next(i);
    if (i < root->operations) continue;  // done by an earlier run
    {
      larder::transaction tx(h);
      perform(tx, root, op);
    }
    larder::crashtest::acknowledge(i + 1);
  }
}

// The run phase of a keyed workload (hash map, B-tree).
template <class Root, class Perform>
void run_keyed(larder::heap& h, const arguments& a, Root* root, Perform perform) {
  random r(a.seed);
  run_operations(h, root, a.operations, [&](std::uint64_t) { return next_keyed_op(r, a.operations); }, perform);
}

// The phases around a sample. `run` performs operations [done, operations)
// on a heap that has `done` of them already. `check` verifies a heap that
// the run phase acknowledged `acknowledged` operations of.
struct sample_functions {
  const char* root_name;
  void (*run)(larder::heap& h, const arguments& a);
  void (*check)(larder::heap& h, const arguments& a, std::uint64_t acknowledged);
};

inline int open_for_check(larder::heap* h, std::uint64_t acknowledged) {
  larder::heap_options options;
  options.name = larder::crashtest::heap_path();
  options.mode = larder::open_mode::open;
  options.placement = g_placement;
  larder::status s = larder::heap::open(options, h);
  if (s.ok()) return 0;
  if (acknowledged == 0 && s.is(larder::errc::not_found)) {
    std::printf("no heap: the run phase stopped before creating it\n");
    return 1;
  }
  if (acknowledged == 0 && s.is(larder::errc::not_a_heap)) {
    // The crash came while the heap was being created. Nothing was
    // promised yet, but the program must be able to start over.
    options.mode = larder::open_mode::open_or_create;
    larder::status again = larder::heap::open(options, h);
    if (again.ok()) {
      std::printf("no heap: the run phase stopped while creating it; open_or_create starts over\n");
      return 1;
    }
    fail("a crash while the heap was being created left a file that open refuses (%s) and open_or_create "
         "refuses too (%s)", s.to_string().c_str(), again.to_string().c_str());
  }
  fail("opening the heap after the crash (%llu operations acknowledged): %s",
       static_cast<unsigned long long>(acknowledged), s.to_string().c_str());
}

inline int main(int argc, char** argv, const sample_functions& f) {
  arguments a = parse(argc, argv);
  try {
    switch (larder::crashtest::current_phase()) {
      case larder::crashtest::phase::run: {
        larder::heap_options options;
        options.name = larder::crashtest::heap_path();
        options.placement = g_placement;
        larder::heap h(options);
        f.run(h, a);
        larder::throw_if_error(h.close());
        return 0;
      }
      case larder::crashtest::phase::check: {
        std::uint64_t acknowledged = larder::crashtest::acknowledged();
        larder::heap h;
        if (open_for_check(&h, acknowledged) != 0) return 0;
        f.check(h, a, acknowledged);
        larder::throw_if_error(h.close());
        return 0;
      }
      case larder::crashtest::phase::none: break;
    }
  } catch (const larder::error& e) {
    std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
    return 1;
  }
  std::fprintf(stderr, "%s: a crash-test sample; run it with\n  larder crashtest -- %s [OPERATIONS [SEED]]\n",
               argv[0], argv[0]);
  return 2;
}

// The operation counter k of the heap against what was acknowledged.
inline void check_counter(std::uint64_t k, std::uint64_t acknowledged, std::uint64_t operations) {
  if (k < acknowledged)
    fail("the heap holds %llu operations but %llu were acknowledged: committed transactions were lost",
         static_cast<unsigned long long>(k), static_cast<unsigned long long>(acknowledged));
  if (k > acknowledged + 1)
    fail("the heap holds %llu operations but only %llu were acknowledged (at most one more may be there)",
         static_cast<unsigned long long>(k), static_cast<unsigned long long>(acknowledged));
  if (k > operations)
    fail("the heap holds %llu operations of a %llu-operation workload", static_cast<unsigned long long>(k),
         static_cast<unsigned long long>(operations));
}

// The sample's root `name`, its size and operation counter checked
// against what the run acknowledged; nullptr when the run never made it
// (nothing may be in use then).
template <class Root>
Root* checked_root(larder::heap& h, const char* name, std::uint64_t acknowledged, const arguments& a) {
  std::size_t size = 0;
  auto* root = static_cast<Root*>(h.find_root(name, &size));
  if (root == nullptr) {
    if (acknowledged != 0)
      fail("the root \"%s\" is missing after %llu acknowledged operations", name,
           static_cast<unsigned long long>(acknowledged));
    check_no_leak(h, {}, "no root yet");
    return nullptr;
  }
  if (size != sizeof(Root)) fail("the root \"%s\" has size %zu", name, size);
  check_counter(root->operations, acknowledged, a.operations);
  return root;
}

}  // namespace sample
