// Directories, renames and file sizes, for stores made of many files
// (tiers/chunks). Every function returns 0 or an errno value.
#pragma once

#include <cstdint>

namespace larder::port {

// Creates the directory (mode 0700); 0 when it exists already. With
// `created`, says whether this call made it.
int make_directory(const char* path, bool* created = nullptr);
// Removes `path` and everything under it; 0 when it does not exist.
int remove_tree(const char* path);
// Makes the entries of `path` (creations, renames, removals) durable.
int sync_directory(const char* path);
// Renames `from` to `to`: with `replace`, over an existing `to` (atomically);
// without, EEXIST when `to` exists. Not durable before sync_directory of
// the directory holding `to`.
int rename_file(const char* from, const char* to, bool replace);
// Sets the file's size, cutting it or extending it with zeros.
int set_file_size(int fd, std::uint64_t size);
// Whole-file flock: shared or exclusive, waiting for it or not (EWOULDBLOCK
// when `wait` is false and another descriptor holds a conflicting lock).
// Released by unlock_file or when the descriptor closes.
int lock_file(int fd, bool exclusive, bool wait);
int unlock_file(int fd);

}  // namespace larder::port
