// larder_versions_bench: a heap holding an object graph, changed step by
// step and checkpointed after each step, driven one command at a time so
// that a script can copy or back up the heap file between steps
// (bench/versions_compare.py does, against a full copy, restic and borg).
//
//   larder_versions_bench --heap PATH [--backing file|shm|anonymous]
//                         [--size BYTES] [--seed N] [--store DIR]
//                         [--branch NAME] [--open]
//
// Without --open the heap is made afresh and filled until its backing
// reaches --size bytes (default 1 GiB) with objects: a string (16-255
// characters), a vector of 4-127 doubles, a map of 2-11 int -> double
// entries and a pointer to another object, each allocated on its own with
// larder's containers; a root vector lists them. With --open the heap at
// PATH is opened as it is. --backing (default file) picks what holds the
// heap: PATH is then a shm object's name ("/name", removed at quit) or
// unused (anonymous). --store names the chunk store (default: PATH.versions;
// required for shm and anonymous heaps) and --branch the branch its
// checkpoints go to.
//
// Commands, one a line on stdin; each answers one JSON line on stdout and
// then waits for the next, touching the heap no more: the heap file is then
// the state the last checkpoint recorded (the mapping is shared, so a copy
// of the file reads what the heap holds).
//   checkpoint MESSAGE     checkpoint as it is
//   step FRACTION          change that fraction of the objects in place (one
//                          change each, at random: its string rewritten, its
//                          doubles updated, a map entry removed and one added,
//                          its pointer moved), then checkpoint
//   checkout VERSION MODE  checkout (larder::checkout), MODE eager (the
//                          default) or lazy; a lazy one then waits for
//                          finish_checkout and reports both times: until
//                          checkout returned (usable) and until every page
//                          was loaded (loaded_ns)
//   clone VERSION PATH     larder::clone_version of the heap's store into PATH
//   quit                   close the heap and exit
// Errors print {"error": "..."} and exit with status 1.
#include <larder/larder.hpp>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct object {
  explicit object(const larder::allocator<char>& a) : name(a), values(a), attrs(a) {}
  larder::string name;
  larder::vector<double> values;
  larder::map<std::int32_t, double> attrs;
  object* link = nullptr;
};
using object_table = larder::vector<object*>;
constexpr const char* kRoot = "objects";

struct settings {
  std::string heap_path, store, branch;
  larder::backing kind = larder::backing::file;
  std::uint64_t size = std::uint64_t{1} << 30;
  std::uint64_t seed = 1;
  bool open_existing = false;
};

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

[[noreturn]] void fail(const std::string& what) {
  std::string quoted;
  for (char c : what) {
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += (c == '\n') ? ' ' : c;
  }
  std::printf("{\"error\": \"%s\"}\n", quoted.c_str());
  std::fflush(stdout);
  std::exit(1);
}

void check(const larder::status& s, const char* what) {
  if (!s.ok()) fail(std::string(what) + ": " + s.to_string());
}

void fill_text(larder::string& s, std::mt19937_64& rng) {
  s.resize(16 + rng() % 240);
  for (char& c : s) c = static_cast<char>('a' + rng() % 26);
}

void fill_values(larder::vector<double>& v, std::mt19937_64& rng) {
  for (double& d : v) d = static_cast<double>(rng() % 1000000) / 7.0;
}

object* make_object(const larder::allocator<char>& a, std::mt19937_64& rng) {
  larder::allocator<object> oa(a);
  object* o = oa.allocate(1);
  new (o) object(a);
  fill_text(o->name, rng);
  o->values.resize(4 + rng() % 124);
  fill_values(o->values, rng);
  for (std::size_t n = 2 + rng() % 10; n > 0; --n) o->attrs.emplace(static_cast<std::int32_t>(rng() % 100000), 1.0);
  return o;
}

// The bytes the heap's backing holds: an anonymous heap's backing is its
// whole reserve from the start, so there the pages its pods hold.
std::size_t heap_bytes(const larder::heap& h) {
  if (h.kind() != larder::backing::anonymous) return h.stats().mapped_size;
  std::size_t bytes = 0;
  for (const larder::pod_info& p : h.pods()) bytes += p.bytes_committed;
  return bytes;
}

object_table* build(larder::heap& h, const settings& s, std::mt19937_64& rng) {
  auto* table = h.root<object_table>(kRoot);
  larder::allocator<char> a(h.default_pod());
  // Reserved up front so that the table is one block that never moves.
  table->reserve(s.size / 512);
  while (heap_bytes(h) < s.size && table->size() < table->capacity()) {
    for (int i = 0; i < 1024; ++i) table->push_back(make_object(a, rng));
  }
  for (object* o : *table) o->link = (*table)[rng() % table->size()];
  return table;
}

void change_one(object& o, const object_table& table, std::mt19937_64& rng) {
  switch (rng() % 4) {
    case 0:
      fill_text(o.name, rng);
      break;
    case 1:
      fill_values(o.values, rng);
      break;
    case 2:
      if (!o.attrs.empty()) o.attrs.erase(o.attrs.begin());
      o.attrs.emplace(static_cast<std::int32_t>(rng() % 100000), static_cast<double>(rng() % 1000));
      break;
    default:
      o.link = table[rng() % table.size()];
      break;
  }
}

void print_checkpoint(const larder::checkpoint_stats& c, const std::string& extra) {
  std::printf("{\"op\": \"checkpoint\", \"id\": \"%s\", \"total_ns\": %" PRIu64 ", \"held_ns\": %" PRIu64
              ", \"held_collect_ns\": %" PRIu64
              ", \"pages_considered\": %zu, \"pages_in_version\": %zu, \"new_chunks\": %zu"
              ", \"bytes_stored\": %" PRIu64 "%s}\n",
              c.id.c_str(), c.total_ns, c.held_ns, c.held_collect_ns, c.pages_considered, c.pages_in_version,
              c.new_chunks, c.bytes_stored, extra.c_str());
}

// A lazy checkout is timed twice from the caller's side: until it returns
// (the heap usable) and until finish_checkout has every page loaded.
void checkout(larder::heap& h, const std::string& version, const std::string& mode) {
  if (mode != "eager" && mode != "lazy") fail("checkout mode '" + mode + "' is neither eager nor lazy");
  larder::checkout_options options;
  options.lazy = mode == "lazy";
  larder::checkout_stats c;
  const std::uint64_t start = now_ns();
  check(larder::checkout(h, version, options, &c), "checkout");
  const std::uint64_t usable_ns = now_ns() - start;
  check(larder::finish_checkout(h), "finish_checkout");
  const std::uint64_t loaded_ns = now_ns() - start;
  std::printf("{\"op\": \"checkout\", \"mode\": \"%s\", \"id\": \"%s\", \"total_ns\": %" PRIu64
              ", \"usable_ns\": %" PRIu64 ", \"loaded_ns\": %" PRIu64
              ", \"pages_compared\": %zu, \"pages_loaded\": %zu, \"pages_lazy\": %zu}\n",
              mode.c_str(), c.id.c_str(), c.total_ns, usable_ns, loaded_ns, c.pages_compared, c.pages_loaded,
              c.pages_lazy);
}

void serve(larder::heap& h, std::mt19937_64& rng) {
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string op;
    in >> op;
    // Found again at every command: a checkout leaves earlier pointers stale.
    auto* table = static_cast<object_table*>(h.find_root(kRoot));
    if (table == nullptr || table->empty()) fail("the heap has no object table");
    if (op == "checkpoint") {
      std::string message;
      std::getline(in >> std::ws, message);
      larder::checkpoint_stats c;
      check(larder::checkpoint(h, message, &c), "checkpoint");
      print_checkpoint(c, "");
    } else if (op == "step") {
      double fraction = -1;
      in >> fraction;
      if (!(fraction > 0 && fraction <= 1)) fail("step needs a fraction in (0, 1]");
      auto count = static_cast<std::size_t>(fraction * static_cast<double>(table->size()) + 0.5);
      if (count == 0) count = 1;
      std::uint64_t start = now_ns();
      for (std::size_t i = 0; i < count; ++i) change_one(*(*table)[rng() % table->size()], *table, rng);
      std::uint64_t mutate_ns = now_ns() - start;
      larder::checkpoint_stats c;
      check(larder::checkpoint(h, "step " + std::to_string(fraction), &c), "checkpoint");
      print_checkpoint(c, ", \"changed\": " + std::to_string(count) + ", \"mutate_ns\": " + std::to_string(mutate_ns));
    } else if (op == "checkout") {
      std::string version, mode = "eager";
      in >> version >> mode;
      checkout(h, version, mode);
    } else if (op == "clone") {
      std::string version, path;
      in >> version >> path;
      larder::checkout_stats c;
      std::uint64_t start = now_ns();
      check(larder::clone_version(larder::version_store_of(h), version, path, 0, &c), "clone");
      std::printf("{\"op\": \"clone\", \"total_ns\": %" PRIu64 ", \"pages_loaded\": %zu}\n", now_ns() - start,
                  c.pages_loaded);
    } else if (op == "quit") {
      return;
    } else {
      fail("unknown command '" + op + "'");
    }
    std::fflush(stdout);
  }
}

larder::backing parse_backing(const std::string& word) {
  if (word == "file") return larder::backing::file;
  if (word == "shm") return larder::backing::shm;
  if (word == "anonymous") return larder::backing::anonymous;
  fail("--backing is file, shm or anonymous, not '" + word + "'");
}

settings parse(int argc, char** argv) {
  settings s;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) fail(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--heap") s.heap_path = value();
    else if (arg == "--size") s.size = std::strtoull(value().c_str(), nullptr, 10);
    else if (arg == "--seed") s.seed = std::strtoull(value().c_str(), nullptr, 10);
    else if (arg == "--store") s.store = value();
    else if (arg == "--branch") s.branch = value();
    else if (arg == "--open") s.open_existing = true;
    else if (arg == "--backing") s.kind = parse_backing(value());
    else fail("unknown option " + arg + " (see bench/versions_bench.cpp)");
  }
  if (s.heap_path.empty() && s.kind != larder::backing::anonymous) fail("--heap PATH is required");
  if (s.store.empty() && s.kind != larder::backing::file) fail("--store DIR is required for shm and anonymous heaps");
  if (s.open_existing && s.kind == larder::backing::anonymous) fail("an anonymous heap cannot be opened again");
  if (s.size < (std::uint64_t{16} << 20)) fail("--size must be at least 16 MiB");
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  settings s = parse(argc, argv);
  std::mt19937_64 rng(s.seed);
  larder::heap_options o;
  o.kind = s.kind;
  o.name = s.heap_path;
  if (!s.open_existing) {
    if (s.kind != larder::backing::anonymous) (void)larder::heap::remove(s.kind, s.heap_path);
    o.mode = larder::open_mode::create;
  } else {
    o.mode = larder::open_mode::open;
  }
  larder::heap h;
  check(larder::heap::open(o, &h), "open");
  if (!s.store.empty()) check(larder::use_version_store(h, s.store, s.branch), "use_version_store");
  std::uint64_t start = now_ns();
  auto* table = s.open_existing ? static_cast<object_table*>(h.find_root(kRoot)) : build(h, s, rng);
  if (table == nullptr || table->empty()) fail("the heap has no object table");
  std::size_t objects = table->size();
  std::printf("{\"op\": \"ready\", \"objects\": %zu, \"heap_bytes\": %zu, \"build_ns\": %" PRIu64 "}\n", objects,
              heap_bytes(h), now_ns() - start);
  std::fflush(stdout);
  serve(h, rng);
  check(h.close(), "close");
  if (s.kind == larder::backing::shm) check(larder::heap::remove(s.kind, s.heap_path), "remove");
  std::printf("{\"op\": \"closed\"}\n");
  return 0;
}
