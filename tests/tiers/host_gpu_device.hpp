// A device made of host memory behind port/gpu.hpp, for the GPU tier's
// tests on machines without a GPU: its copies run only when a wait covers
// them, as a GPU's may run late, so a staging half reused before its copies
// are done reads back wrong bytes.
#pragma once

#include "port/gpu.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

namespace larder_test {

// Copies queued until a wait covers them.
class host_stream final : public larder::port::gpu_stream {
 public:
  int copy_to_device(void* device, const void* host, std::size_t length) override { return queue(device, host, length); }
  int copy_to_host(void* host, const void* device, std::size_t length) override { return queue(host, device, length); }
  int mark(unsigned point) override {
    marks_[point] = done_ + queued_.size();
    return 0;
  }
  int wait(unsigned point) override {
    run_until(marks_[point]);
    return 0;
  }
  int wait_all() override {
    run_until(done_ + queued_.size());
    return 0;
  }

 private:
  struct copy {
    void* to;
    const void* from;
    std::size_t length;
  };
  int queue(void* to, const void* from, std::size_t length) {
    queued_.push_back(copy{to, from, length});
    return 0;
  }
  void run_until(std::size_t position) {
    std::size_t i = 0;
    for (; done_ + i < position; ++i) std::memcpy(queued_[i].to, queued_[i].from, queued_[i].length);
    queued_.erase(queued_.begin(), queued_.begin() + static_cast<std::ptrdiff_t>(i));
    done_ += i;
  }
  std::vector<copy> queued_;
  std::size_t done_ = 0;  // copies run so far
  std::size_t marks_[2] = {0, 0};
};

// Device memory from the host heap; allocation fails past `memory_limit`.
class host_device final : public larder::port::gpu_device {
 public:
  explicit host_device(std::size_t memory_limit = ~std::size_t{0}) : limit_(memory_limit) {}
  int allocate(std::size_t bytes, void** out) override {
    std::lock_guard lock(mutex_);
    if (allocated_ + bytes > limit_) return larder::port::kGpuOutOfMemory;
    allocated_ += bytes;
    *out = std::malloc(bytes);
    return 0;
  }
  void release(void* memory) override { std::free(memory); }
  int allocate_pinned(std::size_t bytes, void** out) override {
    *out = std::malloc(bytes);
    return 0;
  }
  void release_pinned(void* memory) override { std::free(memory); }
  int create_stream(std::unique_ptr<larder::port::gpu_stream>* out) override {
    streams_created.fetch_add(1);
    *out = std::make_unique<host_stream>();
    return 0;
  }
  int use() override { return 0; }
  std::atomic<int> streams_created{0};

 private:
  std::mutex mutex_;
  std::size_t allocated_ = 0;
  const std::size_t limit_;
};

}  // namespace larder_test
