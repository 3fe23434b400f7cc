// What the larder tool prints: names made safe for a terminal, sizes for
// people, and the exit codes every command shares (docs/tools/larder.md).
#pragma once

#include <larder/status.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace larder_tool {

// Exit codes, the same for every command.
inline constexpr int kExitOk = 0;
inline constexpr int kExitDamaged = 1;     // the heap is damaged (check found problems, open refused it)
inline constexpr int kExitCannotRun = 2;   // no such heap, busy, I/O error, not a heap ...
inline constexpr int kExitUsage = 64;      // the command line is wrong (BSD EX_USAGE)

// The exit code for a failed open or operation.
int exit_code_of(const larder::status& s);

// Control characters, terminal escapes and bytes that are not UTF-8 shown as
// \n, \t, \r, \\ or \xHH, so that a name shows what is there and stays on
// one line.
std::string printable(std::string_view name);

// "512 B", "1.5 KiB", "64 GiB".
std::string human_size(std::uint64_t bytes);

// "2026-12-06 05:04:58 UTC" from CLOCK_REALTIME nanoseconds.
std::string utc_time(std::uint64_t ns);

// What --json prints: keys in the order given, names exact (bytes that are
// not UTF-8 become U+FFFD), indented, one document per call.
using json = nlohmann::ordered_json;
void print_json(const json& document);

}  // namespace larder_tool
