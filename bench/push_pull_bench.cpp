// larder_push_pull_bench: push and pull of a heap's versions (larder::
// push_versions, pull_versions) to a directory remote or a Ceph pool, and
// what a version with 1 % of its pages changed costs to send.
//
//   larder_push_pull_bench [--size BYTES] [--changed FRACTION] [--remote REMOTE]
//                          [--dir DIR] [--workloads=a,b,c]
//
// A file heap in DIR (default: a fresh directory under /tmp, removed at
// the end) is filled with --size bytes (default 256 MiB) of pages zstd
// cannot shrink, in 4 MiB blocks, and checkpointed; then --changed (default
// 0.01) of its pages get a new word each and it is checkpointed again.
// REMOTE (default DIR/remote, a directory) may be rados:POOL[@CONF], which
// must hold no store yet. Workloads, in this order (each needs those before
// it, which run anyway):
//   push_first  push of the first version: every page
//   push_1pct   push of the second: the pages that differ from the first
//   pull_first  pull of the first version into an empty store
//   pull_1pct   pull of the second into that store
// One line each: workload, versions, chunks asked and sent, chunk bytes
// sent, manifest bytes, the bytes of the pages that differ from what the
// destination held (the whole version for a first transfer), sent/changed,
// ms, MB/s of chunk bytes.
#include <larder/larder.hpp>
#include <larder/versions.hpp>

#include "bench_common.hpp"
#include "bench_setup.hpp"

#include <sys/utsname.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

namespace {

constexpr std::size_t kPage = 4096;
constexpr std::size_t kBlockBytes = std::size_t{4} << 20;

struct block_table {
  std::uint64_t* blocks[4096];  // up to 16 GiB
};

struct options {
  std::size_t size = std::size_t{256} << 20;
  double changed = 0.01;
  std::string remote, dir;
  std::set<std::string> workloads;
};

bool parse(int argc, char** argv, options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* flag) -> const char* {
      return a == flag && i + 1 < argc ? argv[++i] : nullptr;
    };
    if (const char* v = value("--size")) {
      o->size = std::strtoull(v, nullptr, 10);
    } else if (const char* v = value("--changed")) {
      o->changed = std::strtod(v, nullptr);
    } else if (const char* v = value("--remote")) {
      o->remote = v;
    } else if (const char* v = value("--dir")) {
      o->dir = v;
    } else if (a.starts_with("--workloads=")) {
      larder_bench::add_workloads(a.substr(12), &o->workloads);
    } else {
      return false;
    }
  }
  return o->size >= kBlockBytes && o->size / kBlockBytes <= std::size(block_table{}.blocks) && o->changed > 0 &&
         o->changed <= 1;
}

void print_header(const options& o) {
  utsname u{};
  ::uname(&u);
  const std::string cpu = larder_bench::cpu_model();
  std::printf("# larder_push_pull_bench: cpu %s; kernel %s %s; heap %zu MiB, %.2f %% of pages changed; remote %s\n",
              cpu.c_str(), u.sysname, u.release, o.size >> 20, o.changed * 100, o.remote.c_str());
  std::printf("%-12s %8s %10s %10s %14s %12s %14s %8s %10s %10s\n", "workload", "versions", "asked", "sent",
              "chunk_bytes", "manifest", "changed_bytes", "ratio", "ms", "MB/s");
}

void report(const options& o, const char* name, const larder::transfer_stats& st, std::uint64_t changed) {
  if (!o.workloads.empty() && !o.workloads.contains(name)) return;
  const double ms = static_cast<double>(st.total_ns) / 1e6;
  std::printf("%-12s %8zu %10llu %10llu %14llu %12llu %14llu %8.3f %10.1f %10.1f\n", name, st.versions_sent,
              static_cast<unsigned long long>(st.chunks_asked), static_cast<unsigned long long>(st.chunks_sent),
              static_cast<unsigned long long>(st.chunk_bytes_sent),
              static_cast<unsigned long long>(st.version_bytes_sent), static_cast<unsigned long long>(changed),
              static_cast<double>(st.chunk_bytes_sent + st.version_bytes_sent) / static_cast<double>(changed), ms,
              static_cast<double>(st.chunk_bytes_sent) / 1e6 / (ms / 1e3));
  std::fflush(stdout);
}

int fail(const larder::status& s) {
  std::fprintf(stderr, "larder_push_pull_bench: %s\n", s.to_string().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  if (!parse(argc, argv, &o)) {
    std::fprintf(stderr,
                 "usage: larder_push_pull_bench [--size BYTES] [--changed FRACTION] [--remote REMOTE] [--dir DIR] "
                 "[--workloads=push_first,push_1pct,pull_first,pull_1pct]\n");
    return 64;
  }
  const bool own_dir = o.dir.empty();
  if (own_dir) {
    o.dir = larder_bench::make_scratch_dir("larder-pushpull");
    if (o.dir.empty()) return 1;
  }
  if (o.remote.empty()) o.remote = o.dir + "/remote";
  print_header(o);
  const std::string heap_path = o.dir + "/heap", store = heap_path + ".versions", there = o.dir + "/there";
  const std::size_t blocks = o.size / kBlockBytes, pages = blocks * kBlockBytes / kPage;
  std::string first, second;
  {
    larder::heap_options ho;
    ho.name = heap_path;
    ho.reserve = o.size * 2 + (std::size_t{64} << 20);
    larder::heap h(ho);
    auto* table = h.root<block_table>("blocks");
    for (std::size_t b = 0; b < blocks; ++b) {
      auto* words = static_cast<std::uint64_t*>(h.allocate(kBlockBytes));
      if (words == nullptr) return fail(larder::status(larder::errc::out_of_space, "filling the heap"));
      for (std::size_t i = 0; i < kBlockBytes / 8; ++i) words[i] = larder_bench::mix64(b * kBlockBytes + i);
      table->blocks[b] = words;
    }
    first = larder::checkpoint(h, "filled").id;
    const auto changed_pages = static_cast<std::size_t>(static_cast<double>(pages) * o.changed);
    for (std::size_t p = 0; p < changed_pages; ++p) {
      const std::size_t page = larder_bench::mix64(p) % pages;
      table->blocks[page / (kBlockBytes / kPage)][page % (kBlockBytes / kPage) * (kPage / 8)] = larder_bench::mix64(~p);
    }
    second = larder::checkpoint(h, "changed").id;
    if (larder::status s = h.close(); !s.ok()) return fail(s);
  }
  larder::version_store history;
  larder::version_diff d;
  if (larder::status s = larder::version_store::open(store, &history); !s.ok()) return fail(s);
  if (larder::status s = history.diff(first, second, &d); !s.ok()) return fail(s);
  std::vector<larder::version_info> log;
  if (larder::status s = history.log(false, &log); !s.ok()) return fail(s);
  const std::uint64_t whole = log.back().pages * kPage;

  larder::transfer_stats st;
  if (larder::status s = larder::push_versions(store, o.remote, first, {}, &st); !s.ok()) return fail(s);
  report(o, "push_first", st, whole);
  if (larder::status s = larder::push_versions(store, o.remote, second, {}, &st); !s.ok()) return fail(s);
  report(o, "push_1pct", st, d.bytes);
  if (larder::status s = larder::pull_versions(o.remote, there, first, {}, &st); !s.ok()) return fail(s);
  report(o, "pull_first", st, whole);
  if (larder::status s = larder::pull_versions(o.remote, there, second, {}, &st); !s.ok()) return fail(s);
  report(o, "pull_1pct", st, d.bytes);
  if (own_dir) std::filesystem::remove_all(o.dir);
  return 0;
}
