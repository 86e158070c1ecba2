// cuda/runtime.h — checked CUDA runtime calls, shared by the backend's sources.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace fastinit {
namespace cuda {

// Throws CudaError naming `what` and the runtime's error unless status is
// cudaSuccess; clears the (non-sticky) error so the next call starts clean.
void check(cudaError_t status, const char* what);

// Makes `device` current for the scope and restores the caller's device after
// (if the caller had one), so fastinit never changes the device a framework
// thinks is current, nor creates a context on a device nobody chose.
class DeviceScope {
 public:
  explicit DeviceScope(int device);
  ~DeviceScope();
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  int previous_ = 0;
  int device_;
  bool restore_ = false;
};

inline cudaStream_t as_stream(std::uintptr_t handle) {
  return reinterpret_cast<cudaStream_t>(handle);  // 0 legacy, 1 legacy, 2 per-thread, or a stream
}

int multiprocessors(int device);

}  // namespace cuda
}  // namespace fastinit
