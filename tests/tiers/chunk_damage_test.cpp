// The chunk store's housekeeping and its answers to damage: gc against a
// model of random versions, du, verify on flipped bytes in packs, indexes
// and manifests, index rebuilds, truncated packs and leftover temporaries.
#include "chunk_test_util.hpp"

#include "tiers/chunks/files.hpp"
#include "tiers/chunks/pack_reader.hpp"
#include "tiers/chunks/pack_writer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

namespace larder::chunks::test {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> files_ending(const std::string& dir, const std::string& suffix) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().string().ends_with(suffix)) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void flip_byte(const std::string& path, std::uint64_t offset) {
  int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << path;
  char c = 0;
  ASSERT_EQ(::pread(fd, &c, 1, static_cast<off_t>(offset)), 1);
  c = static_cast<char>(c ^ 0x40);
  ASSERT_EQ(::pwrite(fd, &c, 1, static_cast<off_t>(offset)), 1);
  ::close(fd);
}

// Random versions are created and deleted, gc runs now and then (with a
// threshold that compacts often); every remaining version reads back equal
// to the model, and verify stays clean.
TEST(ChunkGc, NeverRemovesAChunkAManifestNames) {
  scratch_dir dir;
  store_options o;
  o.compact_below = 0.7;
  o.pack_target_bytes = 256 << 10;
  auto s = open_store(dir.path(), o);
  std::mt19937_64 r(42);
  constexpr std::size_t kPages = 48;
  std::map<version_id, std::vector<char>> model;
  std::vector<char> image(kPages * kPage, 0);
  std::uint64_t removed_packs = 0;
  for (int step = 0; step < 60; ++step) {
    for (int k = 0; k < 6; ++k) {  // change a few pages: new, zero, or copied from another page
      std::size_t p = r() % kPages;
      int how = static_cast<int>(r() % 4);
      if (how == 0) {
        std::memset(image.data() + p * kPage, 0, kPage);
      } else if (how == 1) {
        std::memcpy(image.data() + p * kPage, image.data() + (r() % kPages) * kPage, kPage);
      } else {
        random_page(r, image.data() + p * kPage);
      }
    }
    model[commit_pages(*s, image, "step " + std::to_string(step))] = image;
    if (model.size() > 3 && r() % 2 == 0) {
      auto victim = std::next(model.begin(), static_cast<long>(r() % model.size()));
      ASSERT_TRUE(s->delete_version(victim->first, false).ok());
      model.erase(victim);
    }
    if (step % 7 == 6) {
      gc_report g;
      status st = s->gc(&g);
      ASSERT_TRUE(st.ok()) << st.to_string();
      removed_packs += g.packs_removed;
      for (const auto& [id, expected] : model) ASSERT_EQ(read_back(*s, id), expected) << "step " << step;
    }
  }
  EXPECT_GT(removed_packs, 0u);
  auto fresh = open_store(dir.path(), o);
  for (const auto& [id, expected] : model) ASSERT_EQ(read_back(*fresh, id), expected);
  verify_report v;
  ASSERT_TRUE(fresh->verify(&v).ok());
  EXPECT_TRUE(v.clean()) << v.problems.front().file << ": " << v.problems.front().what;
  EXPECT_EQ(v.versions_checked, model.size());
}

// A chunk two writers put at once lands in two packs. When another
// process's gc removes the copy a store object found first, that object
// must still find the other: a writer whose version names the chunk
// commits it, and its own gc keeps it.
TEST(ChunkGc, AChunkInTwoPacksSurvivesTheRemovalOfTheCopyFoundFirst) {
  scratch_dir dir;
  auto a = open_store(dir.path());
  auto b = open_store(dir.path());
  std::mt19937_64 r(9);
  std::vector<char> shared = random_pages(r, 1);
  std::vector<char> pages_a = shared, pages_b = shared;
  std::vector<char> only_a = random_pages(r, 7), only_b = random_pages(r, 7);
  pages_a.insert(pages_a.end(), only_a.begin(), only_a.end());
  pages_b.insert(pages_b.end(), only_b.begin(), only_b.end());
  // b puts before a's pack is published, so each writes the shared page.
  std::vector<fingerprint> names_a(8), names_b(8);
  ASSERT_TRUE(a->put(pages_a.data(), 8, names_a.data()).ok());
  ASSERT_TRUE(b->put(pages_b.data(), 8, names_b.data()).ok());
  version_record va;
  va.heap_uuid[0] = 1;
  va.heap_size = 8 * kPage;
  for (std::size_t i = 0; i < 8; ++i) va.pages.push_back(page_entry{i, names_a[i]});
  version_id id_a;
  ASSERT_TRUE(a->commit(va, &id_a).ok());
  // w knows a's pack only: it finds the shared chunk there.
  auto w = open_store(dir.path());
  version_record vb = va;
  vb.heap_uuid[0] = 2;
  for (std::size_t i = 0; i < 8; ++i) vb.pages[i].chunk = names_b[i];
  version_id id_b;
  ASSERT_TRUE(b->commit(vb, &id_b).ok());
  // w's next write loads b's pack too, still finding the chunk in a's.
  std::vector<char> first = random_pages(r, 1);
  version_record vw;
  vw.heap_uuid[0] = 3;
  vw.heap_size = kPage;
  vw.pages.push_back(page_entry{0, {}});
  ASSERT_TRUE(w->put(first.data(), 1, &vw.pages[0].chunk).ok());
  version_id id_w;
  ASSERT_TRUE(w->commit(vw, &id_w).ok());
  // b's gc, which found the chunk in its own pack first, removes a's pack.
  ASSERT_TRUE(b->delete_version(id_a, false).ok());
  gc_report g;
  ASSERT_TRUE(b->gc(&g).ok());
  ASSERT_EQ(g.packs_removed, 1u);
  // w commits a version naming the shared chunk, runs gc and reads it.
  vw.pages[0].chunk = names_b[0];
  std::vector<char> other = random_pages(r, 1);
  fingerprint other_name;
  ASSERT_TRUE(w->put(other.data(), 1, &other_name).ok());
  status st = w->commit(vw, &id_w);
  ASSERT_TRUE(st.ok()) << st.to_string();
  ASSERT_TRUE(b->delete_version(id_b, false).ok());
  ASSERT_TRUE(w->gc(&g).ok());
  std::vector<char> page(kPage);
  st = w->get(names_b[0], page.data());
  ASSERT_TRUE(st.ok()) << st.to_string();
  EXPECT_EQ(std::memcmp(page.data(), shared.data(), kPage), 0);
  verify_report v;
  ASSERT_TRUE(open_store(dir.path())->verify(&v).ok());
  EXPECT_TRUE(v.clean()) << v.problems[0].file << ": " << v.problems[0].what;
}

TEST(ChunkGc, ReclaimsEverythingOnceNoVersionRemains) {
  scratch_dir dir;
  auto s = open_store(dir.path());
  std::mt19937_64 r(1);
  std::vector<char> pages = random_pages(r, 16);
  version_id a = commit_pages(*s, pages, "a");
  ASSERT_TRUE(s->put(pages.data(), 1, std::vector<fingerprint>(1).data()).ok());
  gc_report g;
  EXPECT_TRUE(s->gc(&g).is(errc::invalid_argument));  // uncommitted puts
  ASSERT_TRUE(s->release().ok());
  ASSERT_TRUE(s->gc(&g).ok());
  EXPECT_EQ(g.packs_removed, 0u);
  ASSERT_TRUE(s->delete_version(a, false).ok());
  ASSERT_TRUE(s->gc(&g).ok());
  EXPECT_EQ(g.packs_removed, 1u);
  EXPECT_GT(g.bytes_freed, 16 * kPage);
  EXPECT_EQ(s->info().chunks, 0u);
  EXPECT_TRUE(files_ending(dir.path() + "/packs", ".pack").empty());
}

TEST(ChunkDu, SplitsUniqueAndSharedAndSaysWhatDeletingFrees) {
  scratch_dir dir;
  auto s = open_store(dir.path());
  std::mt19937_64 r(2);
  std::vector<char> pages = random_pages(r, 10);
  version_id a = commit_pages(*s, pages, "a");  // its own pack
  std::vector<char> b_pages = pages;
  for (std::size_t i = 0; i < 8; ++i) random_page(r, b_pages.data() + i * kPage);
  version_id b = commit_pages(*s, b_pages, "b");  // 8 new chunks in a second pack, 2 shared
  std::vector<version_usage> usage;
  ASSERT_TRUE(s->du(&usage).ok());
  ASSERT_EQ(usage.size(), 2u);
  const version_usage& ua = usage[0].id == a ? usage[0] : usage[1];
  const version_usage& ub = usage[0].id == b ? usage[0] : usage[1];
  constexpr std::uint64_t kRecord = kPage + sizeof(record_header);
  EXPECT_EQ(ua.pages, 10u);
  EXPECT_EQ(ua.unique_bytes, 8 * kRecord);
  EXPECT_EQ(ua.shared_bytes, 2 * kRecord);
  EXPECT_EQ(ub.unique_bytes, 8 * kRecord);
  // Deleting b empties its pack (freed whole); deleting a leaves 2 of 10
  // chunks live in its pack, which gc then compacts.
  std::uint64_t b_pack = fs::file_size(files_ending(dir.path() + "/packs", ".pack")[0]);
  EXPECT_GE(ub.freed_by_delete, 8 * kRecord);
  EXPECT_GT(ua.freed_by_delete, 7 * kRecord);
  EXPECT_LE(ua.freed_by_delete, b_pack + fs::file_size(files_ending(dir.path() + "/packs", ".pack")[1]));
  ASSERT_TRUE(s->delete_version(a, false).ok());
  gc_report g;
  ASSERT_TRUE(s->gc(&g).ok());
  EXPECT_EQ(g.bytes_freed, ua.freed_by_delete);
  EXPECT_EQ(read_back(*s, b), b_pages);
}

struct ChunkDamage : ::testing::Test {
  void SetUp() override {
    s = open_store(dir.path());
    std::mt19937_64 r(9);
    pages.resize(20 * kPage);
    for (std::size_t i = 0; i < 20; ++i) {
      if (i % 2) random_page(r, pages.data() + i * kPage);
      else compressible_page(i, pages.data() + i * kPage);
    }
    std::vector<char> first(pages.begin(), pages.begin() + 10 * kPage);
    a = commit_pages(*s, first, "a");  // pack 1: pages 0-9
    b = commit_pages(*s, pages, "b");  // pack 2: pages 10-19; b names both packs
    pack_of_a = pack_holding(page_fingerprint(pages.data()));
  }
  // The pack whose index lists `chunk`.
  std::string pack_holding(const fingerprint& chunk) {
    std::string name(reinterpret_cast<const char*>(chunk.bytes().bytes), 16);
    for (const std::string& p : files_ending(dir.path() + "/packs", ".pack")) {
      std::string index;
      EXPECT_TRUE(read_file(p.substr(0, p.size() - 5) + ".index", &index).ok());
      if (index.find(name) != std::string::npos) return p;
    }
    return {};
  }
  verify_report run_verify() {
    auto fresh = open_store(dir.path());
    verify_report v;
    status st = fresh->verify(&v);
    EXPECT_TRUE(st.ok()) << st.to_string();
    return v;
  }
  scratch_dir dir;
  std::unique_ptr<chunk_store> s;
  std::vector<char> pages;
  version_id a, b;
  std::string pack_of_a;
};

TEST_F(ChunkDamage, FlippedPackByteIsFoundAndNamesBothVersions) {
  ASSERT_FALSE(pack_of_a.empty());
  EXPECT_TRUE(run_verify().clean());
  // In the payload of the third record (each record is at least its header).
  flip_byte(pack_of_a, sizeof(pack_header) + 2 * sizeof(record_header) + 3 * 40 + 100);
  verify_report v = run_verify();
  ASSERT_FALSE(v.clean());
  EXPECT_EQ(v.affected_versions.size(), 2u);
  bool named = false;
  for (const verify_problem& p : v.problems) named |= p.has_chunk;
  EXPECT_TRUE(named);
  // Reading the damaged version fails naming chunk and pack, never wrong bytes.
  auto fresh = open_store(dir.path());
  version_record rec;
  ASSERT_TRUE(fresh->read_version(a, &rec).ok());
  std::vector<fingerprint> names;
  for (const page_entry& e : rec.pages) names.push_back(e.chunk);
  std::vector<char> got(names.size() * kPage);
  status st = fresh->get_batch(names.data(), names.size(), got.data());
  EXPECT_TRUE(st.is(errc::corrupt)) << st.to_string();
  EXPECT_NE(st.message().find(fs::path(pack_of_a).filename().string()), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("chunk "), std::string::npos);
}

TEST_F(ChunkDamage, FlippedIndexByteIsFoundAndTheIndexRebuilt) {
  std::string index = pack_of_a.substr(0, pack_of_a.size() - 5) + ".index";
  flip_byte(index, sizeof(index_header) + 5 * sizeof(index_entry) + 3);
  {
    // verify reads the index files themselves.
    auto fresh = open_store(dir.path());
    verify_report v;
    fs::remove(index);  // keep the rebuild from the open out of this check
    std::ofstream(index) << "not an index";
    ASSERT_TRUE(fresh->verify(&v).ok());
    ASSERT_FALSE(v.clean());
    EXPECT_NE(v.problems[0].file.find(".index"), std::string::npos);
    EXPECT_TRUE(v.affected_versions.empty());  // the pack itself is whole
  }
  // Opening rebuilds it from the pack; everything reads back and verifies.
  auto fresh = open_store(dir.path());
  EXPECT_EQ(read_back(*fresh, b), pages);
  EXPECT_TRUE(run_verify().clean());
  fs::remove(index);
  auto again = open_store(dir.path());
  EXPECT_TRUE(fs::exists(index));
  EXPECT_EQ(read_back(*again, b), pages);
  EXPECT_TRUE(run_verify().clean());
}

// An index whose checksum holds but whose entries no pack record could be
// (a stored size past a page, a range past the pack's end) is refused as
// corrupt, before a reader sizes a buffer by it, and rebuilt from the pack.
TEST_F(ChunkDamage, IndexEntriesNoRecordCouldBeAreRefusedAndTheIndexRebuilt) {
  const std::string index = pack_of_a.substr(0, pack_of_a.size() - 5) + ".index";
  std::string bytes;
  ASSERT_TRUE(read_file(index, &bytes).ok());
  index_header h;
  std::memcpy(&h, bytes.data(), sizeof h);
  std::vector<index_entry> entries;
  std::uint64_t pack_size = 0;
  ASSERT_TRUE(decode_index(bytes, index, h.pack_id, &entries, &pack_size).ok());
  auto forged = [&](auto change) {
    std::vector<index_entry> bad = entries;
    change(bad[3]);
    return encode_index(h.pack_id, pack_size, bad);
  };
  const std::string oversized = forged([](index_entry& e) { e.stored_size = 1 << 20; });
  const std::string past_end = forged([&](index_entry& e) { e.offset = pack_size - sizeof(record_header); });
  const std::string empty_zstd = forged([](index_entry& e) {
    e.encoding = static_cast<std::uint8_t>(encoding::zstd);
    e.stored_size = 0;
  });
  for (const std::string* bad : {&oversized, &past_end, &empty_zstd}) {
    std::vector<index_entry> out;
    status st = decode_index(*bad, index, h.pack_id, &out, &pack_size);
    EXPECT_TRUE(st.is(errc::corrupt)) << st.to_string();
    EXPECT_TRUE(out.empty());
  }
  { std::ofstream(index, std::ios::binary | std::ios::trunc) << oversized; }
  auto fresh = open_store(dir.path());
  EXPECT_EQ(read_back(*fresh, b), pages);
  EXPECT_TRUE(run_verify().clean());
}

TEST_F(ChunkDamage, FlippedManifestByteIsFound) {
  std::string manifest = dir.path() + "/versions/" + a.hex();
  flip_byte(manifest, sizeof(manifest_header) + 1);
  verify_report v = run_verify();
  ASSERT_FALSE(v.clean());
  ASSERT_EQ(v.affected_versions.size(), 1u);
  EXPECT_EQ(v.affected_versions[0], a);
  version_record rec;
  EXPECT_TRUE(s->read_version(a, &rec).is(errc::corrupt));
  std::vector<version_summary> list;
  ASSERT_TRUE(s->list_versions(&list).ok());
  ASSERT_EQ(list.size(), 2u);
  EXPECT_TRUE(list[0].damaged || list[1].damaged);
  gc_report g;
  EXPECT_TRUE(s->gc(&g).is(errc::corrupt));  // cannot tell what the damaged one names
  EXPECT_EQ(read_back(*s, b), pages);
}

// A base table names the pages of every version written on it: a flipped
// byte or a missing table is found, and each of those versions is named.
TEST_F(ChunkDamage, DamagedOrMissingBaseTableNamesEveryVersionOnIt) {
  std::vector<char> image = pages;
  std::mt19937_64 r(3);
  random_page(r, image.data());
  const version_id c = commit_pages(*s, image, "c", &b);  // on b's table
  version_record rec;
  ASSERT_TRUE(s->read_version(c, &rec).ok());
  ASSERT_TRUE(rec.has_table);
  const std::string table = dir.path() + "/tables/" + rec.table.hex();
  flip_byte(table, sizeof(table_header) + 3);
  verify_report v = run_verify();
  ASSERT_FALSE(v.clean());
  EXPECT_EQ(v.affected_versions, (std::vector<version_id>{std::min(b, c), std::max(b, c)}));
  bool named = false;
  for (const verify_problem& p : v.problems) named |= p.what.find("tables/" + rec.table.hex()) != std::string::npos;
  EXPECT_TRUE(named);
  status st = s->read_version(c, &rec);
  EXPECT_TRUE(st.is(errc::corrupt)) << st.to_string();
  EXPECT_EQ(read_back(*s, a), std::vector<char>(pages.begin(), pages.begin() + 10 * kPage));  // on a table of its own

  fs::remove(table);
  st = s->read_version(b, &rec);
  EXPECT_TRUE(st.is(errc::corrupt)) << st.to_string();
  EXPECT_NE(st.message().find("missing"), std::string::npos) << st.message();
  gc_report g;
  EXPECT_TRUE(s->gc(&g).is(errc::corrupt));  // cannot tell what those versions name
}

TEST_F(ChunkDamage, TruncatedPackLosesOnlyItsTail) {
  fs::resize_file(pack_of_a, fs::file_size(pack_of_a) / 2);
  fs::remove(pack_of_a.substr(0, pack_of_a.size() - 5) + ".index");
  auto fresh = open_store(dir.path());  // opens despite the damage
  verify_report v = run_verify();
  ASSERT_FALSE(v.clean());
  EXPECT_EQ(v.affected_versions.size(), 2u);
  std::vector<char> page(kPage);
  ASSERT_TRUE(fresh->get(page_fingerprint(pages.data()), page.data()).ok());  // the first record survives
  EXPECT_EQ(0, std::memcmp(page.data(), pages.data(), kPage));
  status st = fresh->get(page_fingerprint(pages.data() + 9 * kPage), page.data());
  EXPECT_FALSE(st.ok());
  // Pages of the other pack still read.
  ASSERT_TRUE(fresh->get(page_fingerprint(pages.data() + 15 * kPage), page.data()).ok());
}

TEST_F(ChunkDamage, TruncatedPackWithItsIndexFailsNamingTheChunk) {
  fs::resize_file(pack_of_a, 4096);
  auto fresh = open_store(dir.path());
  std::vector<char> page(kPage);
  status st = fresh->get(page_fingerprint(pages.data() + 9 * kPage), page.data());
  EXPECT_TRUE(st.is(errc::corrupt)) << st.to_string();
  EXPECT_NE(st.message().find(fs::path(pack_of_a).filename().string()), std::string::npos) << st.message();
  EXPECT_FALSE(run_verify().clean());
}

TEST_F(ChunkDamage, LeftoverTemporariesAreIgnoredAndRemovedByGc) {
  std::string half_pack = dir.path() + "/packs/00000000000000ff.pack.tmp-1-2";
  std::ofstream(half_pack) << std::string(5000, 'x');
  std::ofstream(dir.path() + "/versions/" + a.hex() + ".tmp-1-3") << "half a manifest";
  std::ofstream(dir.path() + "/refs/heads/main.tmp-1-4") << "half a ref";
  verify_report v = run_verify();
  EXPECT_TRUE(v.clean());
  EXPECT_EQ(v.temporaries, 2u);
  std::vector<ref_entry> refs;
  ASSERT_TRUE(s->list_refs(&refs).ok());
  EXPECT_TRUE(refs.empty());
  std::vector<version_summary> list;
  ASSERT_TRUE(s->list_versions(&list).ok());
  EXPECT_EQ(list.size(), 2u);
  gc_report g;
  ASSERT_TRUE(s->gc(&g).ok());
  EXPECT_EQ(g.temporaries_removed, 3u);
  EXPECT_FALSE(fs::exists(half_pack));
  EXPECT_EQ(read_back(*s, a), std::vector<char>(pages.begin(), pages.begin() + 10 * kPage));
}

}  // namespace
}  // namespace larder::chunks::test
