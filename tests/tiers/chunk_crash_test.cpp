// Power-failure crash sweeps of the chunk store. A child process runs a
// fixed script (create the store, commit versions, move and delete refs,
// delete versions, gc) through fault_file_ops, acknowledging each step in
// a side file with its own fsync, and the power fails at persistence point
// N: whatever was not durable is rolled back. The parent then opens the
// store and checks it against the model of the acknowledged steps: it
// verifies clean (temporaries aside), every version acknowledged and not
// deleted reads back byte for byte, refs name what they were last set to,
// and the same holds after a gc. Every point is tried (about 90, a few
// seconds), once losing every unsynced write, once tearing them.
#include "chunk_test_util.hpp"
#include "recovery/persist.hpp"
#include "tiers/chunks/fault_file_ops.hpp"
#include "tiers/chunks/files.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <optional>
#include <sstream>
#include <set>

namespace larder::chunks::test {
namespace {

constexpr std::size_t kPages = 16;

// ---- the script ------------------------------------------------------------
enum class step_kind { commit, set_ref, delete_ref, delete_version, gc, set_head };
struct step {
  step_kind kind;
  int version = -1;  // commit: which; set_ref, delete_version: the version's commit number
  std::string ref;
};

const std::vector<step>& script() {
  static const std::vector<step> steps = {
      {step_kind::commit, 0, ""},          {step_kind::set_ref, 0, "heads/main"},
      {step_kind::set_head, -1, "heads/main"},
      {step_kind::commit, 1, ""},          {step_kind::set_ref, 1, "heads/main"},
      {step_kind::set_ref, 1, "tags/t1"},  {step_kind::commit, 2, ""},
      {step_kind::set_ref, 2, "heads/main"}, {step_kind::commit, 3, ""},
      {step_kind::set_ref, 3, "heads/dev"}, {step_kind::delete_version, 0, ""},
      {step_kind::gc, -1, ""},             {step_kind::commit, 4, ""},
      {step_kind::commit, 5, ""},          {step_kind::set_ref, 5, "heads/main"},
      {step_kind::delete_ref, -1, "heads/dev"}, {step_kind::delete_version, 3, ""},
      {step_kind::delete_ref, -1, "tags/t1"}, {step_kind::delete_version, 1, ""},
      {step_kind::gc, -1, ""},             {step_kind::commit, 6, ""},
      {step_kind::set_ref, 6, "heads/main"}, {step_kind::delete_version, 4, ""},
      {step_kind::gc, -1, ""},
  };
  return steps;
}

// Page i of commit k: every eighth a zero page, every eighth compressible,
// the rest random pages that change every third commit (so that versions
// share chunks and gc finds packs half dead).
void page_of(int k, std::size_t i, char* page) {
  if (i % 8 == 7) {
    std::memset(page, 0, kPage);
  } else if (i % 8 == 6) {
    compressible_page(static_cast<std::uint64_t>(k / 2) * 100 + i, page);
  } else {
    int generation = k - static_cast<int>((static_cast<std::size_t>(k) + i) % 3);
    std::mt19937_64 r(i * 1000 + static_cast<std::size_t>(std::max(generation, 0)));
    random_page(r, page);
  }
}

std::vector<char> image_of(int k) {
  std::vector<char> image(kPages * kPage);
  for (std::size_t i = 0; i < kPages; ++i) page_of(k, i, image.data() + i * kPage);
  return image;
}

std::string message_of(int k) { return "commit " + std::to_string(k); }

store_options child_options(file_ops* files) {
  store_options o;
  o.files = files;
  o.pack_target_bytes = 24 << 10;  // a few chunks a pack: many packs, many points
  o.compact_below = 0.9;           // gc copies from most packs it touches
  return o;
}

// ---- the child ---------------------------------------------------------------
// Appends a line to the side file and makes it durable: an acknowledgement.
void acknowledge(int fd, const std::string& line) {
  std::string text = line + "\n";
  if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()) || ::fsync(fd) != 0) ::_exit(20);
}

// Runs the script under `plan`. The side file gets "open", then one line
// per step done ("<step> <version id>" for commits, "<step> <chunks
// copied> <packs removed>" for gc); the power fails at
// the planned point, or after the last step. With crash_at 0, the last
// line is "points <n>" and the child exits 0.
[[noreturn]] void run_child(const std::string& dir, const std::string& side, const fault_plan& plan) {
  int out = ::open(side.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0) ::_exit(21);
  fault_file_ops faults(plan);
  std::unique_ptr<chunk_store> s;
  store_options o = child_options(&faults);
  o.create = true;
  if (!chunk_store::open(dir, o, &s).ok()) ::_exit(22);
  acknowledge(out, "open");
  std::map<int, version_id> ids;
  const std::vector<step>& steps = script();
  for (std::size_t n = 0; n < steps.size(); ++n) {
    const step& st = steps[n];
    status r;
    std::string extra;
    switch (st.kind) {
      case step_kind::commit: {
        std::vector<char> image = image_of(st.version);
        std::vector<fingerprint> names(kPages);
        r = s->put(image.data(), kPages, names.data());
        version_record v;
        v.heap_size = image.size();
        v.message = message_of(st.version);
        if (st.version > 0) {
          v.has_parent = true;
          v.parent = ids.rbegin()->second;
        }
        for (std::size_t i = 0; i < kPages; ++i) {
          if (names[i] != zero_page()) v.pages.push_back(page_entry{i, names[i]});
        }
        version_id id;
        if (r.ok()) r = s->commit(v, &id);
        ids[st.version] = id;
        extra = " " + id.hex();
        break;
      }
      case step_kind::set_ref: r = s->set_ref(st.ref, ids.at(st.version)); break;
      case step_kind::delete_ref: r = s->delete_ref(st.ref); break;
      case step_kind::delete_version: r = s->delete_version(ids.at(st.version), false); break;
      case step_kind::gc: {
        gc_report g;
        r = s->gc(&g);
        extra = " " + std::to_string(g.chunks_copied) + " " + std::to_string(g.packs_removed);
        break;
      }
      case step_kind::set_head: r = s->set_head(st.ref); break;
    }
    if (!r.ok()) {
      std::fprintf(stderr, "step %zu: %s\n", n, r.to_string().c_str());
      ::_exit(23);
    }
    acknowledge(out, std::to_string(n) + extra);
  }
  if (plan.crash_at == 0) {
    acknowledge(out, "points " + std::to_string(faults.points()));
    ::_exit(0);
  }
  faults.power_off();
}

// ---- the parent ---------------------------------------------------------------
struct acknowledged {
  bool opened = false;
  std::size_t steps = 0;  // steps done; script()[steps] was in flight
  std::map<int, version_id> ids;
  std::uint64_t points = 0;
  std::uint64_t gc_copied = 0, gc_removed = 0;  // chunks copied and packs removed by the gc steps
};

acknowledged read_side_file(const std::string& side) {
  acknowledged a;
  std::string text;
  EXPECT_TRUE(read_file(side, &text).ok());
  std::size_t at = 0;
  for (std::size_t end; (end = text.find('\n', at)) != std::string::npos; at = end + 1) {
    std::string line = text.substr(at, end - at);
    if (line == "open") {
      a.opened = true;
    } else if (line.starts_with("points ")) {
      a.points = std::stoull(line.substr(7));
    } else {
      std::size_t n = std::stoul(line);
      EXPECT_EQ(n, a.steps) << line;
      const step& st = script()[n];
      std::istringstream rest(line.substr(line.find(' ') + 1));
      if (st.kind == step_kind::commit) {
        std::string hex;
        rest >> hex;
        EXPECT_TRUE(fingerprint::parse(hex, &a.ids[st.version])) << line;
      } else if (st.kind == step_kind::gc) {
        std::uint64_t copied = 0, removed = 0;
        rest >> copied >> removed;
        a.gc_copied += copied;
        a.gc_removed += removed;
      }
      a.steps = n + 1;
    }
  }
  return a;
}

// What the acknowledged steps left, and what the step in flight may have.
struct model {
  std::map<version_id, int> versions;   // id → commit number: must be there
  std::set<version_id> maybe_deleted;   // the delete in flight: may be gone
  std::optional<int> maybe_committed;   // the commit in flight: its number
  std::map<std::string, version_id> refs;
  std::map<std::string, std::set<version_id>> ref_may_be;  // the ref update in flight: other values allowed
  std::set<std::string> ref_may_be_gone;
};

model model_of(const acknowledged& a) {
  model m;
  const std::vector<step>& steps = script();
  for (std::size_t n = 0; n < a.steps; ++n) {
    const step& st = steps[n];
    if (st.kind == step_kind::commit) m.versions[a.ids.at(st.version)] = st.version;
    if (st.kind == step_kind::set_ref) m.refs[st.ref] = a.ids.at(st.version);
    if (st.kind == step_kind::delete_ref) m.refs.erase(st.ref);
    if (st.kind == step_kind::delete_version) m.versions.erase(a.ids.at(st.version));
  }
  if (a.steps < steps.size()) {
    const step& st = steps[a.steps];
    if (st.kind == step_kind::commit) m.maybe_committed = st.version;
    if (st.kind == step_kind::set_ref) m.ref_may_be[st.ref].insert(a.ids.at(st.version));
    if (st.kind == step_kind::delete_ref) m.ref_may_be_gone.insert(st.ref);
    if (st.kind == step_kind::delete_version) m.maybe_deleted.insert(a.ids.at(st.version));
  }
  return m;
}

// Every version there is one the model allows, whole and right; every
// version the model needs is there; refs as the model says.
void expect_matches(chunk_store& s, const model& m, const acknowledged& a, const std::string& when) {
  SCOPED_TRACE(when);
  std::vector<version_summary> listed;
  ASSERT_TRUE(s.list_versions(&listed).ok());
  std::set<version_id> seen;
  for (const version_summary& v : listed) {
    ASSERT_FALSE(v.damaged) << v.id.hex() << ": " << v.message;
    seen.insert(v.id);
    int k;
    if (auto it = m.versions.find(v.id); it != m.versions.end()) {
      k = it->second;
    } else if (m.maybe_committed && v.message == message_of(*m.maybe_committed)) {
      k = *m.maybe_committed;
    } else {
      FAIL() << "version " << v.id.hex() << " (" << v.message << ") should not be there";
    }
    version_record r;
    ASSERT_TRUE(s.read_version(v.id, &r).ok());
    EXPECT_EQ(r.message, message_of(k));
    EXPECT_EQ(r.has_parent, k > 0);
    if (k > 0) {
      EXPECT_EQ(r.parent, a.ids.at(k - 1));
    }
    EXPECT_TRUE(read_back(s, v.id) == image_of(k)) << message_of(k) << " does not read back";
  }
  for (const auto& [id, k] : m.versions) {
    EXPECT_TRUE(seen.contains(id) || m.maybe_deleted.contains(id)) << message_of(k) << " was acknowledged and is gone";
  }
  std::vector<ref_entry> refs;
  ASSERT_TRUE(s.list_refs(&refs).ok());
  std::map<std::string, version_id> found;
  for (const ref_entry& r : refs) found[r.name] = r.id;
  std::set<std::string> names;
  for (const auto& [name, id] : m.refs) names.insert(name);
  for (const auto& [name, id] : found) names.insert(name);
  for (const std::string& name : names) {
    auto want = m.refs.find(name);
    auto got = found.find(name);
    if (got == found.end()) {
      EXPECT_TRUE(want == m.refs.end() || m.ref_may_be_gone.contains(name)) << name << " is gone";
      continue;
    }
    bool allowed = (want != m.refs.end() && want->second == got->second) ||
                   (m.ref_may_be.contains(name) && m.ref_may_be.at(name).contains(got->second));
    EXPECT_TRUE(allowed) << name << " names " << got->second.hex();
  }
  head_state head;
  ASSERT_TRUE(s.get_head(&head).ok());
  EXPECT_FALSE(head.detached);
  EXPECT_EQ(head.branch, "heads/main");
}

void expect_clean(chunk_store& s, bool temporaries_allowed, const std::string& when) {
  verify_report v;
  ASSERT_TRUE(s.verify(&v).ok());
  ASSERT_TRUE(v.clean()) << when << ": " << v.problems.front().file << ": " << v.problems.front().what;
  EXPECT_TRUE(v.affected_versions.empty()) << when;
  if (!temporaries_allowed) {
    EXPECT_EQ(v.temporaries, 0u) << when;
  }
}

// The recovery side of one trial: the store as the power failure left it.
void check_recovered(const std::string& dir, const acknowledged& a) {
  std::unique_ptr<chunk_store> s;
  store_options o = child_options(nullptr);
  status st = chunk_store::open(dir, o, &s);
  if (!a.opened && st.is(errc::not_a_heap)) {  // its creation was in flight: creating it again must work
    o.create = true;
    st = chunk_store::open(dir, o, &s);
  }
  ASSERT_TRUE(st.ok()) << st.to_string();
  model m = model_of(a);
  expect_clean(*s, true, "after the power failure");
  expect_matches(*s, m, a, "after the power failure");
  gc_report g;
  ASSERT_TRUE(s->gc(&g).ok());
  expect_clean(*s, false, "after gc");
  expect_matches(*s, m, a, "after gc");
  // Still writable: a new version and a ref to it.
  std::vector<char> image = image_of(7);
  version_id id = commit_pages(*s, image, "after");
  ASSERT_TRUE(s->set_ref("heads/after", id).ok());
  EXPECT_TRUE(read_back(*s, id) == image);
}

struct trial_result {
  int exit_code = -1;
  acknowledged acks;
};

trial_result run_trial(const std::string& dir, const fault_plan& plan) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directory(dir);
  std::string side = dir + ".acks";
  pid_t child = ::fork();
  if (child == 0) run_child(dir, side, plan);
  trial_result t;
  int st = 0;
  EXPECT_EQ(::waitpid(child, &st, 0), child);
  t.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  t.acks = read_side_file(side);
  return t;
}

void sweep(bool torn) {
  scratch_dir root;
  std::string dir = root.path() + "/store";
  trial_result count = run_trial(dir, fault_plan{});
  ASSERT_EQ(count.exit_code, 0);
  ASSERT_EQ(count.acks.steps, script().size());
  ASSERT_GT(count.acks.points, 50u);
  ASSERT_GT(count.acks.gc_copied, 0u);  // the script exercises compaction, not only dead packs
  ASSERT_GT(count.acks.gc_removed, 0u);
  for (std::uint64_t p = 1; p <= count.acks.points + 1; ++p) {  // + 1: after the last step
    fault_plan plan{p, torn, p * 7919 + (torn ? 1 : 0)};
    trial_result t = run_trial(dir, plan);
    ASSERT_EQ(t.exit_code, recovery::kCrashExitCode) << "point " << p;
    if (p > count.acks.points) {
      ASSERT_EQ(t.acks.steps, script().size());
    }
    SCOPED_TRACE("power failure at point " + std::to_string(p) + " of " + std::to_string(count.acks.points) +
                 (torn ? " (torn)" : "") + ", after " + std::to_string(t.acks.steps) + " steps");
    check_recovered(dir, t.acks);
    if (::testing::Test::HasFailure()) return;  // the first failing point says enough
  }
  std::printf("power failures at %llu points%s\n", static_cast<unsigned long long>(count.acks.points + 1),
              torn ? ", torn" : "");
}

TEST(ChunkCrash, PowerFailureAtEveryPoint) { sweep(false); }
TEST(ChunkCrash, TornPowerFailureAtEveryPoint) { sweep(true); }

}  // namespace
}  // namespace larder::chunks::test
