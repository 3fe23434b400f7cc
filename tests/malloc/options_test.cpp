// The option table (port/options.hpp): each kind's parsing and validation,
// the suggestion for a misspelt name, and that README.md's Options table
// lists every row.
#include "port/options.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

namespace {

using larder::port::option;
using larder::port::option_row;

const option_row& row_of(option o) {
  std::size_t count = 0;
  return larder::port::option_table(&count)[static_cast<std::size_t>(o)];
}

// The value on success, or the reason prefixed with "error: ".
std::string parse(option o, const char* text) {
  char reason[160];
  std::uint64_t value = 0;
  if (const char* why = larder::port::parse_option(row_of(o), text, &value, reason, sizeof(reason)))
    return std::string("error: ") + why;
  return std::to_string(value);
}

std::string nearest(const char* name) {
  char out[64];
  return larder::port::nearest_option_name(name, out, sizeof(out)) ? out : "";
}

TEST(Options, Flags) {
  EXPECT_EQ(parse(option::verbose, "1"), "1");
  EXPECT_EQ(parse(option::verbose, "yes"), "1");
  EXPECT_EQ(parse(option::verbose, "off"), "0");
  EXPECT_EQ(parse(option::verbose, "2"), "error: expected 0 or 1 (or true/false, on/off, yes/no)");
}

TEST(Options, SizesHaveSuffixesAndARange) {
  EXPECT_EQ(parse(option::process_reserve, "1G"), std::to_string(std::uint64_t{1} << 30));
  EXPECT_EQ(parse(option::process_reserve, "4GiB"), std::to_string(std::uint64_t{4} << 30));
  EXPECT_EQ(parse(option::process_reserve, "2t"), std::to_string(std::uint64_t{2} << 40));
  EXPECT_EQ(parse(option::process_reserve, "1073741824"), std::to_string(std::uint64_t{1} << 30));
  EXPECT_EQ(parse(option::process_reserve, "1M"), "error: below the minimum of 1G");
  EXPECT_EQ(parse(option::process_reserve, "0"), "error: below the minimum of 1G");
  EXPECT_EQ(parse(option::process_reserve, "4096"), "error: below the minimum of 1G");
  EXPECT_EQ(parse(option::process_reserve, "3T"), "error: above the maximum of 2T");
  EXPECT_EQ(parse(option::process_reserve, "9999999999T"), "error: above the maximum of 2T");
  const std::string not_a_size = "error: expected a size in bytes with an optional K, M, G or T suffix";
  EXPECT_EQ(parse(option::process_reserve, "99999999999999999999"), not_a_size);
  EXPECT_EQ(parse(option::process_reserve, "-1G"), not_a_size);
  EXPECT_EQ(parse(option::process_reserve, "1Gx"), not_a_size);
  EXPECT_EQ(parse(option::process_reserve, "G"), not_a_size);
}

TEST(Options, Numbers) {
  EXPECT_EQ(parse(option::purge_slices, "0"), "0");
  EXPECT_EQ(parse(option::purge_slices, "128"), "128");
  EXPECT_EQ(parse(option::purge_slices, "1K"), "error: expected a whole number from 0 to 33554432");
  EXPECT_EQ(parse(option::retain_segments, "-1"), "error: expected a whole number from 0 to 524288");
  EXPECT_EQ(parse(option::crash_seed, "18446744073709551615"), "18446744073709551615");
  EXPECT_EQ(parse(option::crash_seed, "18446744073709551616"), "error: expected a whole number");
  EXPECT_EQ(parse(option::crash_at, "0"), "0");
}

TEST(Options, WordsAndText) {
  EXPECT_EQ(parse(option::tracker, "uffd-async"), "0");
  EXPECT_EQ(parse(option::tracker, "pkey"), "2");
  EXPECT_EQ(parse(option::tracker, "nope"), "error: expected uffd-async, mprotect or pkey");
  EXPECT_EQ(parse(option::tracker, "mprotectx"), "error: expected uffd-async, mprotect or pkey");
  EXPECT_EQ(parse(option::crash_report, "/tmp/anything"), "0");
}

TEST(Options, KnownNames) {
  EXPECT_TRUE(larder::port::known_option_name("LARDER_PROCESS_RESERVE"));
  EXPECT_TRUE(larder::port::known_option_name("LARDER_CRASH_REPORT"));
  EXPECT_TRUE(larder::port::known_option_name("LARDER_CRASHTEST_ACK"));
  EXPECT_TRUE(larder::port::known_option_name("LARDER_GPU_TIER_MODULE"));
  EXPECT_TRUE(larder::port::known_option_name("LARDER_RADOS_MODULE"));
  EXPECT_FALSE(larder::port::known_option_name("LARDER_PURGE_SLICSE"));
  EXPECT_FALSE(larder::port::known_option_name("LARDER_"));
}

TEST(Options, MisspellingsGetTheNearestName) {
  EXPECT_EQ(nearest("LARDER_PURGE_SLICSE"), "LARDER_PURGE_SLICES");
  EXPECT_EQ(nearest("LARDER_PROCES_RESERVE"), "LARDER_PROCESS_RESERVE");
  EXPECT_EQ(nearest("LARDER_SHOWSTATS"), "LARDER_SHOW_STATS");
  EXPECT_EQ(nearest("LARDER_verbose"), "LARDER_VERBOSE");
  EXPECT_EQ(nearest("LARDER_GPU_TEIR_MODULE"), "LARDER_GPU_TIER_MODULE");
  EXPECT_EQ(nearest("LARDER_RADOS_MODUEL"), "LARDER_RADOS_MODULE");
  EXPECT_EQ(nearest("LARDER_TRACKR"), "LARDER_TRACKER");
  EXPECT_EQ(nearest("LARDER_CRASHTEST_HEEP"), "LARDER_CRASHTEST_HEAP");
  EXPECT_EQ(nearest("LARDER_FOO"), "");
  EXPECT_EQ(nearest("LARDER_SOMETHING_ELSE_ENTIRELY_AND_VERY_LONG_INDEED_PAST_SIXTY_FOUR_BYTES"), "");
}

TEST(Options, TheReadmeListsEveryRow) {
  std::ifstream in(LARDER_SOURCE_DIR "/README.md");
  ASSERT_TRUE(in) << "cannot read README.md";
  std::stringstream text;
  text << in.rdbuf();
  std::size_t count = 0;
  const option_row* rows = larder::port::option_table(&count);
  for (std::size_t i = 0; i < count; ++i) {
    std::string variable = "LARDER_";
    for (const char* c = rows[i].name; *c != '\0'; ++c) variable += static_cast<char>(std::toupper(*c));
    std::string row = "| `" + variable + "` | " + rows[i].default_text + " |";
    EXPECT_NE(text.str().find(row), std::string::npos) << "README.md's Options table lacks the row " << row;
  }
}

}  // namespace
