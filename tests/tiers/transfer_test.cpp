// Push and pull between chunk stores (tiers/chunks/transfer.hpp) with the
// directory remote: round trips keep ids and bytes, a second push sends
// only what changed, a push stopped by an error, by kill -9 or by a power
// failure at any of its persistence points leaves the remote reading what
// it had and a rerun sends only what is missing, refs move only forward,
// and damaged or foreign stores give clear errors.
#include "chunk_test_util.hpp"
#include "failing_store.hpp"
#include "recovery/persist.hpp"
#include "tiers/chunks/directory_store.hpp"
#include "tiers/chunks/fault_file_ops.hpp"
#include "tiers/chunks/transfer.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

namespace larder::chunks::test {
namespace {

std::unique_ptr<directory_store> open_dir(const std::string& path, store_options o = {}) {
  o.create = true;
  std::unique_ptr<directory_store> d;
  status s = directory_store::open(path, o, &d);
  EXPECT_TRUE(s.ok()) << s.to_string();
  return d;
}

transfer_stats send(remote_store& from, remote_store& to, std::string_view what = "", bool force = false,
                    status* result = nullptr) {
  transfer_plan plan;
  transfer_stats stats;
  status s = plan_transfer(from, what, false, &plan);
  if (s.ok()) s = transfer(from, to, plan, force, &stats);
  if (result != nullptr) {
    *result = s;
  } else {
    EXPECT_TRUE(s.ok()) << s.to_string();
  }
  return stats;
}

class TransferTest : public ::testing::Test {
 protected:
  std::string path(const char* name) const { return dir_.path() + "/" + name; }
  // A version of `pages` pages on heads/main of `s`, child of `parent`.
  version_id commit_main(directory_store& d, const std::vector<char>& image, const version_id* parent = nullptr) {
    version_id id = commit_pages(d.store(), image, "v", parent);
    EXPECT_TRUE(d.store().set_ref("heads/main", id).ok());
    return id;
  }
  scratch_dir dir_;
};

// Random, compressible and zero pages.
std::vector<char> mixed_image(std::uint64_t seed, std::size_t pages) {
  std::mt19937_64 r(seed);
  std::vector<char> image = random_pages(r, pages);
  for (std::size_t i = 0; i < pages; i += 3) compressible_page(seed + i, image.data() + i * kPage);
  for (std::size_t i = 1; i < pages; i += 7) std::memset(image.data() + i * kPage, 0, kPage);
  return image;
}

TEST_F(TransferTest, RoundTripKeepsIdsRefsAndBytes) {
  auto a = open_dir(path("a"));
  std::vector<char> first = mixed_image(1, 300), second = mixed_image(2, 300);
  version_id v1 = commit_main(*a, first);
  version_id v2 = commit_main(*a, second, &v1);
  ASSERT_TRUE(a->store().set_ref("tags/one", v1).ok());

  auto b = open_dir(path("b"));
  transfer_stats pushed = send(*a, *b);
  EXPECT_EQ(pushed.versions_sent, 2u);
  EXPECT_EQ(pushed.refs_set, 2u);
  auto c = open_dir(path("c"));
  send(*b, *c, "main");
  for (directory_store* d : {b.get(), c.get()}) {
    EXPECT_TRUE(read_back(d->store(), v2) == second);
    version_id main;
    ASSERT_TRUE(d->store().get_ref("heads/main", &main).ok());
    EXPECT_EQ(main, v2);
    version_record r;
    ASSERT_TRUE(d->store().read_version(v2, &r).ok());
    EXPECT_EQ(r.message, "v");
    EXPECT_EQ(r.metadata, "meta:v");
    ASSERT_TRUE(r.has_parent);
    EXPECT_EQ(r.parent, v1);
    verify_report report;
    ASSERT_TRUE(d->store().verify(&report).ok());
    EXPECT_TRUE(report.clean());
  }
  EXPECT_TRUE(read_back(b->store(), v1) == first);
  // "main" alone brings its version, not the tag's.
  EXPECT_FALSE(c->store().get_ref("tags/one", &v1).ok());

  // Nothing to send the second time.
  transfer_stats again = send(*a, *b);
  EXPECT_EQ(again.versions_sent + again.chunks_sent + again.refs_set, 0u);
}

TEST_F(TransferTest, SecondPushSendsOnlyTheChangedPages) {
  constexpr std::size_t kPages = 4096, kChanged = kPages / 100;
  auto a = open_dir(path("a"));
  std::mt19937_64 r(7);
  std::vector<char> image = random_pages(r, kPages);
  version_id v1 = commit_main(*a, image);
  auto b = open_dir(path("b"));
  transfer_stats first = send(*a, *b);
  EXPECT_EQ(first.chunks_sent, kPages);
  for (std::size_t i = 0; i < kChanged; ++i) random_page(r, image.data() + (i * 97 % kPages) * kPage);
  version_id v2 = commit_main(*a, image, &v1);

  transfer_stats second = send(*a, *b);
  EXPECT_EQ(second.versions_sent, 1u);
  EXPECT_EQ(second.chunks_asked, kChanged);  // the pages that differ from the parent the remote holds
  EXPECT_EQ(second.chunks_sent, kChanged);
  EXPECT_LE(second.chunk_bytes_sent, kChanged * kPage * 11 / 10);
  EXPECT_LT(second.version_bytes_sent, 2048u);  // the manifest of the changes; the remote holds its base table
  EXPECT_TRUE(read_back(b->store(), v2) == image);
}

// Batches of 256 chunks, synced every 16 MiB (4096 chunks): a push of
// 6144 new chunks stopped at its 20th batch.
constexpr std::size_t kBigPages = 6144;
constexpr int kStopAt = 20;

TEST_F(TransferTest, FailedPushLeavesTheRemoteAsItWasAndARerunSendsTheRest) {
  auto a = open_dir(path("a"));
  std::mt19937_64 r(3);
  std::vector<char> small = random_pages(r, 8), big = random_pages(r, kBigPages);
  version_id v1 = commit_main(*a, small);
  auto b = open_dir(path("b"));
  send(*a, *b);
  version_id v2 = commit_main(*a, big, &v1);

  failing_store failing(*b, kStopAt, false);
  status s;
  send(*a, failing, "", false, &s);
  EXPECT_EQ(s.code(), EIO) << s.to_string();
  version_id main;
  ASSERT_TRUE(b->store().get_ref("heads/main", &main).ok());
  EXPECT_EQ(main, v1);
  EXPECT_TRUE(read_back(b->store(), v1) == small);
  // What was put before the failure was made durable when it gave up.
  transfer_stats rerun = send(*a, *b);
  EXPECT_EQ(rerun.chunks_sent, kBigPages - (kStopAt - 1) * 256);
  EXPECT_TRUE(read_back(b->store(), v2) == big);
}

TEST_F(TransferTest, PushKilledMidwayLeavesTheRemoteValidAndARerunSendsOnlyWhatIsMissing) {
  auto a = open_dir(path("a"));
  std::mt19937_64 r(4);
  std::vector<char> small = random_pages(r, 8), big = random_pages(r, kBigPages);
  version_id v1 = commit_main(*a, small);
  {
    auto b = open_dir(path("b"));
    send(*a, *b);
  }
  version_id v2 = commit_main(*a, big, &v1);
  pid_t child = ::fork();
  if (child == 0) {
    auto source = open_dir(path("a"));  // its own I/O queue, not the parent's
    auto b = open_dir(path("b"));
    failing_store killed(*b, kStopAt, true);
    transfer_plan plan;
    transfer_stats stats;
    status s = plan_transfer(*source, "", false, &plan);
    if (s.ok()) s = transfer(*source, killed, plan, false, &stats);
    ::_exit(s.ok() ? 0 : 1);
  }
  int wstatus = 0;
  ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL) << wstatus;

  auto b = open_dir(path("b"));
  verify_report report;
  ASSERT_TRUE(b->store().verify(&report).ok());
  EXPECT_TRUE(report.clean());
  EXPECT_GT(report.temporaries, 0u);  // the pack being written
  version_id main;
  ASSERT_TRUE(b->store().get_ref("heads/main", &main).ok());
  EXPECT_EQ(main, v1);
  EXPECT_TRUE(read_back(b->store(), v1) == small);
  // The first 16 MiB were synced before the kill: only the rest goes again.
  transfer_stats rerun = send(*a, *b);
  EXPECT_EQ(rerun.chunks_sent, kBigPages - 4096);
  EXPECT_TRUE(read_back(b->store(), v2) == big);
}

// The power fails at each persistence point of a push into the remote in
// turn (fault_file_ops): the remote then still reads v1 through its ref,
// names v2 only once v2 is whole, and a rerun completes the push.
TEST_F(TransferTest, PowerFailureAtEveryPointOfAPush) {
  auto a = open_dir(path("a"));
  std::vector<char> first = mixed_image(5, 40), second = mixed_image(6, 40);
  version_id v1 = commit_main(*a, first);
  version_id v2 = commit_main(*a, second, &v1);
  const std::string remote = path("b");
  std::uint64_t points = 0;
  for (std::uint64_t at = 1;; ++at) {
    std::filesystem::remove_all(remote);
    {
      auto b = open_dir(remote);
      send(*a, *b, v1.hex());
      ASSERT_TRUE(b->store().set_ref("heads/main", v1).ok());
    }
    pid_t child = ::fork();
    if (child == 0) {
      fault_file_ops faults(fault_plan{.crash_at = at, .torn = at % 2 == 0, .seed = at});
      store_options o;
      o.files = &faults;
      o.pack_target_bytes = 24 << 10;  // several packs: more points
      std::unique_ptr<directory_store> b, source;
      if (!directory_store::open(remote, o, &b).ok() || !directory_store::open(path("a"), {}, &source).ok()) ::_exit(3);
      transfer_plan plan;
      transfer_stats stats;
      status s = plan_transfer(*source, "main", false, &plan);
      if (s.ok()) s = transfer(*source, *b, plan, false, &stats);
      ::_exit(s.ok() ? 0 : 1);
    }
    int wstatus = 0;
    ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
    ASSERT_TRUE(WIFEXITED(wstatus)) << wstatus;
    if (WEXITSTATUS(wstatus) == 0) break;  // no point `at`: the sweep is over
    ASSERT_EQ(WEXITSTATUS(wstatus), recovery::kCrashExitCode) << "at point " << at;
    points = at;
    auto b = open_dir(remote);
    verify_report report;
    ASSERT_TRUE(b->store().verify(&report).ok());
    ASSERT_TRUE(report.clean()) << "at point " << at << ": " << report.problems.front().what;
    version_id main;
    ASSERT_TRUE(b->store().get_ref("heads/main", &main).ok());
    ASSERT_TRUE(main == v1 || main == v2) << "at point " << at;
    EXPECT_TRUE(read_back(b->store(), main) == (main == v1 ? first : second)) << "at point " << at;
    send(*a, *b, "main");
    EXPECT_TRUE(read_back(b->store(), v2) == second) << "at point " << at;
  }
  EXPECT_GE(points, 6u);  // packs, manifest, ref: each a file and a directory sync
}

TEST_F(TransferTest, BranchesMoveOnlyForwardAndTagsNotAtAllWithoutForce) {
  auto a = open_dir(path("a"));
  std::vector<char> one = mixed_image(8, 20), two = mixed_image(9, 20), other = mixed_image(10, 20);
  version_id v1 = commit_main(*a, one);
  ASSERT_TRUE(a->store().set_ref("tags/t", v1).ok());
  auto b = open_dir(path("b"));
  send(*a, *b);
  version_id v2 = commit_main(*a, two, &v1);
  send(*a, *b, "main");  // forward
  version_id main;
  ASSERT_TRUE(b->store().get_ref("heads/main", &main).ok());
  EXPECT_EQ(main, v2);

  // Another line of history on main, and the tag moved.
  version_id elsewhere = commit_main(*a, other, &v1);
  status s;
  send(*a, *b, "main", false, &s);
  EXPECT_TRUE(s.is(errc::already_exists)) << s.to_string();
  ASSERT_TRUE(b->store().get_ref("heads/main", &main).ok());
  EXPECT_EQ(main, v2);
  EXPECT_TRUE(read_back(b->store(), elsewhere) == other);  // the version went; only the ref stayed
  send(*a, *b, "main", true);
  ASSERT_TRUE(b->store().get_ref("heads/main", &main).ok());
  EXPECT_EQ(main, elsewhere);

  ASSERT_TRUE(a->store().set_ref("tags/t", v2).ok());
  send(*a, *b, "tags/t", false, &s);
  EXPECT_TRUE(s.is(errc::already_exists)) << s.to_string();
}

TEST_F(TransferTest, NamesResolveOnTheSource) {
  auto a = open_dir(path("a"));
  version_id v1 = commit_main(*a, mixed_image(11, 10));
  auto b = open_dir(path("b"));
  status s;
  send(*a, *b, "nosuch", false, &s);
  EXPECT_TRUE(s.is(errc::not_found)) << s.to_string();
  transfer_stats by_prefix = send(*a, *b, v1.hex().substr(0, 6));
  EXPECT_EQ(by_prefix.versions_sent, 1u);
  EXPECT_EQ(by_prefix.refs_set, 0u);  // an id names no ref
  transfer_plan plan;
  ASSERT_TRUE(plan_transfer(*a, "", true, &plan).ok());
  EXPECT_EQ(plan.versions.size(), 1u);
  EXPECT_EQ(plan.refs.size(), 1u);
}

TEST_F(TransferTest, ForeignAndDamagedStoresGiveClearErrors) {
  // A directory that holds something else is not made a store.
  std::filesystem::create_directory(path("foreign"));
  std::ofstream(path("foreign") + "/notes.txt") << "mine";
  std::unique_ptr<directory_store> d;
  status s = directory_store::open(path("foreign"), store_options{.create = true}, &d);
  EXPECT_TRUE(s.is(errc::not_a_heap)) << s.to_string();
  EXPECT_NE(s.message().find("not empty"), std::string::npos) << s.message();
  EXPECT_FALSE(std::filesystem::exists(path("foreign") + "/store"));
  std::unique_ptr<remote_store> remote;
  s = open_remote(path("absent"), false, &remote);
  EXPECT_TRUE(s.is(errc::not_a_heap)) << s.to_string();

  // A damaged chunk in the source: named, and nothing of the version lands.
  auto a = open_dir(path("a"));
  std::mt19937_64 r(12);
  std::vector<char> image = random_pages(r, 16);
  commit_main(*a, image);
  a.reset();
  for (const auto& f : std::filesystem::directory_iterator(path("a") + "/packs")) {
    if (f.path().extension() != ".pack") continue;
    std::fstream pack(f.path(), std::ios::in | std::ios::out | std::ios::binary);
    pack.seekp(32 + 32 + 100);  // the first record's payload
    pack.put('\x5a');
  }
  a = open_dir(path("a"));
  auto b = open_dir(path("b"));
  send(*a, *b, "", false, &s);
  EXPECT_TRUE(s.is(errc::corrupt)) << s.to_string();
  EXPECT_NE(s.message().find("chunk "), std::string::npos) << s.message();
  std::vector<version_id> held;
  ASSERT_TRUE(b->list_versions(&held).ok());
  EXPECT_TRUE(held.empty());

  // A damaged manifest: named.
  auto c = open_dir(path("c"));
  version_id v = commit_main(*c, mixed_image(13, 4));
  {
    std::fstream m(path("c") + "/versions/" + v.hex(), std::ios::in | std::ios::out | std::ios::binary);
    m.seekp(90);
    m.put('\x01');
  }
  auto e = open_dir(path("e"));
  send(*c, *e, "", false, &s);
  EXPECT_TRUE(s.is(errc::corrupt)) << s.to_string();
  EXPECT_NE(s.message().find("versions/" + v.hex()), std::string::npos) << s.message();
}

// A chunk that does not match its name is refused on arrival.
TEST_F(TransferTest, ReceivedChunksAreChecked) {
  auto b = open_dir(path("b"));
  std::mt19937_64 r(14);
  std::vector<char> page = random_pages(r, 1);
  stored_chunk c{page_fingerprint(page.data()), encoding::raw, std::string(page.data(), kPage)};
  c.payload[10] ^= 1;
  status s = b->put_chunks({c});
  EXPECT_TRUE(s.is(errc::corrupt)) << s.to_string();
  std::vector<bool> present;
  ASSERT_TRUE(b->has_chunks(&c.name, 1, &present).ok());
  EXPECT_FALSE(present[0]);
  ASSERT_TRUE(b->release().ok());
}

}  // namespace
}  // namespace larder::chunks::test
