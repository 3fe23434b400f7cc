// larder: inspect, check, recover and remove heaps from the command line.
//
//   larder info  HEAP    superblock facts, usage and undo-log lanes
//   larder roots HEAP    the named roots
//   larder pods  HEAP [--graph [FILE]]
//                        the pods and their usage, or the references between them
//   larder stat  HEAP [--interval S [--count N]]
//                        pages written per pod, from page-write tracking
//   larder create HEAP [--reserve BYTES]
//   larder check HEAP [--repair]
//                        verify every on-media structure; --repair rebuilds
//                        what the rest determines
//   larder salvage HEAP OUT
//                        copy every root whose objects are intact into a new heap
//   larder recover HEAP  roll back what a crash left, now (a writer open does it too)
//   larder rm HEAP       remove a heap no process has open for writing
//   larder crashtest [--every | --random N | --kill N] ... -- PROGRAM ARGS...
//                        crash PROGRAM at its persistence points, check recovery
//   larder checkpoint HEAP -m MSG    record a version (docs/versions.md)
//   larder log HEAP [--all]          versions from HEAD back
//   larder checkout HEAP VERSION     make the heap equal to a version
//   larder versions verify|gc|du HEAP, versions delete HEAP VERSION [--force]
//                        the version store's housekeeping
//   larder diff HEAP A [B]           what differs between versions, or A and the heap
//   larder tag|branch HEAP [NAME [VERSION]] [-d]
//                        list, create or delete tags and branches
//   larder push HEAP|STORE REMOTE [VERSION|--all]
//   larder pull REMOTE HEAP|STORE [VERSION|--all]
//                        copy versions between stores, only missing chunks sent
//
// HEAP is a file path, or a shm object name starting with "/" given with
// --shm. Inspection opens the heap read-only, so it works while another
// process has it open for writing; listings take --json. Exit codes: 0 ok,
// 1 damaged, 2 cannot run, 64 usage (output.hpp). See docs/tools/larder.md.
#include <larder/check.hpp>
#include <larder/larder.hpp>
#include <larder/versions.hpp>

#include "clone_command.hpp"
#include "crashtest_command.hpp"
#include "graph_output.hpp"
#include "history_command.hpp"
#include "output.hpp"
#include "placement_output.hpp"
#include "salvage_command.hpp"
#include "store_command.hpp"
#include "transfer_command.hpp"
#include "versions_command.hpp"

#include <CLI/CLI.hpp>

#include <chrono>
#include <filesystem>
#include <cstdio>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using larder_tool::placement_line;
using larder_tool::placement_sites_json;
using larder_tool::placement_sites_or_warn;
using larder_tool::print_placement_sites;
using larder_tool::human_size;
using larder_tool::json;
using larder_tool::print_json;
using larder_tool::printable;

std::string address(const void* p) {
  char text[32];
  std::snprintf(text, sizeof(text), "%p", p);
  return text;
}

struct target {
  std::string name;
  bool shm = false;
  std::string version, store;  // --version, --store: one version, read from the store
};

larder::heap open_heap(const target& t, bool read_only) {
  larder::heap_options options;
  options.kind = t.shm ? larder::backing::shm : larder::backing::file;
  options.name = t.name;
  options.mode = larder::open_mode::open;
  options.read_only = read_only;
  if (t.version.empty()) return larder::heap(options);
  larder::heap h;
  larder::throw_if_error(larder::open_version(t.store.empty() ? t.name + ".versions" : t.store, t.version, &h));
  return h;
}

void add_target(CLI::App* command, target* t) {
  command->add_option("heap", t->name, "heap file path (or shm name with --shm)")->required();
  command->add_flag("--shm", t->shm, "HEAP names a POSIX shared-memory object");
}

// "unknown" for a time of 0 (docs/format/heap.md: a heap before format 1.4).
std::string time_or_unknown(std::uint64_t ns) { return ns == 0 ? "unknown" : larder_tool::utc_time(ns); }

json lane_json(const larder::lane_info& l) {
  json j = {{"lane", l.index}, {"state", larder::to_string(l.state)}, {"last_finished", l.last_finished},
            {"last_finished_time", time_or_unknown(l.last_finished_ns)}, {"last_finished_ns", l.last_finished_ns},
            {"extents", l.extents}, {"log_bytes", l.log_bytes}};
  if (l.state == larder::lane_state::pending_transaction || l.state == larder::lane_state::interrupted_close) {
    j["pending_seq"] = l.pending_seq;
    j["pending_records"] = l.pending_records;
    j["pending_bytes"] = l.pending_bytes;
  }
  if (l.state == larder::lane_state::damaged) j["problem"] = l.problem;
  return j;
}

// One line: "  lane 3    clean; last finished 12 at ...; log 1 extent, 4 MiB".
std::string lane_line(const larder::lane_info& l, bool live_writer) {
  std::string text = "  lane " + std::to_string(l.index);
  text.resize(12, ' ');
  text += larder::to_string(l.state);
  switch (l.state) {
    case larder::lane_state::pending_transaction:
      text += " " + std::to_string(l.pending_seq) + " (" + std::to_string(l.pending_records) + " records, " +
              human_size(l.pending_bytes) + " of log)" +
              (live_writer ? ": in flight" : ": the next writer open rolls it back");
      break;
    case larder::lane_state::interrupted_close:
      text += " (journal " + std::to_string(l.pending_seq) + ", " + std::to_string(l.pending_records) + " records, " +
              human_size(l.pending_bytes) + "): the next writer open completes it";
      break;
    case larder::lane_state::damaged: text += ": " + printable(l.problem); break;
    default: break;
  }
  if (l.last_finished != 0)
    text += "; last finished " + std::to_string(l.last_finished) + " at " + time_or_unknown(l.last_finished_ns);
  text += "; log " + std::to_string(l.extents) + (l.extents == 1 ? " extent, " : " extents, ") + human_size(l.log_bytes);
  return text;
}

// Tier migration (docs/tiers.md): the policy the heap records and what
// its pod pages are doing now.
json migration_json(const larder::heap& h) {
  larder::migration_policy p = larder::migration_policy_of(h);
  larder::migration_stats m = larder::migration_info(h);
  json tiers = json::array();
  for (const auto& t : m.tiers)
    tiers.push_back({{"kind", larder::to_string(t.kind)}, {"path", t.path}, {"capacity", t.capacity_bytes},
                     {"used", t.used_bytes}});
  return {{"dram_budget", p.dram_budget}, {"prefetch_pod", p.prefetch_pod}, {"tiers", tiers},
          {"resident_bytes", m.resident_bytes}, {"evicted_bytes", m.evicted_bytes}};
}

// "budget 2.5 MiB, disk tier /x (1 GiB); resident 2.4 MiB, evicted 7.6 MiB".
std::string migration_line(const larder::heap& h) {
  larder::migration_policy p = larder::migration_policy_of(h);
  larder::migration_stats m = larder::migration_info(h);
  std::string text = p.dram_budget != 0 ? "budget " + human_size(p.dram_budget) : "no budget";
  for (const auto& t : m.tiers)
    text += std::string(", ") + larder::to_string(t.kind) + " tier " + printable(t.path) +
            (t.capacity_bytes != 0 ? " (" + human_size(t.capacity_bytes) + ")" : "");
  return text + "; pod pages resident " + human_size(m.resident_bytes) + ", evicted " + human_size(m.evicted_bytes);
}

int info(const target& t, bool as_json) {
  larder::heap h = open_heap(t, true);
  larder::heap_stats st = h.stats();
  std::vector<larder::lane_info> lanes = h.lanes();
  std::string writer = st.writer_pid > 0 ? "process " + std::to_string(st.writer_pid) : "another process";
  std::string view = st.beside_live_writer ? "live: " + writer + " has it open for writing"
                     : st.private_rollback ? "a private copy with what a crash left recovered"
                                           : "as stored";
  std::vector<larder::client_info> clients = h.clients();
  if (as_json) {
    json lane_list = json::array();
    for (const auto& l : lanes) lane_list.push_back(lane_json(l));
    json client_list = json::array();
    for (const auto& c : clients)
      client_list.push_back({{"client", c.client}, {"pid", c.pid}, {"alive", c.alive},
                             {"attached", time_or_unknown(c.attached_ns)}, {"attached_ns", c.attached_ns}});
    print_json({{"heap", t.name}, {"uuid", h.uuid()}, {"base", address(h.base())},
                {"format", std::to_string(st.format_major) + "." + std::to_string(st.format_minor)},
                {"created", larder_tool::utc_time(st.created_ns)}, {"created_ns", st.created_ns},
                {"last_close", time_or_unknown(st.last_close_ns)}, {"last_close_ns", st.last_close_ns},
                {"reserve", st.reserve}, {"size", st.mapped_size}, {"segments_in_use", st.segments_in_use},
                {"pods", st.pods}, {"roots", st.roots}, {"lanes_in_use", st.lanes_in_use}, {"lanes", lane_list},
                {"shared_writers", client_list}, {"persistence", h.persistence_domain()}, {"view", view},
                {"migration", migration_json(h)},
                {"writer_pid", st.beside_live_writer && st.writer_pid > 0 ? json(st.writer_pid) : json(nullptr)}});
    return 0;
  }
  std::printf("heap        %s\nuuid        %s\nbase        %p\nformat      %u.%u\ncreated     %s\n"
              "last close  %s\nreserve     %s\nsize        %s\nsegments    %zu in use\npods        %zu\n"
              "roots       %zu\nlanes       %zu in use\n",
              printable(t.name).c_str(), h.uuid().c_str(), h.base(), st.format_major, st.format_minor,
              larder_tool::utc_time(st.created_ns).c_str(), time_or_unknown(st.last_close_ns).c_str(),
              human_size(st.reserve).c_str(), human_size(st.mapped_size).c_str(), st.segments_in_use, st.pods,
              st.roots, st.lanes_in_use);
  for (const auto& l : lanes) std::printf("%s\n", lane_line(l, st.beside_live_writer).c_str());
  if (!clients.empty()) std::printf("writers     %zu shared writers\n", clients.size());
  for (const auto& c : clients)
    std::printf("  client %-3u process %d, attached %s%s\n", c.client, c.pid, time_or_unknown(c.attached_ns).c_str(),
                c.alive ? "" : " (dead: the next client to attach recovers it)");
  std::printf("migration   %s\n", migration_line(h).c_str());
  std::printf("view        %s\n", view.c_str());
  return 0;
}

int roots(const target& t, bool as_json) {
  larder::heap h = open_heap(t, true);
  if (as_json) {
    json list = json::array();
    for (const auto& r : h.roots()) list.push_back({{"name", r.name}, {"size", r.size}, {"address", address(r.object)}});
    print_json(list);
    return 0;
  }
  for (const auto& r : h.roots())
    std::printf("%-40s %12zu bytes at %p\n", printable(r.name).c_str(), r.size, r.object);
  return 0;
}

// `graph`: --graph was given, writing to `graph_file` (stdout when empty).
int pods(const target& t, bool as_json, bool graph, const std::string& graph_file) {
  larder::heap h = open_heap(t, true);
  if (graph) return larder_tool::write_pod_graph(h, graph_file, as_json);
  const std::vector<larder::placement_site> sites = placement_sites_or_warn(h);
  if (as_json) {
    json list = json::array();
    for (const auto& p : h.pods())
      list.push_back({{"id", p.id}, {"name", p.name}, {"bytes_in_use", p.bytes_in_use}, {"bytes_held", p.bytes_committed},
                      {"placed_sites", placement_sites_json(sites, p.id)}});
    print_json(list);
    return 0;
  }
  std::printf("%-6s %-30s %14s %14s\n", "id", "name", "in use", "held");
  for (const auto& p : h.pods())
    std::printf("%-6u %-30s %14s %14s\n", p.id, printable(p.name).c_str(), human_size(p.bytes_in_use).c_str(),
                human_size(p.bytes_committed).c_str());
  print_placement_sites(sites);
  return 0;
}

void print_write_stats(const larder::write_stats& s) {
  if (s.backend != larder::tracker_backend::none)
    std::printf("tracked by pid %d with %s; epoch %llu, last epoch %.3f s, current epoch %.3f s so far\n", s.pid,
                larder::to_string(s.backend), static_cast<unsigned long long>(s.epoch), s.last_epoch_seconds,
                s.current_epoch_seconds);
  else if (s.epoch != 0)
    std::printf("not tracked now; %llu epochs recorded, the last %.3f s long\n",
                static_cast<unsigned long long>(s.epoch), s.last_epoch_seconds);
  else
    std::printf("never tracked (larder::heap::start_tracking records statistics here)\n");
  if (s.epoch == 0) return;
  std::printf("%-10s %-24s %12s %12s %14s %12s %8s\n", "pod", "name", "last epoch", "MiB", "pages/s", "total",
              "epochs");
  auto row = [&](const char* id, const std::string& name, std::uint64_t last, std::uint64_t total,
                 std::uint64_t epochs) {
    double rate = s.last_epoch_seconds > 0 ? static_cast<double>(last) / s.last_epoch_seconds : 0.0;
    std::printf("%-10s %-24s %12llu %12.2f %14.0f %12llu %8llu\n", id, printable(name).c_str(),
                static_cast<unsigned long long>(last), static_cast<double>(last) * 4096 / (1 << 20), rate,
                static_cast<unsigned long long>(total), static_cast<unsigned long long>(epochs));
  };
  for (const auto& p : s.pods) {
    std::string id = p.pod == larder::kMetadataPod ? "-" : std::to_string(p.pod);
    row(id.c_str(), p.name, p.pages_last_epoch, p.pages_total, p.epochs_written);
  }
  row("", "all pods", s.pages_last_epoch, s.pages_total, s.epoch);
}

json write_stats_json(const larder::write_stats& s) {
  json pods = json::array();
  for (const auto& p : s.pods)
    pods.push_back({{"pod", p.pod == larder::kMetadataPod ? json(nullptr) : json(p.pod)}, {"name", p.name},
                    {"pages_last_epoch", p.pages_last_epoch}, {"pages_total", p.pages_total},
                    {"epochs_written", p.epochs_written}});
  return {{"backend", larder::to_string(s.backend)}, {"pid", s.pid}, {"epoch", s.epoch},
          {"last_epoch_seconds", s.last_epoch_seconds}, {"current_epoch_seconds", s.current_epoch_seconds},
          {"pages_last_epoch", s.pages_last_epoch}, {"pages_total", s.pages_total}, {"pods", pods}};
}

// With an interval: what was collected meanwhile, per pod, per second.
int stat(const target& t, double interval, int count, bool as_json) {
  larder::heap h = open_heap(t, true);
  larder::write_stats previous = h.write_statistics();
  if (as_json) {
    json first = write_stats_json(previous);
    first["migration"] = migration_json(h);
    first["placement"] = placement_line(placement_sites_or_warn(h));
    print_json(first);
    for (int i = 0; interval > 0 && (count == 0 || i < count); ++i) {
      std::this_thread::sleep_for(std::chrono::duration<double>(interval));
      print_json(write_stats_json(h.write_statistics()));
      std::fflush(stdout);
    }
    return 0;
  }
  print_write_stats(previous);
  std::printf("migration: %s\n", migration_line(h).c_str());
  std::printf("placement: %s\n", placement_line(placement_sites_or_warn(h)).c_str());
  for (int i = 0; interval > 0 && (count == 0 || i < count); ++i) {
    std::this_thread::sleep_for(std::chrono::duration<double>(interval));
    larder::write_stats now = h.write_statistics();
    std::map<std::uint32_t, std::uint64_t> before;
    for (const auto& p : previous.pods) before[p.pod] = p.pages_total;
    std::printf("-- %.1f s: %llu epochs collected, %llu pages written (%.0f pages/s)\n", interval,
                static_cast<unsigned long long>(now.epoch - previous.epoch),
                static_cast<unsigned long long>(now.pages_total - previous.pages_total),
                static_cast<double>(now.pages_total - previous.pages_total) / interval);
    for (const auto& p : now.pods) {
      std::uint64_t delta = p.pages_total - before[p.pod];
      if (delta != 0)
        std::printf("   %-24s %12llu pages %14.0f pages/s\n", printable(p.name).c_str(),
                    static_cast<unsigned long long>(delta),
                    static_cast<double>(delta) / interval);
    }
    std::fflush(stdout);
    previous = now;
  }
  return 0;
}

// Exit status: 0 clean, 1 damaged (problems remain), 2 when the check could
// not run (no such heap, I/O error, busy).
int check(const target& t, bool repair, bool as_json) {
  larder::check_report r;
  larder::status s = larder::check_heap(t.shm ? larder::backing::shm : larder::backing::file, t.name, repair, &r);
  if (as_json) {
    json out = {{"heap", t.name}, {"ok", s.ok()}, {"clean", s.ok() && r.clean()}, {"problems", r.problems},
                {"notes", r.notes}, {"repairs", r.repairs}, {"segments", r.segments}, {"pages", r.pages},
                {"blocks_in_use", r.blocks_in_use}, {"bytes_in_use", r.bytes_in_use}, {"roots", r.roots},
                {"pods", r.pods}, {"lanes", r.lanes}, {"pending_transactions", r.pending_transactions},
                {"quarantined_pages", r.quarantined_pages}, {"quarantined_bytes", r.quarantined_bytes},
                {"interrupted_closes", r.interrupted_closes}};
    if (!s.ok()) out["error"] = s.to_string();
    print_json(out);
    return !s.ok() ? larder_tool::kExitCannotRun : r.clean() ? larder_tool::kExitOk : larder_tool::kExitDamaged;
  }
  for (const auto& p : r.problems) std::printf("problem: %s\n", printable(p).c_str());
  for (const auto& n : r.notes) std::printf("note: %s\n", printable(n).c_str());
  for (const auto& x : r.repairs) std::printf("repaired: %s\n", printable(x).c_str());
  if (!s.ok()) {
    std::fprintf(stderr, "larder: %s\n", printable(s.to_string()).c_str());
    return larder_tool::kExitCannotRun;
  }
  std::printf("%s: %s, %zu problems, %zu notes, %zu repairs\n"
              "segments %zu, pages %zu, blocks in use %zu (%s), roots %zu, pods %zu, lanes %zu, "
              "pending transactions %zu, interrupted closes %zu\n",
              printable(t.name).c_str(), r.clean() ? "clean" : "DAMAGED", r.problems.size(), r.notes.size(),
              r.repairs.size(), r.segments, r.pages, r.blocks_in_use, human_size(r.bytes_in_use).c_str(), r.roots,
              r.pods, r.lanes, r.pending_transactions, r.interrupted_closes);
  if (r.quarantined_pages != 0)
    std::printf("quarantined: %zu pages (%s) set aside by a repair\n", r.quarantined_pages,
                human_size(r.quarantined_bytes).c_str());
  return r.clean() ? larder_tool::kExitOk : larder_tool::kExitDamaged;
}

// Opening for writing recovers; the checker, read-only before, says what
// there was to recover.
int recover(const target& t) {
  larder::check_report before;
  larder::status s = larder::check_heap(t.shm ? larder::backing::shm : larder::backing::file, t.name, false, &before);
  if (!s.ok()) {
    std::fprintf(stderr, "larder: %s\n", printable(s.to_string()).c_str());
    return larder_tool::exit_code_of(s);
  }
  larder::heap h = open_heap(t, false);
  if (larder::status closed = h.close(); !closed.ok()) {
    std::fprintf(stderr, "larder: %s\n", printable(closed.to_string()).c_str());
    return larder_tool::exit_code_of(closed);
  }
  std::printf("%s: recovered: %zu pending transactions rolled back, %zu interrupted closes completed\n",
              printable(t.name).c_str(), before.pending_transactions, before.interrupted_closes);
  return larder_tool::kExitOk;
}

int remove_heap(const target& t) {
  larder::status s = larder::heap::remove(t.shm ? larder::backing::shm : larder::backing::file, t.name);
  if (!s.ok()) {
    std::fprintf(stderr, "larder: %s\n", printable(s.to_string()).c_str());
    return larder_tool::exit_code_of(s);
  }
  std::printf("removed %s\n", printable(t.name).c_str());
  return larder_tool::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"larder: inspect, check, recover and create larder heaps"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("larder ") + larder::version());
  target t;
  std::size_t reserve = std::size_t{64} << 30;
  bool as_json = false;
  auto* info_cmd = app.add_subcommand("info", "superblock facts, usage and undo-log lanes");
  auto* roots_cmd = app.add_subcommand("roots", "list the named roots");
  auto* pods_cmd = app.add_subcommand("pods", "list the pods and their usage");
  auto* stat_cmd = app.add_subcommand("stat", "pages written per pod, as recorded by page-write tracking");
  auto* create_cmd = app.add_subcommand("create", "create an empty heap");
  auto* check_cmd = app.add_subcommand("check", "verify the heap's on-media structures (read-only unless --repair)");
  auto* recover_cmd = app.add_subcommand("recover", "roll back what a crash left (opening for writing does it too)");
  auto* rm_cmd = app.add_subcommand("rm", "remove a heap's file or shm object (refused while a writer has it open)");
  for (auto* c : {info_cmd, roots_cmd, pods_cmd, stat_cmd, create_cmd, check_cmd, recover_cmd, rm_cmd}) add_target(c, &t);
  for (auto* c : {info_cmd, roots_cmd, pods_cmd, stat_cmd, check_cmd})
    c->add_flag("--json", as_json, "print JSON instead of text");
  for (auto* c : {roots_cmd, pods_cmd}) {
    c->add_option("--version", t.version, "show this version, read from the version store, instead of the heap");
    c->add_option("--store", t.store, "the version store of --version (default: HEAP.versions)");
  }
  std::string graph_file;
  CLI::Option* graph = pods_cmd
                           ->add_option("--graph", graph_file,
                                        "print the references between pods in DOT (--json: as JSON) to FILE, or "
                                        "stdout when none or -")
                           ->expected(0, 1);
  double interval = 0;
  int count = 0;
  stat_cmd->add_option("--interval", interval, "sample again every SECONDS and show the rates meanwhile")
      ->check(CLI::PositiveNumber);
  stat_cmd->add_option("--count", count, "stop after N samples (default: until interrupted)")->check(CLI::NonNegativeNumber);
  create_cmd->add_option("--reserve", reserve, "address space to reserve, in bytes");
  bool repair = false;
  check_cmd->add_flag("--repair", repair,
                      "rewrite what the rest of the heap determines (superblock copy, records, recovery, segment "
                      "headers, pages, free lists), quarantine what it does not, check again");
  crashtest_command crashtest(app);
  salvage_command salvage(app);
  versions_command versions(app);
  history_command history(app);
  clone_command clone(app);
  store_command store(app);
  transfer_command transfer(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? larder_tool::kExitOk : larder_tool::kExitUsage;
  }
  if (crashtest.chosen()) return crashtest.run();
  if (*check_cmd) return check(t, repair, as_json);
  if (salvage.chosen()) return salvage.run();
  if (versions.chosen()) return versions.run();
  if (history.chosen()) return history.run();
  if (clone.chosen()) return clone.run();
  if (store.chosen()) return store.run();
  if (transfer.chosen()) return transfer.run();
  if (*rm_cmd) return remove_heap(t);
  try {
    if (*info_cmd) return info(t, as_json);
    if (*roots_cmd) return roots(t, as_json);
    if (*pods_cmd) return pods(t, as_json, graph->count() != 0, graph_file);
    if (*stat_cmd) return stat(t, interval, count, as_json);
    if (*recover_cmd) return recover(t);
    larder::heap_options options;
    options.kind = t.shm ? larder::backing::shm : larder::backing::file;
    options.name = t.name;
    options.mode = larder::open_mode::create;
    options.reserve = reserve;
    larder::heap h(options);
    std::printf("created %s (uuid %s) at %p\n", printable(t.name).c_str(), h.uuid().c_str(), h.base());
    return larder_tool::kExitOk;
  } catch (const larder::error& e) {
    std::fprintf(stderr, "larder: %s\n", printable(e.what()).c_str());
    return larder_tool::exit_code_of(e.result());
  }
}
