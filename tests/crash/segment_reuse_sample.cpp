// A crash-test program for segment reuse: a transaction frees whole
// segments of blocks, and the next one logs enough to grow the undo log,
// which may take those segments. Every crash point must leave a heap that
// opens, holds the acknowledged steps, and checks clean.
#include <larder/crashtest.hpp>
#include <larder/larder.hpp>
#include <larder/transaction.hpp>

#include <cstdio>
#include <cstring>

namespace {

namespace ct = larder::crashtest;

constexpr std::size_t kBigBytes = std::size_t{9} << 20;
constexpr std::size_t kLogged = std::size_t{8} << 20;
constexpr int kBlocks = 400;

struct state {
  std::uint64_t steps;
  unsigned char* big;
  void* blocks[kBlocks];
};

larder::heap_options options(larder::open_mode mode) {
  larder::heap_options o;
  o.name = ct::heap_path();
  o.mode = mode;
  o.reserve = std::size_t{1} << 30;
  return o;
}

int run() {
  larder::heap h(options(larder::open_mode::open_or_create));
  auto* s = h.root<state>("state", state{});
  auto step = [&](auto&& body) {
    {
      larder::transaction tx(h);
      tx.snapshot(s);
      body(tx);
      ++s->steps;
    }
    ct::acknowledge(s->steps);
  };
  step([&](larder::transaction& tx) {
    s->big = static_cast<unsigned char*>(tx.allocate(kBigBytes));
    std::memset(s->big, 1, kBigBytes);
  });
  step([&](larder::transaction& tx) {
    for (void*& b : s->blocks) b = tx.allocate(30000);
  });
  step([&](larder::transaction& tx) {
    for (void*& b : s->blocks) {
      tx.free(b);
      b = nullptr;
    }
  });
  step([&](larder::transaction& tx) {
    tx.snapshot(s->big, kLogged);
    std::memset(s->big, 2, kLogged);
  });
  larder::throw_if_error(h.close());
  return 0;
}

int check() {
  std::uint64_t acknowledged = ct::acknowledged();
  larder::heap h;
  larder::status opened = larder::heap::open(options(larder::open_mode::open), &h);
  if (!opened.ok()) {
    if (acknowledged == 0 && opened.is(larder::errc::not_found)) return 0;
    std::fprintf(stderr, "open after %llu acknowledged steps: %s\n", static_cast<unsigned long long>(acknowledged),
                 opened.to_string().c_str());
    return 1;
  }
  auto* s = static_cast<state*>(h.find_root("state"));
  std::uint64_t steps = s != nullptr ? s->steps : 0;
  if (steps < acknowledged || steps > acknowledged + 1) {
    std::fprintf(stderr, "the heap holds %llu steps, %llu were acknowledged\n", static_cast<unsigned long long>(steps),
                 static_cast<unsigned long long>(acknowledged));
    return 1;
  }
  if (steps >= 1) {
    unsigned char want = steps >= 4 ? 2 : 1;
    for (std::size_t at = 0; at < kLogged; at += 4096) {
      if (s->big[at] != want) {
        std::fprintf(stderr, "byte %zu of the big block is %u after %llu steps\n", at, s->big[at],
                     static_cast<unsigned long long>(steps));
        return 1;
      }
    }
  }
  return h.close().ok() ? 0 : 1;
}

}  // namespace

int main() {
  try {
    switch (ct::current_phase()) {
      case ct::phase::run: return run();
      case ct::phase::check: return check();
      case ct::phase::none: break;
    }
  } catch (const larder::error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "a crash-test program: run it with larder crashtest -- %s\n", "segment_reuse_sample");
  return 2;
}
