// gpu_tier (gpu_tier.hpp): chunks of device memory allocated under
// slotted_tier's lock (provide), transfers outside it through a pool of
// streams with pinned staging, one per thread transferring. A transfer
// goes in batches of half the staging buffer: while one half's copies
// run, the CPU fills (writes) or empties (reads) the other.
#include "tiers/gpu/gpu_tier.hpp"

#include "port/gpu.hpp"

#include <errno.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <utility>

namespace larder::tiers {
namespace {

status check_options(const gpu_tier_options& options) {
  auto page_multiple = [](std::uint64_t n) { return n != 0 && n % kTierPageSize == 0; };
  if (!page_multiple(options.capacity_bytes) || !page_multiple(options.chunk_bytes) ||
      !page_multiple(options.staging_bytes / 2) || options.staging_bytes % (2 * kTierPageSize) != 0) {
    return status(errc::invalid_argument,
                  "GPU tier: capacity, chunk and half the staging size must be nonzero page multiples");
  }
  return {};
}

std::string cuda_error(int code) {
  return std::string(port::gpu_error_name(code)) + " (" + port::gpu_error_text(code) + ")";
}

}  // namespace

status gpu_tier::open(const gpu_tier_options& options, std::unique_ptr<gpu_tier>* out) {
  if (status s = check_options(options); !s.ok()) return s;
  std::unique_ptr<port::gpu_device> device;
  if (int err = port::open_gpu_device(options.device, &device)) {
    return status(errc::unsupported,
                  "GPU tier: no CUDA device " + std::to_string(options.device) + " to use: " + cuda_error(err));
  }
  return open_on(std::move(device), options, out);
}

status gpu_tier::open_on(std::unique_ptr<port::gpu_device> device, const gpu_tier_options& options,
                         std::unique_ptr<gpu_tier>* out) {
  if (status s = check_options(options); !s.ok()) return s;
  out->reset(new gpu_tier(std::move(device), options));
  return {};
}

gpu_tier::gpu_tier(std::unique_ptr<port::gpu_device> device, const gpu_tier_options& options)
    : slotted_tier("GPU tier on device " + std::to_string(options.device), options.capacity_bytes / kTierPageSize),
      device_(std::move(device)), options_(options), slots_per_chunk_(options.chunk_bytes / kTierPageSize),
      chunks_((options.capacity_bytes + options.chunk_bytes - 1) / options.chunk_bytes, nullptr) {}

gpu_tier::~gpu_tier() {
  while (!idle_contexts_.empty()) {
    destroy_context(std::move(idle_contexts_.back()));
    idle_contexts_.pop_back();
  }
  for (std::size_t i = 0; i < chunks_allocated_; ++i) device_->release(chunks_[i]);
}

status gpu_tier::provide(std::uint64_t end) {
  while (chunks_allocated_ * slots_per_chunk_ < end) {
    std::uint64_t offset = chunks_allocated_ * options_.chunk_bytes;
    std::uint64_t bytes = std::min(options_.chunk_bytes, options_.capacity_bytes - offset);
    void* memory = nullptr;
    if (int err = device_->allocate(bytes, &memory)) return error("allocating device memory", err);
    chunks_[chunks_allocated_++] = static_cast<char*>(memory);
  }
  return {};
}

status gpu_tier::transfer(const std::vector<page_ref>& pages, const std::vector<std::uint64_t>& slots,
                          bool writing) {
  if (int err = device_->use()) return error("selecting the device", err);
  std::unique_ptr<transfer_context> context;
  if (status s = take_context(&context); !s.ok()) return s;
  int err = writing ? write_batches(*context, pages, slots) : read_batches(*context, pages, slots);
  if (err != 0) {
    // The context's copies may still be queued: it is not reused.
    destroy_context(std::move(context));
    return error(writing ? "copying to the device" : "copying from the device", err);
  }
  std::lock_guard lock(contexts_mutex_);
  idle_contexts_.push_back(std::move(context));
  return {};
}

int gpu_tier::write_batches(transfer_context& context, const std::vector<page_ref>& pages,
                            const std::vector<std::uint64_t>& slots) {
  const std::size_t per_half = options_.staging_bytes / 2 / kTierPageSize;
  for (std::size_t first = 0, n = 0; first < pages.size(); first += per_half, ++n) {
    unsigned half = n % 2;
    batch b{first, std::min(per_half, pages.size() - first), context.staging + half * per_half * kTierPageSize};
    if (int err = context.stream->wait(half)) return err;  // the copies of the batch before last
    for (std::size_t i = 0; i < b.count; ++i) {
      std::memcpy(b.staging + i * kTierPageSize, pages[b.first + i].address, kTierPageSize);
    }
    if (int err = enqueue(*context.stream, b, slots, true)) return err;
    if (int err = context.stream->mark(half)) return err;
  }
  return context.stream->wait_all();
}

int gpu_tier::read_batches(transfer_context& context, const std::vector<page_ref>& pages,
                           const std::vector<std::uint64_t>& slots) {
  const std::size_t per_half = options_.staging_bytes / 2 / kTierPageSize;
  std::optional<batch> pending;  // copied into staging, not yet out of it
  unsigned pending_half = 0;
  auto unpack = [&]() {
    if (int err = context.stream->wait(pending_half)) return err;
    for (std::size_t i = 0; i < pending->count; ++i) {
      std::memcpy(pages[pending->first + i].address, pending->staging + i * kTierPageSize, kTierPageSize);
    }
    return 0;
  };
  for (std::size_t first = 0, n = 0; first < pages.size(); first += per_half, ++n) {
    // This half's last batch was emptied in the round before.
    unsigned half = n % 2;
    batch b{first, std::min(per_half, pages.size() - first), context.staging + half * per_half * kTierPageSize};
    if (int err = enqueue(*context.stream, b, slots, false)) return err;
    if (int err = context.stream->mark(half)) return err;
    if (pending) {
      if (int err = unpack()) return err;
    }
    pending = b;
    pending_half = half;
  }
  return pending ? unpack() : 0;
}

int gpu_tier::enqueue(port::gpu_stream& stream, const batch& b, const std::vector<std::uint64_t>& slots,
                      bool writing) {
  std::size_t i = 0;
  while (i < b.count) {
    std::uint64_t slot = slots[b.first + i];
    std::uint64_t chunk = slot / slots_per_chunk_;
    std::size_t run = 1;
    while (i + run < b.count && slots[b.first + i + run] == slot + run && (slot + run) / slots_per_chunk_ == chunk) {
      ++run;
    }
    char* device = chunks_[chunk] + (slot % slots_per_chunk_) * kTierPageSize;
    char* host = b.staging + i * kTierPageSize;
    std::size_t length = run * kTierPageSize;
    int err = writing ? stream.copy_to_device(device, host, length) : stream.copy_to_host(host, device, length);
    if (err != 0) return err;
    i += run;
  }
  return 0;
}

status gpu_tier::take_context(std::unique_ptr<transfer_context>* context) {
  {
    std::lock_guard lock(contexts_mutex_);
    if (!idle_contexts_.empty()) {
      *context = std::move(idle_contexts_.back());
      idle_contexts_.pop_back();
      return {};
    }
  }
  auto made = std::make_unique<transfer_context>();
  void* staging = nullptr;
  if (int err = device_->allocate_pinned(options_.staging_bytes, &staging)) {
    return error("allocating pinned staging memory", err);
  }
  made->staging = static_cast<char*>(staging);
  if (int err = device_->create_stream(&made->stream)) {
    destroy_context(std::move(made));
    return error("creating a stream", err);
  }
  *context = std::move(made);
  return {};
}

void gpu_tier::destroy_context(std::unique_ptr<transfer_context> context) {
  context->stream.reset();  // waits for its copies
  device_->release_pinned(context->staging);
}

status gpu_tier::error(const char* what, int code) const {
  if (code == port::kGpuOutOfMemory) {
    return status(errc::out_of_space, name() + ": memory is full " + what + ": " + cuda_error(code) +
                                          "; nothing held before was lost");
  }
  return status::from_errno(EIO, name() + ": failed " + what + ": " + cuda_error(code));
}

}  // namespace larder::tiers
