// Runtime options: one table, each row settable by LARDER_<NAME> in the
// environment, read once at startup. Also the allocator's message output,
// which never allocates (it runs inside malloc).
#pragma once

#include <cstddef>
#include <cstdint>

namespace larder::alloc {

enum class option : int {
  show_stats,       // print statistics to stderr at exit
  verbose,          // print informational messages
  process_reserve,  // address space reserved for the process heap (bytes)
  purge_slices,     // free slices a pod keeps before giving them back to the OS
  retain_segments,  // empty segments a heap keeps committed for reuse
  count_
};

struct option_row {
  const char* name;         // lower case; the variable is LARDER_<NAME upper case>
  std::int64_t value;       // the default until options are read
  const char* description;
};

// Reads every row from the environment (idempotent; called at startup).
void read_options() noexcept;
std::int64_t option_value(option o) noexcept;
void set_option(option o, std::int64_t value) noexcept;
const option_row* option_table(std::size_t* count) noexcept;

// printf-style messages to stderr, prefixed "larder: ". Never allocate.
void message(const char* format, ...) noexcept __attribute__((format(printf, 1, 2)));
void warning(const char* format, ...) noexcept __attribute__((format(printf, 1, 2)));
void verbose(const char* format, ...) noexcept __attribute__((format(printf, 1, 2)));

}  // namespace larder::alloc
