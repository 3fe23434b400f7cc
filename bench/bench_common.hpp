// Small helpers shared by larder's benchmark binaries: the run-size scale
// factor, the process's peak resident set, a fast seeded random generator and
// a spin-wait hint. Header-only; none of it allocates.
#pragma once

#include <sys/resource.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace larder_bench {

using bench_clock = std::chrono::steady_clock;

inline double seconds_between(bench_clock::time_point a, bench_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

inline double millis(bench_clock::time_point a, bench_clock::time_point b) {
  return seconds_between(a, b) * 1000.0;
}

// Every workload's object and operation counts are multiplied by this factor.
// 1.0 is the full run; smaller values make short smoke runs. Set from the
// environment variable LARDER_BENCH_SCALE or the --scale=X argument (the
// argument wins).
inline double& scale_factor() {
  static double factor = [] {
    const char* text = std::getenv("LARDER_BENCH_SCALE");
    if (text == nullptr || *text == '\0') return 1.0;
    double v = std::strtod(text, nullptr);
    return v > 0.0 ? v : 1.0;
  }();
  return factor;
}

// `n` scaled by the scale factor, never below `floor`.
inline std::uint64_t scaled(std::uint64_t n, std::uint64_t floor) {
  double v = static_cast<double>(n) * scale_factor();
  std::uint64_t r = v < 1.0 ? 0 : static_cast<std::uint64_t>(v);
  return r < floor ? floor : r;
}

// Consumes "--scale=X" from argv (after benchmark::Initialize has removed its
// own flags). Returns false, with a message, on a malformed value.
inline bool take_scale_flag(const char* arg, bool* taken) {
  static constexpr char kFlag[] = "--scale=";
  *taken = false;
  if (std::strncmp(arg, kFlag, sizeof kFlag - 1) != 0) return true;
  *taken = true;
  char* end = nullptr;
  double v = std::strtod(arg + sizeof kFlag - 1, &end);
  if (end == arg + sizeof kFlag - 1 || *end != '\0' || !(v > 0.0)) return false;
  scale_factor() = v;
  return true;
}

// The process's resident-set high-water mark in MiB. It never goes down, so
// a measurement is only meaningful for the first workload run in a process.
inline double peak_rss_mib() {
  struct rusage usage;
  std::memset(&usage, 0, sizeof usage);
  if (getrusage(RUSAGE_SELF, &usage) != 0) return 0.0;
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is KiB
}

// SplitMix64: one add and two multiply-xorshift rounds per number. Good
// enough statistically for picking slots and sizes, and cheap enough not to
// hide allocator costs.
class rng {
 public:
  explicit rng(std::uint64_t seed) noexcept : state_(seed) {}
  std::uint64_t next() noexcept {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // A value in [0, n) from the upper 32 bits (multiply-shift, no division).
  static std::uint32_t below(std::uint64_t r, std::uint32_t n) noexcept {
    return static_cast<std::uint32_t>(((r >> 32) * n) >> 32);
  }

 private:
  std::uint64_t state_;
};

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

}  // namespace larder_bench
