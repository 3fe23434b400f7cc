// The GPU tier: pods' pages in page slots of device memory, allocated in
// large chunks as the tier fills, moved through a pinned staging buffer
// with asynchronous copies on a stream per transferring thread (the CUDA
// runtime behind port/gpu.hpp). Entry point: gpu_tier::open, which refuses
// with unsupported, naming the CUDA error, where there is no device.
// Device memory is not durable: the tier holds pages while the process
// lives, as the disk tier's scratch file does.
#pragma once

#include "tiers/slots/slotted_tier.hpp"

#include <memory>
#include <mutex>
#include <vector>

namespace larder::port {
class gpu_device;
class gpu_stream;
}  // namespace larder::port

namespace larder::tiers {

struct gpu_tier_options {
  int device = 0;  // the CUDA device index
  // The most the tier holds; writes past it fail with out_of_space.
  std::uint64_t capacity_bytes = std::uint64_t{1} << 30;
  // Device memory is allocated this much at a time (cudaMalloc is slow
  // and synchronizes the device, so it is called rarely).
  std::uint64_t chunk_bytes = std::uint64_t{64} << 20;
  // Pinned host memory per transferring thread, used as two halves: one is
  // filled (or emptied) by the CPU while the other's copies run.
  std::size_t staging_bytes = std::size_t{8} << 20;
};

class gpu_tier final : public slotted_tier {
 public:
  // Opens device `options.device`. unsupported, with the CUDA error named,
  // when the runtime finds no device (cudaGetDeviceCount fails or counts
  // none) or not that one; invalid_argument for sizes that are no page
  // multiples (staging: two pages at least) or zero.
  static status open(const gpu_tier_options& options, std::unique_ptr<gpu_tier>* out);
  // The same on a device already opened (a test's own).
  static status open_on(std::unique_ptr<port::gpu_device> device, const gpu_tier_options& options,
                        std::unique_ptr<gpu_tier>* out);
  ~gpu_tier() override;

  // write() returns once its copies are complete; nothing is durable.
  status sync() override { return {}; }

 private:
  // A thread's stream and its pinned staging buffer.
  struct transfer_context {
    std::unique_ptr<port::gpu_stream> stream;
    char* staging = nullptr;
  };
  // Pages [first, first + count) of a transfer, staged in one half.
  struct batch {
    std::size_t first;
    std::size_t count;
    char* staging;
  };

  gpu_tier(std::unique_ptr<port::gpu_device> device, const gpu_tier_options& options);
  // Allocates the chunks that slots below `end` lie in.
  status provide(std::uint64_t end) override;
  status transfer(const std::vector<page_ref>& pages, const std::vector<std::uint64_t>& slots,
                  bool writing) override;
  int write_batches(transfer_context& context, const std::vector<page_ref>& pages,
                    const std::vector<std::uint64_t>& slots);
  int read_batches(transfer_context& context, const std::vector<page_ref>& pages,
                   const std::vector<std::uint64_t>& slots);
  // Enqueues the copies of one batch, a copy per run of adjacent slots in
  // one chunk.
  int enqueue(port::gpu_stream& stream, const batch& b, const std::vector<std::uint64_t>& slots, bool writing);
  status take_context(std::unique_ptr<transfer_context>* context);
  void destroy_context(std::unique_ptr<transfer_context> context);
  status error(const char* what, int code) const;

  const std::unique_ptr<port::gpu_device> device_;
  const gpu_tier_options options_;
  const std::uint64_t slots_per_chunk_;
  // Sized once (capacity / chunk); an entry is set under slotted_tier's
  // lock before any slot in it is handed out, and never changes after.
  std::vector<char*> chunks_;
  std::size_t chunks_allocated_ = 0;  // under slotted_tier's lock (provide)

  std::mutex contexts_mutex_;
  std::vector<std::unique_ptr<transfer_context>> idle_contexts_;  // one per thread that has transferred at once
};

}  // namespace larder::tiers
