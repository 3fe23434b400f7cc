// The crash-test protocol (program side: phase, heap path, acknowledgements)
// and the driver that crashes a program at its persistence points or kills
// it, then runs its check phase. See include/larder/crashtest.hpp and
// docs/crashtest.md. Entry point: crashtest::run.
#include <larder/crashtest.hpp>

#include <larder/check.hpp>

#include "port/os.hpp"
#include "port/process.hpp"
#include "recovery/persist.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <sstream>

namespace larder::crashtest {

namespace fs = std::filesystem;

// ---- the program's side ----------------------------------------------------

namespace {

constexpr const char* kPhaseVariable = "LARDER_CRASHTEST_PHASE";
constexpr const char* kHeapVariable = "LARDER_CRASHTEST_HEAP";
constexpr const char* kAckVariable = "LARDER_CRASHTEST_ACK";

// One fixed-size record at offset 0, rewritten by each acknowledge(); the
// check word exposes a file that holds something else.
constexpr std::uint64_t kAckMagic = 0x4B43414B53415243ull;  // "CRASKACK"
struct ack_record {
  std::uint64_t magic;
  std::uint64_t done;
  std::uint64_t check;  // done ^ magic
};

int ack_file() noexcept {
  static const int fd = [] {
    const char* path = port::get_env(kAckVariable);
    int f = -1;
    bool created = false;
    if (path == nullptr || *path == '\0' || port::open_file(path, true, false, true, &f, &created) != 0) return -1;
    return f;
  }();
  return fd;
}

}  // namespace

phase current_phase() noexcept {
  const char* value = port::get_env(kPhaseVariable);
  if (value == nullptr) return phase::none;
  if (std::strcmp(value, "run") == 0) return phase::run;
  if (std::strcmp(value, "check") == 0) return phase::check;
  return phase::none;
}

std::string heap_path() {
  const char* value = port::get_env(kHeapVariable);
  return value == nullptr ? std::string() : std::string(value);
}

void acknowledge(std::uint64_t operations_done) noexcept {
  int fd = ack_file();
  if (fd < 0) return;
  // One pwrite of a few bytes inside one page: the process dying cannot
  // leave half of it in the page cache.
  ack_record r{kAckMagic, operations_done, operations_done ^ kAckMagic};
  (void)port::write_at(fd, &r, sizeof(r), 0);
}

std::uint64_t acknowledged() noexcept {
  const char* path = port::get_env(kAckVariable);
  if (path == nullptr || *path == '\0') return 0;
  int fd = -1;
  bool created = false;
  if (port::open_file(path, false, false, false, &fd, &created) != 0) return 0;
  ack_record r{};
  int err = port::read_at(fd, &r, sizeof(r), 0);
  port::close_fd(fd);
  if (err != 0 || r.magic != kAckMagic || (r.done ^ kAckMagic) != r.check) return 0;
  return r.done;
}

// ---- the driver ------------------------------------------------------------

namespace {

std::uint64_t mix64(std::uint64_t x) {  // splitmix64's finaliser
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// LARDER_CRASH_SEED for torn persists; never 0, which means "no tear".
std::uint64_t tear_seed(std::uint64_t seed) { return mix64(seed) | 1; }

// The kill instant of round `round`, as a fraction of the uncrashed run.
double kill_fraction(std::uint64_t seed, std::uint64_t round) {
  return static_cast<double>(mix64(seed ^ mix64(round)) >> 11) * 0x1.0p-53;
}

std::string shell_quote(const std::string& word) {
  bool plain = !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("_-./=:,+@%", c) != nullptr;
  });
  if (plain) return word;
  std::string quoted = "'";
  for (char c : word) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

std::string read_tail(const std::string& path, std::size_t limit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.size() > limit) text = "[...]\n" + text.substr(text.size() - limit);
  return text;
}

// The line of a failing phase's output that says why, in parentheses: the
// first that starts "check failed:" or "problem:" (the samples' and
// `larder check`'s words), else the last.
std::string reason(const std::string& output) {
  std::string line;
  std::istringstream in(output);
  for (std::string l; std::getline(in, l);) {
    if (l.rfind("check failed:", 0) == 0 || l.rfind("problem:", 0) == 0) {
      line = l;
      break;
    }
    if (l.find_first_not_of(' ') != std::string::npos) line = l;
  }
  if (line.empty()) return {};
  if (line.size() > 300) line = line.substr(0, 300) + "...";
  return " (" + line + ")";
}

std::string seconds(double s) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.3f s", s);
  return text;
}

std::string describe(const port::process_exit& e) {
  if (e.signaled) return "was killed by signal " + std::to_string(e.code) + " (" + ::strsignal(e.code) + ")";
  return "exited with " + std::to_string(e.code);
}

struct program_run {
  port::process_exit exit;
  bool timed_out = false;
  bool killed = false;  // by the kill instant, before it ended by itself
  double seconds = 0;
};

// What a round (or the uncrashed run) found; empty `failure` means passed.
struct round_result {
  std::string failure;
  std::string output;  // of the phase that failed
  bool ended_early = false;
};

class driver {
 public:
  driver(const options& o, outcome* out) : o_(o), out_(out) {}
  status run();
  // Removes the work directory if the driver made it.
  void discard_work_dir();

 private:
  status prepare();
  status uncrashed(round_result* r);
  status crash_round(std::uint64_t point, round_result* r);
  status kill_round(std::uint64_t round, round_result* r);
  status check_phase(round_result* r);
  status choose_points(std::vector<std::uint64_t>* points);
  status spawn(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
               const std::string& log, double kill_after_s, program_run* result);
  status start_round();
  std::vector<std::string> phase_env(const char* phase) const;
  bool record(std::uint64_t point, const round_result& r);
  void say(const std::string& line) const {
    if (o_.progress) o_.progress(line);
  }
  void tick(std::uint64_t done, std::uint64_t total);

  const options& o_;
  outcome* out_;
  bool own_work_dir_ = false;
  std::string work_dir_, heap_, ack_, report_, run_log_, check_log_;
  std::vector<std::string> command_;
  std::chrono::steady_clock::time_point last_tick_ = std::chrono::steady_clock::now();
};

status driver::prepare() {
  if (o_.command.empty()) return status(errc::invalid_argument, "no program to run");
  if (o_.timeout_s <= 0) return status(errc::invalid_argument, "the timeout must be positive");
  std::error_code ec;
  if (o_.work_dir.empty()) {
    // The check phase makes its writes durable for real: on a RAM file
    // system that costs nothing, on a disk it can take most of the time.
    const char* tmp = port::get_env("TMPDIR");
    std::vector<fs::path> bases{"/dev/shm", "/tmp"};
    if (tmp != nullptr && *tmp != '\0') bases = {tmp};
    for (const fs::path& base : bases) {
      for (int attempt = 0; attempt < 10 && work_dir_.empty(); ++attempt) {
        char name[64];
        std::snprintf(name, sizeof(name), "larder-crashtest-%d-%08llx", port::process_id(),
                      static_cast<unsigned long long>(port::random64() & 0xFFFFFFFFu));
        if (fs::create_directory(base / name, ec)) work_dir_ = (base / name).string();
      }
    }
    if (work_dir_.empty())
      return status::from_errno(ec ? ec.value() : EEXIST, "making a work directory in " + bases.back().string());
    own_work_dir_ = true;
  } else {
    fs::create_directories(o_.work_dir, ec);
    if (ec) return status::from_errno(ec.value(), "making the work directory " + o_.work_dir);
    work_dir_ = fs::absolute(o_.work_dir).lexically_normal().string();
  }
  out_->work_dir = work_dir_;
  fs::path dir(work_dir_);
  heap_ = o_.heap_path.empty() ? (dir / "heap").string() : fs::absolute(o_.heap_path).lexically_normal().string();
  ack_ = (dir / "ack").string();
  report_ = (dir / "crash-report").string();
  run_log_ = (dir / "run.log").string();
  check_log_ = (dir / "check.log").string();
  command_ = o_.command;
  // A program named by a relative path keeps working from another directory
  // in the replay command.
  if (command_[0].find('/') != std::string::npos) command_[0] = fs::absolute(command_[0]).lexically_normal().string();
  return {};
}

std::vector<std::string> driver::phase_env(const char* phase) const {
  return {std::string(kPhaseVariable) + "=" + phase, std::string(kHeapVariable) + "=" + heap_,
          std::string(kAckVariable) + "=" + ack_};
}

// Runs a program to its end (or to `kill_after_s`, when positive, or to the
// timeout), its output going to `log`. The environment is ours without any
// LARDER_CRASH* variable, plus `extra_env`.
status driver::spawn(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
                     const std::string& log, double kill_after_s, program_run* result) {
  std::vector<const char*> args, env;
  for (const auto& a : argv) args.push_back(a.c_str());
  args.push_back(nullptr);
  for (const char* const* e = port::current_environment(); e != nullptr && *e != nullptr; ++e) {
    if (std::strncmp(*e, "LARDER_CRASH", 12) != 0) env.push_back(*e);
  }
  for (const auto& e : extra_env) env.push_back(e.c_str());
  env.push_back(nullptr);
  auto start = std::chrono::steady_clock::now();
  int pid = 0;
  if (int err = port::spawn_process(args.data(), env.data(), log.c_str(), &pid))
    return status::from_errno(err, "starting " + argv[0]);
  *result = program_run{};
  int err = 0;
  // A week at most: longer limits would overflow the nanoseconds.
  double limit = std::min(o_.timeout_s, 7 * 86400.0);
  bool kill_first = kill_after_s > 0 && kill_after_s < limit;
  err = port::wait_process(pid, static_cast<std::int64_t>((kill_first ? kill_after_s : limit) * 1e9), &result->exit);
  if (err == ETIMEDOUT) {
    (void)port::kill_process(pid);
    err = port::wait_process(pid, -1, &result->exit);
    // It may have ended on its own just before the signal: then it counts
    // as the exit it made.
    bool by_us = err == 0 && result->exit.signaled && result->exit.code == SIGKILL;
    (kill_first ? result->killed : result->timed_out) = by_us;
  } else if (err != 0) {
    (void)port::kill_process(pid);
    (void)port::wait_process(pid, -1, &result->exit);
  }
  port::kill_process_group(pid);
  result->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (err != 0) return status::from_errno(err, "waiting for " + argv[0]);
  return {};
}

// A round starts from nothing: no heap (nor one a crash left half made
// under its temporary name), no versions in its default store nor the
// mark of a checkout, no acknowledgement, no report.
status driver::start_round() {
  std::string mark = heap_ + ".checkout";
  for (const std::string* path : {&heap_, &mark, &ack_, &report_}) {
    std::error_code ec;
    fs::remove(*path, ec);
    if (ec) return status::from_errno(ec.value(), "removing " + *path);
  }
  std::error_code store_ec;
  fs::remove_all(heap_ + ".versions", store_ec);
  if (store_ec) return status::from_errno(store_ec.value(), "removing " + heap_ + ".versions");
  fs::path heap(heap_);
  std::string unfinished = heap.filename().string() + ".new-";
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(heap.parent_path().empty() ? "." : heap.parent_path(), ec)) {
    if (entry.path().filename().string().rfind(unfinished, 0) == 0) fs::remove(entry.path(), ec);
  }
  return {};
}

// The check phase, then the heap checker.
status driver::check_phase(round_result* r) {
  program_run p;
  if (status s = spawn(command_, phase_env("check"), check_log_, 0, &p); !s.ok()) return s;
  if (p.timed_out || p.exit.signaled || p.exit.code != 0) {
    r->failure = p.timed_out ? "the check phase did not finish in " + seconds(o_.timeout_s)
                             : "the check phase " + describe(p.exit);
    r->output = read_tail(check_log_, 8192);
    return {};
  }
  std::error_code ec;
  if (!o_.check_heap || !fs::exists(heap_, ec)) return {};  // no heap: the program said that is fine
  check_report report;
  if (status s = larder::check_heap(heap_, false, &report); !s.ok()) {
    r->failure = "the check phase passed, but larder check could not run: " + s.to_string();
  } else if (!report.clean()) {
    r->failure = "the check phase passed, but larder check found the heap damaged";
    for (const std::string& problem : report.problems) r->output += "problem: " + problem + "\n";
  }
  return {};
}

status driver::uncrashed(round_result* r) {
  if (status s = start_round(); !s.ok()) return s;
  std::vector<std::string> env = phase_env("run");
  bool counting = o_.how != mode::kill;
  if (counting) {
    env.push_back("LARDER_CRASH_AT=0");
    env.push_back("LARDER_CRASH_REPORT=" + report_);
  }
  program_run p;
  if (status s = spawn(command_, env, run_log_, 0, &p); !s.ok()) return s;
  out_->uncrashed_seconds = p.seconds;
  if (p.timed_out || p.exit.signaled || p.exit.code != 0) {
    r->failure = "the run phase, not crashed, " +
                 (p.timed_out ? "did not finish in " + seconds(o_.timeout_s) : describe(p.exit));
    r->output = read_tail(run_log_, 8192);
    return {};
  }
  if (counting) {
    std::ifstream in(report_);
    std::string word;
    std::uint64_t points = 0;
    if (!(in >> word >> points) || word != "points")
      return status(errc::invalid_argument, "the program wrote no persistence-point count to LARDER_CRASH_REPORT: "
                                            "does it open a larder file heap at crashtest::heap_path()?");
    out_->points = points;
    say("uncrashed run: " + std::to_string(points) + " persistence points in " + seconds(p.seconds));
  } else {
    say("uncrashed run: " + seconds(p.seconds));
  }
  if (status s = check_phase(r); !s.ok() || !r->failure.empty() || counting) return s;
  // Kill instants are fractions of the run's length: take the shorter of
  // two runs, so that fewer instants fall after a run that went fast.
  if (status s = start_round(); !s.ok()) return s;
  if (status s = spawn(command_, env, run_log_, 0, &p); !s.ok()) return s;
  if (!p.timed_out && !p.exit.signaled && p.exit.code == 0 && p.seconds < out_->uncrashed_seconds)
    out_->uncrashed_seconds = p.seconds;
  return {};
}

status driver::crash_round(std::uint64_t point, round_result* r) {
  if (status s = start_round(); !s.ok()) return s;
  std::vector<std::string> env = phase_env("run");
  env.push_back("LARDER_CRASH_AT=" + std::to_string(point));
  env.push_back("LARDER_CRASH_SEED=" + std::to_string(o_.torn ? tear_seed(o_.seed) : 0));
  env.push_back("LARDER_CRASH_REPORT=" + report_);
  program_run p;
  if (status s = spawn(command_, env, run_log_, 0, &p); !s.ok()) return s;
  if (!p.timed_out && !p.exit.signaled && p.exit.code == 0) {
    // The counting run saw this point, so the program persists differently
    // from run to run: its crash points cannot be replayed.
    r->ended_early = true;
    r->failure = "the run phase ended normally before persistence point " + std::to_string(point) +
                 ", which the counting run reached (is the program deterministic for these arguments?)";
    r->output = read_tail(run_log_, 8192);
    return {};
  } else if (p.timed_out || p.exit.signaled || p.exit.code != recovery::kCrashExitCode) {
    r->failure = "the run phase, to crash at point " + std::to_string(point) + ", " +
                 (p.timed_out ? "did not finish in " + seconds(o_.timeout_s) : describe(p.exit));
    r->output = read_tail(run_log_, 8192);
    return {};
  } else {
    std::ifstream in(report_);
    std::string word;
    std::uint64_t at = 0;
    if (!(in >> word >> at) || word != "crashed" || at != point) {
      r->failure = "the run phase exited " + std::to_string(recovery::kCrashExitCode) +
                   " but liblarder did not report a crash at point " + std::to_string(point);
      r->output = read_tail(run_log_, 8192);
      return {};
    }
  }
  return check_phase(r);
}

status driver::kill_round(std::uint64_t round, round_result* r) {
  if (status s = start_round(); !s.ok()) return s;
  double instant = kill_fraction(o_.seed, round) * out_->uncrashed_seconds;
  program_run p;
  // A zero instant would mean "no kill" to spawn().
  if (status s = spawn(command_, phase_env("run"), run_log_, std::max(instant, 1e-6), &p); !s.ok()) return s;
  if (!p.killed) {
    if (p.timed_out || p.exit.signaled || p.exit.code != 0) {
      r->failure = "the run phase, to be killed after " + seconds(instant) + ", " +
                   (p.timed_out ? "did not finish" : describe(p.exit));
      r->output = read_tail(run_log_, 8192);
      return {};
    }
    r->ended_early = true;
  }
  return check_phase(r);
}

status driver::choose_points(std::vector<std::uint64_t>* points) {
  std::uint64_t total = out_->points;
  if (o_.only_point != 0) {
    if (o_.how != mode::kill && o_.only_point > total)
      return status(errc::invalid_argument, "point " + std::to_string(o_.only_point) + " is past the program's " +
                                                std::to_string(total) + " persistence points");
    points->push_back(o_.only_point);
    return {};
  }
  if (o_.how == mode::kill) {
    for (std::uint64_t i = 1; i <= o_.samples; ++i) points->push_back(i);
    return {};
  }
  if (o_.how == mode::every_point || o_.samples >= total) {
    for (std::uint64_t i = 1; i <= total; ++i) points->push_back(i);
    return {};
  }
  // Floyd's sampling: `samples` distinct points of 1..total.
  std::mt19937_64 random(o_.seed);
  std::set<std::uint64_t> chosen;
  for (std::uint64_t j = total - o_.samples + 1; j <= total; ++j) {
    std::uint64_t t = 1 + random() % j;
    chosen.insert(chosen.count(t) != 0 ? j : t);
  }
  points->assign(chosen.begin(), chosen.end());
  return {};
}

// Counts a finished round; true when the driver should go on.
bool driver::record(std::uint64_t point, const round_result& r) {
  ++out_->runs;
  if (r.ended_early) ++out_->ended_early;
  if (r.failure.empty()) return true;
  ++out_->failures;
  const char* what = o_.how == mode::kill ? "kill round " : "point ";
  say("FAIL at " + std::string(what) + std::to_string(point) + ": " + r.failure + reason(r.output));
  if (out_->failures == 1) {
    out_->first_failing_point = point;
    options replay = o_;
    replay.heap_path = heap_;
    out_->replay_command = replay_command(replay, point);
    std::string text = std::string(what) + std::to_string(point) + ": " + r.failure;
    if (o_.how == mode::kill)
      text += " (killed after " + seconds(kill_fraction(o_.seed, point) * out_->uncrashed_seconds) + ")";
    out_->failure_output = text + "\n" + r.output;
  }
  return o_.keep_going;
}

void driver::tick(std::uint64_t done, std::uint64_t total) {
  auto now = std::chrono::steady_clock::now();
  if (done != total && now - last_tick_ < std::chrono::milliseconds(500)) return;
  last_tick_ = now;
  say("rounds " + std::to_string(done) + "/" + std::to_string(total) + ", " + std::to_string(out_->failures) +
      " failed");
}

status driver::run() {
  *out_ = outcome{};
  if (status s = prepare(); !s.ok()) return s;
  round_result first;
  if (status s = uncrashed(&first); !s.ok()) return s;
  if (!first.failure.empty()) {
    out_->failures = 1;
    out_->failure_output = "without a crash: " + first.failure + "\n" + first.output;
    say("FAIL without a crash: " + first.failure);
    return {};
  }
  std::vector<std::uint64_t> points;
  if (status s = choose_points(&points); !s.ok()) return s;
  for (std::size_t i = 0; i < points.size(); ++i) {
    round_result r;
    status s = o_.how == mode::kill ? kill_round(points[i], &r) : crash_round(points[i], &r);
    if (!s.ok()) return s;
    bool go_on = record(points[i], r);
    tick(i + 1, points.size());
    if (!go_on) break;
  }
  if (out_->failures == 0) discard_work_dir();
  return {};
}

void driver::discard_work_dir() {
  if (!own_work_dir_) return;
  std::error_code ec;
  fs::remove_all(work_dir_, ec);
  out_->work_dir.clear();
}

}  // namespace

std::string replay_command(const options& o, std::uint64_t point) {
  std::ostringstream cmd;
  cmd << "larder crashtest";
  if (!o.heap_path.empty()) cmd << " --heap " << shell_quote(fs::absolute(o.heap_path).lexically_normal().string());
  if (!o.work_dir.empty()) cmd << " --work-dir " << shell_quote(fs::absolute(o.work_dir).lexically_normal().string());
  if (o.how == mode::kill) cmd << " --kill " << o.samples;
  cmd << " --point " << point << " --seed " << o.seed;
  if (!o.torn) cmd << " --no-tear";
  if (o.timeout_s != options{}.timeout_s) cmd << " --timeout " << o.timeout_s;
  cmd << " --";
  for (std::size_t i = 0; i < o.command.size(); ++i) {
    std::string word = o.command[i];
    if (i == 0 && word.find('/') != std::string::npos) word = fs::absolute(word).lexically_normal().string();
    cmd << ' ' << shell_quote(word);
  }
  return cmd.str();
}

status run(const options& o, outcome* out) {
  driver d(o, out);
  status s = d.run();
  if (!s.ok()) d.discard_work_dir();
  return s;
}

}  // namespace larder::crashtest
