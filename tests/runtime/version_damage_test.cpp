// Damaged store files seen through the heap's API and the command line: a
// flipped byte in a pack, an index, a manifest or a ref makes checkout,
// clone and open_version fail with corrupt (or not_found for a ref that
// now names nothing) and leaves the heap as it was, `larder versions
// verify` reports it with its exit code, and a sweep over the bytes of a
// small store's files finds no flip that brings a version back wrong.
#include "runtime_test_util.hpp"

#include <larder/check.hpp>
#include <larder/versions.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using larder_test::temp_dir;

constexpr std::size_t kWords = 4096;  // 32 KiB: 8 pages of the root

struct data_root {
  std::uint64_t words[kWords];
};

// Version v (1, 2, 3) writes its own value into the first 8 * v pages'
// worth of words, so each version differs from the others in some pages
// and shares the rest.
std::uint64_t expected_word(int version, std::size_t i) {
  std::uint64_t w = 0;
  for (int v = 1; v <= version; ++v)
    if (i < kWords * static_cast<std::size_t>(v) / 3) w = (0x9E3779B97F4A7C15ull * (v + 1)) ^ (i * 0x100000001b3ull);
  return w;
}

void write_version(larder::heap& h, int version) {
  auto* root = h.root<data_root>("data");
  for (std::size_t i = 0; i < kWords; ++i) root->words[i] = expected_word(version, i);
}

// Empty when the heap holds version `version` exactly, else what differs.
std::string differs(const larder::heap& h, int version) {
  std::size_t size = 0;
  auto* root = static_cast<const data_root*>(h.find_root("data", &size));
  if (root == nullptr || size != sizeof(data_root)) return "the root is missing";
  for (std::size_t i = 0; i < kWords; ++i)
    if (root->words[i] != expected_word(version, i)) return "word " + std::to_string(i) + " differs";
  return {};
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_all(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void flip_byte(const std::string& path, std::size_t at) {
  std::string bytes = read_all(path);
  bytes.at(at) = static_cast<char>(bytes[at] ^ 0x5A);
  write_all(path, bytes);
}

// A heap with three versions; the heap holds the third.
class VersionDamage : public ::testing::Test {
 protected:
  void SetUp() override {
    heap_path_ = dir_.file("heap");
    store_ = heap_path_ + ".versions";
    larder::heap h({.kind = larder::backing::file, .name = heap_path_});
    for (int v = 1; v <= 3; ++v) {
      write_version(h, v);
      const char* message[] = {"", "v1", "v2", "v3"};
      ids_[v] = larder::checkpoint(h, message[v]).id;
    }
    ASSERT_TRUE(h.close().ok());
  }

  // The store's files, relative to it, by kind.
  std::vector<std::string> files(const std::string& under) const {
    std::vector<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(store_ + "/" + under))
      if (e.is_regular_file()) out.push_back(fs::relative(e.path(), store_).string());
    std::sort(out.begin(), out.end());
    return out;
  }
  std::string file_ending(const std::string& under, const std::string& suffix) const {
    for (const std::string& f : files(under))
      if (f.ends_with(suffix)) return f;
    ADD_FAILURE() << "no " << suffix << " under " << under;
    return {};
  }
  // The manifest of version v.
  std::string manifest(int v) const { return "versions/" + ids_.at(v); }

  temp_dir dir_{true};
  std::string heap_path_, store_;
  std::map<int, std::string> ids_;
};

TEST_F(VersionDamage, FlippedPackByteFailsCheckoutNamingThePackAndLeavesTheHeapAsItWas) {
  std::vector<std::string> packs;
  for (const std::string& f : files("packs"))
    if (f.ends_with(".pack")) packs.push_back(f);
  // Damage the payload of every record of every pack: whatever version 1
  // needs is damaged then.
  for (const std::string& p : packs) {
    std::string bytes = read_all(store_ + "/" + p);
    for (std::size_t at = 32 + 32 + 100; at + 4096 < bytes.size(); at += 512) bytes[at] ^= 0x5A;
    write_all(store_ + "/" + p, bytes);
  }
  larder::heap h({.kind = larder::backing::file, .name = heap_path_, .mode = larder::open_mode::open});
  larder::checkout_stats st;
  larder::status s = larder::checkout(h, ids_[1], &st);
  ASSERT_TRUE(s.is(larder::errc::corrupt)) << s.to_string();
  EXPECT_NE(s.message().find(".pack"), std::string::npos) << s.message();
  EXPECT_EQ(differs(h, 3), "");
  ASSERT_TRUE(h.close().ok());
  // No mark of a checkout left: the heap opens, still at version 3.
  larder::heap again({.kind = larder::backing::file, .name = heap_path_, .mode = larder::open_mode::open});
  EXPECT_EQ(differs(again, 3), "");
  ASSERT_TRUE(again.close().ok());

  // verify names the pack and every version it touches.
  larder::version_store store;
  ASSERT_TRUE(larder::version_store::open(store_, &store).ok());
  larder::store_verify_report report;
  ASSERT_TRUE(store.verify(&report).ok());
  ASSERT_FALSE(report.clean());
  EXPECT_NE(report.problems[0].file.find(".pack"), std::string::npos) << report.problems[0].file;
  for (int v = 1; v <= 3; ++v)
    EXPECT_NE(std::find(report.affected_versions.begin(), report.affected_versions.end(), ids_[v]),
              report.affected_versions.end())
        << "version " << v << " not named";

  // A clone of a damaged version leaves no file; open_version refuses it.
  const std::string clone = dir_.file("clone");
  EXPECT_TRUE(larder::clone_version(store_, ids_[1], clone).is(larder::errc::corrupt));
  EXPECT_FALSE(fs::exists(clone));
  larder::heap version;
  EXPECT_TRUE(larder::open_version(store_, ids_[1], &version).is(larder::errc::corrupt));
}

TEST_F(VersionDamage, FlippedManifestByteFailsCheckoutAndVerifyNamesTheVersion) {
  flip_byte(store_ + "/" + manifest(1), 40);
  larder::heap h({.kind = larder::backing::file, .name = heap_path_, .mode = larder::open_mode::open});
  larder::status s = larder::checkout(h, ids_[1], nullptr);
  ASSERT_TRUE(s.is(larder::errc::corrupt)) << s.to_string();
  EXPECT_NE(s.message().find(ids_[1].substr(0, 8)), std::string::npos) << s.message();
  EXPECT_EQ(differs(h, 3), "");
  ASSERT_TRUE(h.close().ok());
  larder::version_store store;
  ASSERT_TRUE(larder::version_store::open(store_, &store).ok());
  larder::store_verify_report report;
  ASSERT_TRUE(store.verify(&report).ok());
  ASSERT_EQ(report.affected_versions, std::vector<std::string>{ids_[1]});
}

TEST_F(VersionDamage, FlippedIndexByteIsRebuiltAndEveryVersionStillComesBackWhole) {
  flip_byte(store_ + "/" + file_ending("packs", ".index"), 50);
  for (int v = 1; v <= 3; ++v) {
    larder::heap version;
    ASSERT_TRUE(larder::open_version(store_, ids_[v], &version).ok()) << v;
    EXPECT_EQ(differs(version, v), "") << "version " << v;
  }
}

TEST_F(VersionDamage, FlippedRefNamesNoVersionInsteadOfAnother) {
  const std::string ref = store_ + "/refs/heads/main";
  flip_byte(ref, 3);
  larder::heap version;
  EXPECT_FALSE(larder::open_version(store_, "main", &version).ok());
}

#ifdef LARDER_TOOL
// What a checkout that stopped half way leaves (docs/versions.md,
// "Checkout"): the heap's structures may check clean, yet it holds part of
// two versions, so open refuses it, check reports it, and `larder
// checkout` writes the version into the file instead.
TEST_F(VersionDamage, AHeapAnUnfinishedCheckoutMarkedOpensOnlyAfterTheCommandRestoresIt) {
  write_all(heap_path_ + ".checkout", ids_[1] + "\n");
  // And the temporary of a mark whose process died while publishing it.
  pid_t gone = ::fork();
  if (gone == 0) ::_exit(0);
  ASSERT_EQ(::waitpid(gone, nullptr, 0), gone);
  const std::string stale = heap_path_ + ".checkout.tmp-" + std::to_string(gone) + "-00000000000000ab";
  write_all(stale, ids_[2] + "\n");
  larder::heap h;
  larder::status s = larder::heap::open({.kind = larder::backing::file, .name = heap_path_,
                                         .mode = larder::open_mode::open}, &h);
  ASSERT_TRUE(s.is(larder::errc::corrupt)) << s.to_string();
  EXPECT_NE(s.message().find(ids_[1]), std::string::npos) << s.message();
  larder::check_report report;
  ASSERT_TRUE(larder::check_heap(larder::backing::file, heap_path_, false, &report).ok());
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_NE(report.problems[0].find("checkout"), std::string::npos) << report.problems[0];

  const std::string out = dir_.file("out");
  int rc = std::system((std::string(LARDER_TOOL) + " checkout " + heap_path_ + " " + ids_[1] + " > " + out + " 2>&1").c_str());
  ASSERT_TRUE(WIFEXITED(rc));
  ASSERT_EQ(WEXITSTATUS(rc), 0) << read_all(out);
  EXPECT_FALSE(fs::exists(heap_path_ + ".checkout"));
  larder::heap restored({.kind = larder::backing::file, .name = heap_path_, .mode = larder::open_mode::open});
  EXPECT_EQ(differs(restored, 1), "");
  EXPECT_FALSE(fs::exists(stale));
}

TEST_F(VersionDamage, VersionsVerifyExitsWithCorruptionsCodeAndNamesTheFile) {
  const std::string command = std::string(LARDER_TOOL) + " versions verify " + heap_path_ + " > " +
                              dir_.file("out") + " 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << read_all(dir_.file("out"));
  const std::string m = manifest(2);
  flip_byte(store_ + "/" + m, 100);
  int rc = std::system(command.c_str());
  ASSERT_TRUE(WIFEXITED(rc));
  EXPECT_EQ(WEXITSTATUS(rc), 1);  // damaged (docs/tools/larder.md)
  EXPECT_NE(read_all(dir_.file("out")).find(ids_[2]), std::string::npos) << read_all(dir_.file("out"));
}

TEST_F(VersionDamage, CheckoutCommandOfADamagedVersionExitsDamagedAndChangesNothing) {
  for (const std::string& f : files("packs")) {
    if (!f.ends_with(".pack")) continue;
    std::string bytes = read_all(store_ + "/" + f);
    for (std::size_t at = 200; at + 4096 < bytes.size(); at += 512) bytes[at] ^= 0x5A;
    write_all(store_ + "/" + f, bytes);
  }
  const std::string out = dir_.file("out");
  int rc = std::system((std::string(LARDER_TOOL) + " checkout " + heap_path_ + " " + ids_[1] + " > " + out + " 2>&1").c_str());
  ASSERT_TRUE(WIFEXITED(rc));
  EXPECT_EQ(WEXITSTATUS(rc), 1) << read_all(out);
  EXPECT_NE(read_all(out).find(".pack"), std::string::npos) << read_all(out);
  larder::heap h({.kind = larder::backing::file, .name = heap_path_, .mode = larder::open_mode::open});
  EXPECT_EQ(differs(h, 3), "");
}
#endif

// The first 128 and last 64 bytes of every file of the store (headers,
// footers, refs, HEAD, the marker) and a stride of the rest (every 11th
// byte; every 401st of a pack; every byte of everything with
// LARDER_TEST_EVERY_BYTE=1, a few minutes): after each flip (on a fresh
// copy of the store), every version opened straight from the store is
// either refused or exactly right.
TEST_F(VersionDamage, NoSingleFlippedByteBringsAVersionBackWrong) {
  const std::string pristine = dir_.file("pristine");
  fs::copy(store_, pristine, fs::copy_options::recursive);
  const bool every_byte = std::getenv("LARDER_TEST_EVERY_BYTE") != nullptr;
  std::vector<std::pair<std::string, std::size_t>> flips;
  for (const std::string& f : files("")) {
    const std::size_t size = fs::file_size(store_ + "/" + f);
    const std::size_t stride = every_byte ? 1 : f.ends_with(".pack") ? 401 : 11;
    for (std::size_t at = 0; at < size; ++at) {
      if (at < 128 || at + 64 >= size || at % stride == 0) flips.emplace_back(f, at);
    }
  }
  const std::string trial = dir_.file("trial");
  std::size_t refused = 0, whole = 0;
  for (const auto& [file, at] : flips) {
    fs::remove_all(trial);
    fs::copy(pristine, trial, fs::copy_options::recursive);
    flip_byte(trial + "/" + file, at);
    for (int v = 1; v <= 3; ++v) {
      larder::heap version;
      larder::status s = larder::open_version(trial, ids_[v], &version);
      if (!s.ok()) {
        ++refused;
        continue;
      }
      ++whole;
      ASSERT_EQ(differs(version, v), "") << "version " << v << " came back wrong after flipping byte " << at
                                         << " of " << file;
    }
  }
  std::printf("%zu flips: %zu opens refused, %zu whole\n", flips.size(), refused, whole);
  EXPECT_GT(refused, 0u);
}

}  // namespace
