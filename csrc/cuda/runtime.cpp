// cuda/runtime.cpp — device discovery, memory, copies and stream ordering.
#include "cuda/runtime.h"

#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "cuda/cuda.h"

namespace fastinit {
namespace cuda {

void check(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return;
  (void)cudaGetLastError();
  throw CudaError(std::string("CUDA error in ") + what + ": " + cudaGetErrorName(status) + " (" +
                  cudaGetErrorString(status) + ")");
}

namespace {

// Whether the calling thread has a CUDA context current (driver's cuCtxGetCurrent,
// reached through the runtime so that the module needs no driver to load).
// cudaGetDevice answers 0 on a thread that never chose a device, and setting
// device 0 back would create its context: hundreds of MB on a GPU never used.
bool context_is_current() {
  using GetCurrent = int (*)(void**);
  static const GetCurrent get_current = [] {
    void* function = nullptr;
    cudaDriverEntryPointQueryResult found{};
    if (cudaGetDriverEntryPointByVersion("cuCtxGetCurrent", &function, 12000, cudaEnableDefault,
                                         &found) != cudaSuccess ||
        found != cudaDriverEntryPointSuccess) {
      (void)cudaGetLastError();
      function = nullptr;
    }
    return reinterpret_cast<GetCurrent>(function);
  }();
  void* context = nullptr;
  return get_current == nullptr || (get_current(&context) == 0 && context != nullptr);
}

}  // namespace

DeviceScope::DeviceScope(int device) : device_(device) {
  const bool had_context = context_is_current();
  check(cudaGetDevice(&previous_), "cudaGetDevice");
  if (previous_ == device_) return;
  check(cudaSetDevice(device_), "cudaSetDevice");
  restore_ = had_context;
}

DeviceScope::~DeviceScope() {
  if (restore_ && cudaSetDevice(previous_) != cudaSuccess) (void)cudaGetLastError();
}

Status status() {
  int count = 0;
  const cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess) {
    (void)cudaGetLastError();
    int runtime = 0;
    (void)cudaRuntimeGetVersion(&runtime);
    std::string reason = std::string(cudaGetErrorName(error)) + ": " + cudaGetErrorString(error);
    if (error == cudaErrorInsufficientDriver) {
      reason += " (no NVIDIA driver, or one older than the CUDA " + std::to_string(runtime / 1000) +
                "." + std::to_string(runtime % 1000 / 10) + " runtime fastinit was built with)";
    }
    return {false, 0, reason};
  }
  if (count == 0) return {false, 0, "the NVIDIA driver reports no CUDA device"};
  return {true, count, ""};
}

int current_device() {
  int device = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  return device;
}

int multiprocessors(int device) {
  static std::mutex lock;
  static std::vector<int> known;  // by device ordinal; 0 = not asked yet
  std::lock_guard<std::mutex> held(lock);
  const auto slot = static_cast<std::size_t>(device);
  if (known.size() <= slot) known.resize(slot + 1, 0);
  if (known[slot] == 0) {
    check(cudaDeviceGetAttribute(&known[slot], cudaDevAttrMultiProcessorCount, device),
          "cudaDeviceGetAttribute(multiprocessors)");
  }
  return known[slot];
}

DeviceMemory::DeviceMemory(int device, std::size_t bytes) : device_(device), bytes_(bytes) {
  if (bytes == 0) return;
  DeviceScope scope(device);
  const cudaError_t error = cudaMalloc(&data_, bytes);
  if (error == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    std::size_t free = 0, total = 0;
    (void)cudaMemGetInfo(&free, &total);
    (void)cudaGetLastError();
    throw OutOfMemory("cuda:" + std::to_string(device) + " cannot allocate " +
                      std::to_string(bytes) + " bytes (" + std::to_string(free) + " of " +
                      std::to_string(total) + " bytes free)");
  }
  check(error, "cudaMalloc");
}

DeviceMemory::~DeviceMemory() {
  if (data_ == nullptr) return;
  const bool had_context = context_is_current();
  int previous = 0;
  const bool switched = cudaGetDevice(&previous) == cudaSuccess && previous != device_ &&
                        cudaSetDevice(device_) == cudaSuccess && had_context;
  // N.B. errors here cannot be raised (a destructor, maybe at interpreter exit,
  // when the runtime may already be unloading); cudaFree waits for the device.
  (void)cudaFree(data_);
  if (switched) (void)cudaSetDevice(previous);
  (void)cudaGetLastError();
}

void copy_to_device(int device, std::uintptr_t stream, void* dst, const void* src,
                    std::size_t bytes) {
  if (bytes == 0) return;
  DeviceScope scope(device);
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, as_stream(stream)),
        "cudaMemcpyAsync(host to device)");
  check(cudaStreamSynchronize(as_stream(stream)), "cudaStreamSynchronize");
}

void copy_to_host(int device, void* dst, const void* src, std::size_t bytes) {
  if (bytes == 0) return;
  DeviceScope scope(device);
  check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy(device to host)");
}

void order_streams(int device, std::uintptr_t producer, std::uintptr_t consumer) {
  if (producer == consumer) return;
  DeviceScope scope(device);
  cudaEvent_t done;
  check(cudaEventCreateWithFlags(&done, cudaEventDisableTiming), "cudaEventCreate");
  const cudaError_t recorded = cudaEventRecord(done, as_stream(producer));
  const cudaError_t waited =
      recorded == cudaSuccess ? cudaStreamWaitEvent(as_stream(consumer), done, 0) : recorded;
  (void)cudaEventDestroy(done);  // safe once the wait is enqueued
  check(waited, "cudaEventRecord / cudaStreamWaitEvent");
}

void synchronize(int device, std::uintptr_t stream) {
  DeviceScope scope(device);
  check(cudaStreamSynchronize(as_stream(stream)), "cudaStreamSynchronize");
}

}  // namespace cuda
}  // namespace fastinit
