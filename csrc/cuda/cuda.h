// cuda/cuda.h — the CUDA backend as the bindings see it: plain C++ types only.
//
// Streams travel as integers (a cudaStream_t's value; 0 is the legacy default
// stream), devices as ordinals. Every call selects its device for its duration
// and restores the caller's current device. Every CUDA call and kernel launch is
// checked: failures throw CudaError, and an allocation the device cannot satisfy
// throws OutOfMemory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "core/fill.h"
#include "fastinit/params.h"

namespace fastinit {
namespace cuda {

struct CudaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The device has not the memory asked for (Python: MemoryError).
struct OutOfMemory : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Whether kernels can run here, and if not, why (no driver, no device, a driver
// older than the runtime, ...). Never throws.
struct Status {
  bool available;
  int device_count;
  std::string reason;
};
Status status();

int current_device();  // the calling thread's current device, as the CUDA runtime has it

// Device memory owned by one object; freed (after the device's pending work that
// uses it, cudaFree synchronizes) when the last reference goes.
class DeviceMemory {
 public:
  DeviceMemory(int device, std::size_t bytes);
  ~DeviceMemory();
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;

  void* data() const { return data_; }
  int device() const { return device_; }
  std::size_t bytes() const { return bytes_; }

 private:
  int device_;
  std::size_t bytes_;
  void* data_ = nullptr;
};

// The fills, enqueued on `stream` of `device`; they return once launched.
// dst is device memory holding the region (row-major, contiguous).
void fill_region(int device, std::uintptr_t stream, void* dst, OutputType type,
                 const Params& params, std::uint64_t seed, std::uint64_t rng_stream,
                 const Region& region);
void fill_range(int device, std::uintptr_t stream, void* dst, OutputType type, const Params& params,
                std::uint64_t seed, std::uint64_t rng_stream, std::uint64_t first,
                std::uint64_t count);

// `count` elements of `itemsize` bytes (2, 4 or 8) at dst + itemsize * (start +
// k * stride), k < count, set to the low itemsize bytes of `bits`.
void fill_strided(int device, std::uintptr_t stream, void* dst, std::size_t itemsize,
                  std::uint64_t bits, std::uint64_t start, std::uint64_t stride,
                  std::uint64_t count);

void copy_to_device(int device, std::uintptr_t stream, void* dst, const void* src,
                    std::size_t bytes);  // returns when the copy is done
void copy_to_host(int device, void* dst, const void* src, std::size_t bytes);  // likewise

// Makes `consumer` wait for the work enqueued so far on `producer` (both of `device`).
void order_streams(int device, std::uintptr_t producer, std::uintptr_t consumer);
void synchronize(int device, std::uintptr_t stream);

// philox4x32<rounds>(counters[i], keys[i]) for i < n, computed in a kernel (tests).
void philox_kernel(int device, const std::uint32_t* counters, const std::uint32_t* keys,
                   std::uint32_t* out, std::size_t n, unsigned rounds);

}  // namespace cuda
}  // namespace fastinit
