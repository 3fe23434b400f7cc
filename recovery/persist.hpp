// The persistence domain: the one way bytes of a heap become durable.
// Every durable write of larder (superblocks, metadata records, undo-log
// records, transaction data, close) goes through persist(), so that the
// crash-simulating domain sees every persistence point.
//
// Domains: pmem (libpmem2 flush + drain on a file that libpmem2 reports as
// byte- or cache-line-durable, or when PMEM2_FORCE_GRANULARITY forces it),
// file (msync / fdatasync), memory (shm and anonymous heaps: persist is a
// no-op and durable() is false), and crash simulation (see below).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace larder::recovery {

struct persist_range {
  const void* address;
  std::size_t size;
};

enum class domain_kind : std::uint8_t { memory, file, pmem, crash_simulation };

class persist_domain {
 public:
  virtual ~persist_domain() = default;
  // Makes every range durable before returning: 0, or an errno value
  // (EIO, ENOSPC) after which the ranges' durability is unknown.
  virtual int persist(const persist_range* ranges, std::size_t count) noexcept = 0;
  int persist(const void* address, std::size_t size) noexcept {
    persist_range r{address, size};
    return persist(&r, 1);
  }
  // False when nothing survives the machine stopping (shm, anonymous).
  virtual bool durable() const noexcept = 0;
  virtual domain_kind kind() const noexcept = 0;
  const char* name() const noexcept;
};

// Persists through another domain one range at a time. On a file a
// persist of several ranges syncs the whole file, which writes back every
// dirty page of the heap with them: a close that has not made its journal
// durable yet must not start its write-back that way.
class range_by_range_domain final : public persist_domain {
 public:
  explicit range_by_range_domain(persist_domain& inner) noexcept : inner_(inner) {}
  using persist_domain::persist;
  int persist(const persist_range* ranges, std::size_t count) noexcept override {
    for (std::size_t i = 0; i < count; ++i)
      if (int err = inner_.persist(&ranges[i], 1)) return err;
    return 0;
  }
  bool durable() const noexcept override { return inner_.durable(); }
  domain_kind kind() const noexcept override { return inner_.kind(); }

 private:
  persist_domain& inner_;
};

// shm and anonymous heaps.
std::unique_ptr<persist_domain> make_memory_domain();
// A file heap mapped shared at `base`. Chooses pmem when libpmem2 says the
// file is on persistent memory, else msync/fdatasync.
std::unique_ptr<persist_domain> make_file_domain(int fd, std::uintptr_t base);

// ---- crash simulation ---------------------------------------------------
// Set up from the environment when a program runs under the crash harness
// (LARDER_CRASH_AT is set). File heaps are then mapped privately, so that
// no write reaches the file unless it is persisted: persist() copies the
// ranges into the file with pwrite. Persistence points are counted over the
// whole process, from 1. At point LARDER_CRASH_AT the process stops at once
// (exit code kCrashExitCode) after landing none of that persist's ranges,
// or, when LARDER_CRASH_SEED is not 0, a seeded random subset of their
// 64-byte lines (a torn persist). LARDER_CRASH_AT=0 only counts. With
// LARDER_CRASH_REPORT=path, the process writes "points N" there when it
// exits normally, or "crashed N" just before it stops at point N (a word,
// spaces, the number and a newline: 30 bytes).
inline constexpr int kCrashExitCode = 86;
struct crash_settings {
  bool active = false;
  std::uint64_t crash_at = 0;
  std::uint64_t seed = 0;
  const char* report_path = nullptr;
};
// Read once from the environment.
const crash_settings& crash_simulation() noexcept;
std::unique_ptr<persist_domain> make_crash_domain(int fd, std::uintptr_t base);
// Persistence points of crash-simulated heaps counted so far in this
// process (other domains have no points: nothing there can be dropped).
std::uint64_t persistence_points() noexcept;

// Other durable state of the process (a chunk store's files, whose layer
// sits above this one) joins the same simulation: it counts its own
// persistence points in the one sequence, and one power failure stops
// both. Whichever side reaches point LARDER_CRASH_AT calls power_failure,
// which runs every hook (each puts its own files back as the failure
// would leave them), writes the report and stops the process.
std::uint64_t next_persistence_point() noexcept;
using power_failure_hook = void (*)(void* context) noexcept;
// Hooks run in the order added. False when the 8 a process may add are taken.
bool on_power_failure(power_failure_hook hook, void* context) noexcept;
[[noreturn]] void power_failure(std::uint64_t point) noexcept;

}  // namespace larder::recovery
