// Tests of the page-write trackers (port/write_tracker.hpp), run against each
// backend; one whose probe says it cannot work here is skipped with the
// probe's reason.
//
//  * TrackerProperty: four threads make random user stores and kernel writes
//    (read, pread, recv, readv, recvmsg, preadv) into a 32 MiB range backed
//    by anonymous memory, a memfd or a file in /tmp, while the main thread
//    collects at random moments. Each write gets a window of collects that
//    may report it: with lo = collects finished before the write and hi =
//    collects started after it, some collect j with lo < j <= hi + 1 must
//    report every page the write touched. Zero misses; false positives are
//    counted and printed. LARDER_TEST_SEED sets the seed and
//    LARDER_TEST_DURATION_MS how long the writers run (default 1500 ms).
//  * TrackerBasic: empty first collect, exact reports, re-arming, tracking a
//    tracked range again, tracked_bytes, tracking after untrack_all, runs
//    kept ascending while writes race a long scan, each wrapped kernel-write
//    call, the mprotect first-write callback (once per page per epoch,
//    before the write lands), and eight threads over several epochs.
//  * TrackerSignals: SIGSEGVs that are not the tracker's still reach the
//    handler installed before it, or kill the process when there was none.
//    They run in a fresh process (this binary started again with
//    LARDER_TRACKER_TEST_CHILD set, running only TrackerChild.Entry), since
//    the SIGSEGV handler is installed once per process.
#include "port/tracker_test_util.hpp"
#include "port/write_tracker.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <barrier>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

extern char** environ;

namespace {

using larder::port::make_tracker;
using larder::port::probe_tracker;
using larder::port::tracker_kind;
using larder::port::write_tracker;
using larder::port::written_run;

using larder_test::kKinds;
using larder_test::kPage;
using larder_test::label;
using larder_test::precise;

std::uint64_t mix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

std::uint64_t base_seed() {
  static const std::uint64_t seed = [] {
    const char* env = std::getenv("LARDER_TEST_SEED");
    if (env != nullptr && *env != '\0') return static_cast<std::uint64_t>(std::strtoull(env, nullptr, 0));
    return std::uint64_t{0x1a4de4c0ffee};
  }();
  return seed;
}

int duration_ms() {
  const char* env = std::getenv("LARDER_TEST_DURATION_MS");
  if (env != nullptr && *env != '\0') return std::max(1, std::atoi(env));
  return 1500;
}

std::string errno_text(const char* what, int e) { return std::string(what) + ": " + std::strerror(e); }

// ---- backings ---------------------------------------------------------------

enum class backing { anon, shm, file };
constexpr backing kBackings[] = {backing::anon, backing::shm, backing::file};

const char* label(backing kind) {
  switch (kind) {
    case backing::anon:
      return "anon";
    case backing::shm:
      return "shm";
    case backing::file:
      return "file";
  }
  return "unknown";
}

// A mapping of `size` bytes: anonymous private, a memfd mapped shared, or a
// file in a fresh mkdtemp directory under /tmp mapped shared.
class mapping {
 public:
  mapping(backing kind, std::size_t size) : size_(size) {
    int flags = MAP_SHARED;
    if (kind == backing::anon) {
      flags = MAP_PRIVATE | MAP_ANONYMOUS;
    } else if (kind == backing::shm) {
      fd_ = ::memfd_create("larder-tracker-test", MFD_CLOEXEC);
      if (fd_ < 0) {
        fail("memfd_create");
        return;
      }
    } else {
      char dir[] = "/tmp/larder-tracker-XXXXXX";
      if (::mkdtemp(dir) == nullptr) {
        fail("mkdtemp");
        return;
      }
      dir_ = dir;
      path_ = dir_ + "/backing";
      fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd_ < 0) {
        fail("open");
        return;
      }
    }
    if (fd_ >= 0 && ::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
      fail("ftruncate");
      return;
    }
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, flags, fd_, 0);
    if (p == MAP_FAILED) {
      fail("mmap");
      return;
    }
    base_ = static_cast<char*>(p);
  }
  ~mapping() {
    if (base_ != nullptr) ::munmap(base_, size_);
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
    if (!dir_.empty()) ::rmdir(dir_.c_str());
  }
  mapping(const mapping&) = delete;
  mapping& operator=(const mapping&) = delete;

  bool ok() const { return base_ != nullptr; }
  const std::string& error() const { return error_; }
  char* base() const { return base_; }
  std::uintptr_t addr() const { return reinterpret_cast<std::uintptr_t>(base_); }
  std::size_t size() const { return size_; }
  std::size_t pages() const { return size_ / kPage; }
  char* page(std::size_t i) const { return base_ + i * kPage; }

 private:
  void fail(const char* what) { error_ = errno_text(what, errno); }

  char* base_ = nullptr;
  std::size_t size_;
  int fd_ = -1;
  std::string dir_;
  std::string path_;
  std::string error_;
};

// A temporary file of `bytes` random bytes, unlinked at once; pread source.
class source_file {
 public:
  source_file(std::size_t bytes, std::uint64_t seed) : content_(bytes) {
    std::mt19937_64 rng(seed);
    for (auto& c : content_) c = static_cast<unsigned char>(rng());
    char name[] = "/tmp/larder-tracker-src-XXXXXX";
    fd_ = ::mkstemp(name);
    if (fd_ < 0) return;
    ::unlink(name);
    if (::write(fd_, content_.data(), bytes) != static_cast<ssize_t>(bytes)) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~source_file() {
    if (fd_ >= 0) ::close(fd_);
  }
  source_file(const source_file&) = delete;
  source_file& operator=(const source_file&) = delete;
  int fd() const { return fd_; }
  const unsigned char* at(std::size_t offset) const { return content_.data() + offset; }
  std::size_t size() const { return content_.size(); }

 private:
  std::vector<unsigned char> content_;
  int fd_ = -1;
};

// ---- reading collect results -----------------------------------------------

// Page indices (relative to `base`) of the runs; runs outside [base, base +
// pages) go to *outside.
std::set<std::size_t> page_set(const std::vector<written_run>& runs, std::uintptr_t base, std::size_t pages,
                               std::size_t* outside = nullptr) {
  std::set<std::size_t> out;
  for (const auto& run : runs) {
    for (std::size_t k = 0; k < run.pages; ++k) {
      std::uintptr_t page = run.start + k * kPage;
      if (page < base || page >= base + pages * kPage) {
        if (outside != nullptr) ++*outside;
        continue;
      }
      out.insert((page - base) / kPage);
    }
  }
  return out;
}

// Ascending, page-aligned, non-empty and non-overlapping.
bool well_formed(const std::vector<written_run>& runs) {
  for (std::size_t i = 0; i < runs.size(); ++i) {
    if (runs[i].pages == 0 || runs[i].start % kPage != 0) return false;
    if (i > 0 && runs[i - 1].start + runs[i - 1].pages * kPage > runs[i].start) return false;
  }
  return true;
}

// Where the runs of collect `j` stop being well formed, in pages from `base`.
std::string describe_malformed(const std::vector<written_run>& runs, std::uintptr_t base, std::uint32_t j) {
  std::string s = "  collect " + std::to_string(j) + " (" + std::to_string(runs.size()) + " runs):";
  for (std::size_t i = 0; i < runs.size(); ++i) {
    bool bad = runs[i].pages == 0 || runs[i].start % kPage != 0 ||
               (i > 0 && runs[i - 1].start + runs[i - 1].pages * kPage > runs[i].start);
    if (!bad) continue;
    for (std::size_t k = i > 0 ? i - 1 : 0; k <= i; ++k) {
      auto rel = static_cast<long long>(runs[k].start - base);
      s += " [#" + std::to_string(k) + " page " + std::to_string(rel / static_cast<long long>(kPage)) + " +" +
           std::to_string(runs[k].pages) + (rel % static_cast<long long>(kPage) ? " unaligned" : "") + "]";
    }
  }
  return s + "\n";
}

std::string show(const std::set<std::size_t>& pages) {
  std::string s = "{";
  std::size_t n = 0;
  for (std::size_t p : pages) {
    if (n++ > 0) s += ",";
    if (n > 40) {
      s += "...(" + std::to_string(pages.size()) + " pages)";
      break;
    }
    s += std::to_string(p);
  }
  return s + "}";
}

std::set<std::size_t> collect_pages(write_tracker& tracker, const mapping& m, int* rc = nullptr,
                                    bool* ok_form = nullptr) {
  std::vector<written_run> runs;
  int r = tracker.collect(&runs);
  if (rc != nullptr) *rc = r;
  if (ok_form != nullptr) *ok_form = well_formed(runs);
  return page_set(runs, m.addr(), m.pages());
}

bool contains(const std::set<std::size_t>& set, std::initializer_list<std::size_t> pages) {
  for (std::size_t p : pages)
    if (set.count(p) == 0) return false;
  return true;
}

// ---- kernel-write helpers (loop over short transfers) -------------------

bool write_all(int fd, const void* data, std::size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

bool send_all(int fd, const void* data, std::size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

// Calls `call(iov, count)` (a readv-like function) until all of `parts` is
// filled; false on error or end of file.
template <class Call>
bool fill_iov(std::vector<iovec> parts, Call&& call) {
  std::size_t first = 0;
  while (first < parts.size()) {
    ssize_t r = call(parts.data() + first, static_cast<int>(parts.size() - first));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    auto left = static_cast<std::size_t>(r);
    while (left > 0) {
      iovec& v = parts[first];
      std::size_t take = std::min(left, v.iov_len);
      v.iov_base = static_cast<char*>(v.iov_base) + take;
      v.iov_len -= take;
      left -= take;
      if (v.iov_len == 0) ++first;
    }
    while (first < parts.size() && parts[first].iov_len == 0) ++first;
  }
  return true;
}

bool read_all(int fd, void* buf, std::size_t n) {
  return fill_iov({{buf, n}}, [&](iovec* v, int) { return ::read(fd, v->iov_base, v->iov_len); });
}
bool recv_all(int fd, void* buf, std::size_t n) {
  return fill_iov({{buf, n}}, [&](iovec* v, int) { return ::recv(fd, v->iov_base, v->iov_len, 0); });
}
bool pread_all(int fd, void* buf, std::size_t n, off_t offset) {
  off_t at = offset;
  return fill_iov({{buf, n}}, [&](iovec* v, int) {
    ssize_t r = ::pread(fd, v->iov_base, v->iov_len, at);
    if (r > 0) at += r;
    return r;
  });
}
bool readv_all(int fd, const std::vector<iovec>& parts) {
  return fill_iov(parts, [&](iovec* v, int count) { return ::readv(fd, v, count); });
}
bool preadv_all(int fd, const std::vector<iovec>& parts, off_t offset) {
  off_t at = offset;
  return fill_iov(parts, [&](iovec* v, int count) {
    ssize_t r = ::preadv(fd, v, count, at);
    if (r > 0) at += r;
    return r;
  });
}
bool recvmsg_all(int fd, const std::vector<iovec>& parts) {
  return fill_iov(parts, [&](iovec* v, int count) {
    msghdr msg{};
    msg.msg_iov = v;
    msg.msg_iovlen = static_cast<std::size_t>(count);
    return ::recvmsg(fd, &msg, 0);
  });
}

// ============================================================================
// Randomized property test
// ============================================================================

constexpr std::size_t kRegionBytes = std::size_t{32} << 20;
constexpr std::size_t kBlockPages = 16;
constexpr std::size_t kBlockBytes = kBlockPages * kPage;
constexpr std::size_t kWriters = 4;
constexpr std::size_t kOwners = kWriters + 1;  // block b belongs to b % kOwners; the last owner is "shared"
constexpr std::size_t kMaxKernelWrite = 12 * 1024;
constexpr std::size_t kSourceFileBytes = 64 * 1024;
constexpr std::size_t kMaxOpsPerWriter = 80000;

enum op_kind : std::uint8_t {
  op_store_shared,  // 1 byte, anywhere in the shared blocks (pages contended by all writers)
  op_store_own,     // 1 byte in an own block
  op_memcpy_cross,  // memcpy spanning a page boundary in an own block
  op_read_pipe,
  op_pread_file,
  op_recv_socket,
  op_readv_pipe,
  op_recvmsg_socket,
  op_preadv_file,
  op_count
};
constexpr const char* kOpNames[op_count] = {"store-shared", "store-own",  "memcpy-cross",   "read-pipe",  "pread-file",
                                            "recv-socket",  "readv-pipe", "recvmsg-socket", "preadv-file"};
// Relative frequencies of the operations above.
constexpr unsigned kOpWeights[op_count] = {24, 10, 16, 10, 10, 10, 8, 6, 6};

struct write_record {
  std::uint32_t first_page;
  std::uint32_t last_page;
  std::uint32_t lo;  // collects finished before the write began
  std::uint32_t hi;  // collects started after it completed
  std::uint8_t op;
  std::uint8_t writer;
};

struct property_state {
  char* base = nullptr;
  std::size_t pages = 0;
  std::atomic<std::uint32_t> collects_started{0};
  std::atomic<std::uint32_t> collects_finished{0};
  std::atomic<std::size_t> writers_done{0};
  std::chrono::steady_clock::time_point deadline;
  std::atomic<std::uint64_t> content_mismatches{0};
  std::atomic<bool> failed{false};
  std::mutex error_lock;
  std::string first_error;  // under error_lock until the writers are joined

  void fail(const std::string& what) {
    std::lock_guard guard(error_lock);
    if (first_error.empty()) first_error = what;
    failed.store(true, std::memory_order_relaxed);
  }
};

class property_writer {
 public:
  property_writer(property_state& state, std::size_t index, std::uint64_t seed)
      : s_(state), index_(index), rng_(mix64(seed ^ (index + 1))), source_(kSourceFileBytes, mix64(seed + index)) {
    if (::pipe2(pipe_, O_CLOEXEC) != 0) s_.fail(errno_text("pipe2", errno));
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sock_) != 0) s_.fail(errno_text("socketpair", errno));
    if (source_.fd() < 0) s_.fail("cannot create the pread source file");
    records_.reserve(kMaxOpsPerWriter * 3 / 2);
  }
  ~property_writer() {
    for (int fd : {pipe_[0], pipe_[1], sock_[0], sock_[1]})
      if (fd >= 0) ::close(fd);
  }
  property_writer(const property_writer&) = delete;
  property_writer& operator=(const property_writer&) = delete;

  void run() {
    std::discrete_distribution<int> pick_op(std::begin(kOpWeights), std::end(kOpWeights));
    for (std::size_t n = 0; n < kMaxOpsPerWriter; ++n) {
      if ((n & 15) == 0 && std::chrono::steady_clock::now() >= s_.deadline) break;
      if (s_.failed.load(std::memory_order_relaxed)) break;
      auto op = static_cast<op_kind>(pick_op(rng_));
      one(op);
      ++counts_[op];
      // Now and then let the collector and the other writers run.
      if (rng_() % 64 == 0) std::this_thread::yield();
    }
    s_.writers_done.fetch_add(1, std::memory_order_seq_cst);
  }

  const std::vector<write_record>& records() const { return records_; }
  const std::array<std::size_t, op_count>& counts() const { return counts_; }

 private:
  std::uint32_t begin_write() { return s_.collects_finished.load(std::memory_order_seq_cst); }
  std::uint32_t end_write() {
    std::atomic_thread_fence(std::memory_order_seq_cst);  // the stores are visible before hi is read
    return s_.collects_started.load(std::memory_order_seq_cst);
  }
  void record(const char* p, std::size_t len, std::uint32_t lo, std::uint32_t hi, op_kind op) {
    auto first = static_cast<std::size_t>(p - s_.base) / kPage;
    auto last = static_cast<std::size_t>(p + len - 1 - s_.base) / kPage;
    records_.push_back({static_cast<std::uint32_t>(first), static_cast<std::uint32_t>(last), lo, hi,
                        static_cast<std::uint8_t>(op), static_cast<std::uint8_t>(index_)});
  }

  std::size_t below(std::size_t n) { return static_cast<std::size_t>(rng_() % n); }

  // Start of a random block owned by `owner`.
  char* block_of(std::size_t owner) {
    std::size_t blocks = s_.pages / kBlockPages;
    std::size_t count = (blocks - owner + kOwners - 1) / kOwners;
    return s_.base + (owner + below(count) * kOwners) * kBlockBytes;
  }

  // `len` bytes inside one own block; crossing a page boundary when asked
  // (and len >= 2).
  char* own_range(std::size_t len, bool cross) {
    char* block = block_of(index_);
    if (cross && len >= 2) {
      std::size_t boundary = (1 + below(kBlockPages - 1)) * kPage;  // an inner page boundary
      std::size_t before_min = len > kBlockBytes - boundary ? len - (kBlockBytes - boundary) : 1;
      std::size_t before_max = std::min(len - 1, boundary);
      std::size_t before = before_min + below(before_max - before_min + 1);
      return block + boundary - before;
    }
    return block + below(kBlockBytes - len + 1);
  }

  std::size_t kernel_len() { return rng_() % 2 == 0 ? 1 + below(64) : 1 + below(kMaxKernelWrite); }

  void fill_random(unsigned char* buf, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) buf[i] = static_cast<unsigned char>(rng_() >> 17);
  }

  void check(const char* p, const void* expected, std::size_t n, op_kind op) {
    if (std::memcmp(p, expected, n) != 0) {
      s_.content_mismatches.fetch_add(1, std::memory_order_relaxed);
      s_.fail(std::string("wrong bytes after ") + kOpNames[op]);
    }
  }

  // Two or three pieces of an own block (the first crossing a page
  // boundary), in different places, for the vectored calls.
  std::vector<iovec> own_pieces(std::size_t* total) {
    std::vector<iovec> parts;
    std::size_t count = 2 + below(2);
    *total = 0;
    for (std::size_t i = 0; i < count; ++i) {
      std::size_t len = 1 + below(i == 0 ? 6000 : 300);
      parts.push_back({own_range(len, i == 0), len});
      *total += len;
    }
    // The pieces must not overlap, or the content check would be wrong.
    std::sort(parts.begin(), parts.end(), [](const iovec& a, const iovec& b) { return a.iov_base < b.iov_base; });
    std::vector<iovec> disjoint;
    *total = 0;
    for (const auto& v : parts) {
      if (!disjoint.empty()) {
        const auto& prev = disjoint.back();
        if (static_cast<char*>(prev.iov_base) + prev.iov_len > static_cast<char*>(v.iov_base)) continue;
      }
      disjoint.push_back(v);
      *total += v.iov_len;
    }
    std::shuffle(disjoint.begin(), disjoint.end(), rng_);
    return disjoint;
  }

  void one(op_kind op) {
    unsigned char data[kMaxKernelWrite];
    switch (op) {
      case op_store_shared:
      case op_store_own: {
        char* p = block_of(op == op_store_shared ? kWriters : index_) + below(kBlockBytes);
        auto value = static_cast<char>(rng_());
        std::uint32_t lo = begin_write();
        // Writers race on the shared block on purpose (only which pages
        // are written matters): a relaxed atomic, the same plain store.
        __atomic_store_n(reinterpret_cast<volatile char*>(p), value, __ATOMIC_RELAXED);
        std::uint32_t hi = end_write();
        record(p, 1, lo, hi, op);
        return;
      }
      case op_memcpy_cross: {
        std::size_t len = 2 + below(511);
        char* p = own_range(len, true);
        fill_random(data, len);
        std::uint32_t lo = begin_write();
        std::memcpy(p, data, len);
        std::uint32_t hi = end_write();
        record(p, len, lo, hi, op);
        check(p, data, len, op);
        return;
      }
      case op_read_pipe:
      case op_recv_socket: {
        std::size_t len = kernel_len();
        char* p = own_range(len, rng_() % 2 == 0);
        fill_random(data, len);
        bool ok;
        std::uint32_t lo = begin_write();
        if (op == op_read_pipe)
          ok = write_all(pipe_[1], data, len) && read_all(pipe_[0], p, len);
        else
          ok = send_all(sock_[0], data, len) && recv_all(sock_[1], p, len);
        std::uint32_t hi = end_write();
        if (!ok) return s_.fail(errno_text(kOpNames[op], errno));
        record(p, len, lo, hi, op);
        check(p, data, len, op);
        return;
      }
      case op_pread_file: {
        std::size_t len = kernel_len();
        char* p = own_range(len, rng_() % 2 == 0);
        std::size_t offset = below(kSourceFileBytes - len + 1);
        std::uint32_t lo = begin_write();
        bool ok = pread_all(source_.fd(), p, len, static_cast<off_t>(offset));
        std::uint32_t hi = end_write();
        if (!ok) return s_.fail(errno_text(kOpNames[op], errno));
        record(p, len, lo, hi, op);
        check(p, source_.at(offset), len, op);
        return;
      }
      case op_readv_pipe:
      case op_recvmsg_socket:
      case op_preadv_file: {
        std::size_t total = 0;
        std::vector<iovec> parts = own_pieces(&total);
        std::size_t offset = 0;
        bool ok;
        std::uint32_t lo = begin_write();
        if (op == op_readv_pipe) {
          fill_random(data, total);
          ok = write_all(pipe_[1], data, total) && readv_all(pipe_[0], parts);
        } else if (op == op_recvmsg_socket) {
          fill_random(data, total);
          ok = send_all(sock_[0], data, total) && recvmsg_all(sock_[1], parts);
        } else {
          offset = below(kSourceFileBytes - total + 1);
          std::memcpy(data, source_.at(offset), total);
          ok = preadv_all(source_.fd(), parts, static_cast<off_t>(offset));
        }
        std::uint32_t hi = end_write();
        if (!ok) return s_.fail(errno_text(kOpNames[op], errno));
        std::size_t at = 0;
        for (const auto& v : parts) {
          auto* p = static_cast<char*>(v.iov_base);
          record(p, v.iov_len, lo, hi, op);
          check(p, data + at, v.iov_len, op);
          at += v.iov_len;
        }
        return;
      }
      case op_count:
        return;
    }
  }

  property_state& s_;
  std::size_t index_;
  std::mt19937_64 rng_;
  source_file source_;
  int pipe_[2] = {-1, -1};
  int sock_[2] = {-1, -1};
  std::vector<write_record> records_;
  std::array<std::size_t, op_count> counts_{};
};

using property_param = std::tuple<tracker_kind, backing>;

class TrackerProperty : public testing::TestWithParam<property_param> {};

TEST_P(TrackerProperty, ConcurrentWritesAreNeverMissed) {
  const auto [kind, back] = GetParam();
  auto probe = probe_tracker(kind);
  if (!probe.available) GTEST_SKIP() << label(kind) << " unavailable: " << probe.reason;

  const std::uint64_t seed = base_seed();
  const std::uint64_t run_seed =
      mix64(seed ^ (static_cast<std::uint64_t>(kind) << 8) ^ static_cast<std::uint64_t>(back));
  std::printf("[ seed     ] LARDER_TEST_SEED=%#llx (%s/%s run seed %#llx)\n", static_cast<unsigned long long>(seed),
              label(kind), label(back), static_cast<unsigned long long>(run_seed));
  RecordProperty("seed", std::to_string(seed));

  mapping m(back, kRegionBytes);
  ASSERT_TRUE(m.ok()) << m.error();
  // A mix of page states before tracking: never touched, read (zero page
  // or page cache mapped read-only), and written.
  for (std::size_t b = 0; b < m.pages() / kBlockPages; ++b) {
    int state = static_cast<int>((b / kOwners) % 3);
    for (std::size_t k = 0; k < kBlockPages; ++k) {
      char* page = m.page(b * kBlockPages + k);
      if (state == 1) (void)*reinterpret_cast<volatile char*>(page);
      if (state == 2) *reinterpret_cast<volatile char*>(page) = 1;
    }
  }

  std::unique_ptr<write_tracker> tracker;
  ASSERT_EQ(make_tracker(kind, &tracker), 0);
  ASSERT_EQ(tracker->track(m.addr(), m.size(), 1), 0);
  {
    std::vector<written_run> first;
    ASSERT_EQ(tracker->collect(&first), 0);
    EXPECT_TRUE(first.empty()) << "a collect right after track reported " << show(page_set(first, m.addr(), m.pages()));
  }

  property_state state;
  state.base = m.base();
  state.pages = m.pages();
  state.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(duration_ms());
  std::vector<std::unique_ptr<property_writer>> writers;
  for (std::size_t i = 0; i < kWriters; ++i) writers.push_back(std::make_unique<property_writer>(state, i, run_seed));
  ASSERT_TRUE(state.first_error.empty()) << state.first_error;

  std::vector<std::vector<written_run>> collects;  // collects[j - 1] is collect j
  int collect_error = 0;
  auto collect_once = [&] {
    std::uint32_t j = state.collects_started.fetch_add(1, std::memory_order_seq_cst) + 1;
    collects.emplace_back();
    int rc = tracker->collect(&collects.back());
    state.collects_finished.store(j, std::memory_order_seq_cst);
    if (rc != 0 && collect_error == 0) collect_error = rc;
  };

  auto started_at = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (auto& w : writers) threads.emplace_back([&w] { w->run(); });
  std::mt19937_64 rng(run_seed);
  while (state.writers_done.load(std::memory_order_seq_cst) < kWriters) {
    std::uint64_t pause = rng() % 2000;
    if (pause >= 200) std::this_thread::sleep_for(std::chrono::microseconds(pause - 200));
    collect_once();
  }
  for (auto& t : threads) t.join();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_at).count();
  collect_once();  // the final collect: every write's window ends here at the latest
  const std::uint32_t total_collects = state.collects_started.load();

  ASSERT_TRUE(state.first_error.empty()) << state.first_error;
  ASSERT_EQ(collect_error, 0) << std::strerror(collect_error);
  EXPECT_EQ(state.content_mismatches.load(), 0u);

  std::vector<written_run> quiet;
  ASSERT_EQ(tracker->collect(&quiet), 0);
  std::size_t quiet_pages = page_set(quiet, m.addr(), m.pages()).size();
  if (precise(kind)) {
    EXPECT_EQ(quiet_pages, 0u) << "a collect right after a quiescent collect reported "
                               << show(page_set(quiet, m.addr(), m.pages()));
  }

  // Which collects reported each page.
  std::vector<std::vector<std::uint32_t>> reported(m.pages());
  std::size_t outside = 0, malformed = 0, reported_total = 0;
  std::string malformed_report;
  for (std::uint32_t j = 1; j <= total_collects; ++j) {
    const auto& runs = collects[j - 1];
    if (!well_formed(runs) && ++malformed <= 3) malformed_report += describe_malformed(runs, m.addr(), j);
    for (std::size_t p : page_set(runs, m.addr(), m.pages(), &outside)) {
      reported[p].push_back(j);
      ++reported_total;
    }
  }
  EXPECT_EQ(malformed, 0u) << "collects whose runs were not ascending, aligned, non-empty and disjoint:\n"
                           << malformed_report;
  EXPECT_EQ(outside, 0u) << "pages reported outside the tracked range";

  // Misses: a page of a write not reported by any collect in its window.
  std::vector<std::vector<std::pair<std::uint32_t, std::uint32_t>>> windows(m.pages());
  std::size_t writes = 0, misses = 0;
  std::array<std::size_t, op_count> op_totals{};
  std::string miss_report;
  for (const auto& w : writers) {
    for (std::size_t o = 0; o < op_count; ++o) op_totals[o] += w->counts()[o];
    for (const write_record& r : w->records()) {
      ++writes;
      std::uint32_t first_ok = r.lo + 1, last_ok = r.hi + 1;
      for (std::uint32_t p = r.first_page; p <= r.last_page; ++p) {
        windows[p].push_back({first_ok, last_ok});
        const auto& in = reported[p];
        auto it = std::lower_bound(in.begin(), in.end(), first_ok);
        if (it != in.end() && *it <= last_ok) continue;
        if (++misses <= 10) {
          char line[256];
          std::snprintf(line, sizeof line,
                        "  MISS page %u (offset %#zx) by writer %u, %s of pages %u..%u, window collects %u..%u of %u\n",
                        p, static_cast<std::size_t>(p) * kPage, r.writer, kOpNames[r.op], r.first_page, r.last_page,
                        first_ok, last_ok, total_collects);
          miss_report += line;
        }
      }
    }
  }

  // False positives: a page reported by a collect that no write's window
  // for that page covers.
  std::size_t false_positives = 0;
  for (std::size_t p = 0; p < m.pages(); ++p) {
    auto& ws = windows[p];
    std::sort(ws.begin(), ws.end());
    std::vector<std::pair<std::uint32_t, std::uint32_t>> merged;
    for (auto w : ws) {
      if (!merged.empty() && w.first <= merged.back().second + 1)
        merged.back().second = std::max(merged.back().second, w.second);
      else
        merged.push_back(w);
    }
    for (std::uint32_t j : reported[p]) {
      auto it = std::upper_bound(merged.begin(), merged.end(), std::make_pair(j, UINT32_MAX));
      if (it == merged.begin() || std::prev(it)->second < j) ++false_positives;
    }
  }

  std::string ops;
  for (std::size_t o = 0; o < op_count; ++o)
    ops += std::string(o ? " " : "") + kOpNames[o] + "=" + std::to_string(op_totals[o]);
  std::printf(
      "[ tracker  ] %s/%s: %.2f s, %zu writes (%s), %u collects, %zu pages reported, "
      "%zu misses, %zu false positives, quiescent collect %zu pages\n",
      label(kind), label(back), seconds, writes, ops.c_str(), total_collects, reported_total, misses, false_positives,
      quiet_pages);
  std::fflush(stdout);
  RecordProperty("writes", std::to_string(writes));
  RecordProperty("collects", std::to_string(total_collects));
  RecordProperty("misses", std::to_string(misses));
  RecordProperty("false_positives", std::to_string(false_positives));

  EXPECT_EQ(misses, 0u) << "pages written but never reported in their window (seed " << seed << "):\n" << miss_report;
  tracker.reset();
}

INSTANTIATE_TEST_SUITE_P(Backends, TrackerProperty,
                         testing::Combine(testing::ValuesIn(kKinds), testing::ValuesIn(kBackings)),
                         [](const testing::TestParamInfo<property_param>& info) {
                           return std::string(label(std::get<0>(info.param))) + "_" + label(std::get<1>(info.param));
                         });

// ============================================================================
// Basic semantics
// ============================================================================

class TrackerBasic : public testing::TestWithParam<tracker_kind> {
 protected:
  void SetUp() override {
    auto probe = probe_tracker(GetParam());
    if (!probe.available) GTEST_SKIP() << label(GetParam()) << " unavailable: " << probe.reason;
    ASSERT_EQ(make_tracker(GetParam(), &tracker_), 0);
    ASSERT_EQ(tracker_->kind(), GetParam());
  }
  void TearDown() override { tracker_.reset(); }

  // A mapping that outlives the tracker.
  mapping& map(backing kind, std::size_t pages) {
    maps_.push_back(std::make_unique<mapping>(kind, pages * kPage));
    return *maps_.back();
  }
  bool is_precise() const { return precise(GetParam()); }

  std::vector<std::unique_ptr<mapping>> maps_;  // declared first: destroyed after the tracker
  std::unique_ptr<write_tracker> tracker_;
};

void poke(const mapping& m, std::size_t page, std::size_t offset = 0, char value = 1) {
  *reinterpret_cast<volatile char*>(m.page(page) + offset) = value;
}

TEST_P(TrackerBasic, TrackThenCollectIsEmpty) {
  mapping& m = map(backing::anon, 64);
  ASSERT_TRUE(m.ok()) << m.error();
  for (std::size_t i = 0; i < 32; ++i) poke(m, i);  // written before tracking: not reported
  ASSERT_EQ(tracker_->track(m.addr(), m.size(), 1), 0);
  int rc = -1;
  auto first = collect_pages(*tracker_, m, &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_TRUE(first.empty()) << show(first);
  auto second = collect_pages(*tracker_, m, &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_TRUE(second.empty()) << show(second);
}

TEST_P(TrackerBasic, ReportsWrittenPagesThenRearms) {
  mapping& m = map(backing::anon, 64);
  ASSERT_TRUE(m.ok()) << m.error();
  ASSERT_EQ(tracker_->track(m.addr(), m.size(), 1), 0);
  ASSERT_TRUE(collect_pages(*tracker_, m).empty());

  poke(m, 3);
  poke(m, 10, 4095);
  poke(m, 11, 17);
  // collect appends: what the vector held stays first.
  std::vector<written_run> runs{{0x1000, 1}};
  ASSERT_EQ(tracker_->collect(&runs), 0);
  ASSERT_FALSE(runs.empty());
  EXPECT_EQ(runs.front().start, 0x1000u);
  EXPECT_EQ(runs.front().pages, 1u);
  runs.erase(runs.begin());
  EXPECT_TRUE(well_formed(runs));
  auto pages = page_set(runs, m.addr(), m.pages());
  if (is_precise()) {
    EXPECT_EQ(pages, (std::set<std::size_t>{3, 10, 11}));
    // Adjacent pages come as one run.
    ASSERT_EQ(runs.size(), 2u);
    EXPECT_EQ(runs[1].start, reinterpret_cast<std::uintptr_t>(m.page(10)));
    EXPECT_EQ(runs[1].pages, 2u);
  } else {
    EXPECT_TRUE(contains(pages, {3, 10, 11})) << show(pages);
  }

  auto second = collect_pages(*tracker_, m);
  EXPECT_TRUE(second.empty()) << show(second);

  // Re-armed: the same pages are reported again when written again.
  poke(m, 3, 1, 2);
  poke(m, 63, 0, 2);
  auto third = collect_pages(*tracker_, m);
  if (is_precise())
    EXPECT_EQ(third, (std::set<std::size_t>{3, 63}));
  else
    EXPECT_TRUE(contains(third, {3, 63})) << show(third);
  EXPECT_TRUE(collect_pages(*tracker_, m).empty());
}

TEST_P(TrackerBasic, TrackingAgainKeepsWritesOfTheEpoch) {
  mapping& m = map(backing::anon, 128);
  ASSERT_TRUE(m.ok()) << m.error();
  ASSERT_EQ(tracker_->track(m.addr(), 64 * kPage, 1), 0);
  ASSERT_TRUE(collect_pages(*tracker_, m).empty());
  poke(m, 5);
  poke(m, 40);
  // The same range again, then an overlapping one that extends it.
  ASSERT_EQ(tracker_->track(m.addr(), 64 * kPage, 1), 0);
  ASSERT_EQ(tracker_->track(reinterpret_cast<std::uintptr_t>(m.page(32)), 96 * kPage, 1), 0);
  EXPECT_EQ(tracker_->tracked_bytes(), 128 * kPage);
  poke(m, 100);
  auto pages = collect_pages(*tracker_, m);
  if (is_precise())
    EXPECT_EQ(pages, (std::set<std::size_t>{5, 40, 100}));
  else
    EXPECT_TRUE(contains(pages, {5, 40, 100})) << show(pages);

  // Tracking again right after a write to the page, within one epoch, over
  // just that page.
  poke(m, 7);
  ASSERT_EQ(tracker_->track(reinterpret_cast<std::uintptr_t>(m.page(7)), kPage, 1), 0);
  pages = collect_pages(*tracker_, m);
  EXPECT_TRUE(contains(pages, {7})) << show(pages);
  EXPECT_TRUE(collect_pages(*tracker_, m).empty());
}

TEST_P(TrackerBasic, TrackedBytes) {
  mapping& a = map(backing::anon, 16);
  mapping& b = map(backing::shm, 8);
  ASSERT_TRUE(a.ok()) << a.error();
  ASSERT_TRUE(b.ok()) << b.error();
  EXPECT_EQ(tracker_->tracked_bytes(), 0u);
  ASSERT_EQ(tracker_->track(a.addr(), a.size(), 1), 0);
  EXPECT_EQ(tracker_->tracked_bytes(), 16 * kPage);
  ASSERT_EQ(tracker_->track(b.addr(), b.size(), 2), 0);
  EXPECT_EQ(tracker_->tracked_bytes(), 24 * kPage);
  ASSERT_EQ(tracker_->track(a.addr(), a.size(), 1), 0);  // again: not counted twice
  ASSERT_EQ(tracker_->track(reinterpret_cast<std::uintptr_t>(a.page(4)), 4 * kPage, 1), 0);
  EXPECT_EQ(tracker_->tracked_bytes(), 24 * kPage);
  poke(a, 1);
  poke(b, 2);
  std::vector<written_run> runs;
  ASSERT_EQ(tracker_->collect(&runs), 0);
  EXPECT_TRUE(contains(page_set(runs, a.addr(), a.pages()), {1}));
  EXPECT_TRUE(contains(page_set(runs, b.addr(), b.pages()), {2}));

  tracker_->untrack_all();
  EXPECT_EQ(tracker_->tracked_bytes(), 0u);
  // Writable and untracked after untrack_all.
  for (std::size_t i = 0; i < a.pages(); ++i) poke(a, i, 0, 3);
  for (std::size_t i = 0; i < b.pages(); ++i) poke(b, i, 0, 3);
  runs.clear();
  ASSERT_EQ(tracker_->collect(&runs), 0);
  EXPECT_TRUE(runs.empty());
}

// The tracker stays usable after untrack_all.
TEST_P(TrackerBasic, TrackAgainAfterUntrackAll) {
  mapping& a = map(backing::anon, 16);
  ASSERT_TRUE(a.ok()) << a.error();
  ASSERT_EQ(tracker_->track(a.addr(), a.size(), 1), 0);
  poke(a, 2);
  tracker_->untrack_all();
  ASSERT_EQ(tracker_->track(a.addr(), a.size(), 1), 0) << "track after untrack_all failed";
  EXPECT_EQ(tracker_->tracked_bytes(), 16 * kPage);
  EXPECT_TRUE(collect_pages(*tracker_, a).empty());
  poke(a, 9);
  auto pages = collect_pages(*tracker_, a);
  EXPECT_TRUE(contains(pages, {9})) << show(pages);
}

// A collect of more separate runs than the kernel's 512-entry PAGEMAP_SCAN
// buffer (1724 runs: 1024 fill the uffd backend's first ioctl, 700 the
// second), while another thread keeps writing pages that the scan has
// already passed: the runs stay ascending and disjoint, and nothing is missed.
TEST_P(TrackerBasic, RunsStayAscendingWhileWritesRace) {
  constexpr std::size_t kPages = 4096;
  constexpr std::size_t kRuns = 1724;  // every other page of [0, 2 * kRuns)
  constexpr std::size_t kRacedFrom = 2 * (1024 + 512);
  mapping& m = map(backing::anon, kPages);
  ASSERT_TRUE(m.ok()) << m.error();
  ASSERT_EQ(tracker_->track(m.addr(), m.size(), 1), 0);
  ASSERT_TRUE(collect_pages(*tracker_, m).empty());
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    std::mt19937_64 rng(mix64(base_seed()));
    // Even pages only, so the runs do not merge.
    while (!stop.load(std::memory_order_relaxed)) poke(m, kRacedFrom + 2 * (rng() % (kRuns - kRacedFrom / 2)), 2);
  });
  std::size_t malformed = 0, missed = 0;
  std::string report;
  // As many rounds as fit in about a second: whether the writer hits the
  // window depends on scheduling.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1200);
  int round = 0;
  for (; round < 2000 && (round < 20 || std::chrono::steady_clock::now() < deadline); ++round) {
    for (std::size_t p = 0; p < 2 * kRuns; p += 2) poke(m, p, 1, static_cast<char>(round));
    std::vector<written_run> runs;
    ASSERT_EQ(tracker_->collect(&runs), 0);
    if (!well_formed(runs) && ++malformed <= 3) report += describe_malformed(runs, m.addr(), round + 1);
    auto pages = page_set(runs, m.addr(), m.pages());
    for (std::size_t p = 0; p < 2 * kRuns; p += 2) missed += pages.count(p) == 0;
  }
  stop.store(true);
  writer.join();
  EXPECT_EQ(missed, 0u);
  std::printf("[ runs     ] %s: %d collects of %zu runs, %zu not ascending and disjoint\n", label(GetParam()), round,
              kRuns, malformed);
  EXPECT_EQ(malformed, 0u) << "collects whose runs were not ascending and disjoint:\n" << report;
}

// Each wrapped system call into its own pages, one crossing a page
// boundary: the bytes land and exactly those pages are reported.
TEST_P(TrackerBasic, KernelWritesLandAndAreReported) {
  for (backing back : kBackings) {
    SCOPED_TRACE(label(back));
    mapping& m = map(back, 64);
    ASSERT_TRUE(m.ok()) << m.error();
    ASSERT_EQ(tracker_->track(m.addr(), m.size(), 1), 0);
    ASSERT_TRUE(collect_pages(*tracker_, m).empty());

    int pipe_fds[2], sock[2];
    ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sock), 0);
    source_file src(kSourceFileBytes, 7);
    ASSERT_GE(src.fd(), 0);
    unsigned char data[3 * kPage];
    for (std::size_t i = 0; i < sizeof data; ++i) data[i] = static_cast<unsigned char>(i * 7 + 1);

    // read: pages 1-2 (crossing), 100 bytes either side of the boundary.
    char* p = m.page(2) - 100;
    ASSERT_TRUE(write_all(pipe_fds[1], data, 200));
    ASSERT_TRUE(read_all(pipe_fds[0], p, 200))
        << std::strerror(errno)
        << " (EFAULT: this binary does not call larder's read wrapper; see tests/port/CMakeLists.txt)";
    EXPECT_EQ(std::memcmp(p, data, 200), 0);
    // pread: pages 5-7, a whole page and then some on each side.
    p = m.page(6) - 10;
    ASSERT_TRUE(pread_all(src.fd(), p, kPage + 20, 123));
    EXPECT_EQ(std::memcmp(p, src.at(123), kPage + 20), 0);
    // recv: page 10.
    p = m.page(10) + 50;
    ASSERT_TRUE(send_all(sock[0], data, 500));
    ASSERT_TRUE(recv_all(sock[1], p, 500));
    EXPECT_EQ(std::memcmp(p, data, 500), 0);
    // readv: pages 20-21 and 30.
    std::vector<iovec> parts{{m.page(21) - 8, 16}, {m.page(30) + 8, 64}};
    ASSERT_TRUE(write_all(pipe_fds[1], data, 80));
    ASSERT_TRUE(readv_all(pipe_fds[0], parts));
    EXPECT_EQ(std::memcmp(m.page(21) - 8, data, 16), 0);
    EXPECT_EQ(std::memcmp(m.page(30) + 8, data + 16, 64), 0);
    // recvmsg: pages 40 and 41-42.
    parts = {{m.page(40), 32}, {m.page(42) - 1, 2}};
    ASSERT_TRUE(send_all(sock[0], data, 34));
    ASSERT_TRUE(recvmsg_all(sock[1], parts));
    EXPECT_EQ(std::memcmp(m.page(40), data, 32), 0);
    EXPECT_EQ(std::memcmp(m.page(42) - 1, data + 32, 2), 0);
    // preadv: page 50 and 60.
    parts = {{m.page(50) + 4050, 90}, {m.page(60), 10}};
    ASSERT_TRUE(preadv_all(src.fd(), parts, 1000));
    EXPECT_EQ(std::memcmp(m.page(50) + 4050, src.at(1000), 90), 0);
    EXPECT_EQ(std::memcmp(m.page(60), src.at(1090), 10), 0);

    auto pages = collect_pages(*tracker_, m);
    std::set<std::size_t> expected{1, 2, 5, 6, 7, 10, 20, 21, 30, 40, 41, 42, 50, 51, 60};
    if (is_precise())
      EXPECT_EQ(pages, expected);
    else
      EXPECT_TRUE(std::includes(pages.begin(), pages.end(), expected.begin(), expected.end())) << show(pages);
    EXPECT_TRUE(collect_pages(*tracker_, m).empty());
    for (int fd : {pipe_fds[0], pipe_fds[1], sock[0], sock[1]}) ::close(fd);
  }
}

// ---- the first-write callback (synchronous backends) ---------------------

constexpr std::size_t kCallbackPages = 8;  // written by stores; page kCallbackPages by read(2)
constexpr std::size_t kCallbackWriters = 4;

struct callback_probe {
  std::uintptr_t base = 0;
  std::atomic<int> calls[kCallbackPages + 1] = {};
  std::atomic<int> outside{0};
  std::atomic<int> landed_early{0};
  std::atomic<int> collector_calls{0};
  // The bytes each page must still hold at offsets 8 * t when its callback runs.
  unsigned char old_bytes[kCallbackPages + 1][kCallbackWriters] = {};
};

unsigned char epoch_byte(int epoch, std::size_t writer, std::size_t page) {
  return static_cast<unsigned char>(0x10 + epoch * 0x40 + writer * 8 + page);
}

// The callback reads bytes that other writers are about to store. The
// page protection orders them (a store waits in its fault until the
// callback has run and the page is writable), but ThreadSanitizer does not
// see mprotect as synchronization, so both sides are relaxed atomics: the
// same plain moves, and no reported race.
void on_first_write(void* context, std::uintptr_t page) {
  auto* probe = static_cast<callback_probe*>(context);
  if (page < probe->base || page >= probe->base + (kCallbackPages + 1) * kPage || page % kPage != 0) {
    probe->outside.fetch_add(1);
    return;
  }
  std::size_t i = (page - probe->base) / kPage;
  auto* bytes = reinterpret_cast<const volatile unsigned char*>(page);
  for (std::size_t t = 0; t < kCallbackWriters; ++t)
    if (__atomic_load_n(&bytes[8 * t], __ATOMIC_RELAXED) != probe->old_bytes[i][t]) probe->landed_early.fetch_add(1);
  probe->calls[i].fetch_add(1);
}

TEST_P(TrackerBasic, FirstWriteCallbackOncePerPagePerEpochBeforeTheWrite) {
  if (!tracker_->synchronous())
    GTEST_SKIP() << label(GetParam()) << " has no first-write callback (not a synchronous backend)";
  mapping& m = map(backing::anon, kCallbackPages + 1);
  ASSERT_TRUE(m.ok()) << m.error();
  callback_probe probe;
  probe.base = m.addr();
  for (std::size_t i = 0; i <= kCallbackPages; ++i)
    for (std::size_t t = 0; t < kCallbackWriters; ++t) {
      m.page(i)[8 * t] = 0x5a;
      probe.old_bytes[i][t] = 0x5a;
    }
  tracker_->set_first_write(on_first_write, &probe);
  ASSERT_EQ(tracker_->track(m.addr(), m.size(), 1), 0);
  ASSERT_TRUE(collect_pages(*tracker_, m).empty());
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);

  for (int epoch = 0; epoch < 4; ++epoch) {
    SCOPED_TRACE("epoch " + std::to_string(epoch));
    std::barrier start(static_cast<std::ptrdiff_t>(kCallbackWriters));
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < kCallbackWriters; ++t) {
      threads.emplace_back([&, t] {
        std::vector<std::size_t> order(kCallbackPages);
        for (std::size_t i = 0; i < kCallbackPages; ++i) order[i] = i;
        std::shuffle(order.begin(), order.end(), std::mt19937(static_cast<unsigned>(epoch * 31 + t)));
        start.arrive_and_wait();  // all threads at the same pages at once
        for (std::size_t i : order)
          for (int repeat = 0; repeat < 3; ++repeat)
            __atomic_store_n(reinterpret_cast<volatile unsigned char*>(m.page(i) + 8 * t), epoch_byte(epoch, t, i),
                             __ATOMIC_RELAXED);  // see on_first_write
      });
    }
    // Meanwhile a kernel write into the last page.
    unsigned char incoming[8 * kCallbackWriters];
    for (std::size_t t = 0; t < kCallbackWriters; ++t)
      for (std::size_t k = 0; k < 8; ++k) incoming[8 * t + k] = epoch_byte(epoch, t, kCallbackPages);
    bool piped = write_all(pipe_fds[1], incoming, sizeof incoming) &&
                 read_all(pipe_fds[0], m.page(kCallbackPages), sizeof incoming);
    for (auto& th : threads) th.join();
    EXPECT_TRUE(piped) << std::strerror(errno);
    EXPECT_EQ(std::memcmp(m.page(kCallbackPages), incoming, sizeof incoming), 0);

    for (std::size_t i = 0; i <= kCallbackPages; ++i) EXPECT_EQ(probe.calls[i].load(), 1) << "page " << i;
    EXPECT_EQ(probe.outside.load(), 0);
    EXPECT_EQ(probe.landed_early.load(), 0) << "a callback saw its page already written";
    std::set<std::size_t> all;
    for (std::size_t i = 0; i <= kCallbackPages; ++i) all.insert(i);
    EXPECT_EQ(collect_pages(*tracker_, m), all);
    // Next epoch: the old bytes are this epoch's.
    for (std::size_t i = 0; i <= kCallbackPages; ++i) {
      probe.calls[i].store(0);
      for (std::size_t t = 0; t < kCallbackWriters; ++t) probe.old_bytes[i][t] = epoch_byte(epoch, t, i);
    }
  }
  // No writes: no callbacks, nothing reported.
  EXPECT_TRUE(collect_pages(*tracker_, m).empty());
  for (std::size_t i = 0; i <= kCallbackPages; ++i) EXPECT_EQ(probe.calls[i].load(), 0);
  tracker_->set_first_write(nullptr, nullptr);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
}

// ---- many threads, exact ----------------------------------------------------

TEST_P(TrackerBasic, ManyThreadsDisjointPagesExact) {
  constexpr std::size_t kThreads = 8;
  constexpr std::size_t kPagesPerThread = 96;
  constexpr int kEpochs = 12;
  mapping& m = map(backing::anon, kThreads * kPagesPerThread);
  ASSERT_TRUE(m.ok()) << m.error();
  ASSERT_EQ(tracker_->track(m.addr(), m.size(), 1), 0);
  ASSERT_TRUE(collect_pages(*tracker_, m).empty());

  std::barrier sync(static_cast<std::ptrdiff_t>(kThreads + 1));
  std::vector<std::vector<std::size_t>> written(kThreads);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(mix64(base_seed() + t));
      int pipe_fds[2];
      if (::pipe2(pipe_fds, O_CLOEXEC) != 0) failures.fetch_add(1);
      for (int epoch = 0; epoch < kEpochs; ++epoch) {
        sync.arrive_and_wait();  // start of the epoch
        written[t].clear();
        // Page i belongs to thread i % kThreads: neighbours are other threads'.
        for (std::size_t k = 0; k < kPagesPerThread; ++k) {
          if (rng() % 4 != 0) continue;
          std::size_t page = k * kThreads + t;
          written[t].push_back(page);
          char* p = m.page(page) + rng() % (kPage - 64);
          switch (rng() % 4) {
            case 0:
            case 1:
              *reinterpret_cast<volatile char*>(p) = static_cast<char>(epoch);
              break;
            case 2:
              std::memset(p, epoch, 64);
              break;
            case 3: {
              char data[64];
              std::memset(data, epoch + 1, sizeof data);
              if (!write_all(pipe_fds[1], data, sizeof data) || !read_all(pipe_fds[0], p, sizeof data) ||
                  std::memcmp(p, data, sizeof data) != 0)
                failures.fetch_add(1);
              break;
            }
          }
        }
        sync.arrive_and_wait();  // written; the main thread collects
      }
      ::close(pipe_fds[0]);
      ::close(pipe_fds[1]);
    });
  }
  for (int epoch = 0; epoch < kEpochs; ++epoch) {
    sync.arrive_and_wait();
    sync.arrive_and_wait();
    std::set<std::size_t> expected;
    for (const auto& w : written) expected.insert(w.begin(), w.end());
    int rc = -1;
    bool ok_form = false;
    auto pages = collect_pages(*tracker_, m, &rc, &ok_form);
    EXPECT_EQ(rc, 0);
    EXPECT_TRUE(ok_form);
    std::set<std::size_t> missed;
    std::set_difference(expected.begin(), expected.end(), pages.begin(), pages.end(),
                        std::inserter(missed, missed.end()));
    EXPECT_TRUE(missed.empty()) << "epoch " << epoch << " missed " << show(missed);
    if (is_precise()) {
      EXPECT_EQ(pages, expected) << "epoch " << epoch;
    }
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_TRUE(collect_pages(*tracker_, m).empty());
}

INSTANTIATE_TEST_SUITE_P(Backends, TrackerBasic, testing::ValuesIn(kKinds),
                         [](const testing::TestParamInfo<tracker_kind>& info) { return label(info.param); });

// ============================================================================
// SIGSEGVs that are not the tracker's, in a fresh process
// ============================================================================

constexpr const char* kChildEnv = "LARDER_TRACKER_TEST_CHILD";

// Runs this binary again with only TrackerChild.Entry and `mode` in the
// environment; returns its wait status, or -1.
int run_child(const std::string& mode) {
  std::vector<std::string> env;
  std::string prefix = std::string(kChildEnv) + "=";
  for (char** e = environ; *e != nullptr; ++e)
    if (std::strncmp(*e, prefix.c_str(), prefix.size()) != 0) env.emplace_back(*e);
  env.push_back(prefix + mode);
  std::vector<char*> envp;
  for (auto& s : env) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string exe = "/proc/self/exe", filter = "--gtest_filter=TrackerChild.Entry";
  char* argv[] = {exe.data(), filter.data(), nullptr};
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid;
  if (::posix_spawn(&pid, exe.c_str(), nullptr, nullptr, argv, envp.data()) != 0) return -1;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return status;
}

std::string describe_status(int status) {
  if (status == -1) return "could not run the child";
  if (WIFEXITED(status)) return "exited with " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by signal ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

class TrackerSignals : public testing::TestWithParam<tracker_kind> {
 protected:
  void SetUp() override {
    auto probe = probe_tracker(GetParam());
    if (!probe.available) GTEST_SKIP() << label(GetParam()) << " unavailable: " << probe.reason;
  }
};

TEST_P(TrackerSignals, ForeignFaultReachesPreviousHandler) {
  int status = run_child(std::string("previous:") + label(GetParam()));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << describe_status(status);
}

TEST_P(TrackerSignals, ForeignWriteFaultWithoutHandlerKills) {
  int status = run_child(std::string("default-accerr:") + label(GetParam()));
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV) << describe_status(status);
}

TEST_P(TrackerSignals, ForeignUnmappedFaultWithoutHandlerKills) {
  int status = run_child(std::string("default-maperr:") + label(GetParam()));
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV) << describe_status(status);
}

INSTANTIATE_TEST_SUITE_P(Backends, TrackerSignals, testing::ValuesIn(kKinds),
                         [](const testing::TestParamInfo<tracker_kind>& info) { return label(info.param); });

// ---- the child side ---------------------------------------------------------

sigjmp_buf g_jump;
volatile sig_atomic_t g_previous_calls = 0;
void* volatile g_previous_addr = nullptr;

void previous_handler(int, siginfo_t* info, void*) {
  g_previous_calls = g_previous_calls + 1;
  g_previous_addr = info->si_addr;
  siglongjmp(g_jump, 1);
}

// True when a write to `addr` faulted and the previous handler jumped back.
__attribute__((noinline)) bool write_reaches_previous(void* addr) {
  if (sigsetjmp(g_jump, 1) != 0) return true;
  *static_cast<volatile char*>(addr) = 1;
  return false;
}

int child_fail(int code, const char* what) {
  std::fprintf(stderr, "tracker child: %s\n", what);
  return code;
}

// Tracks 16 anonymous pages and checks a write to page `page` is reported.
int child_tracked_write(write_tracker& tracker, const mapping& m, std::size_t page) {
  poke(m, page, 0, 9);
  std::vector<written_run> runs;
  if (tracker.collect(&runs) != 0) return child_fail(20, "collect failed");
  if (page_set(runs, m.addr(), m.pages()).count(page) == 0) return child_fail(21, "tracked write not reported");
  return 0;
}

int child_main(const std::string& mode) {
  auto colon = mode.find(':');
  if (colon == std::string::npos) return child_fail(2, "bad mode");
  std::string what = mode.substr(0, colon), backend = mode.substr(colon + 1);
  tracker_kind kind{};
  bool found = false;
  for (tracker_kind k : kKinds)
    if (backend == label(k)) kind = k, found = true;
  if (!found) return child_fail(2, "bad backend");

  if (what == "previous") {
    struct sigaction action {};
    action.sa_sigaction = previous_handler;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    if (::sigaction(SIGSEGV, &action, nullptr) != 0) return child_fail(3, "sigaction");
  } else {
    struct sigaction action {};
    action.sa_handler = SIG_DFL;
    sigemptyset(&action.sa_mask);
    if (::sigaction(SIGSEGV, &action, nullptr) != 0) return child_fail(3, "sigaction");
    rlimit none{0, 0};
    ::setrlimit(RLIMIT_CORE, &none);  // no core file for the expected crash
  }

  std::unique_ptr<write_tracker> tracker;
  if (make_tracker(kind, &tracker) != 0) return child_fail(4, "make_tracker");
  mapping m(backing::anon, 16 * kPage);
  if (!m.ok()) return child_fail(5, "mmap");
  if (tracker->track(m.addr(), m.size(), 1) != 0) return child_fail(6, "track");
  if (int e = child_tracked_write(*tracker, m, 0)) return e;
  if (g_previous_calls != 0) return child_fail(7, "a tracked write reached the previous handler");

  void* readonly = ::mmap(nullptr, kPage, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  void* unmapped = ::mmap(nullptr, kPage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (readonly == MAP_FAILED || unmapped == MAP_FAILED) return child_fail(5, "mmap");
  ::munmap(unmapped, kPage);

  if (what == "default-accerr") {
    *static_cast<volatile char*>(readonly) = 1;
    return child_fail(30, "survived a write to a read-only page");
  }
  if (what == "default-maperr") {
    *static_cast<volatile char*>(unmapped) = 1;
    return child_fail(31, "survived a write to an unmapped page");
  }
  if (what != "previous") return child_fail(2, "bad mode");

  if (!write_reaches_previous(readonly)) return child_fail(40, "a write to a read-only page did not fault");
  if (g_previous_calls != 1 || g_previous_addr != readonly)
    return child_fail(41, "the previous handler did not see the read-only page fault");
  if (!write_reaches_previous(unmapped)) return child_fail(42, "a write to an unmapped page did not fault");
  if (g_previous_calls != 2 || g_previous_addr != unmapped)
    return child_fail(43, "the previous handler did not see the unmapped page fault");
  // The tracker still works, and its faults still do not reach the handler.
  if (int e = child_tracked_write(*tracker, m, 5)) return e;
  if (g_previous_calls != 2) return child_fail(44, "a tracked write reached the previous handler");
  tracker.reset();
  return 0;
}

TEST(TrackerChild, Entry) {
  const char* mode = std::getenv(kChildEnv);
  if (mode == nullptr) return;  // only does something when started by TrackerSignals
  int code = child_main(mode);
  std::fflush(stdout);
  std::fflush(stderr);
  ::_exit(code);
}

}  // namespace
