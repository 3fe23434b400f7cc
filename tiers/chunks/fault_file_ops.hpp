// Power failures for crash sweeps of the chunk store: a file_ops that does
// every operation for real and records what a power failure would keep —
// a file's bytes as of its last sync, a creation, rename or removal once
// its directory is synced — and at a chosen persistence point rolls the
// files back to that and stops the process. Entry point: fault_file_ops.
//
// Syncs are recorded, not performed: what is durable is the layer's
// record, and a real sync would only cost time. Files the layer neither
// created nor wrote are taken as durable as they are. One thread at a time; one object per process is the intended use
// (points are counted by the object).
#pragma once

#include "tiers/chunks/file_ops.hpp"

#include <larder/status.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace larder::chunks {

struct fault_plan {
  // The persistence point (each sync and directory sync, counted from 1)
  // at which the power fails instead of that sync; 0: never.
  std::uint64_t crash_at = 0;
  // A torn failure lands a seeded random subset of the unsynced writes
  // (in pieces of kTornPiece bytes) and, of each directory's unsynced
  // changes, a random prefix (the order a journaling file system commits
  // them in); otherwise none of either lands.
  bool torn = false;
  std::uint64_t seed = 0;
  // Points are counted in the heap crash simulation's sequence and the
  // failure is its power_failure (recovery/persist.hpp), which rolls these
  // files back through a hook; crash_at is then the simulation's.
  bool joins_heap_simulation = false;
};

class fault_file_ops final : public file_ops {
 public:
  // A page: what writeback lands or loses at once.
  static constexpr std::size_t kTornPiece = 4096;

  explicit fault_file_ops(const fault_plan& plan);
  ~fault_file_ops() override;

  int create(const char* path, bool try_direct, int* fd, bool* direct) override;  // never O_DIRECT
  // One request at a time with pwrite, done when start_write returns:
  // `queue` is not used.
  int start_write(port::io_queue& queue, port::io_request* requests, std::size_t count) override;
  int finish_writes(port::io_queue&) override { return 0; }
  int write_at(int fd, const void* bytes, std::size_t length, std::uint64_t offset) override;
  int sync(int fd) override;
  int close(int fd) override;
  int rename(const char* from, const char* to, bool replace) override;
  int remove(const char* path) override;
  int make_directory(const char* path, bool* created) override;
  int sync_directory(const char* path) override;

  std::uint64_t points() const { return points_; }
  // Puts the files back as a power failure now would leave them, then
  // forgets everything recorded (as after a reboot). Descriptors from
  // create() stay open and are no longer tracked.
  status roll_back();
  // roll_back(), then stops the process at once with recovery's
  // kCrashExitCode (the heap crash harness's), or 1 after printing why
  // when the roll-back failed. What sync at point crash_at does.
  [[noreturn]] void power_off();

 private:
  struct extent {
    std::uint64_t offset;
    std::string bytes;
  };
  struct file_record {
    std::string path;  // its name now; empty once removed or replaced
    std::uint64_t synced_size = 0;
    std::vector<extent> overwritten;  // synced bytes as they were before an unsynced write, oldest first
    std::vector<extent> unsynced;     // unsynced writes in kTornPiece pieces, in order (torn plans only)
  };
  enum class change_kind { created_file, created_directory, renamed, removed };
  struct change {
    change_kind kind;
    std::string directory;  // whose sync makes it durable
    std::string path;       // what was created or removed; a rename's new name
    std::string from;       // a rename's old name
    bool had_content = false;  // removed, or replaced by a rename: the durable bytes it had
    std::string content;
  };

  void point();
  int durable_content(const std::string& path, bool* exists, std::string* out) const;
  int write_one(int fd, const void* bytes, std::size_t length, std::uint64_t offset);
  int restore_data(const file_record& f);
  int undo(const change& c);
  void forget_path(const std::string& path);

  fault_plan plan_;
  std::mt19937_64 random_;
  std::uint64_t points_ = 0;
  std::map<std::string, std::shared_ptr<file_record>> by_path_;
  std::unordered_map<int, std::shared_ptr<file_record>> by_fd_;
  std::vector<change> pending_;  // directory changes not yet synced, in order
};

}  // namespace larder::chunks
