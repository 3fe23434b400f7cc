// What users do to heaps beyond the happy path: statistics of reopened and
// read-only heaps, full file systems, heaps created separately opened
// together, stale files from crashed creations, lock holders.
#include "runtime_test_util.hpp"

#include <larder/check.hpp>
#include <larder/transaction.hpp>

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/statvfs.h>

#include <thread>
#include <vector>

namespace {

using larder_test::temp_dir;

std::size_t in_use_of(const larder::heap& h, std::string_view pod) {
  for (const auto& p : h.pods())
    if (p.name == pod) return p.bytes_in_use;
  ADD_FAILURE() << "no pod " << pod;
  return 0;
}

// A pod holding only huge blocks, reopened for writing and read-only:
// pods() counts what usable_size reports for each block.
TEST(PodUsage, CountsHugeBlocksAfterReopenAndReadOnly) {
  temp_dir dir;
  std::string path = dir.file("heap");
  std::size_t expected = 0;
  {
    larder::heap h({.kind = larder::backing::file, .name = path});
    larder::pod big;
    ASSERT_TRUE(h.make_pod("big", &big).ok());
    std::vector<void*> blocks;
    for (std::size_t mib : {1, 3, 9}) {
      void* p = big.allocate(mib << 20);
      ASSERT_NE(p, nullptr);
      expected += larder::usable_size(p);
      blocks.push_back(p);
    }
    ASSERT_TRUE(h.set_root("blocks", blocks[0], 1).ok());
    EXPECT_EQ(in_use_of(h, "big"), expected);
    ASSERT_TRUE(h.close().ok());
  }
  {
    larder::heap h({.kind = larder::backing::file, .name = path, .mode = larder::open_mode::open});
    EXPECT_EQ(in_use_of(h, "big"), expected);
  }
  larder::heap ro({.kind = larder::backing::file, .name = path, .mode = larder::open_mode::open, .read_only = true});
  EXPECT_EQ(in_use_of(ro, "big"), expected);
}

// Small blocks freed by another thread are not in use, whoever folds them.
TEST(PodUsage, RemoteFreesDoNotCount) {
  temp_dir dir;
  larder::heap h({.kind = larder::backing::file, .name = dir.file("heap")});
  std::size_t before = in_use_of(h, "default");
  std::vector<void*> blocks;
  for (int i = 0; i < 1000; ++i) blocks.push_back(h.allocate(48));
  EXPECT_EQ(in_use_of(h, "default"), before + 1000 * larder::usable_size(blocks[0]));
  std::thread([&] {
    for (void* p : blocks) larder::heap::deallocate(p);
  }).join();
  EXPECT_EQ(in_use_of(h, "default"), before);
}

// ---- placement and copies ----------------------------------------------------

std::uintptr_t base_of_new_heap(const std::string& path) {
  larder::heap h({.kind = larder::backing::file, .name = path});
  auto base = reinterpret_cast<std::uintptr_t>(h.base());
  (void)h.close();
  return base;
}

// Heaps made by separate processes get separate bases; heaps made in one
// process never overlap, so they can all be open at once again later.
TEST(Placement, SeparateCreationsGetSeparateBases) {
  temp_dir dir;
  std::vector<std::uintptr_t> bases;
  for (int i = 0; i < 16; ++i) {
    std::string path = dir.file("heap" + std::to_string(i));
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    pid_t pid = ::fork();
    if (pid == 0) {
      std::uintptr_t base = base_of_new_heap(path);
      (void)!::write(fds[1], &base, sizeof(base));
      std::_Exit(0);
    }
    std::uintptr_t base = 0;
    ASSERT_EQ(::read(fds[0], &base, sizeof(base)), static_cast<ssize_t>(sizeof(base)));
    ::waitpid(pid, nullptr, 0);
    ::close(fds[0]);
    ::close(fds[1]);
    for (std::uintptr_t other : bases) EXPECT_NE(base, other);
    bases.push_back(base);
  }
  // 1 GiB each: 32 default reserves (64 GiB) do not fit at once in the
  // placement window of a ThreadSanitizer build (448 GiB).
  std::vector<larder::heap> open;
  for (int i = 0; i < 32; ++i)
    open.emplace_back(
        larder::heap_options{.name = dir.file("many" + std::to_string(i)), .reserve = std::size_t{1} << 30});
  for (auto& h : open) ASSERT_TRUE(h.close().ok());
  for (int i = 0; i < 32; ++i)
    open[i] = larder::heap({.name = dir.file("many" + std::to_string(i)), .mode = larder::open_mode::open});
}

// A byte-for-byte copy lives at its original's address: opening both in one
// process is refused, and the message says why.
TEST(Placement, CopyBesideItsOriginalIsRefusedClearly) {
  temp_dir dir;
  std::string path = dir.file("heap"), copy = dir.file("copy");
  { larder::heap h({.name = path}); }
  std::filesystem::copy_file(path, copy);
  larder::heap original({.name = path, .mode = larder::open_mode::open});
  larder::heap second;
  larder::status s = larder::heap::open({.name = copy, .mode = larder::open_mode::open}, &second);
  EXPECT_TRUE(s.is(larder::errc::address_taken)) << s.to_string();
  EXPECT_NE(s.to_string().find("copy"), std::string::npos) << s.to_string();
}

// ---- locks and leftovers ------------------------------------------------------

// Some other program holding a read lock on byte 0 blocks the writer; the
// error says so instead of blaming a writer.
TEST(WriterLock, ForeignReadLockIsNamed) {
  temp_dir dir;
  std::string path = dir.file("heap");
  { larder::heap h({.name = path}); }
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(path.c_str(), O_RDONLY);
    struct flock lock {};
    lock.l_type = F_RDLCK;
    lock.l_whence = SEEK_SET;
    lock.l_len = 1;
    char c = ::fcntl(fd, F_SETLK, &lock) == 0 ? 'y' : 'n';
    (void)!::write(ready[1], &c, 1);
    ::pause();
    std::_Exit(0);
  }
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ASSERT_EQ(c, 'y');
  larder::heap h;
  larder::status s = larder::heap::open({.name = path, .mode = larder::open_mode::open}, &h);
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  EXPECT_TRUE(s.is(larder::errc::heap_busy)) << s.to_string();
  EXPECT_NE(s.to_string().find("read lock"), std::string::npos) << s.to_string();
  EXPECT_NE(s.to_string().find(std::to_string(pid)), std::string::npos) << s.to_string();
  EXPECT_TRUE(larder::heap::open({.name = path, .mode = larder::open_mode::open}, &h).ok());
}

// NAME.new-PID-N files of creations that crashed go once their process is
// gone; a live creator's file stays.
TEST(Leftovers, HalfMadeHeapFilesOfDeadProcessesAreRemoved) {
  temp_dir dir;
  std::string path = dir.file("heap");
  pid_t dead = ::fork();
  if (dead == 0) std::_Exit(0);
  ::waitpid(dead, nullptr, 0);
  std::string stale = path + ".new-" + std::to_string(dead) + "-42";
  std::string live = path + ".new-" + std::to_string(::getpid()) + "-7";
  for (const std::string& f : {stale, live}) std::fclose(std::fopen(f.c_str(), "w"));
  { larder::heap h({.name = path}); }
  EXPECT_FALSE(std::filesystem::exists(stale));
  EXPECT_TRUE(std::filesystem::exists(live));
  std::filesystem::remove(live);
}

// ---- readers beside a writer ---------------------------------------------------

struct counter_root {
  std::uint64_t committed;
  void* blocks[64];
};

// A writer process that commits transactions and allocates plainly until
// killed; it writes one byte to `ready` once it runs.
pid_t start_writer(const std::string& path, int ready) {
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  larder::heap h({.name = path, .mode = larder::open_mode::open});
  auto* root = static_cast<counter_root*>(h.find_root("counter"));
  char c = 'r';
  (void)!::write(ready, &c, 1);
  for (std::uint64_t i = 0;; ++i) {
    {
      larder::transaction tx(h);
      tx.snapshot(&root->committed);
      ++root->committed;
      tx.free(tx.allocate(1000 + (i % 7) * 5000));
    }
    std::size_t slot = i % 64;
    if (root->blocks[slot] != nullptr) larder::heap::deallocate(root->blocks[slot]);
    root->blocks[slot] = h.allocate((i * 7919) % (3 << 20) + 1);
  }
}

TEST(Readers, ReadOnlyOpensBesideAWriterAreNeverRefused) {
  temp_dir dir;
  std::string path = dir.file("heap");
  {
    larder::heap h({.name = path});
    h.root<counter_root>("counter", counter_root{});
  }
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t writer = start_writer(path, ready[1]);
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  int refused = 0;
  std::uint64_t last = 0;
  for (int round = 0; round < 100; ++round) {
    larder::heap h;
    larder::status s = larder::heap::open({.name = path, .mode = larder::open_mode::open, .read_only = true}, &h);
    if (!s.ok()) {
      ++refused;
      ADD_FAILURE() << "round " << round << ": " << s.to_string();
      continue;
    }
    auto* root = static_cast<counter_root*>(h.find_root("counter"));
    ASSERT_NE(root, nullptr);
    std::uint64_t now = root->committed;
    EXPECT_GE(now, last);
    last = now;
    EXPECT_EQ(h.roots().size(), 1u);
    EXPECT_FALSE(h.pods().empty());
    EXPECT_GT(h.stats().mapped_size, 0u);
    (void)h.close();
  }
  ::kill(writer, SIGKILL);
  ::waitpid(writer, nullptr, 0);
  EXPECT_EQ(refused, 0);
  EXPECT_GT(last, 0u) << "the writer never committed";
}

// After a crash mid-transaction, a reader sees the last committed state and
// the file is left exactly as it was (the next writer rolls it back).
TEST(Readers, ReadOnlyOpenAfterACrashSeesTheCommittedState) {
  temp_dir dir;
  std::string path = dir.file("heap");
  {
    larder::heap h({.name = path});
    h.root<counter_root>("counter", counter_root{})->committed = 0;
    larder::transaction tx(h);
    auto* root = static_cast<counter_root*>(h.find_root("counter"));
    tx.snapshot(&root->committed);
    root->committed = 41;
  }
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    larder::heap h({.name = path, .mode = larder::open_mode::open});
    auto* root = static_cast<counter_root*>(h.find_root("counter"));
    larder::transaction tx(h);
    tx.snapshot(root);
    root->committed = 999;
    root->blocks[0] = tx.allocate(5 << 20);
    ::msync(h.base(), h.stats().mapped_size, MS_SYNC);
    char c = 'r';
    (void)!::write(ready[1], &c, 1);
    ::pause();
    std::_Exit(0);
  }
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  bool ok = false;
  std::string before = larder_test::read_all(path, &ok);
  ASSERT_TRUE(ok);
  {
    larder::heap h({.name = path, .mode = larder::open_mode::open, .read_only = true});
    auto* root = static_cast<counter_root*>(h.find_root("counter"));
    ASSERT_NE(root, nullptr);
    EXPECT_EQ(root->committed, 41u);
    EXPECT_EQ(root->blocks[0], nullptr);
  }
  EXPECT_TRUE(larder_test::read_all(path, &ok) == before) << "a reader changed the file";
  larder::heap h({.name = path, .mode = larder::open_mode::open});
  EXPECT_EQ(static_cast<counter_root*>(h.find_root("counter"))->committed, 41u);
}

// ---- a full file system ---------------------------------------------------

// The file systems a full disk is tried on: tmpfs, where reading a hole of
// a mapped file takes storage as writing does, and ext4, where it does
// not (the heap's storage is then reserved only where it is written).
enum class small_fs { tmpfs, ext4 };

// Mounts a 96 MiB file system of `kind` on `dir` in a mount namespace of
// this (forked) process's own (an ext4 image is made in `scratch`), with
// all but `free_mib` MiB of it taken by the file `dir`/ballast, whose
// removal makes room later. False with a reason where the system does not
// allow it.
bool mount_small_fs(small_fs kind, const std::string& dir, const std::string& scratch, int free_mib,
                    std::string* why) {
  if (::unshare(CLONE_NEWNS) != 0 && ::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) {
    *why = std::string("unshare: ") + std::strerror(errno);
    return false;
  }
  ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr);
  if (kind == small_fs::tmpfs) {
    if (::mount("larder-full", dir.c_str(), "tmpfs", 0, "size=96m") != 0) {
      *why = std::string("mount tmpfs: ") + std::strerror(errno);
      return false;
    }
  } else {
    std::string image = scratch + "/ext4.img";
    std::string make = "truncate -s 96M " + image + " && mkfs.ext4 -q -F -m 0 " + image + " >/dev/null 2>&1";
    if (std::system(make.c_str()) != 0) {
      *why = "no mkfs.ext4";
      return false;
    }
    if (std::system(("mount -o loop " + image + " " + dir + " >/dev/null 2>&1").c_str()) != 0) {
      *why = "cannot mount an ext4 image (no loop devices?)";
      return false;
    }
  }
  struct statvfs fs;
  if (::statvfs(dir.c_str(), &fs) != 0) {
    *why = std::string("statvfs: ") + std::strerror(errno);
    return false;
  }
  std::uint64_t free_bytes = std::uint64_t{fs.f_bavail} * fs.f_frsize;
  std::uint64_t keep = std::uint64_t(free_mib) << 20;
  int fd = ::open((dir + "/ballast").c_str(), O_CREAT | O_WRONLY, 0600);
  bool ok = fd >= 0 && (free_bytes <= keep || ::posix_fallocate(fd, 0, static_cast<off_t>(free_bytes - keep)) == 0);
  if (fd >= 0) ::close(fd);
  if (!ok) *why = "cannot make the ballast file";
  return ok;
}

struct kept_root {
  std::uint64_t count;
  std::uint64_t values[512];
};

class FullDisk : public ::testing::TestWithParam<small_fs> {};

// Fills a file system with 32 MiB free with plain allocation, transactions
// and page capture: each fails with an error, none dies by a signal, and
// once space is added the heap reopens with every committed change.
TEST_P(FullDisk, AllocationTransactionsAndCaptureFailCleanly) {
  temp_dir dir;
  std::string mountpoint = dir.file("fs");
  ASSERT_EQ(::mkdir(mountpoint.c_str(), 0700), 0);
  int code = larder_test::run_in_child([&] {
    std::string why;
    if (!mount_small_fs(GetParam(), mountpoint, dir.path(), 32, &why)) {
      std::printf("cannot make a small file system here (%s): nothing to test\n", why.c_str());
      std::_Exit(77);
    }
    std::string path = mountpoint + "/heap";
    std::uint64_t committed = 0;
    {
      larder::heap h({.kind = larder::backing::file, .name = path, .reserve = std::size_t{1} << 30});
      auto* root = h.root<kept_root>("kept", kept_root{});
      // Plain allocation of every size until the file system is full, and
      // on while it is: every block handed out can be written.
      std::vector<void*> blocks;
      bool filled = false;
      for (int i = 0; i < 4096; ++i) {
        std::size_t size = (i % 3 == 0) ? (std::size_t{1} << 20) : (i % 3 == 1) ? 100000 : 3000;
        void* p = h.allocate(size);
        if (p == nullptr) {
          EXPECT_TRUE(errno == ENOSPC || errno == ENOMEM) << std::strerror(errno);
          filled = true;
          continue;
        }
        std::memset(p, 0xAB, size);
        blocks.push_back(p);
      }
      ASSERT_FALSE(blocks.empty());
      EXPECT_TRUE(filled) << "the file system never filled";
      // Give some back, then commit transactions until one fails.
      for (std::size_t i = 0; i < blocks.size() / 4; ++i) larder::heap::deallocate(blocks[i]);
      bool failed = false;
      for (int round = 0; round < 1000 && !failed; ++round) {
        try {
          larder::transaction tx(h);
          tx.snapshot(root);
          root->values[root->count % 512] = root->count;
          ++root->count;
          for (int k = 0; k < 16; ++k) std::memset(tx.allocate(64 << 10), round, 64 << 10);
        } catch (const larder::error& e) {
          failed = true;
        }
        if (!failed) committed = root->count;
      }
      EXPECT_TRUE(failed) << "transactions never ran out of space";
      EXPECT_EQ(root->count, committed) << "a failed transaction left its change";
      // Page capture needs log space for each page it may capture.
      try {
        larder::transaction tx(h, larder::capture::pages);
        for (std::size_t i = blocks.size() / 4; i < blocks.size(); ++i) std::memset(blocks[i], 0xCD, 3000);
      } catch (const larder::error&) {
      }
      // New roots need storage in the root table.
      for (int i = 0; i < 64; ++i) (void)h.set_root("extra-" + std::to_string(i), root, sizeof(*root));
      (void)h.close();
    }
    // Reopen and check on the still-full file system: an answer, no signal.
    {
      larder::heap h;
      larder::status s = larder::heap::open({.kind = larder::backing::file, .name = path,
                                              .mode = larder::open_mode::open}, &h);
      if (s.ok()) {
        auto* root = static_cast<kept_root*>(h.find_root("kept"));
        ASSERT_NE(root, nullptr);
        EXPECT_EQ(root->count, committed);
        (void)h.close();
      }
      larder::check_report report;
      (void)larder::check_heap(path, false, &report);
    }
    // With room again, everything committed is there and the heap works.
    ASSERT_EQ(::unlink((mountpoint + "/ballast").c_str()), 0);
    larder::heap h({.kind = larder::backing::file, .name = path, .mode = larder::open_mode::open});
    auto* root = static_cast<kept_root*>(h.find_root("kept"));
    ASSERT_NE(root, nullptr);
    EXPECT_EQ(root->count, committed);
    for (std::uint64_t i = 0; i < committed && i < 512; ++i)
      EXPECT_EQ(root->values[i], committed > 512 ? root->values[i] : i);
    {
      larder::transaction tx(h);
      tx.snapshot(root);
      ++root->count;
    }
    EXPECT_EQ(root->count, committed + 1);
    ASSERT_TRUE(h.close().ok());
    larder::check_report report;
    EXPECT_TRUE(larder::check_heap(path, false, &report).ok());
    EXPECT_EQ(report.problems.size(), 0u);
  });
  if (code == 77) GTEST_SKIP() << "no small file system could be mounted here";
  EXPECT_EQ(code, 0) << (code > 128 ? "the child died by a signal" : "the child failed");
}

// Fills the file system holding `dir` with a file of its own (writes fail
// with ENOSPC, never with a signal).
void fill_file_system(const std::string& dir) {
  int fd = ::open((dir + "/filler").c_str(), O_WRONLY | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  std::vector<char> chunk(1 << 16, 'f');
  while (::write(fd, chunk.data(), chunk.size()) > 0) {
  }
  while (::write(fd, chunk.data(), 4096) > 0) {
  }
  ::close(fd);
}

// Slices freed while their segment still held blocks are given back to the
// file system as holes; when the segment then empties it is kept for reuse.
// Taking it again with the file system full must fail as an allocation
// error: it holds no storage for those slices, and a store into one would
// raise SIGBUS.
TEST(FullDisk, ReusedSegmentWithHolesIsReservedAgain) {
  temp_dir dir;
  std::string mountpoint = dir.file("fs");
  ASSERT_EQ(::mkdir(mountpoint.c_str(), 0700), 0);
  int code = larder_test::run_in_child([&] {
    std::string why;
    if (!mount_small_fs(small_fs::tmpfs, mountpoint, dir.path(), 48, &why)) {
      std::printf("cannot make a small file system here (%s): nothing to test\n", why.c_str());
      std::_Exit(77);
    }
    constexpr std::size_t kBlock = 8192;  // eight to a 64 KiB slice
    larder::heap h({.kind = larder::backing::file, .name = mountpoint + "/heap", .reserve = std::size_t{1} << 30});
    std::vector<void*> blocks;
    for (int i = 0; i < 3 * 64 * 8; ++i) {  // about three segments
      void* p = h.allocate(kBlock);
      ASSERT_NE(p, nullptr) << std::strerror(errno);
      std::memset(p, 0x5A, kBlock);
      blocks.push_back(p);
    }
    // Every other slice empties first, so more than the 64 free slices an
    // arena keeps (LARDER_PURGE_SLICES) are purged while each segment still
    // holds blocks; then the segments empty.
    for (int odd = 0; odd < 2; ++odd)
      for (void* p : blocks)
        if (((reinterpret_cast<std::uintptr_t>(p) >> 16) & 1) == static_cast<std::uintptr_t>(odd))
          larder::heap::deallocate(p);
    fill_file_system(mountpoint);
    std::size_t made = 0;
    for (; made < blocks.size(); ++made) {
      void* p = h.allocate(kBlock);
      if (p == nullptr) {
        EXPECT_TRUE(errno == ENOSPC || errno == ENOMEM) << std::strerror(errno);
        break;
      }
      std::memset(p, 0xA5, kBlock);
    }
    EXPECT_LT(made, blocks.size()) << "the full file system never refused an allocation";
  });
  if (code == 77) GTEST_SKIP() << "no small file system could be mounted here";
  EXPECT_EQ(code, 0) << (code > 128 ? "the child died by a signal" : "the child failed");
}

INSTANTIATE_TEST_SUITE_P(FileSystems, FullDisk, ::testing::Values(small_fs::tmpfs, small_fs::ext4),
                         [](const ::testing::TestParamInfo<small_fs>& info) {
                           return info.param == small_fs::tmpfs ? "tmpfs" : "ext4";
                         });

}  // namespace
