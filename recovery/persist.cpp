// The persistence domains; see persist.hpp.
#include "recovery/persist.hpp"

#include "port/options.hpp"
#include "port/os.hpp"
#include "port/pmem.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>

namespace larder::recovery {

namespace {

std::atomic<std::uint64_t> g_points{0};

std::uint64_t next_point() noexcept { return g_points.fetch_add(1, std::memory_order_relaxed) + 1; }

struct hook_entry {
  power_failure_hook hook;
  void* context;
};
// Fixed: a failure must not allocate. Added to at setup, before any crash.
hook_entry g_hooks[8];
std::atomic<std::size_t> g_hook_count{0};

// msync wants page-aligned starts.
persist_range page_aligned(const persist_range& r) noexcept {
  auto start = reinterpret_cast<std::uintptr_t>(r.address) & ~(port::kOsPageSize - 1);
  std::size_t size = reinterpret_cast<std::uintptr_t>(r.address) + r.size - start;
  return {reinterpret_cast<const void*>(start), size};
}

class memory_domain final : public persist_domain {
 public:
  int persist(const persist_range*, std::size_t) noexcept override { return 0; }
  bool durable() const noexcept override { return false; }
  domain_kind kind() const noexcept override { return domain_kind::memory; }
};

class file_domain final : public persist_domain {
 public:
  explicit file_domain(int fd) : fd_(fd) {}
  int persist(const persist_range* ranges, std::size_t count) noexcept override {
    if (count == 0) return 0;
    // One range: msync writes just its pages. More: one fdatasync costs
    // one device flush where an msync per range would cost one each.
    if (count == 1) {
      persist_range r = page_aligned(ranges[0]);
      return port::sync_range(const_cast<void*>(r.address), r.size);
    }
    return port::sync_file(fd_);
  }
  bool durable() const noexcept override { return true; }
  domain_kind kind() const noexcept override { return domain_kind::file; }

 private:
  int fd_;
};

class pmem_domain final : public persist_domain {
 public:
  explicit pmem_domain(port::pmem_flushes flushes) : flushes_(flushes) {}
  ~pmem_domain() override { port::release_pmem(&flushes_); }
  int persist(const persist_range* ranges, std::size_t count) noexcept override {
    if (count == 0) return 0;
    for (std::size_t i = 0; i < count; ++i) flushes_.flush(ranges[i].address, ranges[i].size);
    flushes_.drain();
    return 0;
  }
  bool durable() const noexcept override { return true; }
  domain_kind kind() const noexcept override { return domain_kind::pmem; }

 private:
  port::pmem_flushes flushes_;
};

void write_report(const char* word, std::uint64_t n) noexcept {
  const crash_settings& cs = crash_simulation();
  if (cs.report_path == nullptr) return;
  // Fixed width, so a report overwrites an older one completely.
  char text[64];
  int length = std::snprintf(text, sizeof(text), "%-8s %20llu\n", word, static_cast<unsigned long long>(n));
  int fd = -1;
  bool created = false;
  if (port::open_file(cs.report_path, true, false, true, &fd, &created) != 0) return;
  (void)port::write_at(fd, text, static_cast<std::size_t>(length), 0);
  port::close_fd(fd);
}

void report_points_at_exit() { write_report("points", g_points.load()); }

// The file holds exactly what was persisted: writes reach it only here.
class crash_domain final : public persist_domain {
 public:
  crash_domain(int fd, std::uintptr_t base) : fd_(fd), base_(base) {}
  int persist(const persist_range* ranges, std::size_t count) noexcept override {
    if (count == 0) return 0;
    std::uint64_t point = next_point();
    const crash_settings& cs = crash_simulation();
    if (point == cs.crash_at) crash(ranges, count, point);
    for (std::size_t i = 0; i < count; ++i) {
      if (int err = land(ranges[i].address, ranges[i].size)) return err;
    }
    return 0;
  }
  bool durable() const noexcept override { return true; }
  domain_kind kind() const noexcept override { return domain_kind::crash_simulation; }

 private:
  int land(const void* address, std::size_t size) noexcept {
    std::uint64_t offset = reinterpret_cast<std::uintptr_t>(address) - base_;
    return port::write_at(fd_, address, size, offset);
  }

  // A power failure in the middle of this persist: some of its 64-byte
  // lines (none without a seed) reach the file, then the process stops.
  [[noreturn]] void crash(const persist_range* ranges, std::size_t count, std::uint64_t point) noexcept {
    const crash_settings& cs = crash_simulation();
    if (cs.seed != 0) {
      std::mt19937_64 random(cs.seed ^ (point * 0x9E3779B97F4A7C15ull));
      for (std::size_t i = 0; i < count; ++i) {
        auto start = reinterpret_cast<std::uintptr_t>(ranges[i].address);
        std::uintptr_t end = start + ranges[i].size;
        for (std::uintptr_t line = start & ~std::uintptr_t{63}; line < end; line += 64) {
          if ((random() & 1) == 0) continue;
          std::uintptr_t from = line < start ? start : line;
          std::uintptr_t to = line + 64 < end ? line + 64 : end;
          (void)land(reinterpret_cast<const void*>(from), to - from);
        }
      }
    }
    power_failure(point);
  }

  int fd_;
  std::uintptr_t base_;
};

}  // namespace

const char* persist_domain::name() const noexcept {
  switch (kind()) {
    case domain_kind::memory: return "memory (not durable)";
    case domain_kind::file: return "file (msync/fdatasync)";
    case domain_kind::pmem: return "persistent memory (libpmem2)";
    case domain_kind::crash_simulation: return "crash simulation";
  }
  return "?";
}

std::unique_ptr<persist_domain> make_memory_domain() { return std::make_unique<memory_domain>(); }

std::unique_ptr<persist_domain> make_file_domain(int fd, std::uintptr_t base) {
  (void)base;
  port::pmem_flushes flushes;
  if (port::probe_pmem(fd, &flushes)) return std::make_unique<pmem_domain>(flushes);
  return std::make_unique<file_domain>(fd);
}

const crash_settings& crash_simulation() noexcept {
  static const crash_settings settings = [] {
    crash_settings s;
    if (!port::option_set(port::option::crash_at)) return s;
    s.active = true;
    s.crash_at = port::option_value(port::option::crash_at);
    s.seed = port::option_value(port::option::crash_seed);
    s.report_path = port::option_text(port::option::crash_report);
    std::atexit(report_points_at_exit);
    return s;
  }();
  return settings;
}

std::unique_ptr<persist_domain> make_crash_domain(int fd, std::uintptr_t base) {
  return std::make_unique<crash_domain>(fd, base);
}

std::uint64_t persistence_points() noexcept { return g_points.load(std::memory_order_relaxed); }

std::uint64_t next_persistence_point() noexcept { return next_point(); }

bool on_power_failure(power_failure_hook hook, void* context) noexcept {
  std::size_t n = g_hook_count.load(std::memory_order_acquire);
  if (n == std::size(g_hooks)) return false;
  g_hooks[n] = {hook, context};
  g_hook_count.store(n + 1, std::memory_order_release);
  return true;
}

void power_failure(std::uint64_t point) noexcept {
  std::size_t n = g_hook_count.load(std::memory_order_acquire);
  for (std::size_t i = 0; i < n; ++i) g_hooks[i].hook(g_hooks[i].context);
  write_report("crashed", point);
  std::_Exit(kCrashExitCode);
}

}  // namespace larder::recovery
