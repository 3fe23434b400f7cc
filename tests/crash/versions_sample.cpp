// Crash-test sample for versions: a file heap written one transaction at a
// time and checkpointed every few operations into its default store, run
// by `larder crashtest` so that a failure lands at every persistence point
// of the heap and of the store alike (docs/crashtest.md, "Versions").
// Usage: larder crashtest -- versions_sample [OPS [SEED [MODE]]]
//   MODE checkpoint (default): OPS operations, a checkpoint every OPS/4.
//   MODE gc: the same, and after each checkpoint from the third on, the
//     version two before it is deleted and the store garbage-collected.
//   MODE checkout: the same as checkpoint, then the heap is checked out to
//     the first version.
// The acknowledgement counts stages: 2n once operation n committed, 2n+1
// once the checkpoint after operation n returned, 2*OPS+2 once the
// checkout returned. The check phase requires, before it opens the heap:
// `verify` of the store clean, every version in it equal to the model at
// the operation count its message names ("ops N"), every acknowledged
// version there (in gc mode the last two: older ones may be deleted), and
// the newest cloned into a new heap file equal to it too. Then the heap
// itself: equal to the model at its operation counter, and that counter
// what was acknowledged (or one more); in checkout mode, once the checkout
// began, equal to the old or the new version whole, or, where it does not
// open, mended by restore_version into the first version.
#include "sample_common.hpp"

#include <larder/versions.hpp>

#include <array>
#include <cinttypes>
#include <filesystem>
#include <map>

namespace {

constexpr std::size_t kCells = 8192;  // 64 KiB: 16 pages of the root
constexpr std::size_t kRing = 16;     // allocated blocks, replaced in turn

struct blob {
  std::uint64_t operation;
  std::uint64_t value;
  std::uint64_t filler[6];
};

struct versions_root {
  std::uint64_t operations;
  std::uint64_t cells[kCells];
  blob* ring[kRing];
};

enum class mode { checkpoint, gc, checkout };

struct settings {
  sample::arguments a;
  mode m = mode::checkpoint;
  std::uint64_t interval() const { return a.operations / 4 == 0 ? 1 : a.operations / 4; }
  bool checkpoint_after(std::uint64_t n) const { return n != 0 && (n % interval() == 0 || n == a.operations); }
  std::uint64_t checked_out_stage() const { return 2 * a.operations + 2; }
};

struct model {
  std::uint64_t operations = 0;
  std::array<std::uint64_t, kCells> cells{};
  std::array<std::uint64_t, kRing> ring_value{};
  std::array<bool, kRing> ring_used{};
};

struct op {
  std::size_t cell;
  std::uint64_t value;
};

op next_op(sample::random& r) { return op{static_cast<std::size_t>(r.below(kCells)), r.next()}; }

model model_after(const settings& s, std::uint64_t k) {
  sample::random r(s.a.seed);
  model m;
  for (std::uint64_t i = 0; i < k; ++i) {
    op o = next_op(r);
    m.cells[o.cell] = o.value;
    m.ring_value[i % kRing] = o.value ^ i;
    m.ring_used[i % kRing] = true;
  }
  m.operations = k;
  return m;
}

void perform(larder::transaction& tx, versions_root* root, std::uint64_t i, const op& o) {
  tx.snapshot(&root->operations);
  ++root->operations;
  tx.snapshot(&root->cells[o.cell]);
  root->cells[o.cell] = o.value;
  blob*& slot = root->ring[i % kRing];
  tx.snapshot(&slot);
  if (slot != nullptr) tx.destroy(slot);
  slot = tx.make<blob>(blob{i, o.value ^ i, {}});
}

std::string message_for(std::uint64_t n) { return "ops " + std::to_string(n); }

void run(larder::heap& h, const settings& s) {
  versions_root* root;
  {
    larder::transaction tx(h);
    root = h.root<versions_root>("versions");
  }
  if (root->operations != 0) sample::fail("the run phase wants a new heap; this one has operations");
  sample::random r(s.a.seed);
  std::vector<std::string> ids;
  for (std::uint64_t i = 0; i < s.a.operations; ++i) {
    op o = next_op(r);
    {
      larder::transaction tx(h);
      perform(tx, root, i, o);
    }
    larder::crashtest::acknowledge(2 * (i + 1));
    if (!s.checkpoint_after(i + 1)) continue;
    ids.push_back(larder::checkpoint(h, message_for(i + 1)).id);
    larder::crashtest::acknowledge(2 * (i + 1) + 1);
    if (s.m == mode::gc && ids.size() >= 3) {
      larder::version_store store;
      larder::throw_if_error(larder::version_store::open(larder::version_store_of(h), &store));
      larder::throw_if_error(store.delete_version(ids[ids.size() - 3], false));
      larder::store_gc_report report;
      larder::throw_if_error(store.gc(&report));
    }
  }
  if (s.m == mode::checkout) {
    larder::checkout(h, ids.front());
    larder::crashtest::acknowledge(s.checked_out_stage());
  }
}

// The heap (or a version of it) against the model; fails on the first
// difference. Returns false, saying nothing, when `quiet` and it differs.
bool matches(const larder::heap& h, const model& m, const char* what, bool quiet) {
  std::size_t size = 0;
  auto* root = static_cast<const versions_root*>(h.find_root("versions", &size));
  auto differ = [&](const char* format, auto... values) {
    if (quiet) return false;
    std::string f = std::string(what) + ": " + format;
    sample::fail(f.c_str(), values...);
  };
  if (root == nullptr || size != sizeof(versions_root)) return differ("the root is missing or of another size");
  if (root->operations != m.operations)
    return differ("the counter is %" PRIu64 ", the model's %" PRIu64, root->operations, m.operations);
  for (std::size_t c = 0; c < kCells; ++c) {
    if (root->cells[c] != m.cells[c])
      return differ("cell %zu is %" PRIu64 ", the model's %" PRIu64, c, root->cells[c], m.cells[c]);
  }
  std::vector<const void*> blocks{root};
  for (std::size_t i = 0; i < kRing; ++i) {
    const blob* b = root->ring[i];
    if ((b != nullptr) != m.ring_used[i]) return differ("ring slot %zu is %s", i, b ? "used" : "empty");
    if (b == nullptr) continue;
    if (b->value != m.ring_value[i]) return differ("ring slot %zu holds %" PRIu64, i, b->value);
    blocks.push_back(b);
  }
  if (quiet) {
    std::size_t expected = 0;
    for (const void* b : blocks) expected += larder::usable_size(b);
    return sample::bytes_in_use(h) == expected;
  }
  sample::check_no_leak(h, blocks, what);
  return true;
}

// Versions by the operation count in their message.
std::map<std::uint64_t, std::string> versions_in(const std::string& store_dir) {
  std::map<std::uint64_t, std::string> by_ops;
  std::error_code ec;
  if (!std::filesystem::exists(store_dir + "/store", ec)) return by_ops;
  larder::version_store store;
  larder::throw_if_error(larder::version_store::open(store_dir, &store));
  larder::store_verify_report report;
  larder::throw_if_error(store.verify(&report));
  if (!report.clean())
    sample::fail("versions verify: %s: %s (%zu problems)", report.problems[0].file.c_str(),
                 report.problems[0].what.c_str(), report.problems.size());
  std::vector<larder::version_info> all;
  larder::throw_if_error(store.log(true, &all));
  for (const larder::version_info& v : all) {
    unsigned long long n = 0;
    if (v.damaged || std::sscanf(v.message.c_str(), "ops %llu", &n) != 1)
      sample::fail("version %s: damaged or not the sample's (%s)", v.id.c_str(), v.message.c_str());
    if (!by_ops.emplace(n, v.id).second) sample::fail("two versions at %llu operations", n);
  }
  return by_ops;
}

void check_versions(const settings& s, std::uint64_t stage, const std::string& heap_path) {
  const std::string store_dir = heap_path + ".versions";
  std::map<std::uint64_t, std::string> by_ops = versions_in(store_dir);
  std::vector<std::uint64_t> acknowledged;
  for (std::uint64_t n = 1; n <= s.a.operations; ++n) {
    if (s.checkpoint_after(n) && 2 * n + 1 <= stage) acknowledged.push_back(n);
  }
  std::size_t required_from = s.m == mode::gc && acknowledged.size() > 2 ? acknowledged.size() - 2 : 0;
  for (std::size_t i = required_from; i < acknowledged.size(); ++i) {
    if (!by_ops.contains(acknowledged[i]))
      sample::fail("the version at %" PRIu64 " operations returned from checkpoint but is not in the store",
                   acknowledged[i]);
  }
  for (const auto& [n, id] : by_ops) {
    if (!s.checkpoint_after(n)) sample::fail("a version at %" PRIu64 " operations, never checkpointed", n);
    larder::heap version;
    larder::throw_if_error(larder::open_version(store_dir, id, &version));
    matches(version, model_after(s, n), ("version " + id).c_str(), false);
  }
  if (by_ops.empty()) return;
  const std::string clone = heap_path + ".clone";
  std::error_code ec;
  std::filesystem::remove(clone, ec);
  larder::throw_if_error(larder::clone_version(store_dir, by_ops.rbegin()->second, clone));
  {
    larder::heap cloned({.kind = larder::backing::file, .name = clone, .mode = larder::open_mode::open});
    matches(cloned, model_after(s, by_ops.rbegin()->first), "the clone of the newest version", false);
  }
  larder::throw_if_error(larder::heap::remove(larder::backing::file, clone));
}

larder::status open_heap(const std::string& path, larder::heap* h) {
  return larder::heap::open({.kind = larder::backing::file, .name = path, .mode = larder::open_mode::open}, h);
}

// In checkout mode once the checkout began: the heap is the last version
// or the first, whole, or it does not open and restore_version mends it.
void check_checkout(const settings& s, std::uint64_t stage, const std::string& path) {
  const std::uint64_t first = s.interval();
  const std::string store_dir = path + ".versions";
  std::string first_id = versions_in(store_dir).at(first);
  larder::heap h;
  larder::status opened = open_heap(path, &h);
  if (!opened.ok()) {
    std::printf("the heap does not open after a crash in checkout (%s): restoring the version\n",
                opened.to_string().c_str());
    larder::throw_if_error(larder::restore_version(larder::backing::file, path, first_id, store_dir));
    larder::throw_if_error(open_heap(path, &h));
    matches(h, model_after(s, first), "the heap restored after a crash in checkout", false);
  } else if (stage == s.checked_out_stage()) {
    matches(h, model_after(s, first), "the heap after checkout returned", false);
  } else if (!matches(h, model_after(s, s.a.operations), "", true) && !matches(h, model_after(s, first), "", true)) {
    sample::fail("after a crash in checkout the heap opens holding neither version whole (counter %" PRIu64 ")",
                 static_cast<const versions_root*>(h.find_root("versions"))->operations);
  }
  larder::throw_if_error(h.close());
}

void check(const settings& s) {
  const std::uint64_t stage = larder::crashtest::acknowledged();
  const std::string path = larder::crashtest::heap_path();
  check_versions(s, stage, path);
  if (s.m == mode::checkout && stage >= 2 * s.a.operations + 1) return check_checkout(s, stage, path);
  larder::heap h;
  if (sample::open_for_check(&h, stage / 2) != 0) return;
  const auto* root = static_cast<const versions_root*>(h.find_root("versions"));
  if (root == nullptr) {
    if (stage != 0) sample::fail("the root is missing after stage %" PRIu64, stage);
    return;
  }
  sample::check_counter(root->operations, stage / 2, s.a.operations);
  matches(h, model_after(s, root->operations), "the heap", false);
  std::vector<const void*> blocks{root};
  for (const blob* b : root->ring)
    if (b != nullptr) blocks.push_back(b);
  sample::check_still_usable(h, blocks, sizeof(blob));
  larder::throw_if_error(h.close());
}

settings parse(int argc, char** argv) {
  settings s;
  s.a = sample::parse(argc > 3 ? 3 : argc, argv);
  if (argc > 3) {
    std::string m = argv[3];
    if (m == "gc") s.m = mode::gc;
    else if (m == "checkout") s.m = mode::checkout;
    else if (m != "checkpoint") {
      std::fprintf(stderr, "usage: %s [OPERATIONS [SEED [checkpoint|gc|checkout]]]\n", argv[0]);
      std::exit(2);
    }
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  settings s = parse(argc, argv);
  try {
    switch (larder::crashtest::current_phase()) {
      case larder::crashtest::phase::run: {
        larder::heap h({.kind = larder::backing::file, .name = larder::crashtest::heap_path()});
        run(h, s);
        larder::throw_if_error(h.close());
        return 0;
      }
      case larder::crashtest::phase::check:
        check(s);
        std::printf("versions: stage %" PRIu64 ": ok\n", larder::crashtest::acknowledged());
        return 0;
      case larder::crashtest::phase::none: break;
    }
  } catch (const larder::error& e) {
    std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
    return 1;
  }
  std::fprintf(stderr, "%s: a crash-test sample; run it with\n  larder crashtest -- %s [OPERATIONS [SEED [MODE]]]\n",
               argv[0], argv[0]);
  return 2;
}
