// Push and pull through a Ceph pool (tiers/chunks/rados_store.hpp) against
// a real single-node cluster that scripts/ceph-cluster.sh starts for this
// program: a round trip from one directory store through the pool to
// another keeps ids and bytes, a 1 % push sends only the changed pages, a
// pool holding something else is refused, and a damaged chunk object is
// named; a heap is checked out lazily straight from the pool. Skipped, with
// the reason printed, where ceph is not installed.
#include "chunk_test_util.hpp"
#include "failing_store.hpp"
#include "port/rados.hpp"
#include "tiers/chunks/directory_store.hpp"
#include "tiers/chunks/pack_writer.hpp"
#include "tiers/chunks/transfer.hpp"
#include "tests/support/ceph_test_cluster.hpp"

#include <larder/larder.hpp>
#include <larder/versions.hpp>

#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <latch>
#include <thread>

namespace larder::chunks::test {
namespace {

// The program's cluster, with the pool the tests push to.
larder_test::ceph_environment* const cluster_environment = larder_test::ceph_environment::add("pushpull");
std::string cluster_conf() { return cluster_environment->cluster().conf(); }
std::string cluster_remote() { return "rados:pushpull@" + cluster_conf(); }

class TransferCephTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LARDER_NEED_CEPH_CLUSTER();
  }
  std::unique_ptr<directory_store> open_dir(const char* name) {
    std::unique_ptr<directory_store> d;
    status s = directory_store::open(dir_.path() + "/" + name, store_options{.create = true}, &d);
    EXPECT_TRUE(s.ok()) << s.to_string();
    return d;
  }
  std::unique_ptr<remote_store> open_pool(bool create) {
    std::unique_ptr<remote_store> r;
    status s = open_remote(cluster_remote(), create, &r);
    EXPECT_TRUE(s.ok()) << s.to_string();
    return r;
  }
  static std::unique_ptr<port::rados_pool> raw_pool() {
    std::unique_ptr<port::rados_pool> pool;
    EXPECT_TRUE(port::rados_pool::connect(cluster_conf(), "pushpull", {}, &pool).ok());
    return pool;
  }
  scratch_dir dir_;
};

status send(remote_store& from, remote_store& to, transfer_stats* stats) {
  transfer_plan plan;
  status s = plan_transfer(from, "", false, &plan);
  return s.ok() ? transfer(from, to, plan, false, stats) : s;
}

// Runs first: the pool is empty until a store is made in it.
TEST_F(TransferCephTest, APoolHoldingSomethingElseIsRefused) {
  auto pool = raw_pool();
  ASSERT_TRUE(pool->write_full("someone-elses", "x", 1).ok());
  std::unique_ptr<remote_store> r;
  status s = open_remote(cluster_remote(), true, &r);
  EXPECT_TRUE(s.is(errc::not_a_heap)) << s.to_string();
  EXPECT_NE(s.message().find("not empty"), std::string::npos) << s.message();
  ASSERT_TRUE(pool->remove("someone-elses").ok());
  s = open_remote(cluster_remote(), false, &r);
  EXPECT_TRUE(s.is(errc::not_a_heap)) << s.to_string();
  s = open_remote("rados:nosuchpool@" + cluster_conf(), true, &r);
  EXPECT_TRUE(s.is(errc::not_found)) << s.to_string();
}

TEST_F(TransferCephTest, RoundTripThroughThePoolAndAOnePercentPush) {
  constexpr std::size_t kPages = 2048, kChanged = kPages / 100;
  auto a = open_dir("a");
  std::mt19937_64 r(21);
  std::vector<char> image = random_pages(r, kPages);
  for (std::size_t i = 0; i < kPages; i += 4) compressible_page(i, image.data() + i * kPage);
  version_id v1 = commit_pages(a->store(), image, "one");
  ASSERT_TRUE(a->store().set_ref("heads/main", v1).ok());
  auto remote = open_pool(true);
  transfer_stats pushed;
  ASSERT_TRUE(send(*a, *remote, &pushed).ok());
  EXPECT_EQ(pushed.chunks_sent, pushed.chunks_asked);  // each distinct chunk once
  EXPECT_GT(pushed.chunks_sent, kPages * 3 / 4);
  EXPECT_LT(pushed.chunk_bytes_sent, pushed.chunks_sent * kPage);  // compressible pages travel as zstd frames

  for (std::size_t i = 0; i < kChanged; ++i) random_page(r, image.data() + (i * 89 % kPages) * kPage);
  version_id v2 = commit_pages(a->store(), image, "two", &v1);
  ASSERT_TRUE(a->store().set_ref("heads/main", v2).ok());
  status s = send(*a, *remote, &pushed);
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(pushed.chunks_asked, kChanged);
  EXPECT_EQ(pushed.chunks_sent, kChanged);
  EXPECT_LE(pushed.chunk_bytes_sent + pushed.version_bytes_sent, kChanged * kPage * 11 / 10);

  auto c = open_dir("c");
  transfer_stats pulled;
  auto from = open_pool(false);
  ASSERT_TRUE(send(*from, *c, &pulled).ok());
  EXPECT_EQ(pulled.versions_sent, 1u);
  EXPECT_TRUE(read_back(c->store(), v2) == image);
  version_id main;
  ASSERT_TRUE(c->store().get_ref("heads/main", &main).ok());
  EXPECT_EQ(main, v2);
  ASSERT_TRUE(send(*from, *c, &pulled).ok());
  EXPECT_EQ(pulled.versions_sent + pulled.chunks_sent, 0u);

  // A damaged pack object (its last record's last byte): named, and
  // nothing of it lands.
  auto pool = raw_pool();
  std::vector<std::string> packs;
  ASSERT_TRUE(pool->list("packs/", &packs).ok());
  ASSERT_FALSE(packs.empty());
  for (const std::string& object : packs) {
    if (!object.ends_with(".pack")) continue;
    std::uint64_t size = 0;
    ASSERT_TRUE(pool->stat(object, &size).ok());
    std::string bytes(size, '\0');
    std::size_t got = 0;
    ASSERT_TRUE(pool->read(object, 0, bytes.data(), size, &got).ok());
    bytes.back() ^= 1;
    ASSERT_TRUE(pool->write_full(object, bytes.data(), bytes.size()).ok());
  }
  auto e = open_dir("e");
  s = send(*from, *e, &pulled);
  EXPECT_TRUE(s.is(errc::corrupt)) << s.to_string();
  EXPECT_NE(s.message().find(".pack: the page does not match its fingerprint"), std::string::npos) << s.message();
  std::vector<version_id> held;
  ASSERT_TRUE(e->list_versions(&held).ok());
  EXPECT_TRUE(held.empty());
}

// A push into the pool killed (kill -9) at its 20th batch of 256 chunks:
// the pool still reads the version its ref named, and a rerun sends only
// what was not in a pack whose index was written (4 MiB packs: 16 batches).
TEST_F(TransferCephTest, PushKilledMidwayLeavesThePoolValidAndARerunSendsOnlyWhatIsMissing) {
  constexpr std::size_t kPages = 6144;
  auto a = open_dir("killed");
  std::mt19937_64 r(31);
  std::vector<char> small = random_pages(r, 8), big = random_pages(r, kPages);
  version_id v1 = commit_pages(a->store(), small, "small");
  ASSERT_TRUE(a->store().set_ref("heads/killed", v1).ok());
  transfer_plan plan;
  transfer_stats stats;
  {
    auto remote = open_pool(true);
    ASSERT_TRUE(plan_transfer(*a, "killed", false, &plan).ok());
    ASSERT_TRUE(transfer(*a, *remote, plan, false, &stats).ok());
  }
  version_id v2 = commit_pages(a->store(), big, "big", &v1);
  ASSERT_TRUE(a->store().set_ref("heads/killed", v2).ok());
  pid_t child = ::fork();
  if (child == 0) {
    std::unique_ptr<directory_store> source;
    std::unique_ptr<remote_store> remote;
    if (!directory_store::open(dir_.path() + "/killed", {}, &source).ok() ||
        !open_remote(cluster_remote(), false, &remote).ok()) {
      ::_exit(3);
    }
    failing_store killed(*remote, 20, true);
    transfer_plan p;
    transfer_stats st;
    status s = plan_transfer(*source, "killed", false, &p);
    if (s.ok()) s = transfer(*source, killed, p, false, &st);
    ::_exit(s.ok() ? 0 : 1);
  }
  int wstatus = 0;
  ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL) << wstatus;

  auto remote = open_pool(false);
  std::vector<ref_entry> refs;
  ASSERT_TRUE(remote->list_refs(&refs).ok());
  auto it = std::find_if(refs.begin(), refs.end(), [](const ref_entry& e) { return e.name == "heads/killed"; });
  ASSERT_NE(it, refs.end());
  EXPECT_EQ(it->id, v1);
  auto c = open_dir("killed-there");
  ASSERT_TRUE(plan_transfer(*remote, "killed", false, &plan).ok());
  ASSERT_TRUE(transfer(*remote, *c, plan, false, &stats).ok());
  EXPECT_TRUE(read_back(c->store(), v1) == small);

  ASSERT_TRUE(plan_transfer(*a, "killed", false, &plan).ok());
  ASSERT_TRUE(transfer(*a, *remote, plan, false, &stats).ok());
  EXPECT_EQ(stats.chunks_sent, kPages - 4096);
  ASSERT_TRUE(plan_transfer(*remote, "killed", false, &plan).ok());
  ASSERT_TRUE(transfer(*remote, *c, plan, false, &stats).ok());
  EXPECT_TRUE(read_back(c->store(), v2) == big);
}

// The public API's round trip: a heap checkpointed and pushed to the pool,
// pulled into another store and cloned there, holds the same bytes.
TEST_F(TransferCephTest, AHeapPushedToThePoolIsClonedFromIt) {
  const std::string heap = dir_.path() + "/heap", clone = dir_.path() + "/clone";
  constexpr std::size_t kWords = std::size_t{1} << 20;  // 8 MiB
  std::string id;
  {
    larder::heap h({.kind = larder::backing::file, .name = heap, .reserve = std::size_t{1} << 30});
    auto* words = static_cast<std::uint64_t*>(h.allocate(kWords * 8));
    ASSERT_NE(words, nullptr);
    for (std::size_t i = 0; i < kWords; ++i) words[i] = i * 0x9E3779B97F4A7C15ull;
    *h.root<std::uint64_t*>("words") = words;
    id = larder::checkpoint(h, "words").id;
  }
  larder::transfer_stats st;
  // By id: the pool's heads/main is another test's.
  larder::status s = larder::push_versions(heap + ".versions", cluster_remote(), id, {}, &st);
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(st.versions_sent, 1u);
  s = larder::pull_versions(cluster_remote(), dir_.path() + "/there", id.substr(0, 8), {}, &st);
  ASSERT_TRUE(s.ok()) << s.to_string();
  ASSERT_TRUE(larder::clone_version(dir_.path() + "/there", id, clone).ok());
  larder::heap there({.kind = larder::backing::file, .name = clone, .reserve = std::size_t{1} << 30});
  std::uint64_t* words = *there.root<std::uint64_t*>("words");
  for (std::size_t i = 0; i < kWords; ++i) ASSERT_EQ(words[i], i * 0x9E3779B97F4A7C15ull) << i;
}

// A heap checked out lazily on another machine straight from the pool
// (checkout_options::remote): pages fetched on first touch hold every byte
// of the version, and that machine's store gets the version once whole. A
// shm heap, pushed from here; the other machine starts from its first
// version, restored into it, with a store of its own.
TEST_F(TransferCephTest, AHeapIsCheckedOutLazilyStraightFromThePool) {
  bool uffd = false;
  for (const larder::tracker_support& t : larder::tracker_backends())
    if (t.backend == larder::tracker_backend::uffd_async) uffd = t.available;
  if (!uffd) GTEST_SKIP() << "no uffd write-protect tracker here: no lazy checkout";
  const std::string name = "/larder-ceph-lazy-" + std::to_string(::getpid());
  const std::string here = dir_.path() + "/here", there = dir_.path() + "/there";
  struct removed_at_end {
    std::string name;
    ~removed_at_end() { (void)larder::heap::remove(larder::backing::shm, name); }
  } guard{name};
  const larder::heap_options o{.kind = larder::backing::shm, .name = name, .reserve = std::size_t{1} << 30};
  constexpr std::size_t kWords = std::size_t{1} << 20;  // 8 MiB
  auto word = [](std::size_t i) { return i * 0x9E3779B97F4A7C15ull; };
  std::string empty, full;
  {
    larder::heap h(o);
    larder::throw_if_error(larder::use_version_store(h, here));
    auto* words = static_cast<std::uint64_t*>(h.allocate(kWords * 8));
    ASSERT_NE(words, nullptr);
    *h.root<std::uint64_t*>("words") = words;
    empty = larder::checkpoint(h, "allocated").id;
    for (std::size_t i = 0; i < kWords; ++i) words[i] = word(i);
    full = larder::checkpoint(h, "filled").id;
  }
  larder::transfer_stats sent;
  // By id: the pool's heads/main is another test's.
  larder::status s = larder::push_versions(here, cluster_remote(), full, {}, &sent);
  ASSERT_TRUE(s.ok()) << s.to_string();
  larder::throw_if_error(larder::restore_version(larder::backing::shm, name, empty, here));

  larder::heap h(o);
  larder::throw_if_error(larder::use_version_store(h, there));
  larder::checkout_stats st;
  s = larder::checkout(h, full.substr(0, 10), {.lazy = true, .remote = cluster_remote()}, &st);
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_GE(st.pages_lazy, kWords * 8 / 4096 * 9 / 10);  // segment headers come at once
  const std::uint64_t* words = *static_cast<std::uint64_t**>(h.find_root("words"));
  for (std::size_t i = 0; i < kWords; ++i) ASSERT_EQ(words[i], word(i)) << i;
  ASSERT_TRUE(larder::finish_checkout(h).ok());
  const larder::lazy_checkout_state done = larder::lazy_checkout_progress(h);
  EXPECT_GE(done.chunks_fetched, kWords * 8 / 4096);
  EXPECT_GE(done.bytes_fetched, kWords * 8);
  ASSERT_TRUE(h.close().ok());
  larder::version_store store;
  larder::throw_if_error(larder::version_store::open(there, &store));
  larder::store_verify_report report;
  larder::throw_if_error(store.verify(&report));
  EXPECT_TRUE(report.clean());
  std::string head;
  larder::throw_if_error(store.head(&head));
  EXPECT_EQ(head, full);
}

// Chunks another writer sent after this connection opened the pool: a
// version naming them is published (the packs published since are looked
// for before a chunk is called missing), one naming a chunk sent nowhere
// is not.
TEST_F(TransferCephTest, AVersionWhoseChunksAnotherWriterSentIsPublished) {
  auto local = open_dir("writers");
  std::mt19937_64 r(77);
  std::vector<char> image = random_pages(r, 32);
  const version_id sent = commit_pages(local->store(), image, "chunks sent by another writer");
  random_page(r, image.data());
  const version_id unsent = commit_pages(local->store(), image, "one chunk sent nowhere", &sent);
  auto publisher = open_pool(true);
  auto sender = open_pool(false);
  ASSERT_TRUE(publisher && sender);
  version_record v;
  ASSERT_TRUE(local->store().read_version(sent, &v).ok());
  std::vector<fingerprint> names;
  for (const page_entry& e : v.pages) names.push_back(e.chunk);
  std::vector<stored_chunk> chunks;
  ASSERT_TRUE(local->get_chunks(names.data(), names.size(), &chunks).ok());
  ASSERT_TRUE(sender->put_chunks(chunks).ok());
  ASSERT_TRUE(sender->sync_chunks().ok());
  for (const version_id& id : {sent, unsent}) {
    std::string manifest, table;
    ASSERT_TRUE(local->get_version(id, &manifest, &table).ok());
    version_id published;
    status s = publisher->put_version(manifest, table, &published);
    if (id == sent) {
      ASSERT_TRUE(s.ok()) << s.to_string();
      EXPECT_EQ(published, sent);
    } else {
      EXPECT_TRUE(s.is(errc::not_found)) << s.to_string();
    }
  }
  std::vector<stored_chunk> back;
  ASSERT_TRUE(publisher->get_chunks(names.data(), names.size(), &back).ok());
  EXPECT_EQ(back.size(), names.size());
}

// Two pushes moving one ref at the same instant, each through its own
// connection: the cluster lets exactly one of them through each time, and
// the ref names the winner's version. Many rounds: a ref moved by a read
// and a separate write lets both through within a few.
TEST_F(TransferCephTest, TwoPushesRacingOnOneRefMoveItOnce) {
  auto first = open_pool(true), second = open_pool(false);
  ASSERT_TRUE(first && second);
  remote_store* stores[2] = {first.get(), second.get()};
  const std::string ref = "heads/race";
  version_id now{};
  for (int round = 0; round < 200; ++round) {
    version_id proposed[2];
    status results[2];
    for (int i = 0; i < 2; ++i) {
      const std::string seed = std::to_string(round) + "/" + std::to_string(i);
      proposed[i] = fingerprint_of(seed.data(), seed.size());
    }
    std::latch start(2);
    std::vector<std::thread> pushes;
    for (int i = 0; i < 2; ++i) {
      pushes.emplace_back([&, i] {
        start.arrive_and_wait();
        results[i] = stores[i]->set_ref(ref, proposed[i], round == 0 ? nullptr : &now);
      });
    }
    for (std::thread& t : pushes) t.join();
    ASSERT_NE(results[0].ok(), results[1].ok()) << "round " << round << ": " << results[0].to_string() << " / "
                                                << results[1].to_string();
    const int winner = results[0].ok() ? 0 : 1;
    EXPECT_TRUE(results[1 - winner].is(errc::already_exists)) << results[1 - winner].to_string();
    std::vector<ref_entry> refs;
    ASSERT_TRUE(first->list_refs(&refs).ok());
    auto it = std::find_if(refs.begin(), refs.end(), [&](const ref_entry& r) { return r.name == ref; });
    ASSERT_NE(it, refs.end());
    EXPECT_EQ(it->id, proposed[winner]) << "round " << round;
    now = proposed[winner];
  }
  // A move from a version the ref no longer names, or a creation of a ref
  // that exists, changes nothing.
  const version_id stale = fingerprint_of("stale", 5);
  EXPECT_TRUE(first->set_ref(ref, stale, &stale).is(errc::already_exists));
  EXPECT_TRUE(second->set_ref(ref, stale, nullptr).is(errc::already_exists));
  ASSERT_TRUE(first->set_ref(ref, stale, &now).ok());
}

// Runs last: a pack index whose checksum holds but whose entry claims a
// record larger than a page is refused as corrupt at open, before a read
// sizes a buffer by it.
TEST_F(TransferCephTest, AnIndexClaimingARecordLargerThanAPageIsRefused) {
  auto pool = raw_pool();
  const std::uint64_t id = 0x0123456789abcdefull;
  const std::string pack = "packs/" + pack_name(id), index = "packs/" + index_name(id);
  const std::string record(4096, 'r');
  index_entry e{};
  e.fingerprint = fingerprint_of("forged", 6).bytes();
  e.stored_size = 1 << 20;
  e.encoding = static_cast<std::uint8_t>(encoding::zstd);
  const std::string forged = encode_index(id, record.size() + (1 << 20), {e});
  ASSERT_TRUE(pool->write_full(pack, record.data(), record.size()).ok());
  ASSERT_TRUE(pool->write_full(index, forged.data(), forged.size()).ok());
  std::unique_ptr<remote_store> r;
  status s = open_remote(cluster_remote(), false, &r);
  EXPECT_TRUE(s.is(errc::corrupt)) << s.to_string();
  EXPECT_NE(s.message().find(index), std::string::npos) << s.message();
  ASSERT_TRUE(pool->remove(index).ok());
  ASSERT_TRUE(pool->remove(pack).ok());
  ASSERT_TRUE(open_remote(cluster_remote(), false, &r).ok());
}

}  // namespace
}  // namespace larder::chunks::test
