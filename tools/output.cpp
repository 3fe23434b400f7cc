// Output helpers of the larder tool; see output.hpp.
#include "output.hpp"

#include <cstdio>
#include <ctime>

namespace larder_tool {

int exit_code_of(const larder::status& s) {
  if (s.ok()) return kExitOk;
  if (s.is(larder::errc::corrupt) || s.is(larder::errc::truncated)) return kExitDamaged;
  return kExitCannotRun;
}

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

std::string human_size(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int unit = 0;
  double value = static_cast<double>(bytes);
  while (value >= 1024 && unit < 5) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  if (unit == 0 || value >= 100 || value == static_cast<double>(static_cast<std::uint64_t>(value)))
    std::snprintf(text, sizeof(text), "%.0f %s", value, kUnits[unit]);
  else
    std::snprintf(text, sizeof(text), "%.1f %s", value, kUnits[unit]);
  return text;
}

void print_json(const json& document) {
  std::printf("%s\n", document.dump(2, ' ', false, json::error_handler_t::replace).c_str());
}

std::string utc_time(std::uint64_t ns) {
  std::time_t seconds = static_cast<std::time_t>(ns / 1000000000u);
  std::tm parts{};
  gmtime_r(&seconds, &parts);
  char text[40];
  std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S UTC", &parts);
  return text;
}

}  // namespace larder_tool
