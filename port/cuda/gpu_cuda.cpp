// port/gpu.hpp over the CUDA runtime: cudaMalloc'd device memory,
// cudaHostAlloc'd staging, cudaMemcpyAsync on a stream with an event per
// marked point.
#include "port/gpu.hpp"

#include <cuda_runtime.h>

namespace larder::port {
namespace {

static_assert(kGpuOutOfMemory == cudaErrorMemoryAllocation);

class cuda_stream final : public gpu_stream {
 public:
  cuda_stream(cudaStream_t stream, cudaEvent_t first, cudaEvent_t second) : stream_(stream), events_{first, second} {}
  ~cuda_stream() override {
    cudaStreamSynchronize(stream_);
    for (cudaEvent_t event : events_) cudaEventDestroy(event);
    cudaStreamDestroy(stream_);
  }
  int copy_to_device(void* device, const void* host, std::size_t length) override {
    return cudaMemcpyAsync(device, host, length, cudaMemcpyHostToDevice, stream_);
  }
  int copy_to_host(void* host, const void* device, std::size_t length) override {
    return cudaMemcpyAsync(host, device, length, cudaMemcpyDeviceToHost, stream_);
  }
  // An event never recorded counts as complete, as wait() promises.
  int mark(unsigned point) override { return cudaEventRecord(events_[point], stream_); }
  int wait(unsigned point) override { return cudaEventSynchronize(events_[point]); }
  int wait_all() override { return cudaStreamSynchronize(stream_); }

 private:
  cudaStream_t stream_;
  cudaEvent_t events_[2];
};

class cuda_device final : public gpu_device {
 public:
  explicit cuda_device(int index) : index_(index) {}
  int allocate(std::size_t bytes, void** out) override {
    if (int err = use()) return err;
    return cudaMalloc(out, bytes);
  }
  void release(void* memory) override {
    if (use() == 0) cudaFree(memory);
  }
  int allocate_pinned(std::size_t bytes, void** out) override {
    if (int err = use()) return err;
    return cudaHostAlloc(out, bytes, cudaHostAllocDefault);
  }
  void release_pinned(void* memory) override { cudaFreeHost(memory); }
  int create_stream(std::unique_ptr<gpu_stream>* out) override {
    if (int err = use()) return err;
    cudaStream_t stream = nullptr;
    cudaEvent_t events[2] = {nullptr, nullptr};
    // Non-blocking: the copies do not wait for work on the legacy default
    // stream that the program may be running on the same device.
    int err = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
    for (cudaEvent_t& event : events) {
      if (err == 0) err = cudaEventCreateWithFlags(&event, cudaEventDisableTiming);
    }
    if (err != 0) {
      for (cudaEvent_t event : events) {
        if (event != nullptr) cudaEventDestroy(event);
      }
      if (stream != nullptr) cudaStreamDestroy(stream);
      return err;
    }
    out->reset(new cuda_stream(stream, events[0], events[1]));
    return 0;
  }
  int use() override { return cudaSetDevice(index_); }

 private:
  const int index_;
};

}  // namespace

int open_gpu_device(int index, std::unique_ptr<gpu_device>* out) {
  int count = 0;
  if (cudaError_t err = cudaGetDeviceCount(&count); err != cudaSuccess) return err;
  if (count == 0) return cudaErrorNoDevice;
  if (index < 0 || index >= count) return cudaErrorInvalidDevice;
  auto device = std::make_unique<cuda_device>(index);
  if (int err = device->use()) return err;
  *out = std::move(device);
  return 0;
}

const char* gpu_error_name(int code) { return cudaGetErrorName(static_cast<cudaError_t>(code)); }
const char* gpu_error_text(int code) { return cudaGetErrorString(static_cast<cudaError_t>(code)); }

}  // namespace larder::port
