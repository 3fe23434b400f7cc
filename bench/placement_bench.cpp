// larder_placement_bench: what automatic pod placement (larder/placement.hpp)
// saves in pages written and checkpoint bytes, against everything in one pod
// and against pods chosen by hand, for programs that allocate hot and cold
// objects of one size class interleaved.
//
//   larder_placement_bench [--workloads=cache,graph,log,notebook] [--epochs N]
//       [--warmup N] [--seed S] [--dir DIR] [--json FILE] [size flags below]
//
// Workloads (bench/placement_workloads.cpp has the details and the reasons
// for each shape):
//   cache     a hash table of entries: a node per entry (hit count, LRU links)
//             written by every hit, made between the entry's key and value
//             (written once), all 64 B; YCSB-Zipfian gets, misses put and
//             evict the LRU entry. --cache-entries, --cache-gets (per epoch)
//   graph     64 B vertex records whose state a breadth-first sweep writes as
//             its frontier moves, made between the 64 B blocks of their edges
//             (written once at load). --graph-vertices, --graph-degree (mean
//             out-degree), --graph-sweep (vertices taken off the frontier per
//             epoch)
//   log       append-only 64 B records written once, and a 64 B index node per
//             key updated at each append for its key, made between records.
//             --log-keys, --log-history (records before the epochs),
//             --log-appends (per epoch)
//   notebook  one cell per epoch: 256 B result rows written once then only
//             read, a few long-lived 256 B accumulators (defined between rows)
//             updated by every cell. --notebook-history (cells before the
//             epochs), --notebook-max-rows (per cell)
// Each runs three ways, each in a file heap of its own in DIR (default a
// fresh folder under /tmp, removed at the end) with its version store
// beside it:
//   one pod   placement off: everything in the default pod
//   hand      placement off: each kind of object in the named pod a careful
//             programmer would give it (hot metadata apart from cold payloads)
//   auto      heap_options::placement = sites; the program allocates exactly
//             as in `one pod`
// After the program's state is built, each epoch is one step of work, then
// heap::collect_dirty and larder::checkpoint. --warmup epochs (default 5:
// the placement learner measures a site over 3 epochs after the one it
// first allocated in, and decides at the end of the 4th collect, the
// build's included) are run and not counted; then --epochs (default 20) are
// measured. Per workload and way, medians over the measured epochs of:
//   pages/epoch       every page the collect reported, metadata included
//   user pages/epoch  pages of the program's pods (not metadata, not the
//                     placement record's pod "larder.placement")
//   rewritten/epoch   of those, pages that an earlier epoch had written too:
//                     old data written again, which placement can spare;
//                     the rest are pages new data went to, which every way
//                     must write
//   ckpt pages        the checkpoint's new chunks (pages the store did not hold)
//   ckpt bytes        the bytes the checkpoint added to the store's packs
// and the ratios one pod / auto and auto / hand. Fixed seed: the same flags
// give the same programs. --json FILE writes every number, per epoch too.
#include <larder/larder.hpp>
#include <larder/placement.hpp>
#include <larder/versions.hpp>

#include "bench_common.hpp"
#include "bench_setup.hpp"
#include "placement_workloads.hpp"

#include <nlohmann/json.hpp>
#include <sys/utsname.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace {

namespace lp = larder_bench::placement;
using nlohmann::json;

constexpr std::size_t kPage = 4096;
constexpr std::size_t kReserve = std::size_t{16} << 30;
constexpr const char* kPlacementRecordPod = "larder.placement";
constexpr lp::way kWays[] = {lp::way::one_pod, lp::way::hand, lp::way::automatic};

struct options {
  std::set<std::string> workloads;  // empty: all
  std::size_t epochs = 20;
  std::size_t warmup = 5;
  std::uint64_t seed = 42;
  std::string dir, json_path;
  std::string file_system;  // of dir
  lp::workload_sizes sizes;
};

[[noreturn]] void usage(const std::string& why) {
  if (!why.empty()) std::fprintf(stderr, "larder_placement_bench: %s\n", why.c_str());
  std::fprintf(why.empty() ? stdout : stderr,
               "usage: larder_placement_bench [--workloads=cache,graph,log,notebook] [--epochs N (20)]\n"
               "       [--warmup N (5)] [--seed S (42)] [--dir DIR] [--json FILE]\n"
               "       [--cache-entries N (100000)] [--cache-gets N (10000)] [--cache-keys N (1.25 x entries)]\n"
               "       [--graph-vertices N (100000)] [--graph-degree D (35)] [--graph-sweep N (12500)]\n"
               "       [--log-keys N (20000)] [--log-history N (400000)] [--log-appends N (40000)]\n"
               "       [--notebook-history N (40)] [--notebook-max-rows N (4096)]\n");
  std::exit(why.empty() ? 0 : 64);
}

std::size_t count_of(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0') usage("bad number for " + flag + ": " + text);
  return static_cast<std::size_t>(v);
}

// Takes --flag=value and --flag value.
options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i], value;
    if (flag == "--help" || flag == "-h") usage("");
    if (flag.rfind("--", 0) != 0) usage("unknown argument " + flag);
    if (auto eq = flag.find('='); eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag.resize(eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      usage(flag + " needs a value");
    }
    lp::workload_sizes& s = o.sizes;
    if (flag == "--workloads") larder_bench::add_workloads(value, &o.workloads);
    else if (flag == "--epochs") o.epochs = count_of(flag, value);
    else if (flag == "--warmup") o.warmup = count_of(flag, value);
    else if (flag == "--seed") o.seed = count_of(flag, value);
    else if (flag == "--dir") o.dir = value;
    else if (flag == "--json") o.json_path = value;
    else if (flag == "--cache-entries") s.cache_entries = count_of(flag, value);
    else if (flag == "--cache-gets") s.cache_gets = count_of(flag, value);
    else if (flag == "--cache-keys") s.cache_keys = count_of(flag, value);
    else if (flag == "--graph-vertices") s.graph_vertices = count_of(flag, value);
    else if (flag == "--graph-degree") s.graph_degree = std::strtod(value.c_str(), nullptr);
    else if (flag == "--graph-sweep") s.graph_sweep = count_of(flag, value);
    else if (flag == "--log-keys") s.log_keys = count_of(flag, value);
    else if (flag == "--log-history") s.log_history = count_of(flag, value);
    else if (flag == "--log-appends") s.log_appends = count_of(flag, value);
    else if (flag == "--notebook-history") s.notebook_history = count_of(flag, value);
    else if (flag == "--notebook-max-rows") s.notebook_max_rows = count_of(flag, value);
    else usage("unknown option " + flag);
  }
  for (const std::string& w : o.workloads) {
    const auto& all = lp::workloads();
    if (std::none_of(all.begin(), all.end(), [&](const lp::workload_def& d) { return w == d.name; }))
      usage("unknown workload " + w);
  }
  if (o.epochs == 0) usage("--epochs must be at least 1");
  if (o.sizes.cache_entries < 2 || o.sizes.graph_vertices < 2 || o.sizes.log_keys == 0 || o.sizes.graph_degree < 1)
    usage("the cache and graph need 2 entries or vertices, the log a key, the graph a degree of 1");
  return o;
}

void check(const larder::status& s, const char* what) {
  if (s.ok()) return;
  std::fprintf(stderr, "larder_placement_bench: %s: %s\n", what, s.to_string().c_str());
  std::exit(1);
}

// Which pages of the heap any collect of the run reported.
class page_history {
 public:
  page_history(std::uintptr_t base, std::size_t bytes) : base_(base), words_((bytes / kPage + 63) / 64) {}
  // Marks the page at `address`; true when it was marked already.
  bool mark(std::uintptr_t address) {
    const std::size_t page = (address - base_) / kPage;
    const std::uint64_t bit = std::uint64_t{1} << (page % 64);
    const bool before = (words_[page / 64] & bit) != 0;
    words_[page / 64] |= bit;
    return before;
  }

 private:
  std::uintptr_t base_;
  std::vector<std::uint64_t> words_;
};

struct epoch_sample {
  double pages = 0, user_pages = 0, rewritten = 0, pods = 0;
  double ckpt_read = 0, ckpt_new_pages = 0, ckpt_bytes = 0;
  double work_ms = 0, collect_ms = 0, ckpt_ms = 0;
  std::map<std::string, double> pod_pages;  // by pod name; "(metadata)" for the metadata
};

struct run_result {
  std::vector<epoch_sample> epochs;
  std::vector<std::size_t> block_bytes;  // per kind
  std::vector<std::uint32_t> first_pod;  // per kind: the pod its first block went to
  std::vector<larder::placement_site> sites;
  std::vector<larder::pod_info> pods;
  std::string tracker;
  std::string outcome;
  double build_ms = 0, first_ckpt_ms = 0;
  std::size_t heap_bytes = 0;
};

// Ends an epoch: the collect, then a version.
epoch_sample end_epoch(larder::heap& h, page_history& history, std::size_t number) {
  std::set<std::uint32_t> not_user = {larder::kMetadataPod};
  std::map<std::uint32_t, std::string> names = {{larder::kMetadataPod, "(metadata)"}};
  for (const larder::pod_info& p : h.pods()) {
    names[p.id] = p.name;
    if (p.name == kPlacementRecordPod) not_user.insert(p.id);
  }
  epoch_sample s;
  larder::dirty_set written;
  auto start = larder_bench::bench_clock::now();
  check(h.collect_dirty(&written), "collect_dirty");
  s.collect_ms = larder_bench::millis(start, larder_bench::bench_clock::now());
  for (const larder::dirty_run& run : written.runs()) {
    const bool user = !not_user.contains(run.pod);
    for (std::uint32_t i = 0; i < run.pages; ++i) {
      const bool before = history.mark(run.start + i * kPage);
      s.user_pages += user ? 1 : 0;
      s.rewritten += user && before ? 1 : 0;
    }
    s.pages += run.pages;
    s.pod_pages[names[run.pod]] += run.pages;
  }
  for (std::uint32_t pod : written.pods()) s.pods += not_user.contains(pod) ? 0 : 1;
  larder::checkpoint_stats cs;
  start = larder_bench::bench_clock::now();
  check(larder::checkpoint(h, "epoch " + std::to_string(number), &cs), "checkpoint");
  s.ckpt_ms = larder_bench::millis(start, larder_bench::bench_clock::now());
  s.ckpt_read = static_cast<double>(cs.pages_considered);
  s.ckpt_new_pages = static_cast<double>(cs.new_chunks);
  s.ckpt_bytes = static_cast<double>(cs.bytes_stored);
  return s;
}

std::string file_stem(lp::way w) {
  switch (w) {
    case lp::way::one_pod: return "one_pod";
    case lp::way::hand: return "hand";
    case lp::way::automatic: return "auto";
  }
  return "way";
}

run_result run(const options& o, const lp::workload_def& def, std::size_t index, lp::way w) {
  const std::string path = o.dir + "/" + def.name + "-" + file_stem(w) + ".heap";
  larder::heap_options ho;
  ho.name = path;
  ho.mode = larder::open_mode::create;
  ho.reserve = kReserve;
  ho.placement = w == lp::way::automatic ? larder::placement_policy::sites : larder::placement_policy::off;
  run_result r;
  {
    larder::heap h;
    check(larder::heap::open(ho, &h), "opening the heap");
    check(h.start_tracking(), "start_tracking");
    r.tracker = larder::to_string(h.tracking());
    page_history history(reinterpret_cast<std::uintptr_t>(h.base()), h.reserve());
    lp::placer placer(h, w, def.kinds, index * 8);
    auto program = def.make(h, placer, o.sizes, o.seed);
    auto start = larder_bench::bench_clock::now();
    program->build();
    r.build_ms = larder_bench::millis(start, larder_bench::bench_clock::now());
    r.first_ckpt_ms = end_epoch(h, history, 0).ckpt_ms;  // the first version reads every page
    for (std::size_t e = 1; e <= o.warmup + o.epochs; ++e) {
      start = larder_bench::bench_clock::now();
      program->step();
      const double work_ms = larder_bench::millis(start, larder_bench::bench_clock::now());
      epoch_sample s = end_epoch(h, history, e);
      s.work_ms = work_ms;
      if (e > o.warmup) r.epochs.push_back(s);
    }
    check(larder::placement_sites(h, &r.sites), "placement_sites");
    r.pods = h.pods();
    r.heap_bytes = h.stats().mapped_size;
    for (std::size_t k = 0; k < def.kinds.size(); ++k) {
      r.block_bytes.push_back(placer.block_bytes(k));
      r.first_pod.push_back(placer.first_pod(k));
    }
    r.outcome = program->outcome();
    program.reset();
    check(h.close(), "close");
  }
  check(larder::heap::remove(larder::backing::file, path), "removing the heap");
  std::filesystem::remove_all(path + ".versions");
  return r;
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  if (v.empty()) return 0;
  return v.size() % 2 == 1 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

double median(const std::vector<epoch_sample>& samples, double epoch_sample::* field) {
  std::vector<double> v;
  for (const epoch_sample& s : samples) v.push_back(s.*field);
  return median_of(std::move(v));
}

double ratio(double a, double b) { return b > 0 ? a / b : 0; }

// The fields the table and the JSON summarise, with their JSON names.
struct field {
  const char* name;
  double epoch_sample::* member;
};
constexpr field kFields[] = {
    {"pages", &epoch_sample::pages},
    {"user_pages", &epoch_sample::user_pages},
    {"rewritten_pages", &epoch_sample::rewritten},
    {"pods_written", &epoch_sample::pods},
    {"checkpoint_pages_read", &epoch_sample::ckpt_read},
    {"checkpoint_new_pages", &epoch_sample::ckpt_new_pages},
    {"checkpoint_bytes", &epoch_sample::ckpt_bytes},
    {"work_ms", &epoch_sample::work_ms},
    {"collect_ms", &epoch_sample::collect_ms},
    {"checkpoint_ms", &epoch_sample::ckpt_ms},
};

// The kind a site serves, known by the pod its first block went to.
std::string kind_of(const lp::workload_def& def, const run_result& r, const larder::placement_site& site) {
  for (std::size_t k = 0; k < def.kinds.size(); ++k)
    if (r.first_pod[k] == site.first_pod) return def.kinds[k].name;
  return "(larder)";
}

// "node 64 B, key 64 B, ...", and whether the hot and cold kinds share a class.
bool describe_classes(const lp::workload_def& def, const run_result& r, std::string* text) {
  std::set<std::size_t> classes;
  for (std::size_t k = 0; k < def.kinds.size(); ++k) {
    const lp::kind_info& kind = def.kinds[k];
    if (kind.temperature == lp::role::other) continue;
    if (!text->empty()) *text += ", ";
    *text += std::string(kind.name) + (kind.temperature == lp::role::hot ? " (hot) " : " (cold) ") +
             std::to_string(r.block_bytes[k]) + " B";
    classes.insert(r.block_bytes[k]);
  }
  return classes.size() == 1;
}

json kinds_json(const lp::workload_def& def, const run_result& r) {
  json kinds = json::array();
  for (std::size_t k = 0; k < def.kinds.size(); ++k) {
    const lp::kind_info& kind = def.kinds[k];
    const char* temperature = kind.temperature == lp::role::hot    ? "hot"
                              : kind.temperature == lp::role::cold ? "cold"
                                                                   : "other";
    kinds.push_back({{"name", kind.name}, {"size", kind.size}, {"block_bytes", r.block_bytes[k]},
                     {"role", temperature}, {"hand_pod", kind.hand_pod}});
  }
  return kinds;
}

json run_json(const lp::workload_def& def, const run_result& r) {
  json medians, epochs = json::array();
  for (const field& f : kFields) medians[f.name] = median(r.epochs, f.member);
  for (const epoch_sample& s : r.epochs) {
    json e;
    for (const field& f : kFields) e[f.name] = s.*f.member;
    e["pod_pages"] = s.pod_pages;
    epochs.push_back(e);
  }
  // Per pod, over every epoch (0 where the pod was not written).
  std::set<std::string> written;
  for (const epoch_sample& s : r.epochs)
    for (const auto& [name, pages] : s.pod_pages) written.insert(name);
  medians["pod_pages"] = json::object();
  for (const std::string& name : written) {
    std::vector<double> pages;
    for (const epoch_sample& s : r.epochs) pages.push_back(s.pod_pages.contains(name) ? s.pod_pages.at(name) : 0);
    medians["pod_pages"][name] = median_of(std::move(pages));
  }
  json pods = json::array();
  for (const larder::pod_info& p : r.pods)
    pods.push_back(
        {{"id", p.id}, {"name", p.name}, {"bytes_in_use", p.bytes_in_use}, {"bytes_committed", p.bytes_committed}});
  json sites = json::array();
  for (const larder::placement_site& s : r.sites)
    sites.push_back({{"kind", kind_of(def, r, s)}, {"location", s.location}, {"block_bytes", s.block_bytes},
                     {"pod", s.pod_name}, {"first_pod", s.first_pod}, {"reason", larder::to_string(s.reason)},
                     {"write_rate", s.write_rate}, {"bytes", s.bytes}, {"epochs", s.epochs},
                     {"saving_bytes", s.saving_bytes}});
  return {{"median", medians},         {"epochs", epochs},
          {"build_ms", r.build_ms},     {"first_checkpoint_ms", r.first_ckpt_ms},
          {"heap_bytes", r.heap_bytes}, {"pods", pods},
          {"sites", sites}};
}

void print_header(const options& o) {
  utsname u{};
  ::uname(&u);
  std::printf("# larder_placement_bench: cpu %s; kernel %s %s; heaps in %s (%s); seed %llu\n",
              larder_bench::cpu_model().c_str(), u.sysname, u.release, o.dir.c_str(), o.file_system.c_str(),
              static_cast<unsigned long long>(o.seed));
  std::printf("# %zu warm-up epochs (not counted; placement decides at the end of the 4th collect), then %zu "
              "measured; medians over the measured epochs\n",
              o.warmup, o.epochs);
}

void print_workload(const lp::workload_def& def, const run_result& any, const options& o) {
  const lp::workload_sizes& s = o.sizes;
  std::string sizes;
  if (std::strcmp(def.name, "cache") == 0)
    sizes = std::to_string(s.cache_entries) + " entries, " + std::to_string(s.cache_gets) + " gets per epoch";
  else if (std::strcmp(def.name, "graph") == 0)
    sizes = std::to_string(s.graph_vertices) + " vertices, mean degree " +
            std::to_string(static_cast<long>(s.graph_degree + 0.5)) + " asked, " + std::to_string(s.graph_sweep) +
            " vertices swept per epoch";
  else if (std::strcmp(def.name, "log") == 0)
    sizes = std::to_string(s.log_keys) + " keys, " + std::to_string(s.log_history) + " records before, " +
            std::to_string(s.log_appends) + " appends per epoch";
  else
    sizes = std::to_string(s.notebook_history) + " cells before, 64-" + std::to_string(s.notebook_max_rows) +
            " rows per cell";
  std::string classes;
  const bool shared = describe_classes(def, any, &classes);
  std::printf("# %s: %s; %s (%s)\n#   blocks: %s: %s\n", def.name, def.summary, sizes.c_str(),
              any.outcome.c_str(), classes.c_str(),
              shared ? "the hot and cold kinds share one size class"
                     : "NOTE: the size classes already separate hot from cold kinds");
}

void print_table_head() {
  std::printf("\n%-9s %-8s %12s %12s %12s %11s %14s %9s\n", "workload", "way", "pages/epoch", "user/epoch",
              "rewritten", "ckpt pages", "ckpt bytes", "work ms");
}

void print_row(const char* workload, lp::way w, const run_result& r) {
  std::printf("%-9s %-8s %12.0f %12.0f %12.0f %11.0f %14.0f %9.1f\n", workload, lp::to_string(w),
              median(r.epochs, &epoch_sample::pages), median(r.epochs, &epoch_sample::user_pages),
              median(r.epochs, &epoch_sample::rewritten), median(r.epochs, &epoch_sample::ckpt_new_pages),
              median(r.epochs, &epoch_sample::ckpt_bytes), median(r.epochs, &epoch_sample::work_ms));
}

json ratios(const run_result& one, const run_result& hand, const run_result& automatic) {
  json out;
  for (const field& f : kFields) {
    const double a = median(automatic.epochs, f.member);
    out["one_pod_over_auto"][f.name] = ratio(median(one.epochs, f.member), a);
    out["auto_over_hand"][f.name] = ratio(a, median(hand.epochs, f.member));
  }
  return out;
}

void print_ratios(const json& all) {
  std::printf("\n%-9s %30s   %30s\n", "", "one pod / auto (>= 5x wanted)", "auto / hand (<= 1.2x wanted)");
  std::printf("%-9s %9s %9s %10s   %9s %9s %10s\n", "workload", "pages", "user", "ckpt bytes", "pages", "user",
              "ckpt bytes");
  for (const auto& [name, w] : all.items()) {
    const json& r = w["ratios"];
    std::printf("%-9s %8.2fx %8.2fx %9.2fx   %8.2fx %8.2fx %9.2fx\n", name.c_str(),
                r["one_pod_over_auto"]["pages"].get<double>(), r["one_pod_over_auto"]["user_pages"].get<double>(),
                r["one_pod_over_auto"]["checkpoint_bytes"].get<double>(), r["auto_over_hand"]["pages"].get<double>(),
                r["auto_over_hand"]["user_pages"].get<double>(), r["auto_over_hand"]["checkpoint_bytes"].get<double>());
  }
}

void print_sites(const lp::workload_def& def, const run_result& r) {
  std::printf("# %s, auto: ", def.name);
  for (std::size_t i = 0; i < r.sites.size(); ++i) {
    const larder::placement_site& s = r.sites[i];
    std::printf("%s%s %u B -> %s (%s, rate %.2f)", i == 0 ? "" : "; ", kind_of(def, r, s).c_str(), s.block_bytes,
                s.pod_name.c_str(), larder::to_string(s.reason), s.write_rate);
  }
  std::printf("\n");
}

json settings_json(const options& o) {
  const lp::workload_sizes& s = o.sizes;
  return {{"epochs", o.epochs},
          {"warmup", o.warmup},
          {"seed", o.seed},
          {"dir", o.dir},
          {"file_system", o.file_system},
          {"cache_entries", s.cache_entries},
          {"cache_gets", s.cache_gets},
          {"cache_keys", s.cache_keys},
          {"graph_vertices", s.graph_vertices},
          {"graph_degree", s.graph_degree},
          {"graph_sweep", s.graph_sweep},
          {"log_keys", s.log_keys},
          {"log_history", s.log_history},
          {"log_appends", s.log_appends},
          {"notebook_history", s.notebook_history},
          {"notebook_max_rows", s.notebook_max_rows}};
}

// Runs one workload all three ways; its numbers go into `entry`.
std::vector<run_result> run_workload(const options& o, const lp::workload_def& def, std::size_t index, json* entry) {
  std::vector<run_result> runs;
  for (lp::way w : kWays) runs.push_back(run(o, def, index, w));
  print_workload(def, runs[0], o);
  std::fflush(stdout);
  std::string classes;
  (*entry)["summary"] = def.summary;
  (*entry)["shared_size_class"] = describe_classes(def, runs[0], &classes);
  (*entry)["kinds"] = kinds_json(def, runs[0]);
  for (std::size_t w = 0; w < std::size(kWays); ++w) (*entry)["ways"][file_stem(kWays[w])] = run_json(def, runs[w]);
  (*entry)["ratios"] = ratios(runs[0], runs[1], runs[2]);
  (*entry)["tracker"] = runs[0].tracker;
  (*entry)["outcome"] = runs[0].outcome;
  return runs;
}

bool write_json(const options& o, json results) {
  utsname u{};
  ::uname(&u);
  results["machine"] = {{"cpu", larder_bench::cpu_model()}, {"kernel", u.release}};
  results["settings"] = settings_json(o);
  std::ofstream out(o.json_path);
  out << results.dump(2) << "\n";
  if (out) return true;
  std::fprintf(stderr, "larder_placement_bench: cannot write %s\n", o.json_path.c_str());
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  options o = parse(argc, argv);
  const bool own_dir = o.dir.empty();
  if (own_dir && (o.dir = larder_bench::make_scratch_dir("larder-placement")).empty()) {
    std::fprintf(stderr, "larder_placement_bench: cannot make a scratch folder under /tmp\n");
    return 1;
  }
  o.file_system = larder_bench::file_system_of(o.dir);
  print_header(o);
  json results;
  std::vector<std::pair<const lp::workload_def*, std::vector<run_result>>> done;
  const auto& all = lp::workloads();
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (!o.workloads.empty() && !o.workloads.contains(all[i].name)) continue;
    done.emplace_back(&all[i], run_workload(o, all[i], i, &results["workloads"][all[i].name]));
  }
  print_table_head();
  for (const auto& [def, runs] : done)
    for (std::size_t w = 0; w < std::size(kWays); ++w) print_row(def->name, kWays[w], runs[w]);
  print_ratios(results["workloads"]);
  std::printf("\n");
  for (const auto& [def, runs] : done) print_sites(*def, runs[2]);
  if (own_dir) std::filesystem::remove_all(o.dir);
  return o.json_path.empty() || write_json(o, std::move(results)) ? 0 : 1;
}
