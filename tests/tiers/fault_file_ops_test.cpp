// The power-failure layer under the chunk store: what survives a roll-back
// (synced bytes, changes of synced directories) and what does not, the
// counting of persistence points and the stop at one, torn failures.
#include "chunk_test_util.hpp"
#include "recovery/persist.hpp"
#include "tiers/chunks/fault_file_ops.hpp"
#include "tiers/chunks/files.hpp"

#include <sys/wait.h>
#include <unistd.h>

namespace larder::chunks::test {
namespace {

std::string contents(const std::string& path) {
  std::string bytes;
  status s = read_file(path, &bytes);
  return s.ok() ? bytes : "<" + s.to_string() + ">";
}

bool exists(const std::string& path) { return std::filesystem::exists(path); }

void put_file(const std::string& path, const std::string& bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(std::fwrite(bytes.data(), 1, bytes.size(), f), bytes.size());
  std::fclose(f);
}

// Creates `path` through `ops` holding `bytes`; synced when `sync`.
void write_file(fault_file_ops& ops, const std::string& path, const std::string& bytes, bool sync) {
  int fd = -1;
  bool direct = true;
  ASSERT_EQ(ops.create(path.c_str(), true, &fd, &direct), 0);
  EXPECT_FALSE(direct);
  ASSERT_EQ(ops.write_at(fd, bytes.data(), bytes.size(), 0), 0);
  if (sync) {
    ASSERT_EQ(ops.sync(fd), 0);
  }
  ASSERT_EQ(ops.close(fd), 0);
}

TEST(FaultFileOps, KeepsSyncedBytesOfSyncedEntriesOnly) {
  scratch_dir dir;
  fault_file_ops ops({});
  std::string a = dir.path() + "/a", b = dir.path() + "/b", c = dir.path() + "/c";
  int fd = -1;
  bool direct = false;
  ASSERT_EQ(ops.create(a.c_str(), false, &fd, &direct), 0);
  ASSERT_EQ(ops.write_at(fd, "hello", 5, 0), 0);
  ASSERT_EQ(ops.sync(fd), 0);
  ASSERT_EQ(ops.write_at(fd, " world", 6, 5), 0);  // appended, never synced
  ASSERT_EQ(ops.write_at(fd, "J", 1, 0), 0);       // over synced bytes, never synced
  ASSERT_EQ(ops.close(fd), 0);
  ASSERT_EQ(ops.sync_directory(dir.path().c_str()), 0);  // a's entry
  write_file(ops, b, "synced data, unsynced entry", true);
  write_file(ops, c, "never synced", false);
  EXPECT_EQ(contents(a), "Jello world");
  EXPECT_EQ(ops.points(), 3u);
  ASSERT_TRUE(ops.roll_back().ok());
  EXPECT_EQ(contents(a), "hello");
  EXPECT_TRUE(exists(a));
  EXPECT_FALSE(exists(b));
  EXPECT_FALSE(exists(c));
}

TEST(FaultFileOps, UndoesUnsyncedRenamesAndRemovals) {
  scratch_dir dir;
  std::string x = dir.path() + "/x", y = dir.path() + "/y", z = dir.path() + "/z", t = dir.path() + "/t";
  put_file(x, "x before");  // written outside the layer: durable as it is
  put_file(y, "y before");
  fault_file_ops ops({});
  ASSERT_EQ(ops.rename(x.c_str(), z.c_str(), false), 0);
  EXPECT_EQ(ops.rename(z.c_str(), y.c_str(), false), EEXIST);
  write_file(ops, t, "y after", true);
  ASSERT_EQ(ops.rename(t.c_str(), y.c_str(), true), 0);
  ASSERT_EQ(ops.remove(z.c_str()), 0);
  EXPECT_EQ(contents(y), "y after");
  ASSERT_TRUE(ops.roll_back().ok());
  EXPECT_EQ(contents(x), "x before");
  EXPECT_EQ(contents(y), "y before");
  EXPECT_FALSE(exists(z));
  EXPECT_FALSE(exists(t));
}

TEST(FaultFileOps, SyncedDirectoryChangesSurvive) {
  scratch_dir dir;
  std::string x = dir.path() + "/x", y = dir.path() + "/y", t = dir.path() + "/t";
  put_file(x, "old x");
  fault_file_ops ops({});
  write_file(ops, t, "new y", true);
  ASSERT_EQ(ops.rename(t.c_str(), y.c_str(), false), 0);
  ASSERT_EQ(ops.remove(x.c_str()), 0);
  ASSERT_EQ(ops.sync_directory((dir.path() + "/").c_str()), 0);  // another spelling of the directory
  ASSERT_TRUE(ops.roll_back().ok());
  EXPECT_EQ(contents(y), "new y");
  EXPECT_FALSE(exists(x));
  EXPECT_FALSE(exists(t));
}

TEST(FaultFileOps, NewDirectoryGoesWithEverythingInIt) {
  scratch_dir dir;
  std::string sub = dir.path() + "/sub", f = sub + "/f";
  fault_file_ops ops({});
  bool created = false;
  ASSERT_EQ(ops.make_directory(sub.c_str(), &created), 0);
  EXPECT_TRUE(created);
  write_file(ops, f, "inside", true);
  ASSERT_EQ(ops.sync_directory(sub.c_str()), 0);  // f is durable in sub, sub is not in dir
  ASSERT_EQ(ops.make_directory(sub.c_str(), &created), 0);
  EXPECT_FALSE(created);
  ASSERT_TRUE(ops.roll_back().ok());
  EXPECT_FALSE(exists(sub));
}

TEST(FaultFileOps, StopsTheProcessAtTheChosenPoint) {
  scratch_dir dir;
  std::string a = dir.path() + "/a";
  pid_t child = ::fork();
  if (child == 0) {
    fault_file_ops ops({.crash_at = 3, .torn = false, .seed = 0});
    int fd = -1;
    bool direct = false;
    if (ops.create(a.c_str(), false, &fd, &direct) != 0) ::_exit(2);
    for (int i = 0; i < 5; ++i) {
      std::string line = "line " + std::to_string(i) + "\n";
      if (ops.write_at(fd, line.data(), line.size(), 7 * static_cast<std::uint64_t>(i)) != 0) ::_exit(3);
      if (i == 0 && ops.sync_directory(dir.path().c_str()) != 0) ::_exit(4);  // point 1
      if (ops.sync(fd) != 0) ::_exit(5);                                      // points 2, 3, ...
    }
    ::_exit(0);
  }
  int st = 0;
  ASSERT_EQ(::waitpid(child, &st, 0), child);
  ASSERT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), recovery::kCrashExitCode);
  EXPECT_EQ(contents(a), "line 0\n");  // the sync of line 1 was point 3: the power failed instead
}

TEST(FaultFileOps, TornFailureLandsSomeWritesAndADirectoryPrefix) {
  constexpr std::size_t kPieces = 16;
  std::string data(kPieces * fault_file_ops::kTornPiece, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + i / fault_file_ops::kTornPiece);
  bool some_partial = false, some_prefix = false;
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    scratch_dir dir;
    fault_file_ops ops({.crash_at = 0, .torn = true, .seed = seed});
    // The layer tracks files it created: make one, sync it and its entry.
    std::string p = dir.path() + "/tracked";
    int fd = -1;
    bool direct = false;
    ASSERT_EQ(ops.create(p.c_str(), false, &fd, &direct), 0);
    ASSERT_EQ(ops.sync(fd), 0);
    ASSERT_EQ(ops.sync_directory(dir.path().c_str()), 0);
    ASSERT_EQ(ops.write_at(fd, data.data(), data.size(), 0), 0);
    ASSERT_EQ(ops.close(fd), 0);
    for (int i = 0; i < 8; ++i) write_file(ops, dir.path() + "/f" + std::to_string(i), "x", true);
    ASSERT_TRUE(ops.roll_back().ok());
    std::string got = contents(p);
    ASSERT_LE(got.size(), data.size());
    std::size_t landed = 0;
    for (std::size_t i = 0; i < got.size(); i += fault_file_ops::kTornPiece) {
      std::string piece = got.substr(i, fault_file_ops::kTornPiece);
      bool whole = piece == data.substr(i, piece.size());
      ASSERT_TRUE(whole || piece == std::string(piece.size(), '\0')) << "piece " << i / fault_file_ops::kTornPiece;
      landed += whole;
    }
    some_partial |= landed > 0 && landed < kPieces;
    int survivors = 0;
    for (int i = 0; i < 8; ++i) {
      bool there = exists(dir.path() + "/f" + std::to_string(i));
      if (there) {
        ASSERT_EQ(survivors, i) << "f" << i << " survived after a lost one";
      }
      survivors += there;
    }
    some_prefix |= survivors > 0 && survivors < 8;
  }
  EXPECT_TRUE(some_partial);
  EXPECT_TRUE(some_prefix);
}

}  // namespace
}  // namespace larder::chunks::test
