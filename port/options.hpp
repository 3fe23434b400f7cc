// Runtime options: one table, each row settable by LARDER_<NAME> in the
// environment, validated and read once at startup (the first malloc or the
// library's load, whichever comes first). Also larder's message output.
// Nothing here allocates: it runs inside malloc's initialisation.
#pragma once

#include <cstddef>
#include <cstdint>

namespace larder::port {

enum class option : int {
  show_stats,       // print statistics to stderr at exit
  verbose,          // print informational messages
  process_reserve,  // address space reserved for the process heap (bytes)
  purge_slices,     // free slices a pod keeps before giving them back to the OS
  retain_segments,  // empty segments a heap keeps committed for reuse
  tracker,          // page-write tracking backend that `automatic` uses
  lazy_prefetch,    // a lazy checkout loads untouched pages in the background
  crash_at,         // crash simulation: the persistence point to stop at
  crash_seed,       // crash simulation: seed of torn persists (0: none)
  crash_report,     // crash simulation: file the point count is written to
  placement,        // automatic pod placement of the process heap: off or sites
  count_
};

enum class option_kind : std::uint8_t {
  flag,    // 0 or 1; also true/false, on/off, yes/no
  number,  // a decimal integer in [min, max]
  size,    // bytes in [min, max], with an optional K, M, G or T suffix
  word,    // one of `words`; the value is its index
  text,    // any string
};

// The smallest reserve LARDER_PROCESS_RESERVE may ask for. The process heap
// cannot grow past its reserve, which costs only address space: python3
// needs 24 MiB to start under the preloaded malloc and 256 MiB for a small
// script's work, so anything under 1 GiB is more likely a mistake than a plan.
inline constexpr std::uint64_t kMinProcessReserve = std::uint64_t{1} << 30;
// The largest reserve any region may have (recovery's layout::kMaxReserve).
inline constexpr std::uint64_t kMaxProcessReserve = std::uint64_t{2} << 40;

struct option_row {
  const char* name;  // lower case; the variable is LARDER_<NAME upper case>
  option_kind kind;
  std::uint64_t fallback;    // the default of flag, number and size rows
  std::uint64_t min, max;    // the accepted range of number and size rows
  const char* words;         // word rows: the accepted words, '|' between them
  const char* default_text;  // the default as the README's table shows it
  const char* description;
};

// Reads every row from the environment and warns once about each invalid
// value and each unknown LARDER_* variable. Idempotent and thread-safe;
// the accessors below call it when it has not run yet.
void read_options() noexcept;
// Reads one row again from the environment as it is now, for options that
// a program may set with setenv before the call that uses them; the table
// keeps its value. Returns whether a valid value is set, with the value and
// the text; an invalid one warns (once per value) and counts as unset.
bool read_option_now(option o, std::uint64_t* value, const char** text) noexcept;

// The value of a flag, number or size row (its default when not set), or
// the index of a word row's word.
std::uint64_t option_value(option o) noexcept;
// Whether the environment gave the row a valid, non-empty value.
bool option_set(option o) noexcept;
// The environment's text of a set word or text row; nullptr when unset.
const char* option_text(option o) noexcept;
void set_option(option o, std::uint64_t value) noexcept;
const option_row* option_table(std::size_t* count) noexcept;

// Validates `text` for `row`. On success stores the value and returns
// nullptr; otherwise returns the reason, in `reason` (up to `length` bytes).
const char* parse_option(const option_row& row, const char* text, std::uint64_t* value, char* reason,
                         std::size_t length) noexcept;
// Writes the known variable nearest `name` (a LARDER_* name that is not
// known) to `out` and returns true, or returns false when none is close
// enough to be a likely misspelling.
bool nearest_option_name(const char* name, char* out, std::size_t length) noexcept;
// Whether `name` is an option's variable or another variable larder reads.
bool known_option_name(const char* name) noexcept;

// printf-style messages to stderr, prefixed "larder: ". Never allocate.
void message(const char* format, ...) noexcept __attribute__((format(printf, 1, 2)));
void warning(const char* format, ...) noexcept __attribute__((format(printf, 1, 2)));
void verbose(const char* format, ...) noexcept __attribute__((format(printf, 1, 2)));

}  // namespace larder::port
