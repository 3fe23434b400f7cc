// larder_demo: a persistent word index that outlives the process.
//
// Run with a heap path (default /tmp/larder-demo.heap). A child process
// creates the heap, counts the words of a text into a std::map that lives
// in the heap (found again through the named root "word_counts"), and
// exits. The parent then reopens the heap in a fresh mapping and prints
// what it finds: the same map, at the same addresses, with no parsing or
// loading step. Run it again and the counts grow: the index persists.
// Each run's update is one transaction that captures the pages it writes:
// if the writer dies half-way, the next open rolls the whole run back, and
// a transaction that throws leaves nothing behind. Last, the reader
// records a version of the heap (a checkpoint into HEAP.versions), changes
// the index, and checks the version out again: the change is gone.
// Then the object store: three worker processes share objects through a
// store in HEAP.store with no server between them, and a fourth, killed
// half-way through writing an object, is cleaned up after by the next
// process that looks. Last, tiers: a heap holding four times its DRAM
// budget, its coldest pods written to a disk tier and brought back on
// touch; and the version pushed to a backup store beside the heap. Last,
// automatic pod placement, which learns from the page writes which
// allocation sites are hot and gives them pods of their own, and the
// references between those pods.
#include <larder/larder.hpp>
#include <larder/store.hpp>
#include <larder/tiers.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <string_view>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using pstring = std::basic_string<char, std::char_traits<char>, larder::allocator<char>>;
using word_index = std::map<pstring, std::uint64_t, std::less<>,
                            larder::allocator<std::pair<const pstring, std::uint64_t>>>;

struct corpus_stats {
  std::uint64_t runs = 0;
  std::uint64_t words = 0;
};

const char* kText =
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
    "foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season of Light, "
    "it was the season of Darkness, it was the spring of hope, it was the winter of despair, we had everything "
    "before us, we had nothing before us, we were all going direct to Heaven, we were all going direct the "
    "other way";

larder::heap_options options_for(const char* path, larder::open_mode mode) {
  larder::heap_options options;
  options.kind = larder::backing::file;
  options.name = path;
  options.mode = mode;
  options.reserve = std::size_t{1} << 30;
  return options;
}

// The child: open or create the heap and add the text's words.
int build(const char* path) {
  larder::heap heap(options_for(path, larder::open_mode::open_or_create));
  auto* index = heap.root<word_index>("word_counts");
  auto* stats = heap.root<corpus_stats>("stats");
  larder::allocator<char> in_heap(heap.default_pod());
  auto add_words = [&](const char* text) {
    std::istringstream words(text);
    std::string word;
    while (words >> word) {
      word.erase(std::remove_if(word.begin(), word.end(), [](char c) { return c == ','; }), word.end());
      std::transform(word.begin(), word.end(), word.begin(), [](unsigned char c) { return std::tolower(c); });
      auto it = index->find(std::string_view(word));
      if (it == index->end()) it = index->emplace(pstring(word.c_str(), in_heap), 0).first;
      ++it->second;
      ++stats->words;
    }
  };
  {
    // The map's own code does the stores; page capture logs each page
    // before its first one, so the whole run commits or none of it does.
    larder::transaction tx(heap, larder::capture::pages);
    add_words(kText);
    ++stats->runs;
  }
  std::size_t distinct = index->size();
  try {
    larder::transaction tx(heap, larder::capture::pages);
    add_words("a transaction that fails half way leaves no trace");
    throw std::runtime_error("failed on purpose");
  } catch (const std::runtime_error&) {
  }
  std::printf("[writer pid %d] heap %s at %p: added %zu distinct words; a failed transaction left %zu\n", getpid(),
              heap.uuid().c_str(), heap.base(), distinct, index->size());
  larder::throw_if_error(heap.close());
  std::fflush(stdout);
  return 0;
}

// A checkpoint, a change, and a checkout back to the checkpoint.
int show_versions(larder::heap& heap) {
  larder::checkpoint_stats saved = larder::checkpoint(heap, "word index as the reader found it");
  std::printf("  checkpoint %.12s: %zu pages read, %zu new chunks, in %s\n", saved.id.c_str(), saved.pages_considered,
              saved.new_chunks, larder::version_store_of(heap).c_str());
  auto* index = static_cast<word_index*>(heap.find_root("word_counts"));
  {
    larder::transaction tx(heap, larder::capture::pages);
    larder::allocator<char> in_heap(heap.default_pod());
    index->emplace(pstring("ephemeral", in_heap), 1);
  }
  std::printf("  added \"ephemeral\": %zu distinct words\n", index->size());
  larder::checkout_stats back = larder::checkout(heap, saved.id);
  // Pointers taken before a checkout are stale: find the index again.
  index = static_cast<word_index*>(heap.find_root("word_counts"));
  std::printf("  checked out %.12s (%zu pages loaded): %zu distinct words, \"ephemeral\" %s\n", back.id.c_str(),
              back.pages_loaded, index->size(), index->find(std::string_view("ephemeral")) == index->end() ? "gone" : "still there");
  // Off the machine: the version goes to another store (a directory here;
  // `rados:POOL@CONF` for a Ceph pool), sending only what that store lacks.
  const std::string backup = larder::version_store_of(heap) + ".backup";
  larder::transfer_stats sent;
  if (larder::status s = larder::push_versions(larder::version_store_of(heap), backup, saved.id, {}, &sent); !s.ok())
    throw larder::error(s);
  std::printf("  pushed %.12s to %s: %llu chunks asked about, %llu sent (the ones it lacked)\n", saved.id.c_str(),
              backup.c_str(), static_cast<unsigned long long>(sent.chunks_asked),
              static_cast<unsigned long long>(sent.chunks_sent));
  // And back from there: a checkout straight from the other store loads
  // only the pages that differ, fetching only chunks this store lacks.
  {
    larder::transaction tx(heap, larder::capture::pages);
    larder::allocator<char> in_heap(heap.default_pod());
    index->emplace(pstring("fleeting", in_heap), 1);
  }
  larder::checkout_options from_backup;
  from_backup.remote = backup;
  larder::checkout_stats restored = larder::checkout(heap, saved.id, from_backup);
  index = static_cast<word_index*>(heap.find_root("word_counts"));
  std::printf("  added \"fleeting\", then checked out %.12s from %s: %zu pages loaded, %llu chunks fetched; "
              "%zu distinct words\n",
              restored.id.c_str(), backup.c_str(), restored.pages_loaded,
              static_cast<unsigned long long>(restored.chunks_fetched), index->size());
  return 0;
}

// Tiers: a heap holding four times its DRAM budget. The migrator writes
// the coldest pods to a small disk tier and drops their pages; as that
// tier fills, its coldest pods cascade to a larger one below; touching
// them brings them back, byte for byte, from wherever they are.
int tiers_demo(const std::string& tier_path) {
  larder::heap heap;
  larder::heap_options options;
  options.kind = larder::backing::anonymous;
  options.mode = larder::open_mode::create;
  options.reserve = std::size_t{1} << 30;
  if (larder::status s = larder::heap::open(options, &heap); !s.ok()) throw larder::error(s);
  constexpr std::size_t kPods = 16, kBlocks = 256, kBlock = 4096;  // 16 MiB in 16 pods
  larder::migration_policy policy;
  policy.dram_budget = std::size_t{4} << 20;
  policy.tiers.push_back({larder::tier_kind::disk, tier_path, std::size_t{4} << 20});
  policy.tiers.push_back({larder::tier_kind::disk, tier_path + ".lower", std::size_t{64} << 20});
  if (larder::status s = larder::set_migration_policy(heap, policy); !s.ok()) {
    std::printf("[tiers] skipped: %s\n", s.to_string().c_str());
    return 0;
  }
  std::vector<std::uint64_t*> blocks;
  for (std::size_t p = 0; p < kPods; ++p) {
    larder::pod pod;
    if (larder::status s = heap.make_pod("table" + std::to_string(p), &pod); !s.ok()) throw larder::error(s);
    for (std::size_t b = 0; b < kBlocks; ++b) {
      auto* block = static_cast<std::uint64_t*>(pod.allocate(kBlock, kBlock));
      if (block == nullptr) throw std::runtime_error("allocation failed");
      for (std::size_t w = 0; w < kBlock / 8; ++w) block[w] = p * 1'000'003 + b * 1009 + w;
      blocks.push_back(block);
    }
  }
  if (larder::status s = larder::migrate(heap); !s.ok()) throw larder::error(s);
  larder::migration_stats before = larder::migration_info(heap);
  std::printf("[tiers] 16 MiB in 16 pods under a DRAM budget of 4 MiB: %zu KiB resident, %zu KiB evicted\n",
              before.resident_bytes >> 10, before.evicted_bytes >> 10);
  for (const larder::tier_usage_info& t : before.tiers)
    std::printf("  %s tier %s: %llu of %llu KiB used\n", larder::to_string(t.kind), t.path.c_str(),
                static_cast<unsigned long long>(t.used_bytes >> 10),
                static_cast<unsigned long long>(t.capacity_bytes >> 10));
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < blocks.size(); ++i)
    for (std::size_t w = 0; w < kBlock / 8; ++w) wrong += blocks[i][w] != (i / kBlocks) * 1'000'003 + (i % kBlocks) * 1009 + w;
  larder::migration_stats after = larder::migration_info(heap);
  std::printf("  read every byte back: %s; %llu faults, %llu pages prefetched with them, %llu pods evicted\n",
              wrong == 0 ? "all as written" : "WRONG BYTES", static_cast<unsigned long long>(after.faults),
              static_cast<unsigned long long>(after.prefetched_pages), static_cast<unsigned long long>(after.evictions));
  return wrong == 0 ? 0 : 1;
}

// Automatic placement: a session table whose sessions (written at every
// request) and profiles (written once) are allocated in turn, at two
// sites, with objects of one size. In one pod every page mixes both, so
// each epoch writes them all; placement learns the two rates and keeps
// the sessions on pages of their own.
struct account_record {
  std::uint64_t words[8];
};

__attribute__((noinline)) account_record* new_session(larder::heap& heap) {
  auto* r = static_cast<account_record*>(heap.allocate(sizeof(account_record)));
  if (r == nullptr) throw std::runtime_error("allocation failed");
  *r = {};
  return r;
}

__attribute__((noinline)) account_record* new_profile(larder::heap& heap, std::uint64_t user) {
  auto* r = static_cast<account_record*>(heap.allocate(sizeof(account_record)));
  if (r == nullptr) throw std::runtime_error("allocation failed");
  for (auto& w : r->words) w = user;
  return r;
}

// Pages written in the last of `epochs` epochs of requests.
constexpr std::size_t kNoTracking = ~std::size_t{0};
std::size_t serve_requests(const std::string& path, larder::placement_policy placement, int epochs) {
  larder::heap_options options;
  options.name = path;
  options.mode = larder::open_mode::create;
  options.reserve = std::size_t{1} << 30;
  options.placement = placement;
  larder::heap heap(options);
  if (!heap.start_tracking().ok()) return kNoTracking;
  auto* sessions_root = new_session(heap);  // the table's root: points at the first session
  if (larder::status s = heap.set_root("sessions", sessions_root, sizeof *sessions_root); !s.ok())
    throw larder::error(s);
  std::vector<account_record*> sessions;
  for (std::uint64_t user = 0; user < 8192; ++user) {
    sessions.push_back(new_session(heap));
    // Each session points at its profile: references between their pods.
    sessions.back()->words[1] = reinterpret_cast<std::uintptr_t>(new_profile(heap, user));
  }
  sessions_root->words[1] = reinterpret_cast<std::uintptr_t>(sessions.front());
  larder::dirty_set written;
  for (int e = 0; e < epochs; ++e) {
    for (account_record* s : sessions) ++s->words[0];
    if (larder::status s = heap.collect_dirty(&written); !s.ok()) throw larder::error(s);
  }
  return written.page_count();
}

int placement_demo(const std::string& path) {
  (void)larder::heap::remove(larder::backing::file, path + ".one");
  (void)larder::heap::remove(larder::backing::file, path);
  constexpr int kEpochs = 8;
  std::size_t one_pod = serve_requests(path + ".one", larder::placement_policy::off, kEpochs);
  if (one_pod == kNoTracking) {
    std::printf("[placement] skipped: no page-write tracking here\n");
    return 0;
  }
  std::size_t placed = serve_requests(path, larder::placement_policy::sites, kEpochs);
  std::printf("[placement] 8192 sessions written every epoch beside 8192 profiles written once, same size:\n"
              "  pages written per epoch: %zu in one pod, %zu with automatic placement (%.1fx fewer)\n",
              one_pod, placed, placed > 0 ? static_cast<double>(one_pod) / placed : 0.0);
  larder::heap heap(options_for(path.c_str(), larder::open_mode::open));
  std::vector<larder::placement_site> sites;
  if (larder::status s = larder::placement_sites(heap, &sites); !s.ok()) throw larder::error(s);
  for (const larder::placement_site& s : sites)
    if (s.block_bytes == sizeof(account_record))
      std::printf("  site %s -> pod %s: write rate %.2f, %s\n", s.location.c_str(), s.pod_name.c_str(), s.write_rate,
                  larder::to_string(s.reason));
  // The references between the pods, found by scanning their pages.
  std::vector<larder::pod_edge> edges;
  std::vector<std::uint32_t> reached;
  if (larder::status s = larder::pod_graph(heap, &edges); !s.ok()) throw larder::error(s);
  if (larder::status s = larder::pods_reached(heap, "sessions", &reached); !s.ok()) throw larder::error(s);
  std::map<std::uint32_t, std::string> names;
  for (const larder::pod_info& p : heap.pods()) names[p.id] = p.name;
  for (const larder::pod_edge& e : edges)
    std::printf("  references: %zu pages of pod %s point into pod %s\n", static_cast<std::size_t>(e.pages),
                names[e.from].c_str(), names[e.to].c_str());
  std::printf("  the root \"sessions\" reaches pods");
  for (std::uint32_t pod : reached) std::printf(" %s", names[pod].c_str());
  std::printf(" (larder pods %s --graph draws them)\n", path.c_str());
  (void)larder::heap::remove(larder::backing::file, path + ".one");
  return 0;
}

// The parent: reopen and read what the child left.
int show(const char* path) {
  larder::heap heap(options_for(path, larder::open_mode::open));
  auto* index = static_cast<word_index*>(heap.find_root("word_counts"));
  auto* stats = static_cast<corpus_stats*>(heap.find_root("stats"));
  if (index == nullptr || stats == nullptr) {
    std::fprintf(stderr, "the heap has no word index\n");
    return 1;
  }
  std::vector<std::pair<std::uint64_t, std::string>> top;
  for (const auto& [word, count] : *index) top.emplace_back(count, std::string(word));
  std::sort(top.begin(), top.end(), std::greater<>());
  std::printf("[reader pid %d] reopened heap %s at %p\n", getpid(), heap.uuid().c_str(), heap.base());
  std::printf("  runs so far: %llu, words counted: %llu, distinct words: %zu\n",
              static_cast<unsigned long long>(stats->runs), static_cast<unsigned long long>(stats->words),
              index->size());
  std::printf("  most frequent:");
  for (std::size_t i = 0; i < top.size() && i < 6; ++i)
    std::printf(" %s=%llu", top[i].second.c_str(), static_cast<unsigned long long>(top[i].first));
  std::printf("\n  roots:");
  for (const auto& root : heap.roots()) std::printf(" %s (%zu bytes at %p)", root.name.c_str(), root.size, root.object);
  std::printf("\n");
  return show_versions(heap);
}

// The object store: workers that are separate processes share objects
// through one heap, each writing its own, reading the others' in place.
int store_demo(const std::string& path) {
  (void)larder::heap::remove(larder::backing::file, path);  // a fresh store each run
  larder::store_options options;
  options.heap.name = path;
  options.heap.reserve = std::size_t{1} << 30;
  std::vector<pid_t> workers;
  for (int w = 0; w < 4; ++w) {
    pid_t pid = fork();
    if (pid != 0) {
      workers.push_back(pid);
      continue;
    }
    larder::store s;
    if (!larder::store::open(options, &s).ok()) _exit(1);
    std::string text = "worker " + std::to_string(w) + " (pid " + std::to_string(getpid()) + ") was here";
    larder::object_buffer b;
    if (!s.create(larder::object_id(static_cast<std::uint64_t>(w)), text.size(), 0, &b).ok()) _exit(1);
    std::copy(text.begin(), text.end(), reinterpret_cast<char*>(b.data.data()));
    if (w == 3) raise(SIGKILL);  // dies before sealing: the next client cleans up
    _exit(s.seal(larder::object_id(static_cast<std::uint64_t>(w))).ok() && s.close().ok() ? 0 : 1);
  }
  for (pid_t pid : workers) waitpid(pid, nullptr, 0);
  larder::store s;
  if (larder::status st = larder::store::open(options, &s); !st.ok()) throw larder::error(st);
  std::printf("[store] %s: objects written by separate processes, read in place:\n", path.c_str());
  for (std::uint64_t w = 0; w < 4; ++w) {
    larder::object_view v;
    if (s.get(larder::object_id(w), &v).ok()) {
      std::printf("  object %llu: \"%.*s\"\n", static_cast<unsigned long long>(w), static_cast<int>(v.data.size()),
                  reinterpret_cast<const char*>(v.data.data()));
      (void)s.release(larder::object_id(w));
    } else {
      std::printf("  object %llu: gone (its writer was killed before sealing it; opening the store cleaned up)\n",
                  static_cast<unsigned long long>(w));
    }
  }
  larder::status checked = s.check();
  std::printf("  store check: %s\n", checked.ok() ? "sound" : checked.to_string().c_str());
  (void)s.close();
  return checked.ok() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const char* path = argc > 1 ? argv[1] : "/tmp/larder-demo.heap";
  try {
    pid_t child = fork();
    if (child == 0) _exit(build(path));
    int status = 0;
    waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::fprintf(stderr, "the writer failed\n");
      return 1;
    }
    if (int result = show(path); result != 0) return result;
    if (int result = store_demo(std::string(path) + ".store"); result != 0) return result;
    if (int result = tiers_demo(std::string(path) + ".tier"); result != 0) return result;
    return placement_demo(std::string(path) + ".placed");
  } catch (const larder::error& e) {
    std::fprintf(stderr, "larder_demo: %s\n", e.what());
    return 1;
  }
}
