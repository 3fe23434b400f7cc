// The chunk store's everyday behaviour: pages round-trip, zero and
// duplicate pages are stored once, compression where it pays, manifests
// and refs, and both I/O paths (io_uring and the pread/pwrite fallback).
#include "chunk_test_util.hpp"

#include "tiers/chunks/file_ops.hpp"
#include "tiers/chunks/files.hpp"

#include <algorithm>
#include <cerrno>
#include <filesystem>

namespace larder::chunks::test {
namespace {

struct io_paths : ::testing::TestWithParam<bool> {};

// Random, zero and repeated pages, written in several batches and read back
// one by one and as a batch, through io_uring or the forced fallback.
TEST_P(io_paths, RandomPagesRoundTrip) {
  scratch_dir dir;
  store_options o;
  o.use_uring = GetParam();
  o.pack_target_bytes = 1 << 20;  // several packs
  auto s = open_store(dir.path(), o);
  EXPECT_EQ(s->info().uring, GetParam());
  std::mt19937_64 r(7);
  constexpr std::size_t kCount = 700;
  std::vector<char> pages(kCount * kPage, 0);
  for (std::size_t i = 0; i < kCount; ++i) {
    char* p = pages.data() + i * kPage;
    if (i % 5 == 1) continue;  // zero
    if (i % 7 == 3 && i > 7) {
      std::memcpy(p, pages.data() + (i - 7) * kPage, kPage);  // duplicate
    } else if (i % 3 == 0) {
      compressible_page(i, p);
    } else {
      random_page(r, p);
    }
  }
  std::vector<fingerprint> names(kCount);
  for (std::size_t at = 0; at < kCount; at += 100) {
    ASSERT_TRUE(s->put(pages.data() + at * kPage, 100, names.data() + at).ok());
  }
  ASSERT_TRUE(s->flush().ok());
  std::vector<char> page(kPage);
  for (std::size_t i = 0; i < kCount; i += 13) {
    ASSERT_TRUE(s->get(names[i], page.data()).ok());
    ASSERT_EQ(0, std::memcmp(page.data(), pages.data() + i * kPage, kPage)) << i;
  }
  // Reversed, so the batch path has to sort.
  std::vector<fingerprint> reversed(names.rbegin(), names.rend());
  std::vector<char> got(kCount * kPage);
  ASSERT_TRUE(s->get_batch(reversed.data(), kCount, got.data()).ok());
  for (std::size_t i = 0; i < kCount; ++i) {
    ASSERT_EQ(0, std::memcmp(got.data() + (kCount - 1 - i) * kPage, pages.data() + i * kPage, kPage)) << i;
  }
  ASSERT_TRUE(s->release().ok());
  // A second process's view: everything from the index files.
  auto again = open_store(dir.path(), o);
  ASSERT_TRUE(again->get_batch(names.data(), kCount, got.data()).ok());
  EXPECT_EQ(0, std::memcmp(got.data(), pages.data(), got.size()));
  EXPECT_GT(again->info().packs, 1u);
}

// A pack written through both staging buffers more than once, read back
// in batches larger than one read round, whole, one page in 4 (records a
// short gap apart: read through), one in 5 (farther apart: requests of
// their own) and with names repeated.
TEST_P(io_paths, BatchReadsCoalesceAcrossRoundsAndRepeats) {
  scratch_dir dir;
  store_options o;
  o.use_uring = GetParam();
  auto s = open_store(dir.path(), o);
  std::mt19937_64 r(11);
  constexpr std::size_t kCount = 4500;  // 18 MiB of records: several staging buffers and read rounds
  std::vector<char> pages = random_pages(r, kCount);
  for (std::size_t i = 0; i < kCount; i += 9) compressible_page(i, pages.data() + i * kPage);
  std::vector<fingerprint> names(kCount);
  ASSERT_TRUE(s->put(pages.data(), kCount, names.data()).ok());
  ASSERT_TRUE(s->release().ok());
  for (std::size_t stride : {1, 4, 5}) {
    std::vector<std::size_t> picked;
    for (std::size_t i = stride / 2; i < kCount; i += stride) picked.push_back(i);
    for (std::size_t i = 0; i < 50; ++i) picked.push_back(picked[(i * 37) % picked.size()]);
    std::shuffle(picked.begin(), picked.end(), r);
    std::vector<fingerprint> wanted;
    for (std::size_t i : picked) wanted.push_back(names[i]);
    std::vector<char> got(picked.size() * kPage);
    status st = s->get_batch(wanted.data(), wanted.size(), got.data());
    ASSERT_TRUE(st.ok()) << st.to_string();
    for (std::size_t k = 0; k < picked.size(); ++k) {
      ASSERT_EQ(0, std::memcmp(got.data() + k * kPage, pages.data() + picked[k] * kPage, kPage)) << stride << " " << k;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(ChunkStore, io_paths, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "uring" : "fallback"; });

TEST(ChunkStore, ZeroPageIsNeverStoredAndAlwaysReadable) {
  scratch_dir dir;
  auto s = open_store(dir.path());
  std::vector<char> zeros(4 * kPage, 0);
  std::vector<fingerprint> names(4);
  ASSERT_TRUE(s->put(zeros.data(), 4, names.data()).ok());
  ASSERT_TRUE(s->release().ok());
  for (const fingerprint& n : names) EXPECT_EQ(n, zero_page());
  EXPECT_EQ(s->info().chunks, 0u);
  std::vector<char> page(kPage, 'x');
  ASSERT_TRUE(s->get(zero_page(), page.data()).ok());
  EXPECT_EQ(page, std::vector<char>(kPage, 0));
  EXPECT_TRUE(s->get(fingerprint{1, 2}, page.data()).is(errc::not_found));
}

// The same pages across batches, versions and two heaps are stored once.
TEST(ChunkStore, DeduplicatesAcrossBatchesVersionsAndHeaps) {
  scratch_dir dir;
  auto s = open_store(dir.path());
  std::mt19937_64 r(11);
  std::vector<char> pages = random_pages(r, 64);
  version_id a = commit_pages(*s, pages, "heap 1", nullptr, 1);
  std::uint64_t stored = s->info().stored_bytes;
  EXPECT_EQ(s->info().chunks, 64u);
  version_id b = commit_pages(*s, pages, "heap 2", nullptr, 2);  // another heap, same pages
  std::vector<char> changed = pages;
  random_page(r, changed.data() + 5 * kPage);
  version_id c = commit_pages(*s, changed, "heap 1 again", &a, 1);
  EXPECT_EQ(s->info().chunks, 65u);
  EXPECT_EQ(s->info().stored_bytes, stored + stored / 64);
  // Within one batch.
  std::vector<char> same(8 * kPage);
  for (std::size_t i = 0; i < 8; ++i) std::memcpy(same.data() + i * kPage, pages.data(), kPage);
  std::vector<fingerprint> names(8);
  ASSERT_TRUE(s->put(same.data(), 8, names.data()).ok());
  ASSERT_TRUE(s->release().ok());
  EXPECT_EQ(s->info().chunks, 65u);
  // Another store object (another process) dedups against what is published.
  auto other = open_store(dir.path());
  commit_pages(*other, changed, "from elsewhere", &c, 1);
  EXPECT_EQ(other->info().chunks, 65u);
  EXPECT_EQ(read_back(*s, b), pages);
  EXPECT_EQ(read_back(*s, c), changed);
}

// The real file operations, but the `fail_at`-th write of pack bytes (from
// 1) fails as on a full file system.
class full_disk_ops final : public file_ops {
 public:
  explicit full_disk_ops(int fail_at) : fail_at_(fail_at) {}
  int create(const char* path, bool try_direct, int* fd, bool* direct) override {
    return real().create(path, try_direct, fd, direct);
  }
  int start_write(port::io_queue& queue, port::io_request* requests, std::size_t count) override {
    return ++writes_ == fail_at_ ? ENOSPC : real().start_write(queue, requests, count);
  }
  int finish_writes(port::io_queue& queue) override { return real().finish_writes(queue); }
  int write_at(int fd, const void* bytes, std::size_t length, std::uint64_t offset) override {
    return real().write_at(fd, bytes, length, offset);
  }
  int sync(int fd) override { return real().sync(fd); }
  int close(int fd) override { return real().close(fd); }
  int rename(const char* from, const char* to, bool replace) override { return real().rename(from, to, replace); }
  int remove(const char* path) override { return real().remove(path); }
  int make_directory(const char* path, bool* created) override { return real().make_directory(path, created); }
  int sync_directory(const char* path) override { return real().sync_directory(path); }

 private:
  static file_ops& real() { return real_file_ops(); }
  int fail_at_;
  int writes_ = 0;
};

// A pack abandoned part way (ENOSPC on its first write, after thousands of
// its chunks were taken) leaves none of them behind in the index: the
// checkpoint retried on the same store writes them again, and every chunk
// its version names reads back, from this store object and a fresh one.
TEST(ChunkStore, APackAbandonedMidwayIsForgottenWholeAndARetryStoresEveryChunk) {
  scratch_dir dir;
  full_disk_ops full(1);
  store_options o;
  o.files = &full;
  o.compress = false;
  auto s = open_store(dir.path(), o);
  std::mt19937_64 r(5);
  const std::size_t count = 3072;  // 12 MiB: more than the pack writer stages before its first write (8 MiB)
  std::vector<char> pages = random_pages(r, count);
  std::vector<fingerprint> names(count);
  status failed = s->put(pages.data(), count, names.data());
  ASSERT_EQ(failed.code(), ENOSPC) << failed.to_string();
  const version_id id = commit_pages(*s, pages, "retried");
  EXPECT_EQ(s->info().chunks, count);
  EXPECT_EQ(read_back(*s, id), pages);
  auto fresh = open_store(dir.path());
  EXPECT_EQ(read_back(*fresh, id), pages);
}

TEST(ChunkStore, CompressesWhereItPaysOnly) {
  scratch_dir dir;
  auto s = open_store(dir.path());
  std::vector<char> pages(32 * kPage);
  for (std::size_t i = 0; i < 32; ++i) compressible_page(i * 1000 + 1, pages.data() + i * kPage);
  std::vector<fingerprint> names(32);
  ASSERT_TRUE(s->put(pages.data(), 32, names.data()).ok());
  ASSERT_TRUE(s->release().ok());
  store_info compressible = s->info();
  EXPECT_EQ(compressible.compressed_chunks, compressible.chunks);
  EXPECT_LT(compressible.stored_bytes, compressible.chunks * kPage / 4);
  std::mt19937_64 r(3);
  for (std::size_t i = 0; i < 32; ++i) random_page(r, pages.data() + i * kPage);
  ASSERT_TRUE(s->put(pages.data(), 32, names.data()).ok());
  ASSERT_TRUE(s->release().ok());
  store_info mixed = s->info();
  EXPECT_EQ(mixed.compressed_chunks, compressible.compressed_chunks);  // random pages stored raw
  EXPECT_EQ(mixed.stored_bytes - compressible.stored_bytes, 32 * (kPage + sizeof(record_header)));
  std::vector<char> got(32 * kPage);
  ASSERT_TRUE(s->get_batch(names.data(), 32, got.data()).ok());
  EXPECT_EQ(got, pages);
}

TEST(ChunkStore, ManifestRoundTripsEveryField) {
  scratch_dir dir;
  auto s = open_store(dir.path());
  std::mt19937_64 r(5);
  std::vector<char> pages = random_pages(r, 3);
  std::vector<fingerprint> names(3);
  ASSERT_TRUE(s->put(pages.data(), 3, names.data()).ok());
  version_record v;
  for (std::size_t i = 0; i < 16; ++i) v.heap_uuid[i] = static_cast<std::uint8_t>(i * 3);
  v.base_address = 0x123400000000ull;
  v.heap_size = std::uint64_t{1} << 40;  // sparse: pages far apart
  v.created_ns = 1234567890123;
  v.has_parent = true;
  v.parent = fingerprint{0xabc, 0xdef};
  v.message = "first\nversion";
  v.metadata = std::string("\0binary\xff", 8);
  v.pages = {{0, names[0]}, {1, names[1]}, {99999999, names[2]}, {(std::uint64_t{1} << 28) - 1, names[0]}};
  version_id id;
  ASSERT_TRUE(s->commit(v, &id).ok());
  version_record back;
  ASSERT_TRUE(s->read_version(id, &back).ok());
  EXPECT_EQ(back.heap_uuid, v.heap_uuid);
  EXPECT_EQ(back.base_address, v.base_address);
  EXPECT_EQ(back.heap_size, v.heap_size);
  EXPECT_EQ(back.created_ns, v.created_ns);
  EXPECT_TRUE(back.has_parent);
  EXPECT_EQ(back.parent, v.parent);
  EXPECT_EQ(back.message, v.message);
  EXPECT_EQ(back.metadata, v.metadata);
  EXPECT_EQ(back.pages, v.pages);
  std::vector<version_summary> list;
  ASSERT_TRUE(s->list_versions(&list).ok());
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].id, id);
  EXPECT_EQ(list[0].page_count, 4u);
  EXPECT_EQ(list[0].parent, v.parent);
  EXPECT_FALSE(list[0].damaged);
}

// A line of versions, each the child of the last: manifests after the
// first list only their changes to one base table (tables/) until those
// pass an eighth of it, and every version reads back whole; a version
// whose parent is gone, and a manifest in the 1.0 form (its whole table
// inline), read back too.
TEST(ChunkStore, ChildrenAreWrittenAsChangesToABaseTable) {
  scratch_dir dir;
  auto s = open_store(dir.path());
  std::mt19937_64 r(11);
  constexpr std::size_t kPages = 64;
  std::vector<char> image = random_pages(r, kPages);
  std::vector<std::vector<char>> images;
  std::vector<version_id> ids;
  for (int step = 0; step < 6; ++step) {
    random_page(r, image.data() + (r() % kPages) * kPage);
    if (step == 3) std::memset(image.data() + 5 * kPage, 0, kPage);  // a page no longer listed
    ids.push_back(commit_pages(*s, image, "step " + std::to_string(step), ids.empty() ? nullptr : &ids.back()));
    images.push_back(image);
  }
  const auto tables = std::distance(std::filesystem::directory_iterator(dir.path() + "/tables"),
                                    std::filesystem::directory_iterator{});
  EXPECT_EQ(tables, 1);
  std::string manifest;
  ASSERT_TRUE(read_file(dir.path() + "/versions/" + ids.back().hex(), &manifest).ok());
  EXPECT_LT(manifest.size(), 200 + 6 * 20u);  // a few changes, not 64 pages
  for (std::size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(read_back(*s, ids[i]), images[i]) << i;
  std::vector<version_summary> list;
  ASSERT_TRUE(s->list_versions(&list).ok());
  for (const version_summary& v : list) {
    const auto step = std::find(ids.begin(), ids.end(), v.id) - ids.begin();
    EXPECT_EQ(v.page_count, step < 3 ? kPages : kPages - 1) << step;  // the zero page is not listed
  }

  // A child of a deleted, collected version: a table of its own.
  const version_id parent = ids.back();
  ASSERT_TRUE(s->delete_version(parent, true).ok());
  gc_report g;
  ASSERT_TRUE(s->gc(&g).ok());
  random_page(r, image.data());
  const version_id orphan = commit_pages(*s, image, "orphan", &parent);
  EXPECT_EQ(read_back(*s, orphan), image);

  // The 1.0 form: the whole table inline, on no base table.
  version_record old;
  ASSERT_TRUE(s->read_version(orphan, &old).ok());
  old.message = "1.0";
  std::string bytes;
  ASSERT_TRUE(encode_manifest(old, nullptr, {}, &bytes).ok());
  const version_id old_id = fingerprint_of(bytes.data(), bytes.size());
  ASSERT_TRUE(publish_file(real_file_ops(), dir.path() + "/versions", old_id.hex(), bytes, false).ok());
  version_record back;
  ASSERT_TRUE(s->read_version(old_id, &back).ok());
  EXPECT_FALSE(back.has_table);
  EXPECT_EQ(back.pages, old.pages);
  EXPECT_EQ(read_back(*s, old_id), image);
}

TEST(ChunkStore, RefusesBadManifests) {
  scratch_dir dir;
  auto s = open_store(dir.path());
  version_id id;
  version_record v;
  v.heap_size = 10 * kPage;
  v.pages = {{3, fingerprint{1, 1}}};
  EXPECT_TRUE(s->commit(v, &id).is(errc::not_found));  // names a chunk the store lacks
  v.pages = {{3, zero_page()}};
  EXPECT_TRUE(s->commit(v, &id).is(errc::invalid_argument));
  std::vector<char> page(kPage, 'p');
  fingerprint name;
  ASSERT_TRUE(s->put(page.data(), 1, &name).ok());
  v.pages = {{4, name}, {3, name}};
  EXPECT_TRUE(s->commit(v, &id).is(errc::invalid_argument));  // unsorted
  v.pages = {{10, name}};
  EXPECT_TRUE(s->commit(v, &id).is(errc::invalid_argument));  // beyond the heap
  EXPECT_TRUE(s->read_version(fingerprint{9, 9}, &v).is(errc::not_found));
}

TEST(ChunkStore, RefsAndHeadUpdateAtomically) {
  scratch_dir dir;
  auto s = open_store(dir.path());
  std::vector<char> pages(2 * kPage, 'a');
  version_id a = commit_pages(*s, pages, "a");
  pages[0] = 'b';
  version_id b = commit_pages(*s, pages, "b", &a);
  head_state head;
  ASSERT_TRUE(s->get_head(&head).ok());
  EXPECT_FALSE(head.detached);
  EXPECT_EQ(head.branch, "heads/main");
  EXPECT_FALSE(head.has_version);
  ASSERT_TRUE(s->set_ref("heads/main", a).ok());
  ASSERT_TRUE(s->set_ref("heads/main", b, &a).ok());                  // expected matches
  EXPECT_TRUE(s->set_ref("heads/main", a, &a).is(errc::already_exists));  // it moved on
  ASSERT_TRUE(s->set_ref("tags/v1.0", a).ok());
  ASSERT_TRUE(s->get_head(&head).ok());
  EXPECT_TRUE(head.has_version);
  EXPECT_EQ(head.id, b);
  ASSERT_TRUE(s->set_head("heads/topic").ok());
  ASSERT_TRUE(s->get_head(&head).ok());
  EXPECT_EQ(head.branch, "heads/topic");
  EXPECT_FALSE(head.has_version);
  ASSERT_TRUE(s->set_head_detached(a).ok());
  ASSERT_TRUE(s->get_head(&head).ok());
  EXPECT_TRUE(head.detached);
  EXPECT_EQ(head.id, a);
  std::vector<ref_entry> refs;
  ASSERT_TRUE(s->list_refs(&refs).ok());
  ASSERT_EQ(refs.size(), 2u);
  EXPECT_EQ(refs[0].name, "heads/main");
  EXPECT_EQ(refs[0].id, b);
  EXPECT_EQ(refs[1].name, "tags/v1.0");
  for (const char* bad : {"main", "heads/", "heads/a/b", "tags/.hidden", "heads/x y", "remotes/x"}) {
    EXPECT_TRUE(s->set_ref(bad, a).is(errc::invalid_argument)) << bad;
  }
  EXPECT_TRUE(s->set_head("tags/v1.0").is(errc::invalid_argument));
  // A ref or a detached HEAD keeps its version from deletion unless forced.
  EXPECT_TRUE(s->delete_version(a, false).is(errc::invalid_argument));
  ASSERT_TRUE(s->delete_ref("tags/v1.0").ok());
  EXPECT_TRUE(s->delete_ref("tags/v1.0").is(errc::not_found));
  EXPECT_TRUE(s->delete_version(a, false).is(errc::invalid_argument));  // HEAD
  ASSERT_TRUE(s->set_head("heads/main").ok());
  ASSERT_TRUE(s->delete_version(a, false).ok());
  version_record gone;
  EXPECT_TRUE(s->read_version(a, &gone).is(errc::not_found));
  ASSERT_TRUE(s->delete_version(b, true).ok());
  // No temporary is left behind by any update.
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir.path())) {
    EXPECT_FALSE(is_temporary(e.path().filename().string())) << e.path();
  }
}

TEST(ChunkStore, OpenRefusesWhatIsNotAStore) {
  scratch_dir dir;
  std::unique_ptr<chunk_store> s;
  EXPECT_TRUE(chunk_store::open(dir.path(), {}, &s).is(errc::not_a_heap));
  EXPECT_TRUE(chunk_store::open(dir.path() + "/missing", {}, &s).is(errc::not_a_heap));
}

TEST(ChunkStore, SaysWhetherPacksAreWrittenDirect) {
  scratch_dir dir;
  store_options o;
  o.use_direct_io = false;
  auto s = open_store(dir.path(), o);
  std::vector<char> pages(2 * kPage, 'd');
  commit_pages(*s, pages, "buffered");
  EXPECT_FALSE(s->info().direct_io);
  // With O_DIRECT allowed, the answer is the file system's; either way the
  // pages come back.
  auto d = open_store(dir.path());
  pages[0] = 'e';
  version_id id = commit_pages(*d, pages, "direct where possible");
  EXPECT_EQ(read_back(*d, id), pages);
  std::printf("pack writes under %s: %s\n", dir.path().c_str(), d->info().direct_io ? "O_DIRECT" : "buffered");
}

}  // namespace
}  // namespace larder::chunks::test
