// Whole small files of a chunk store: read one, or publish one atomically
// (temporary name, fsync, rename, fsync of the directory).
#pragma once

#include "tiers/chunks/file_ops.hpp"

#include <larder/status.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace larder::chunks {

// Temporaries are "<name>.tmp-<pid>-<random>"; gc removes them.
inline constexpr std::string_view kTemporaryMark = ".tmp-";
std::string temporary_name(const std::string& path);
bool is_temporary(std::string_view name);

// Durable once this returns OK (file sync, rename, directory sync, all
// through `ops`). With `replace`, an existing file of that name is
// replaced atomically; otherwise one is left alone and the call succeeds
// (content-addressed files: same name, same bytes). With `durable` false,
// no sync: for a file a reader checks and rebuilds (a pack's index), which
// a power failure may leave absent, empty or partly written.
status publish_file(file_ops& ops, const std::string& directory, const std::string& name, std::string_view bytes,
                    bool replace, bool durable = true);
// The directory holding `path` ("." for a bare name); "a/b/" is in "a".
std::string parent_directory(const std::string& path);
// not_found when absent.
status read_file(const std::string& path, std::string* out);
// The names in `directory` (without "." and "..").
status list_directory(const std::string& directory, std::vector<std::string>* out);

}  // namespace larder::chunks
