// See progress.hpp.
#include "progress.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>

namespace larder_tool {

namespace {

constexpr auto kQuietFor = std::chrono::seconds(1);
constexpr auto kRedrawEvery = std::chrono::milliseconds(100);
constexpr int kBarWidth = 24;

}  // namespace

progress::progress(std::string what, bool enabled) : what_(std::move(what)) {
  if (enabled && ::isatty(STDERR_FILENO) == 1) drawer_ = std::thread([this] { draw(); });
}

progress::~progress() {
  if (!drawer_.joinable()) return;
  {
    std::lock_guard guard(lock_);
    done_ = true;
  }
  done_changed_.notify_all();
  drawer_.join();
}

void progress::draw() {
  const auto start = std::chrono::steady_clock::now();
  std::unique_lock guard(lock_);
  if (done_changed_.wait_for(guard, kQuietFor, [this] { return done_; })) return;
  for (int tick = 0; !done_changed_.wait_for(guard, kRedrawEvery, [this] { return done_; }); ++tick) {
    // A block of three moving back and forth across the bar.
    const int span = kBarWidth - 3, at = tick % (2 * span) < span ? tick % span : span - tick % span;
    std::string bar(kBarWidth, ' ');
    bar.replace(static_cast<std::size_t>(at), 3, "===");
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "\r%s [%s] %.1f s", what_.c_str(), bar.c_str(), seconds);
    std::fflush(stderr);
  }
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
}

}  // namespace larder_tool
