// Several processes on one chunk store: two writers at once, and a writer
// killed (SIGKILL) at random instants while it commits versions in a loop.
// After every kill the store opens, verifies clean, and every version the
// writer reported committed reads back.
#include "chunk_test_util.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>


namespace larder::chunks::test {
namespace {

// The pages of version `n` of writer `w`: some shared by every writer and
// version, some shared by the writer's versions, the rest its own.
std::vector<char> version_pages(int w, int n) {
  std::vector<char> pages(16 * kPage);
  for (int i = 0; i < 16; ++i) {
    std::mt19937_64 r(i < 4 ? 1000 + i : i < 8 ? 100000 * w + i : 1000000 * w + 1000 * n + i);
    random_page(r, pages.data() + static_cast<std::size_t>(i) * kPage);
  }
  return pages;
}

// Commits versions in a loop and writes each id to `fd` once it is durable.
[[noreturn]] void writer(const std::string& dir, int w, int versions, int fd) {
  std::unique_ptr<chunk_store> s;
  store_options o;
  o.pack_target_bytes = 64 << 10;
  if (!chunk_store::open(dir, o, &s).ok()) ::_exit(2);
  for (int n = 0; n < versions; ++n) {
    std::vector<char> pages = version_pages(w, n);
    std::vector<fingerprint> names(16);
    if (!s->put(pages.data(), 16, names.data()).ok()) ::_exit(3);
    version_record v;
    v.heap_uuid[0] = static_cast<std::uint8_t>(w);
    v.heap_size = pages.size();
    v.message = std::to_string(w) + " " + std::to_string(n);
    for (std::size_t i = 0; i < 16; ++i) v.pages.push_back(page_entry{i, names[i]});
    version_id id;
    if (!s->commit(v, &id).ok()) ::_exit(4);
    char line[64];
    std::snprintf(line, sizeof line, "%s %d %d\n", id.hex().c_str(), w, n);
    if (::write(fd, line, std::strlen(line)) < 0) ::_exit(5);
  }
  ::_exit(0);
}

struct committed {
  version_id id;
  int w, n;
};

std::vector<committed> parse_reports(const std::string& text) {
  std::vector<committed> out;
  std::size_t at = 0;
  while (true) {
    std::size_t end = text.find('\n', at);
    if (end == std::string::npos) break;  // a line cut by the kill was never complete
    char hex[33];
    committed c;
    if (std::sscanf(text.c_str() + at, "%32s %d %d", hex, &c.w, &c.n) == 3 && fingerprint::parse(hex, &c.id)) {
      out.push_back(c);
    }
    at = end + 1;
  }
  return out;
}

std::string drain(int fd) {
  std::string text;
  char buffer[4096];
  ssize_t n;
  while ((n = ::read(fd, buffer, sizeof buffer)) > 0) text.append(buffer, static_cast<std::size_t>(n));
  return text;
}

void expect_all_read_back(chunk_store& s, const std::vector<committed>& done) {
  for (const committed& c : done) {
    ASSERT_EQ(read_back(s, c.id), version_pages(c.w, c.n)) << c.w << " " << c.n;
  }
}

TEST(ChunkProcesses, TwoWritersAtOnce) {
  scratch_dir dir;
  open_store(dir.path());
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t children[2];
  for (int w = 0; w < 2; ++w) {
    children[w] = ::fork();
    if (children[w] == 0) {
      ::close(fds[0]);
      writer(dir.path(), w + 1, 40, fds[1]);
    }
  }
  ::close(fds[1]);
  std::string text = drain(fds[0]);
  ::close(fds[0]);
  for (pid_t child : children) {
    int st = 0;
    ASSERT_EQ(::waitpid(child, &st, 0), child);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  }
  std::vector<committed> done = parse_reports(text);
  ASSERT_EQ(done.size(), 80u);
  auto s = open_store(dir.path());
  expect_all_read_back(*s, done);
  verify_report v;
  ASSERT_TRUE(s->verify(&v).ok());
  EXPECT_TRUE(v.clean());
  std::vector<version_summary> list;
  ASSERT_TRUE(s->list_versions(&list).ok());
  EXPECT_EQ(list.size(), 80u);
}

TEST(ChunkProcesses, WriterKilledAtRandomInstants) {
  scratch_dir dir;
  open_store(dir.path());
  std::mt19937_64 r(2024);
  std::vector<committed> done;
  constexpr int kKills = 120;
  int killed = 0;
  for (int round = 0; round < kKills; ++round) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    pid_t child = ::fork();
    if (child == 0) {
      ::close(fds[0]);
      writer(dir.path(), 1 + round % 3, 1000, fds[1]);
    }
    ::close(fds[1]);
    ::usleep(static_cast<useconds_t>(r() % 15000));
    ::kill(child, SIGKILL);
    int st = 0;
    ASSERT_EQ(::waitpid(child, &st, 0), child);
    killed += WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
    std::string text = drain(fds[0]);
    ::close(fds[0]);
    for (const committed& c : parse_reports(text)) done.push_back(c);
    if (round % 10 == 9 || round == kKills - 1) {
      auto s = open_store(dir.path());
      verify_report v;
      ASSERT_TRUE(s->verify(&v).ok());
      ASSERT_TRUE(v.clean()) << v.problems.front().file << ": " << v.problems.front().what;
      expect_all_read_back(*s, done);
      if (round % 30 == 29) {
        gc_report g;
        ASSERT_TRUE(s->gc(&g).ok());
        expect_all_read_back(*s, done);
      }
    }
  }
  EXPECT_GE(killed, 100);
  EXPECT_GT(done.size(), 0u);
}

}  // namespace
}  // namespace larder::chunks::test
