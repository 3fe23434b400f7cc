// The option table, its parsing and validation, the check for unknown
// LARDER_* variables, and message output; see options.hpp. Fixed buffers
// only: this runs inside malloc's initialisation under LD_PRELOAD.
#include "port/options.hpp"

#include "port/os.hpp"

#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace larder::port {

namespace {

constexpr std::uint64_t kUnbounded = ~std::uint64_t{0};

constexpr option_row kRows[] = {
    {"show_stats", option_kind::flag, 0, 0, 1, nullptr, "0", "print allocator statistics to stderr at exit (0 or 1)"},
    {"verbose", option_kind::flag, 0, 0, 1, nullptr, "0", "print informational messages to stderr (0 or 1)"},
    {"process_reserve", option_kind::size, std::uint64_t{256} << 30, kMinProcessReserve, kMaxProcessReserve, nullptr,
     "256G", "address space reserved for the process heap that malloc uses (bytes; K, M, G, T suffixes; 1G to 2T)"},
    {"purge_slices", option_kind::number, 64, 0, kMaxProcessReserve >> 16, nullptr, "64",
     "free 64 KiB slices a pod keeps before returning them to the OS"},
    {"retain_segments", option_kind::number, 8, 0, kMaxProcessReserve >> 22, nullptr, "8",
     "empty 4 MiB segments a heap keeps committed for reuse before returning them to the OS; more, up to "
     "what it used at its recent peak, while its use is below that peak"},
    {"tracker", option_kind::word, 0, 0, 0, "uffd-async|mprotect|pkey", "(automatic)",
     "the page-write tracking backend that start_tracking() uses: uffd-async, mprotect or pkey; "
     "read again at each start_tracking()"},
    {"lazy_prefetch", option_kind::flag, 1, 0, 1, nullptr, "1",
     "a lazy checkout's thread loads the pages not touched yet in the background (0: each page only on its first "
     "touch, or when the checkout is finished); read again at each lazy checkout"},
    {"crash_at", option_kind::number, 0, 0, kUnbounded, nullptr, "(unset)",
     "simulate a crash at this persistence point (0: only count them); set by larder crashtest"},
    {"crash_seed", option_kind::number, 0, 0, kUnbounded, nullptr, "0",
     "with LARDER_CRASH_AT: seed of the torn persist at the crash point (0: no tear)"},
    {"crash_report", option_kind::text, 0, 0, 0, nullptr, "(unset)",
     "with LARDER_CRASH_AT: file the process writes its persistence-point count to at exit"},
    {"placement", option_kind::word, 0, 0, 0, "off|sites", "off",
     "automatic pod placement of the process heap that malloc uses: off, or sites (each allocation site's "
     "blocks go to one of 16 pods, chosen by the site and the size class)"},
};
constexpr std::size_t kRowCount = sizeof(kRows) / sizeof(kRows[0]);
static_assert(kRowCount == static_cast<std::size_t>(option::count_));

// Variables larder reads that are not options, also offered as corrections
// of misspellings: the crash-test protocol (runtime/crashtest.cpp) and the
// files of the GPU tier's module and of Ceph support's, read at each GPU
// tier, rados: remote or remote tier opened (tiers/gpu_module.hpp,
// tiers/rados_module.hpp).
constexpr const char* kNonOptionNames[] = {"LARDER_CRASHTEST_PHASE", "LARDER_CRASHTEST_HEAP", "LARDER_CRASHTEST_ACK",
                                          "LARDER_GPU_TIER_MODULE", "LARDER_RADOS_MODULE"};
// Read by larder's own tests, benchmarks and scripts, which run with larder
// linked or preloaded; known so that they draw no warning.
constexpr const char* kProgramNames[] = {
    "LARDER_TEST_SEED",        "LARDER_TEST_DURATION_MS", "LARDER_TRACKER_TEST_CHILD", "LARDER_RT_SHARE_NAME",
    "LARDER_RT_SHARE_RESULT",  "LARDER_RT_SHARE_PIPES",   "LARDER_RT_SHARE_EXPECT",    "LARDER_RT_SHARE_APPEND",
    "LARDER_BENCH_DIR",        "LARDER_BENCH_REPS",       "LARDER_BENCH_SCALE",        "LARDER_TX_BENCH_REEXEC",
    "LARDER_FUZZ_SEED_OUT",    "LARDER_FUZZ_SECONDS",     "LARDER_DAMAGE_FULL",      "LARDER_TEST_KILLS",
};

constexpr std::size_t kNameMax = 64;

std::uint64_t g_value[kRowCount];
bool g_set[kRowCount];
const char* g_text[kRowCount];
// The invalid text last warned about per row, so a value read again warns once.
std::atomic<const char*> g_warned[kRowCount];
std::atomic<int> g_read_state{0};  // 0 not read, 1 being read, 2 read

// LARDER_<NAME upper case> into `out` (kNameMax bytes).
void variable_of(const option_row& row, char* out) {
  std::memcpy(out, "LARDER_", 7);
  std::size_t at = 7;
  for (const char* c = row.name; *c != '\0' && at + 1 < kNameMax; ++c, ++at)
    out[at] = (*c >= 'a' && *c <= 'z') ? static_cast<char>(*c - 'a' + 'A') : *c;
  out[at] = '\0';
}

char upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }

bool is_word(const char* text, const char* const* words, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i)
    if (std::strcmp(text, words[i]) == 0) return true;
  return false;
}

// Digits only, no sign, no overflow; `*end` is where the digits stop.
bool parse_decimal(const char* text, std::uint64_t* out, const char** end) {
  std::uint64_t value = 0;
  const char* c = text;
  for (; *c >= '0' && *c <= '9'; ++c) {
    auto digit = static_cast<std::uint64_t>(*c - '0');
    if (value > (kUnbounded - digit) / 10) return false;
    value = value * 10 + digit;
  }
  if (c == text) return false;
  *out = value;
  *end = c;
  return true;
}

// 1073741824 → "1G": the largest suffix that divides it.
void format_size(std::uint64_t bytes, char* out, std::size_t length) {
  static constexpr struct { int shift; char suffix; } kUnits[] = {{40, 'T'}, {30, 'G'}, {20, 'M'}, {10, 'K'}};
  for (const auto& u : kUnits) {
    if (bytes != 0 && bytes % (std::uint64_t{1} << u.shift) == 0) {
      std::snprintf(out, length, "%llu%c", static_cast<unsigned long long>(bytes >> u.shift), u.suffix);
      return;
    }
  }
  std::snprintf(out, length, "%llu", static_cast<unsigned long long>(bytes));
}

// "a|b|c" → "a, b or c".
void list_words(const char* words, char* out, std::size_t length) {
  std::size_t at = 0;
  auto put = [&](const char* s, std::size_t n) {
    for (std::size_t i = 0; i < n && at + 1 < length; ++i) out[at++] = s[i];
  };
  const char* start = words;
  while (true) {
    const char* bar = std::strchr(start, '|');
    std::size_t n = bar != nullptr ? static_cast<std::size_t>(bar - start) : std::strlen(start);
    if (start != words) put(bar == nullptr ? " or " : ", ", bar == nullptr ? 4 : 2);
    put(start, n);
    if (bar == nullptr) break;
    start = bar + 1;
  }
  out[at] = '\0';
}

// Optimal string alignment distance, ignoring case; both at most kNameMax.
std::size_t edit_distance(const char* a, const char* b) {
  std::size_t n = std::strlen(a), m = std::strlen(b);
  if (n >= kNameMax) n = kNameMax - 1;
  if (m >= kNameMax) m = kNameMax - 1;
  std::size_t rows[3][kNameMax + 1];
  std::size_t* before = rows[0];
  std::size_t* previous = rows[1];
  std::size_t* current = rows[2];
  for (std::size_t j = 0; j <= m; ++j) previous[j] = j;
  for (std::size_t i = 1; i <= n; ++i) {
    current[0] = i;
    for (std::size_t j = 1; j <= m; ++j) {
      std::size_t cost = upper(a[i - 1]) == upper(b[j - 1]) ? 0 : 1;
      std::size_t best = previous[j - 1] + cost;
      if (previous[j] + 1 < best) best = previous[j] + 1;
      if (current[j - 1] + 1 < best) best = current[j - 1] + 1;
      if (i > 1 && j > 1 && upper(a[i - 1]) == upper(b[j - 2]) && upper(a[i - 2]) == upper(b[j - 1]) &&
          before[j - 2] + 1 < best)
        best = before[j - 2] + 1;
      current[j] = best;
    }
    std::size_t* spare = before;
    before = previous;
    previous = current;
    current = spare;
  }
  return previous[m];
}

// One row from `text` (the environment's value or nullptr). Returns whether
// it is set to a valid value; warns about an invalid one unless `text` was
// already warned about.
bool evaluate(std::size_t i, const char* text, std::uint64_t* value) {
  if (text == nullptr || *text == '\0') return false;
  char reason[160];
  if (const char* why = parse_option(kRows[i], text, value, reason, sizeof(reason))) {
    if (g_warned[i].exchange(text, std::memory_order_relaxed) != text) {
      char variable[kNameMax];
      variable_of(kRows[i], variable);
      warning("ignoring %s=%.100s: %s", variable, text, why);
    }
    return false;
  }
  return true;
}

void warn_about_unknown_names() {
  if (environ == nullptr) return;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    if (std::strncmp(*entry, "LARDER_", 7) != 0) continue;
    char name[kNameMax];
    std::size_t n = 0;
    for (const char* c = *entry; *c != '\0' && *c != '=' && n + 1 < sizeof(name); ++c) name[n++] = *c;
    name[n] = '\0';
    if (known_option_name(name)) continue;
    char nearest[kNameMax];
    if (nearest_option_name(name, nearest, sizeof(nearest)))
      warning("unknown option %s (did you mean %s?)", name, nearest);
    else
      warning("unknown option %s", name);
  }
}

void vmessage(const char* prefix, const char* format, va_list args) {
  char buffer[512];
  int n = std::snprintf(buffer, sizeof(buffer), "larder: %s", prefix);
  if (n < 0) return;
  int m = std::vsnprintf(buffer + n, sizeof(buffer) - static_cast<std::size_t>(n), format, args);
  if (m < 0) return;
  std::size_t length = std::strlen(buffer);
  if (length + 1 < sizeof(buffer)) buffer[length++] = '\n';
  write_stderr(buffer, length);
}

}  // namespace

const char* parse_option(const option_row& row, const char* text, std::uint64_t* value, char* reason,
                         std::size_t length) noexcept {
  static constexpr const char* kTrue[] = {"1", "true", "on", "yes"};
  static constexpr const char* kFalse[] = {"0", "false", "off", "no"};
  char low[24], high[24];
  switch (row.kind) {
    case option_kind::flag:
      if (is_word(text, kTrue, 4)) *value = 1;
      else if (is_word(text, kFalse, 4)) *value = 0;
      else return "expected 0 or 1 (or true/false, on/off, yes/no)";
      return nullptr;
    case option_kind::number: {
      const char* end = nullptr;
      std::uint64_t n = 0;
      if (!parse_decimal(text, &n, &end) || *end != '\0' || n < row.min || n > row.max) {
        if (row.min == 0 && row.max == kUnbounded) return "expected a whole number";
        std::snprintf(reason, length, "expected a whole number from %llu to %llu",
                      static_cast<unsigned long long>(row.min), static_cast<unsigned long long>(row.max));
        return reason;
      }
      *value = n;
      return nullptr;
    }
    case option_kind::size: {
      const char* end = nullptr;
      std::uint64_t n = 0;
      constexpr const char* kExpected = "expected a size in bytes with an optional K, M, G or T suffix";
      if (!parse_decimal(text, &n, &end)) return kExpected;
      int shift = 0;
      switch (*end) {
        case '\0': break;
        case 'k': case 'K': shift = 10; ++end; break;
        case 'm': case 'M': shift = 20; ++end; break;
        case 'g': case 'G': shift = 30; ++end; break;
        case 't': case 'T': shift = 40; ++end; break;
        default: return kExpected;
      }
      if (shift != 0 && *end == 'i') ++end;
      if (*end == 'B' || (*end == 'b' && shift != 0)) ++end;
      if (*end != '\0') return kExpected;
      bool overflow = shift != 0 && n > (kUnbounded >> shift);
      n = overflow ? kUnbounded : n << shift;
      if (n < row.min) {
        format_size(row.min, low, sizeof(low));
        std::snprintf(reason, length, "below the minimum of %s", low);
        return reason;
      }
      if (n > row.max) {
        format_size(row.max, high, sizeof(high));
        std::snprintf(reason, length, "above the maximum of %s", high);
        return reason;
      }
      *value = n;
      return nullptr;
    }
    case option_kind::word: {
      std::size_t index = 0;
      std::size_t text_length = std::strlen(text);
      for (const char* start = row.words;; ++index) {
        const char* bar = std::strchr(start, '|');
        std::size_t n = bar != nullptr ? static_cast<std::size_t>(bar - start) : std::strlen(start);
        if (n == text_length && std::strncmp(start, text, n) == 0) {
          *value = index;
          return nullptr;
        }
        if (bar == nullptr) break;
        start = bar + 1;
      }
      std::size_t at = static_cast<std::size_t>(std::snprintf(reason, length, "expected "));
      if (at < length) list_words(row.words, reason + at, length - at);
      return reason;
    }
    case option_kind::text:
      *value = 0;
      return nullptr;
  }
  return "unknown option kind";
}

bool known_option_name(const char* name) noexcept {
  char variable[kNameMax];
  for (const option_row& row : kRows) {
    variable_of(row, variable);
    if (std::strcmp(name, variable) == 0) return true;
  }
  for (const char* known : kNonOptionNames)
    if (std::strcmp(name, known) == 0) return true;
  for (const char* known : kProgramNames)
    if (std::strcmp(name, known) == 0) return true;
  return false;
}

bool nearest_option_name(const char* name, char* out, std::size_t length) noexcept {
  constexpr std::size_t kPrefix = 7;  // "LARDER_"
  if (std::strncmp(name, "LARDER_", kPrefix) != 0 || length == 0) return false;
  char best[kNameMax] = "";
  std::size_t best_distance = ~std::size_t{0};
  auto consider = [&](const char* known) {
    std::size_t d = edit_distance(name + kPrefix, known + kPrefix);
    // Close enough to be a slip of the keyboard, not a different word.
    std::size_t allowed = 1 + std::strlen(known + kPrefix) / 3;
    if (d <= allowed && d < best_distance) {
      std::snprintf(best, sizeof(best), "%s", known);
      best_distance = d;
    }
  };
  char variable[kNameMax];
  for (const option_row& row : kRows) {
    variable_of(row, variable);
    consider(variable);
  }
  for (const char* known : kNonOptionNames) consider(known);
  if (best[0] == '\0') return false;
  std::snprintf(out, length, "%s", best);
  return true;
}

void read_options() noexcept {
  int state = g_read_state.load(std::memory_order_acquire);
  if (state == 2) return;
  if (state == 0 && g_read_state.compare_exchange_strong(state, 1, std::memory_order_acq_rel)) {
    char variable[kNameMax];
    for (std::size_t i = 0; i < kRowCount; ++i) {
      variable_of(kRows[i], variable);
      const char* text = get_env(variable);
      std::uint64_t value = 0;
      if (evaluate(i, text, &value)) {
        g_value[i] = value;
        g_set[i] = true;
        g_text[i] = text;
      }
    }
    warn_about_unknown_names();
    g_read_state.store(2, std::memory_order_release);
    return;
  }
  while (g_read_state.load(std::memory_order_acquire) != 2) sched_yield();
}

bool read_option_now(option o, std::uint64_t* value, const char** text) noexcept {
  read_options();
  auto i = static_cast<std::size_t>(o);
  char variable[kNameMax];
  variable_of(kRows[i], variable);
  const char* now = get_env(variable);
  std::uint64_t parsed = 0;
  if (!evaluate(i, now, &parsed)) return false;
  *value = parsed;
  *text = now;
  return true;
}

std::uint64_t option_value(option o) noexcept {
  if (g_read_state.load(std::memory_order_acquire) != 2) read_options();
  auto i = static_cast<std::size_t>(o);
  return g_set[i] ? g_value[i] : kRows[i].fallback;
}

bool option_set(option o) noexcept {
  if (g_read_state.load(std::memory_order_acquire) != 2) read_options();
  return g_set[static_cast<std::size_t>(o)];
}

const char* option_text(option o) noexcept {
  if (g_read_state.load(std::memory_order_acquire) != 2) read_options();
  auto i = static_cast<std::size_t>(o);
  return g_set[i] ? g_text[i] : nullptr;
}

void set_option(option o, std::uint64_t value) noexcept {
  read_options();
  auto i = static_cast<std::size_t>(o);
  g_value[i] = value;
  g_set[i] = true;
}

const option_row* option_table(std::size_t* count) noexcept {
  *count = kRowCount;
  return kRows;
}

void message(const char* format, ...) noexcept {
  va_list args;
  va_start(args, format);
  vmessage("", format, args);
  va_end(args);
}

void warning(const char* format, ...) noexcept {
  va_list args;
  va_start(args, format);
  vmessage("warning: ", format, args);
  va_end(args);
}

void verbose(const char* format, ...) noexcept {
  if (option_value(option::verbose) == 0) return;
  va_list args;
  va_start(args, format);
  vmessage("", format, args);
  va_end(args);
}

}  // namespace larder::port
