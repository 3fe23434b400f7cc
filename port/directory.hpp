// Directories and whole-file replacement, for stores made of many files
// (tiers/chunks). Every function returns 0 or an errno value.
#pragma once

namespace larder::port {

// Creates the directory (mode 0700); 0 when it exists already.
int make_directory(const char* path);
// Makes the entries of `path` (creations, renames, removals) durable.
int sync_directory(const char* path);
// Renames `from` over `to` (replacing it atomically), then makes the
// directory entry durable. Both lie in `directory`.
int replace_durably(const char* from, const char* to, const char* directory);
// Whole-file flock: shared or exclusive, waiting for it or not (EWOULDBLOCK
// when `wait` is false and another descriptor holds a conflicting lock).
// Released by unlock_file or when the descriptor closes.
int lock_file(int fd, bool exclusive, bool wait);
int unlock_file(int fd);

}  // namespace larder::port
