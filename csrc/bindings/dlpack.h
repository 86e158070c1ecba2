// bindings/dlpack.h — the DLPack ABI (https://dmlc.github.io/dlpack/latest/),
// declared from its specification, and fastinit's importer and exporter.
//
// Only the layout matters: these structs are what producers (torch, CuPy, NumPy,
// JAX) put in the capsules that __dlpack__ returns. Capsules are named
// "dltensor" (DLManagedTensor, before DLPack 1.0) or "dltensor_versioned"
// (DLManagedTensorVersioned, 1.0 and later); a consumer renames the capsule it
// takes to "used_dltensor[_versioned]" and calls the deleter when done.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace fastinit {
namespace dlpack {

enum DeviceType : std::int32_t { kCPU = 1, kCUDA = 2, kCUDAHost = 3, kCUDAManaged = 13 };
enum TypeCode : std::uint8_t { kInt = 0, kUInt = 1, kFloat = 2, kBfloat = 4 };
constexpr std::uint64_t kFlagReadOnly = 1;
constexpr std::uint64_t kFlagIsCopied = 2;

struct Version {
  std::uint32_t major;
  std::uint32_t minor;
};
struct Device {
  std::int32_t device_type;
  std::int32_t device_id;
};
struct DataType {
  std::uint8_t code;
  std::uint8_t bits;
  std::uint16_t lanes;
};
struct Tensor {
  void* data;
  Device device;
  std::int32_t ndim;
  DataType dtype;
  std::int64_t* shape;
  std::int64_t* strides;  // in elements; may be null for a compact row-major tensor
  std::uint64_t byte_offset;
};
struct ManagedTensor {
  Tensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(ManagedTensor* self);
};
struct ManagedTensorVersioned {
  Version version;
  void* manager_ctx;
  void (*deleter)(ManagedTensorVersioned* self);
  std::uint64_t flags;
  Tensor dl_tensor;
};

// A tensor taken from a producer's capsule: fastinit borrows it to fill it and
// returns it (calls the producer's deleter) when this object goes.
class Imported {
 public:
  explicit Imported(pybind11::capsule capsule);
  ~Imported();
  Imported(const Imported&) = delete;
  Imported& operator=(const Imported&) = delete;

  const Tensor& tensor() const;  // throws once released
  void release();                 // calls the producer's deleter (once)
  std::uintptr_t data() const;  // first element: data + byte_offset
  bool read_only() const { return read_only_; }
  std::uint32_t major_version() const { return major_; }

 private:
  ManagedTensor* legacy_ = nullptr;
  ManagedTensorVersioned* versioned_ = nullptr;
  const Tensor* tensor_ = nullptr;
  bool read_only_ = false;
  std::uint32_t major_ = 0;
};

// A capsule exporting `data` (compact, row-major) to a consumer. `owner` keeps
// the memory alive until the consumer's deleter runs; it may run on any thread,
// with or without the GIL, so it holds no Python object.
pybind11::capsule export_tensor(void* data, Device device, DataType dtype,
                                const std::vector<std::int64_t>& shape,
                                std::shared_ptr<const void> owner, bool versioned,
                                bool read_only);

void bind(pybind11::module_& m);

}  // namespace dlpack
}  // namespace fastinit
