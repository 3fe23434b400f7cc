// The option table and message output; see options.hpp.
#include "allocator/options.hpp"

#include "port/os.hpp"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace larder::alloc {

namespace {

option_row g_options[] = {
    {"show_stats", 0, "print allocator statistics to stderr at exit (0 or 1)"},
    {"verbose", 0, "print informational messages to stderr (0 or 1)"},
    {"process_reserve", std::int64_t{256} << 30,
     "address space reserved for the process heap that malloc uses (bytes; K, M, G suffixes)"},
    {"purge_slices", 64, "free 64 KiB slices a pod keeps before returning them to the OS"},
    {"retain_segments", 8, "empty 4 MiB segments a heap keeps for reuse before returning them to the OS"},
};
static_assert(sizeof(g_options) / sizeof(g_options[0]) == static_cast<std::size_t>(option::count_));

bool g_options_read = false;

// Accepts a decimal number with an optional K/M/G/T suffix, or true/false.
bool parse_value(const char* text, std::int64_t* out) {
  if (std::strcmp(text, "true") == 0 || std::strcmp(text, "on") == 0 || std::strcmp(text, "yes") == 0) {
    *out = 1;
    return true;
  }
  if (std::strcmp(text, "false") == 0 || std::strcmp(text, "off") == 0 || std::strcmp(text, "no") == 0) {
    *out = 0;
    return true;
  }
  char* end = nullptr;
  long long value = std::strtoll(text, &end, 10);
  if (end == text || value < 0) return false;
  int shift = 0;
  switch (*end) {
    case '\0': break;
    case 'k': case 'K': shift = 10; ++end; break;
    case 'm': case 'M': shift = 20; ++end; break;
    case 'g': case 'G': shift = 30; ++end; break;
    case 't': case 'T': shift = 40; ++end; break;
    default: return false;
  }
  if (*end == 'i' || *end == 'b' || *end == 'B') ++end;
  if (*end == 'B') ++end;
  if (*end != '\0') return false;
  *out = static_cast<std::int64_t>(value) << shift;
  return true;
}

void vmessage(const char* prefix, const char* format, va_list args) {
  char buffer[512];
  int n = std::snprintf(buffer, sizeof(buffer), "larder: %s", prefix);
  if (n < 0) return;
  int m = std::vsnprintf(buffer + n, sizeof(buffer) - static_cast<std::size_t>(n), format, args);
  if (m < 0) return;
  std::size_t length = std::strlen(buffer);
  if (length + 1 < sizeof(buffer)) buffer[length++] = '\n';
  port::write_stderr(buffer, length);
}

}  // namespace

void read_options() noexcept {
  if (g_options_read) return;
  g_options_read = true;
  for (option_row& row : g_options) {
    char variable[64] = "LARDER_";
    std::size_t at = 7;
    for (const char* c = row.name; *c != '\0' && at + 1 < sizeof(variable); ++c, ++at)
      variable[at] = (*c >= 'a' && *c <= 'z') ? static_cast<char>(*c - 'a' + 'A') : *c;
    variable[at] = '\0';
    const char* text = port::get_env(variable);
    if (text == nullptr) continue;
    std::int64_t value = 0;
    if (parse_value(text, &value)) {
      row.value = value;
    } else {
      warning("ignoring %s=%s: expected a number (with an optional K/M/G/T suffix) or a boolean", variable, text);
    }
  }
}

std::int64_t option_value(option o) noexcept { return g_options[static_cast<int>(o)].value; }
void set_option(option o, std::int64_t value) noexcept { g_options[static_cast<int>(o)].value = value; }

const option_row* option_table(std::size_t* count) noexcept {
  *count = static_cast<std::size_t>(option::count_);
  return g_options;
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

}  // namespace larder::alloc
