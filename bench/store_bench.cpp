// The object-store benchmark driver: each backend (store_backend.hpp) in
// turn, with 1 and 2 client processes (--clients), each process its own
// connection. bench/store_compare.py runs it and tabulates the JSON it
// writes (--out).
//
// Parts, each against a freshly started, empty store:
//   latency   every client puts --latency-ops objects of 1 KiB (create +
//             seal, or SET), then gets each, releases each (where the store
//             has references) and deletes each; every operation timed on its
//             own (rdtsc, calibrated against CLOCK_MONOTONIC); median and p99
//             over all clients' operations.
//   ycsb-X    YCSB workload X (ycsb.hpp) for each --value-sizes: the clients
//             load --records records between them, then run --operations
//             operations between them from a common start; aggregate
//             throughput = operations / (last client's end − first start).
// Usage: larder_store_compare_bench [--backends=redis,redis-pipelined,memcached,lightning,larder]
//          [--clients=1,2] [--records=N] [--operations=N] [--latency-ops=N] [--value-sizes=100,1024]
//          [--workloads=ABCDEF] [--pipeline=16] [--seed=N] [--work-dir=DIR] --out=FILE
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "store_backend.hpp"
#include "ycsb.hpp"

#if defined(__x86_64__)
#include <x86intrin.h>
#define LARDER_BENCH_TIMER "rdtsc"
#else
#define LARDER_BENCH_TIMER "steady_clock"
#endif

namespace larder_bench {
namespace {

using nlohmann::json;

constexpr unsigned kMaxClients = 16;
constexpr std::size_t kLatencyValueBytes = 1024;
constexpr std::uint64_t kLatencyKeyBase = 1ULL << 62;  // far from every YCSB record number
constexpr auto kBarrierTimeout = std::chrono::seconds(120);
const char* const kObjectOps[] = {"put", "get", "release", "delete"};

struct options {
  std::vector<std::string> backends{"redis", "redis-pipelined", "memcached", "lightning", "larder"};
  std::vector<unsigned> clients{1, 2};
  std::uint64_t records = 10000, operations = 30000, latency_ops = 10000;
  std::vector<std::uint64_t> value_sizes{100, 1024};
  std::string workloads = "ABCDEF";
  unsigned pipeline = 16;
  std::uint64_t seed = 42;
  std::filesystem::path work_dir, out;
};

// ---- timing ----------------------------------------------------------------

std::uint64_t ticks() {
#if defined(__x86_64__)
  _mm_lfence();
  return __rdtsc();
#else
  return static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
#endif
}

std::int64_t now_ns() { return std::chrono::steady_clock::now().time_since_epoch().count(); }

// Ticks per nanosecond, measured against the monotonic clock over 50 ms.
double calibrate_ticks() {
  const std::int64_t ns0 = now_ns();
  const std::uint64_t t0 = ticks();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  return static_cast<double>(ticks() - t0) / static_cast<double>(now_ns() - ns0);
}

double timer_overhead_ticks() {
  std::vector<std::uint64_t> d(10001);
  for (auto& x : d) {
    const std::uint64_t a = ticks();
    x = ticks() - a;
  }
  std::nth_element(d.begin(), d.begin() + d.size() / 2, d.end());
  return static_cast<double>(d[d.size() / 2]);
}

// ---- what the client processes share with the parent ------------------------

struct client_slot {
  char error[256];
  std::int64_t start_ns, end_ns;
  std::uint64_t ops, misses;
  bool has_release;
};

struct shared_state {
  std::atomic<std::uint32_t> arrived[2];
  ycsb::insert_sequence inserts;
  client_slot slots[kMaxClients];
};

class shared_region {
 public:
  explicit shared_region(std::uint64_t latency_ops)
      : per_op_(latency_ops), bytes_(sizeof(shared_state) + sizeof(std::uint64_t) * 4 * kMaxClients * latency_ops) {
    void* p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::runtime_error("mmap of the shared results failed");
    base_ = static_cast<std::byte*>(p);
    state_ = new (base_) shared_state{};
  }
  ~shared_region() { ::munmap(base_, bytes_); }
  shared_state& state() { return *state_; }
  std::uint64_t* samples(unsigned client, unsigned op) {
    auto* all = reinterpret_cast<std::uint64_t*>(base_ + sizeof(shared_state));
    return all + (static_cast<std::size_t>(client) * 4 + op) * per_op_;
  }

 private:
  std::uint64_t per_op_;
  std::size_t bytes_;
  std::byte* base_;
  shared_state* state_;
};

// Waits until `clients` processes arrived; false after kBarrierTimeout (a
// client died on its way).
bool arrive_and_wait(std::atomic<std::uint32_t>& arrived, unsigned clients) {
  arrived.fetch_add(1);
  const auto deadline = std::chrono::steady_clock::now() + kBarrierTimeout;
  while (arrived.load() < clients) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
  return true;
}

// Runs `work` in `clients` forked processes, each with its own connection.
// Returns an empty string, or what went wrong in which client.
using client_work = std::function<std::string(store_client&, unsigned client, client_slot&)>;

std::string run_clients(store_service& service, unsigned clients, shared_region& region, const client_work& work) {
  shared_state& st = region.state();
  st.arrived[0] = 0;
  st.arrived[1] = 0;
  std::memset(st.slots, 0, sizeof st.slots);
  std::fflush(nullptr);
  std::vector<pid_t> pids;
  for (unsigned c = 0; c < clients; ++c) {
    const pid_t pid = ::fork();
    if (pid < 0) return std::string("fork: ") + std::strerror(errno);
    if (pid > 0) {
      pids.push_back(pid);
      continue;
    }
    client_slot& slot = st.slots[c];
    std::string error;
    std::unique_ptr<store_client> client = service.connect(&error);
    if (client) error = work(*client, c, slot);
    // The last to leave: a store may tie objects to the process that made them.
    if (error.empty() && !arrive_and_wait(st.arrived[1], clients)) error = "another client did not finish";
    std::snprintf(slot.error, sizeof slot.error, "%s", error.c_str());
    client.reset();
    std::fflush(nullptr);
    ::_exit(error.empty() ? 0 : 1);
  }
  std::string failure;
  for (unsigned c = 0; c < pids.size(); ++c) {
    int status = 0;
    ::waitpid(pids[c], &status, 0);
    service.client_exited(pids[c]);
    if (!failure.empty()) continue;
    if (st.slots[c].error[0] != '\0') {
      failure = "client " + std::to_string(c) + ": " + st.slots[c].error;
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      failure = "client " + std::to_string(c) + " died (" +
                (WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                     : "exit status " + std::to_string(WEXITSTATUS(status))) +
                ")";
    }
  }
  return failure;
}

std::vector<std::byte> value_bytes(std::size_t size, std::uint64_t seed) {
  ycsb::random64 rng(seed);
  std::vector<std::byte> v(size);
  for (auto& b : v) b = static_cast<std::byte>(rng.next());
  return v;
}

// ---- the two parts -----------------------------------------------------------

json percentiles(std::vector<std::uint64_t>& samples, double ticks_per_ns) {
  if (samples.empty()) return nullptr;
  std::sort(samples.begin(), samples.end());
  auto at = [&](double q) {
    return static_cast<double>(samples[static_cast<std::size_t>(q * static_cast<double>(samples.size() - 1))]) /
           ticks_per_ns;
  };
  return {{"median_ns", at(0.5)}, {"p99_ns", at(0.99)}, {"count", samples.size()}};
}

json run_latency(store_service& service, unsigned clients, const options& o, double ticks_per_ns) {
  shared_region region(o.latency_ops);
  const std::vector<std::byte> value = value_bytes(kLatencyValueBytes, o.seed);
  const std::string error = run_clients(service, clients, region, [&](store_client& sc, unsigned c, client_slot& slot) {
    if (!arrive_and_wait(region.state().arrived[0], clients)) return std::string("another client did not start");
    const std::uint64_t base = kLatencyKeyBase + (static_cast<std::uint64_t>(c) << 32);
    // Each operation over every object, timed one call at a time (the call
    // inlined between the two timestamps).
    auto time_each = [&](unsigned op, auto&& call) {
      std::uint64_t* out = region.samples(c, op);
      for (std::uint64_t i = 0; i < o.latency_ops; ++i) {
        const std::uint64_t t0 = ticks();
        const bool ok = call(base + i);
        out[i] = ticks() - t0;
        if (!ok) return std::string(kObjectOps[op]) + " of object " + std::to_string(i) + " failed";
      }
      return std::string();
    };
    std::string failed = time_each(0, [&](std::uint64_t k) { return sc.put(k, value); });
    if (failed.empty()) failed = time_each(1, [&](std::uint64_t k) { return sc.get(k); });
    if (failed.empty() && sc.has_release()) failed = time_each(2, [&](std::uint64_t k) { return sc.release(k); });
    if (failed.empty()) failed = time_each(3, [&](std::uint64_t k) { return sc.remove(k); });
    if (!failed.empty()) return failed;
    slot.ops = o.latency_ops;
    slot.has_release = sc.has_release();
    return std::string();
  });
  if (!error.empty()) return {{"error", error}};
  const bool has_release = region.state().slots[0].has_release;
  json result;
  for (unsigned op = 0; op < 4; ++op) {
    if (op == 2 && !has_release) {
      result[kObjectOps[op]] = nullptr;
      continue;
    }
    std::vector<std::uint64_t> all;
    for (unsigned c = 0; c < clients; ++c) {
      all.insert(all.end(), region.samples(c, op), region.samples(c, op) + o.latency_ops);
    }
    result[kObjectOps[op]] = percentiles(all, ticks_per_ns);
  }
  return result;
}

std::uint64_t share(std::uint64_t total, unsigned client, unsigned clients) {
  return total / clients + (client < total % clients ? 1 : 0);
}

json run_ycsb(store_service& service, unsigned clients, const ycsb::workload& w, std::size_t value_size,
              const options& o) {
  shared_region region(0);
  region.state().inserts.start(o.records);
  const std::vector<std::byte> value = value_bytes(value_size, o.seed + 1);
  const std::string error = run_clients(service, clients, region, [&](store_client& sc, unsigned c, client_slot& slot) {
    for (std::uint64_t r = c; r < o.records; r += clients) sc.insert(r, value);
    sc.sync();
    if (sc.misses() != 0) return "the load failed for " + std::to_string(sc.misses()) + " records";
    const std::uint64_t ops = share(o.operations, c, clients);
    ycsb::generator gen(w, region.state().inserts, ops, o.seed, c, clients);
    if (!arrive_and_wait(region.state().arrived[0], clients)) return std::string("another client did not load");
    slot.start_ns = now_ns();
    for (std::uint64_t i = 0; i < ops; ++i) {
      const ycsb::operation op = gen.next();
      switch (op.kind) {
        case ycsb::op_kind::read: sc.read(op.record); break;
        case ycsb::op_kind::update: sc.update(op.record, value); break;
        case ycsb::op_kind::insert:
          sc.insert(op.record, value);
          gen.inserted(op.record);
          break;
        case ycsb::op_kind::scan: sc.scan(op.record, op.scan_length); break;
        case ycsb::op_kind::read_modify_write:
          sc.read(op.record);
          sc.sync();
          sc.update(op.record, value);
          break;
      }
    }
    sc.sync();
    slot.end_ns = now_ns();
    slot.ops = ops;
    slot.misses = sc.misses();
    return std::string();
  });
  json result = {{"workload", std::string(1, w.name)}, {"value_size", value_size}, {"clients", clients}};
  if (!error.empty()) {
    result["error"] = error;
    return result;
  }
  std::int64_t start = INT64_MAX, end = 0;
  std::uint64_t ops = 0, misses = 0;
  for (unsigned c = 0; c < clients; ++c) {
    const client_slot& s = region.state().slots[c];
    start = std::min(start, s.start_ns);
    end = std::max(end, s.end_ns);
    ops += s.ops;
    misses += s.misses;
  }
  const double seconds = static_cast<double>(end - start) / 1e9;
  result.update({{"ops", ops}, {"seconds", seconds}, {"ops_per_s", static_cast<double>(ops) / seconds},
                 {"misses", misses}});
  return result;
}

// ---- one backend -------------------------------------------------------------

std::unique_ptr<store_service> make_service(const std::string& name, const options& o, std::string* why) {
  if (name == "redis") return make_redis_service(1, why);
  if (name == "redis-pipelined") return make_redis_service(o.pipeline, why);
  if (name == "memcached") return make_memcached_service(why);
  if (name == "lightning") return make_lightning_service(why);
  if (name == "larder") return make_larder_service(why);
  *why = "unknown backend (known: redis, redis-pipelined, memcached, lightning, larder)";
  return nullptr;
}

// Runs `part` against a freshly started store; the store is stopped after.
json with_fresh_store(store_service& service, const std::filesystem::path& dir, const std::function<json()>& part) {
  std::filesystem::create_directories(dir);
  if (std::string error = service.start(dir); !error.empty()) {
    service.stop();
    return {{"error", "cannot start " + service.name() + ": " + error}};
  }
  json result = part();
  service.stop();
  return result;
}

std::string check_capacity(const store_service& service, const options& o, unsigned clients) {
  const std::uint64_t cap = service.capacity();
  const std::uint64_t inserts = o.operations / 20 + clients;  // 5 % at most, in D and E
  if (cap != 0 && (o.records + inserts > cap || o.latency_ops * clients > cap)) {
    return service.name() + " holds at most " + std::to_string(cap) + " objects: lower --records or --latency-ops";
  }
  return {};
}

json run_backend(const std::string& name, const options& o, double ticks_per_ns) {
  std::string why;
  std::unique_ptr<store_service> service = make_service(name, o, &why);
  if (!service) return {{"name", name}, {"skipped", why}};
  json b = {{"name", name}, {"version", service->version()}, {"runs", json::array()}};
  const std::filesystem::path dir = o.work_dir / name;
  for (unsigned clients : o.clients) {
    json run = {{"clients", clients}, {"ycsb", json::array()}};
    if (std::string error = check_capacity(*service, o, clients); !error.empty()) {
      run["error"] = error;
      b["runs"].push_back(run);
      continue;
    }
    if (!service->pipelined()) {
      std::cerr << name << ", " << clients << " client(s): latency\n";
      run["latency"] = with_fresh_store(*service, dir, [&] { return run_latency(*service, clients, o, ticks_per_ns); });
    }
    for (std::uint64_t size : o.value_sizes) {
      for (char wn : o.workloads) {
        const ycsb::workload& w = *ycsb::find_workload(wn);
        std::cerr << name << ", " << clients << " client(s): YCSB " << w.name << ", " << size << " B values\n";
        run["ycsb"].push_back(with_fresh_store(*service, dir, [&] { return run_ycsb(*service, clients, w, size, o); }));
      }
    }
    b["runs"].push_back(run);
  }
  return b;
}

// ---- options -----------------------------------------------------------------

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream in(text);
  for (std::string part; std::getline(in, part, ',');) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

std::uint64_t parse_count(const std::string& flag, const std::string& text) {
  std::size_t used = 0;
  unsigned long long v = 0;
  try {
    v = std::stoull(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty() || v == 0) throw std::invalid_argument(flag + " needs a positive integer");
  return v;
}

options parse_options(int argc, char** argv) {
  options o;
  o.work_dir = std::filesystem::temp_directory_path() / ("larder-store-bench-" + std::to_string(::getpid()));
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const std::size_t eq = arg.find('=');
    const std::string flag = arg.substr(0, eq), value = eq == std::string::npos ? "" : arg.substr(eq + 1);
    if (flag == "--backends") o.backends = split(value);
    else if (flag == "--clients") {
      o.clients.clear();
      for (const std::string& c : split(value)) o.clients.push_back(static_cast<unsigned>(parse_count(flag, c)));
    } else if (flag == "--records") o.records = parse_count(flag, value);
    else if (flag == "--operations") o.operations = parse_count(flag, value);
    else if (flag == "--latency-ops") o.latency_ops = parse_count(flag, value);
    else if (flag == "--value-sizes") {
      o.value_sizes.clear();
      for (const std::string& s : split(value)) o.value_sizes.push_back(parse_count(flag, s));
    } else if (flag == "--workloads") o.workloads = value;
    else if (flag == "--pipeline") o.pipeline = static_cast<unsigned>(parse_count(flag, value));
    else if (flag == "--seed") o.seed = parse_count(flag, value);
    else if (flag == "--work-dir") o.work_dir = value;
    else if (flag == "--out") o.out = value;
    else throw std::invalid_argument("unknown argument " + arg + " (see the top of bench/store_bench.cpp)");
  }
  for (unsigned c : o.clients) {
    if (c > kMaxClients) throw std::invalid_argument("--clients: at most " + std::to_string(kMaxClients));
  }
  for (char w : o.workloads) {
    if (ycsb::find_workload(w) == nullptr) throw std::invalid_argument(std::string("no YCSB workload ") + w);
  }
  if (o.out.empty()) throw std::invalid_argument("--out=FILE is required");
  return o;
}

int run(int argc, char** argv) {
  options o;
  try {
    o = parse_options(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "larder_store_compare_bench: " << e.what() << "\n";
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);
  std::filesystem::create_directories(o.work_dir);
  const double ticks_per_ns = calibrate_ticks();
  json result = {{"options",
                  {{"records", o.records}, {"operations", o.operations}, {"latency_ops", o.latency_ops},
                   {"latency_value_size", kLatencyValueBytes}, {"value_sizes", o.value_sizes},
                   {"workloads", o.workloads}, {"clients", o.clients}, {"pipeline", o.pipeline}, {"seed", o.seed}}},
                 {"timer",
                  {{"source", LARDER_BENCH_TIMER}, {"ticks_per_ns", ticks_per_ns},
                   {"overhead_ns", timer_overhead_ticks() / ticks_per_ns}}},
                 {"backends", json::array()}};
  for (const std::string& name : o.backends) result["backends"].push_back(run_backend(name, o, ticks_per_ns));
  std::error_code ignored;
  std::filesystem::remove_all(o.work_dir, ignored);
  std::ofstream out(o.out);
  out << result.dump(1) << "\n";
  if (!out) {
    std::cerr << "larder_store_compare_bench: cannot write " << o.out << "\n";
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace larder_bench

int main(int argc, char** argv) {
  try {
    return larder_bench::run(argc, argv);
  } catch (const std::exception& e) {  // a work folder that cannot be made, shared memory refused, …
    std::cerr << "larder_store_compare_bench: " << e.what() << "\n";
    return 1;
  }
}
