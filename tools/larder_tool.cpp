// larder: inspect heaps from the command line.
//
//   larder info  HEAP    superblock facts and usage
//   larder roots HEAP    the named roots
//   larder pods  HEAP    the pods and their usage
//   larder stat  HEAP [--interval S [--count N]]
//                        pages written per pod, from page-write tracking
//   larder create HEAP [--reserve BYTES]
//   larder check HEAP [--repair]
//                        verify every on-media structure (exit 0 clean, 1 damaged)
//   larder crashtest [--every | --random N | --kill N] ... -- PROGRAM ARGS...
//                        crash PROGRAM at its persistence points, check recovery
//
// HEAP is a file path, or a shm object name starting with "/" given with
// --shm. Inspection opens the heap read-only, so it works while another
// process has it open for writing. See docs/tools/larder.md.
#include <larder/check.hpp>
#include <larder/larder.hpp>

#include "crashtest_command.hpp"

#include <CLI/CLI.hpp>

#include <chrono>
#include <filesystem>
#include <cstdio>
#include <map>
#include <string>
#include <string_view>
#include <thread>

namespace {

// Names come from the heap (or the command line) and may hold any bytes:
// control characters, including a terminal's escape sequences and line
// breaks, and bytes that are not UTF-8, are shown as \xHH (\n, \t, \r and
// \\ for the common ones) so that a listing shows what is there and one
// name stays on one line.
std::string printable(std::string_view name) {
  std::string out;
  auto escape = [&](unsigned char byte) {
    static constexpr char kHex[] = "0123456789abcdef";
    switch (byte) {
      case '\n': out += "\\n"; return;
      case '\t': out += "\\t"; return;
      case '\r': out += "\\r"; return;
      case '\\': out += "\\\\"; return;
      default: break;
    }
    out += "\\x";
    out += kHex[byte >> 4];
    out += kHex[byte & 15];
  };
  for (std::size_t i = 0; i < name.size();) {
    auto byte = static_cast<unsigned char>(name[i]);
    if (byte >= 0x20 && byte < 0x7f && byte != '\\') {
      out += static_cast<char>(byte);
      ++i;
      continue;
    }
    // A well-formed UTF-8 sequence is kept, except for the C1 controls
    // (U+0080..U+009F), which some terminals obey as escapes.
    std::size_t length = byte >= 0xc2 && byte <= 0xdf ? 2 : byte >= 0xe0 && byte <= 0xef ? 3
                       : byte >= 0xf0 && byte <= 0xf4 ? 4 : 0;
    bool valid = length != 0 && i + length <= name.size();
    for (std::size_t k = 1; valid && k < length; ++k) valid = (static_cast<unsigned char>(name[i + k]) & 0xc0) == 0x80;
    if (valid) {
      auto second = static_cast<unsigned char>(name[i + 1]);
      if ((byte == 0xc2 && second < 0xa0) || (byte == 0xe0 && second < 0xa0) || (byte == 0xed && second >= 0xa0) ||
          (byte == 0xf0 && second < 0x90) || (byte == 0xf4 && second >= 0x90))
        valid = false;  // C1 control, overlong form, surrogate, or past U+10FFFF
    }
    if (valid) {
      out.append(name.substr(i, length));
      i += length;
    } else {
      escape(byte);
      ++i;
    }
  }
  return out;
}

struct target {
  std::string name;
  bool shm = false;
};

larder::heap open_heap(const target& t, bool read_only) {
  larder::heap_options options;
  options.kind = t.shm ? larder::backing::shm : larder::backing::file;
  options.name = t.name;
  options.mode = larder::open_mode::open;
  options.read_only = read_only;
  return larder::heap(options);
}

void add_target(CLI::App* command, target* t) {
  command->add_option("heap", t->name, "heap file path (or shm name with --shm)")->required();
  command->add_flag("--shm", t->shm, "HEAP names a POSIX shared-memory object");
}

int info(const target& t) {
  larder::heap h = open_heap(t, true);
  larder::heap_stats st = h.stats();
  std::printf("heap        %s\nuuid        %s\nbase        %p\nreserve     %zu MiB\nsize        %zu MiB\n"
              "segments    %zu in use\npods        %zu\nroots       %zu\n",
              printable(t.name).c_str(), h.uuid().c_str(), h.base(), st.reserve >> 20, st.mapped_size >> 20,
              st.segments_in_use, st.pods, st.roots);
  return 0;
}

int roots(const target& t) {
  larder::heap h = open_heap(t, true);
  for (const auto& r : h.roots())
    std::printf("%-40s %12zu bytes at %p\n", printable(r.name).c_str(), r.size, r.object);
  return 0;
}

int pods(const target& t) {
  // Usage figures need the heap's page state, which only a writer rebuilds.
  larder::heap h = open_heap(t, false);
  std::printf("%-6s %-30s %14s %14s\n", "id", "name", "bytes in use", "bytes held");
  for (const auto& p : h.pods())
    std::printf("%-6u %-30s %14zu %14zu\n", p.id, printable(p.name).c_str(), p.bytes_in_use, p.bytes_committed);
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

// With an interval: what was collected meanwhile, per pod, per second.
int stat(const target& t, double interval, int count) {
  larder::heap h = open_heap(t, true);
  larder::write_stats previous = h.write_statistics();
  print_write_stats(previous);
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
int check(const target& t, bool repair) {
  larder::check_report r;
  larder::status s = larder::check_heap(t.shm ? larder::backing::shm : larder::backing::file, t.name, repair, &r);
  for (const auto& p : r.problems) std::printf("problem: %s\n", printable(p).c_str());
  for (const auto& n : r.notes) std::printf("note: %s\n", printable(n).c_str());
  for (const auto& x : r.repairs) std::printf("repaired: %s\n", printable(x).c_str());
  if (!s.ok()) {
    std::fprintf(stderr, "larder: %s\n", printable(s.to_string()).c_str());
    return 2;
  }
  std::printf("%s: %s, %zu problems, %zu notes, %zu repairs\n"
              "segments %zu, pages %zu, blocks in use %zu (%zu bytes), roots %zu, pods %zu, lanes %zu, "
              "pending transactions %zu\n",
              printable(t.name).c_str(), r.clean() ? "clean" : "DAMAGED", r.problems.size(), r.notes.size(),
              r.repairs.size(),
              r.segments, r.pages, r.blocks_in_use, r.bytes_in_use, r.roots, r.pods, r.lanes, r.pending_transactions);
  return r.clean() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"larder: inspect and create larder heaps"};
  app.require_subcommand(1);
  target t;
  std::size_t reserve = std::size_t{64} << 30;
  auto* info_cmd = app.add_subcommand("info", "superblock facts and usage");
  auto* roots_cmd = app.add_subcommand("roots", "list the named roots");
  auto* pods_cmd = app.add_subcommand("pods", "list the pods and their usage (opens for writing)");
  auto* stat_cmd = app.add_subcommand("stat", "pages written per pod, as recorded by page-write tracking");
  auto* create_cmd = app.add_subcommand("create", "create an empty heap");
  auto* check_cmd = app.add_subcommand("check", "verify the heap's on-media structures (read-only unless --repair)");
  for (auto* c : {info_cmd, roots_cmd, pods_cmd, stat_cmd, create_cmd, check_cmd}) add_target(c, &t);
  double interval = 0;
  int count = 0;
  stat_cmd->add_option("--interval", interval, "sample again every SECONDS and show the rates meanwhile")
      ->check(CLI::PositiveNumber);
  stat_cmd->add_option("--count", count, "stop after N samples (default: until interrupted)")->check(CLI::NonNegativeNumber);
  create_cmd->add_option("--reserve", reserve, "address space to reserve, in bytes");
  bool repair = false;
  check_cmd->add_flag("--repair", repair,
                      "open for writing (recovery), rewrite a damaged superblock copy, drop dangling roots, check again");
  crashtest_command crashtest(app);
  CLI11_PARSE(app, argc, argv);
  if (crashtest.chosen()) {
    // The heap checker runs as this very program, not whatever PATH finds.
    std::error_code ec;
    std::string self = std::filesystem::read_symlink("/proc/self/exe", ec).string();
    return crashtest.run(ec ? argv[0] : self.c_str());
  }
  if (*check_cmd) return check(t, repair);
  try {
    if (*info_cmd) return info(t);
    if (*roots_cmd) return roots(t);
    if (*pods_cmd) return pods(t);
    if (*stat_cmd) return stat(t, interval, count);
    larder::heap_options options;
    options.kind = t.shm ? larder::backing::shm : larder::backing::file;
    options.name = t.name;
    options.mode = larder::open_mode::create;
    options.reserve = reserve;
    larder::heap h(options);
    std::printf("created %s (uuid %s) at %p\n", printable(t.name).c_str(), h.uuid().c_str(), h.base());
    return 0;
  } catch (const larder::error& e) {
    std::fprintf(stderr, "larder: %s\n", printable(e.what()).c_str());
    return 1;
  }
}
