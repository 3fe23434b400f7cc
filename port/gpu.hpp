// GPU memory and transfers between it and pinned host memory. The CUDA
// runtime's implementation is port/cuda/gpu_cuda.cpp, the only file that
// includes cuda_runtime.h, built where the CUDA toolkit is found; a test
// may put a device of its own behind the same classes. Entry point:
// open_gpu_device. Every function returns 0 or an error code of the CUDA
// runtime (a cudaError_t), which gpu_error_name and gpu_error_text name.
#pragma once

#include <cstddef>
#include <memory>

namespace larder::port {

// cudaErrorMemoryAllocation: device or pinned host memory is exhausted.
inline constexpr int kGpuOutOfMemory = 2;

// An ordered queue of copies (a CUDA stream), used by one thread at a time.
class gpu_stream {
 public:
  virtual ~gpu_stream() = default;
  // Enqueue a copy, which runs after everything enqueued before it. `host`
  // is pinned memory (gpu_device::allocate_pinned), left untouched until a
  // wait covers the copy.
  virtual int copy_to_device(void* device, const void* host, std::size_t length) = 0;
  virtual int copy_to_host(void* host, const void* device, std::size_t length) = 0;
  // Marks point `point` (0 or 1) after everything enqueued so far, in place
  // of its earlier mark; wait(point) returns once all that is done (at
  // once for a point never marked).
  virtual int mark(unsigned point) = 0;
  virtual int wait(unsigned point) = 0;
  // Waits for everything enqueued.
  virtual int wait_all() = 0;
};

// One device. Thread-safe. Memory must be released before the device.
class gpu_device {
 public:
  virtual ~gpu_device() = default;
  // Device memory; kGpuOutOfMemory when the device has no more.
  virtual int allocate(std::size_t bytes, void** out) = 0;
  virtual void release(void* memory) = 0;
  // Page-locked host memory, which the device copies from and to directly.
  virtual int allocate_pinned(std::size_t bytes, void** out) = 0;
  virtual void release_pinned(void* memory) = 0;
  virtual int create_stream(std::unique_ptr<gpu_stream>* out) = 0;
  // Makes this the calling thread's device: the CUDA runtime keeps one per
  // thread, and each call above acts on it.
  virtual int use() = 0;
};

// Opens device `index` of the CUDA runtime: the runtime's code when
// cudaGetDeviceCount fails (no driver: cudaErrorInsufficientDriver or
// cudaErrorNoDevice), cudaErrorNoDevice when it counts none, and
// cudaErrorInvalidDevice for an index past the last device.
int open_gpu_device(int index, std::unique_ptr<gpu_device>* out);
// "cudaErrorNoDevice" and "no CUDA-capable device is detected".
const char* gpu_error_name(int code);
const char* gpu_error_text(int code);

}  // namespace larder::port
